//! P5: per-host concurrency limit, and the adaptive slow-down for hosts whose latency climbs.

use crate::config::AdaptiveLatency;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

/// The limiter key of a URL: `host:port`.
pub(crate) fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[derive(Debug)]
pub(crate) struct HostLimits {
    max: usize,
    adaptive: Option<AdaptiveLatency>,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
}

#[derive(Debug)]
struct HostState {
    permits: Arc<Semaphore>,
    /// One permit: while the host is slow every request also holds this, so they go one by one.
    slow_lane: Arc<Semaphore>,
    /// EMA of latency in seconds; `None` before the first sample.
    ema: Mutex<Option<f64>>,
}

/// Held while a request is in flight; dropping it frees the host slot.
#[derive(Debug)]
pub(crate) struct HostPermit {
    _permit: OwnedSemaphorePermit,
    _slow: Option<OwnedSemaphorePermit>,
    state: Arc<HostState>,
    smoothing: f64,
}

impl HostPermit {
    /// Feeds one latency sample (time to response headers) into the host's average.
    pub(crate) fn record(&self, latency: Duration) {
        let sample = latency.as_secs_f64();
        let mut ema = self.state.ema.lock().unwrap_or_else(|e| e.into_inner());
        *ema = Some(match *ema {
            None => sample,
            Some(prev) => prev + self.smoothing * (sample - prev),
        });
    }
}

impl HostLimits {
    pub(crate) fn new(max: usize, adaptive: Option<AdaptiveLatency>) -> Self {
        Self {
            max: max.max(1),
            adaptive,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self, key: &str) -> Arc<HostState> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(HostState {
                    permits: Arc::new(Semaphore::new(self.max)),
                    slow_lane: Arc::new(Semaphore::new(1)),
                    ema: Mutex::new(None),
                })
            })
            .clone()
    }

    /// The host's average latency so far.
    pub(crate) fn latency(&self, key: &str) -> Option<Duration> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let state = hosts.get(key)?;
        let ema = *state.ema.lock().unwrap_or_else(|e| e.into_inner());
        ema.map(Duration::from_secs_f64)
    }

    /// Waits for a slot on the host; in adaptive mode, while the host is slow, also for the
    /// single slow lane and then the configured pause.
    pub(crate) async fn acquire(&self, key: &str) -> HostPermit {
        let state = self.state(key);
        let permit = state
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("host semaphore is never closed");
        let mut slow = None;
        let mut smoothing = 0.3;
        if let Some(adaptive) = self.adaptive {
            smoothing = adaptive.smoothing.clamp(0.01, 1.0);
            let is_slow = |s: &HostState| {
                s.ema
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some_and(|ema| ema > adaptive.threshold.as_secs_f64())
            };
            if is_slow(&state) {
                slow = Some(
                    state
                        .slow_lane
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("slow lane is never closed"),
                );
                tracing::debug!(host = key, "host is slow; pausing before the request (P5)");
                tokio::time::sleep(adaptive.pause).await;
            }
        }
        HostPermit {
            _permit: permit,
            _slow: slow,
            state,
            smoothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn p5_ema_follows_latency_samples() {
        let limits = HostLimits::new(
            2,
            Some(AdaptiveLatency {
                threshold: Duration::from_millis(100),
                pause: Duration::ZERO,
                smoothing: 0.5,
            }),
        );
        assert_eq!(limits.latency("h:443"), None);
        let p = limits.acquire("h:443").await;
        p.record(Duration::from_millis(200));
        p.record(Duration::from_millis(0));
        assert_eq!(limits.latency("h:443"), Some(Duration::from_millis(100)));
        drop(p);
        assert_eq!(
            host_key(&Url::parse("https://h.example/x").unwrap()),
            "h.example:443"
        );
    }
}
