//! The daemon's metrics, rendered by hand in the Prometheus text exposition format (0.0.4),
//! so no metrics library is needed. `docs/daemon.md` lists every series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the sync duration histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

/// How a sync attempt by the daemon ended, as the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncLabel {
    /// Applied (`SyncSucceeded`).
    Succeeded,
    /// Failed (`SyncFailed`, with an E1 kind).
    Failed,
    /// Held by G11 (`SyncHeld`).
    Held,
    /// Refused by the policy (G1, T2, not connected); nothing appended.
    Refused,
    /// The daemon could not run it (no credentials, a store error, a client that could not be
    /// built); nothing appended.
    Error,
    /// Ran past `sync_timeout`, or lost its lease; abandoned, nothing appended.
    TimedOut,
    /// Abandoned at shutdown; nothing appended.
    Abandoned,
}

impl SyncLabel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncLabel::Succeeded => "succeeded",
            SyncLabel::Failed => "failed",
            SyncLabel::Held => "held",
            SyncLabel::Refused => "refused",
            SyncLabel::Error => "error",
            SyncLabel::TimedOut => "timed_out",
            SyncLabel::Abandoned => "abandoned",
        }
    }
}

/// Counters and gauges of one daemon process. All methods are cheap and thread-safe.
#[derive(Debug, Default)]
pub struct Metrics {
    syncs: Mutex<BTreeMap<(SyncLabel, &'static str), u64>>,
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    metadata_ok: AtomicU64,
    metadata_failed: AtomicU64,
    events: Mutex<BTreeMap<&'static str, u64>>,
    coalesced: AtomicU64,
    lease_conflicts: AtomicU64,
    unauthorized: AtomicU64,
    tail_errors: AtomicU64,
    /// Gauges, set by the scheduler after each round.
    workspaces: AtomicU64,
    workspaces_due: AtomicU64,
    metadata_due: AtomicU64,
    running: AtomicU64,
    log_position: AtomicU64,
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one sync attempt and, if it ran, its duration.
    pub fn record_sync(&self, label: SyncLabel, error_kind: &'static str, took: Option<Duration>) {
        *self
            .syncs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((label, error_kind))
            .or_default() += 1;
        if let Some(d) = took {
            let secs = d.as_secs_f64();
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            self.duration_count.fetch_add(1, Ordering::Relaxed);
            self.duration_sum_micros.fetch_add(
                u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
    }

    /// How many sync attempts ended with `label` (any error kind).
    pub fn syncs(&self, label: SyncLabel) -> u64 {
        self.syncs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|((l, _), _)| *l == label)
            .map(|(_, n)| n)
            .sum()
    }

    /// Counts a metadata refresh.
    pub fn record_metadata(&self, ok: bool) {
        if ok {
            self.metadata_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metadata_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Metadata refreshes that succeeded.
    pub fn metadata_refreshes(&self) -> u64 {
        self.metadata_ok.load(Ordering::Relaxed)
    }

    /// Counts an event that arrived in the log while the daemon ran (any writer).
    pub fn record_event(&self, event_type: &'static str) {
        *self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(event_type)
            .or_default() += 1;
    }

    /// A trigger folded into a sync already queued or running (T4).
    pub fn record_coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    /// Triggers folded so far.
    pub fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    /// Another process held a workspace's sync lease (T4 across processes).
    pub fn record_lease_conflict(&self) {
        self.lease_conflicts.fetch_add(1, Ordering::Relaxed);
    }

    /// Lease conflicts so far.
    pub fn lease_conflicts(&self) -> u64 {
        self.lease_conflicts.load(Ordering::Relaxed)
    }

    /// An API request without a valid token.
    pub fn record_unauthorized(&self) {
        self.unauthorized.fetch_add(1, Ordering::Relaxed);
    }

    /// Tailing the log failed once.
    pub fn record_tail_error(&self) {
        self.tail_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the position of the last event read from the log.
    pub fn set_log_position(&self, position: u64) {
        self.log_position.store(position, Ordering::Relaxed);
    }

    /// Sets the scheduler's gauges.
    pub fn set_gauges(
        &self,
        workspaces: u64,
        due: u64,
        metadata_due: u64,
        running: u64,
        position: u64,
    ) {
        self.workspaces.store(workspaces, Ordering::Relaxed);
        self.workspaces_due.store(due, Ordering::Relaxed);
        self.metadata_due.store(metadata_due, Ordering::Relaxed);
        self.running.store(running, Ordering::Relaxed);
        self.log_position.store(position, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };

        head(
            &mut out,
            "mdmsyncd_syncs_total",
            "counter",
            "Sync attempts by this daemon, by outcome and E1 error kind (error_kind is empty unless outcome is failed).",
        );
        {
            let syncs = self
                .syncs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Always expose the main outcomes, so dashboards see zeros.
            let mut all: BTreeMap<(SyncLabel, &'static str), u64> =
                [SyncLabel::Succeeded, SyncLabel::Held, SyncLabel::Refused]
                    .into_iter()
                    .map(|l| ((l, ""), 0))
                    .collect();
            all.extend(syncs.iter().map(|(k, v)| (*k, *v)));
            for ((label, kind), n) in all {
                let _ = writeln!(
                    out,
                    "mdmsyncd_syncs_total{{outcome=\"{}\",error_kind=\"{}\"}} {n}",
                    label.as_str(),
                    kind
                );
            }
        }

        head(
            &mut out,
            "mdmsyncd_sync_duration_seconds",
            "histogram",
            "Wall time of syncs that ran (fetch, decide, append).",
        );
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "mdmsyncd_sync_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.duration_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "mdmsyncd_sync_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "mdmsyncd_sync_duration_seconds_sum {}",
            self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "mdmsyncd_sync_duration_seconds_count {count}");

        head(
            &mut out,
            "mdmsyncd_metadata_refreshes_total",
            "counter",
            "Scheduled device metadata refreshes (T5, M2), by result.",
        );
        let _ = writeln!(
            out,
            "mdmsyncd_metadata_refreshes_total{{result=\"ok\"}} {}",
            self.metadata_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "mdmsyncd_metadata_refreshes_total{{result=\"failed\"}} {}",
            self.metadata_failed.load(Ordering::Relaxed)
        );

        head(
            &mut out,
            "mdmsyncd_events_appended_total",
            "counter",
            "Events appended to the log since the daemon started (by any writer: this daemon, other daemons, the CLI), by type.",
        );
        {
            let events = self
                .events
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (t, n) in events.iter() {
                let _ = writeln!(out, "mdmsyncd_events_appended_total{{type=\"{t}\"}} {n}");
            }
        }

        let counters = [
            (
                "mdmsyncd_triggers_coalesced_total",
                "Triggers folded into a sync already queued or running (T4).",
                &self.coalesced,
            ),
            (
                "mdmsyncd_lease_conflicts_total",
                "Times another process held a workspace's sync lease (T4 across processes).",
                &self.lease_conflicts,
            ),
            (
                "mdmsyncd_api_unauthorized_total",
                "Admin API requests refused for a missing or wrong bearer token.",
                &self.unauthorized,
            ),
            (
                "mdmsyncd_tail_errors_total",
                "Failed reads of the event log by the tail.",
                &self.tail_errors,
            ),
        ];
        for (name, help, v) in counters {
            head(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }

        let gauges = [
            (
                "mdmsyncd_workspaces",
                "Workspaces in the store.",
                &self.workspaces,
            ),
            (
                "mdmsyncd_workspaces_due",
                "Workspaces whose sync is due now (T1, T3), running or waiting for a slot.",
                &self.workspaces_due,
            ),
            (
                "mdmsyncd_workspaces_metadata_due",
                "Workspaces with device metadata due for a refresh (T5, M2).",
                &self.metadata_due,
            ),
            (
                "mdmsyncd_syncs_running",
                "Sync jobs queued or running in this process.",
                &self.running,
            ),
            (
                "mdmsyncd_log_position",
                "Position of the last event the daemon has read from the log.",
                &self.log_position,
            ),
        ];
        for (name, help, v) in gauges {
            head(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_outcomes_kinds_histogram_and_gauges() {
        let m = Metrics::new();
        m.record_sync(
            SyncLabel::Failed,
            "unauthorized",
            Some(Duration::from_millis(300)),
        );
        m.record_sync(SyncLabel::Succeeded, "", Some(Duration::from_secs(2)));
        m.record_event("SyncSucceeded");
        m.set_gauges(3, 1, 0, 1, 42);
        let text = m.render();
        assert!(
            text.contains("mdmsyncd_syncs_total{outcome=\"failed\",error_kind=\"unauthorized\"} 1")
        );
        assert!(text.contains("mdmsyncd_syncs_total{outcome=\"succeeded\",error_kind=\"\"} 1"));
        assert!(text.contains("mdmsyncd_syncs_total{outcome=\"held\",error_kind=\"\"} 0"));
        assert!(text.contains("mdmsyncd_sync_duration_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("mdmsyncd_sync_duration_seconds_bucket{le=\"2.5\"} 2"));
        assert!(text.contains("mdmsyncd_sync_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("mdmsyncd_sync_duration_seconds_count 2"));
        assert!(text.contains("mdmsyncd_events_appended_total{type=\"SyncSucceeded\"} 1"));
        assert!(text.contains("mdmsyncd_workspaces_due 1"));
        assert!(text.contains("mdmsyncd_log_position 42"));
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "undeclared {name}"
            );
        }
    }
}
