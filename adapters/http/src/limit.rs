//! P5: per-host concurrency limit, and the adaptive slow-down for hosts whose latency climbs.

use crate::config::{AdaptiveLatency, RateLimit};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
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
    rate: Option<RateLimit>,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
}

/// A token bucket: holds up to `capacity` requests, refilled continuously at `capacity / per`.
/// Taking a token may drive the level below zero: that is a reservation, and the caller waits
/// until the level would have been back at zero, so concurrent callers queue in order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    level: f64,
    updated: Instant,
}

impl Bucket {
    pub(crate) fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            level: f64::from(limit.requests.max(1)),
            updated: now,
        }
    }

    /// Takes one request's token at `now`. Returns how long to wait before sending, or, if
    /// that is longer than `max_wait`, `Err(wait)` without taking anything.
    pub(crate) fn take(
        &mut self,
        limit: RateLimit,
        now: Instant,
        max_wait: Option<Duration>,
    ) -> Result<Duration, Duration> {
        let capacity = f64::from(limit.requests.max(1));
        let rate = capacity / limit.per.as_secs_f64().max(f64::EPSILON);
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        let level = (self.level + elapsed * rate).min(capacity);
        let after = level - 1.0;
        let wait = if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / rate)
        };
        if max_wait.is_some_and(|m| wait > m) {
            return Err(wait);
        }
        self.level = after;
        self.updated = now;
        Ok(wait)
    }
}

#[derive(Debug)]
struct HostState {
    permits: Arc<Semaphore>,
    /// One permit: while the host is slow every request also holds this, so they go one by one.
    slow_lane: Arc<Semaphore>,
    /// EMA of latency in seconds; `None` before the first sample.
    ema: Mutex<Option<f64>>,
    /// Request budget, when a rate limit is configured.
    bucket: Mutex<Option<Bucket>>,
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
    pub(crate) fn new(
        max: usize,
        adaptive: Option<AdaptiveLatency>,
        rate: Option<RateLimit>,
    ) -> Self {
        Self {
            max: max.max(1),
            adaptive,
            rate,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// P5 request budget: how long to wait before the next request to `key` may go, the
    /// token taken. `Err(wait)` when the wait exceeds `max_wait` (nothing taken).
    pub(crate) fn reserve(
        &self,
        key: &str,
        max_wait: Option<Duration>,
    ) -> Result<Duration, Duration> {
        let Some(limit) = self.rate else {
            return Ok(Duration::ZERO);
        };
        let state = self.state(key);
        let now = Instant::now();
        let mut bucket = state.bucket.lock().unwrap_or_else(|e| e.into_inner());
        bucket
            .get_or_insert_with(|| Bucket::full(limit, now))
            .take(limit, now, max_wait)
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
                    bucket: Mutex::new(None),
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
            None,
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

    #[test]
    fn p5_bucket_allows_a_burst_then_spaces_requests() {
        let limit = RateLimit {
            requests: 3,
            per: Duration::from_secs(3),
        };
        let t0 = Instant::now();
        let mut b = Bucket::full(limit, t0);
        for _ in 0..3 {
            assert_eq!(b.take(limit, t0, None), Ok(Duration::ZERO));
        }
        // Empty: the 4th waits one refill interval (1 s), the 5th two.
        let w4 = b.take(limit, t0, None).unwrap();
        assert!((w4.as_secs_f64() - 1.0).abs() < 1e-6, "{w4:?}");
        let w5 = b.take(limit, t0, None).unwrap();
        assert!((w5.as_secs_f64() - 2.0).abs() < 1e-6, "{w5:?}");
        // A wait beyond what the caller accepts takes nothing.
        let refused = b.take(limit, t0, Some(Duration::from_millis(500)));
        assert!(refused.is_err());
        // 10 s later the bucket is full again (capped at 3).
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(b.take(limit, later, None), Ok(Duration::ZERO));
        }
        assert!(b.take(limit, later, None).unwrap() > Duration::ZERO);
    }
}
