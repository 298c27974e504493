//! The per-sync time budget (E2): every attempt and every retry wait of one sync fits inside it.

use std::time::Duration;
use tokio::time::Instant;

/// A point in time after which no new request is sent and no retry is waited for.
///
/// An adapter creates one per sync (`Deadline::after(Duration::from_secs(600))`) and scopes
/// its client with [`crate::HttpClient::with_deadline`]; every request made through that
/// scoped client then caps its timeout at the remaining budget, and a retry whose wait would
/// end past the deadline is not attempted. `Deadline::NONE` is unbounded (only the per-request
/// timeout and the attempt count bound the work).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// No deadline.
    pub const NONE: Deadline = Deadline { at: None };

    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Some(Instant::now() + budget),
        }
    }

    /// A deadline at a given instant.
    pub fn at(instant: Instant) -> Self {
        Self { at: Some(instant) }
    }

    /// The instant, or `None` when unbounded.
    pub fn instant(&self) -> Option<Instant> {
        self.at
    }

    /// Time left, `None` when unbounded, zero once passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// Whether waiting `wait` from now still ends before the deadline.
    pub fn allows(&self, wait: Duration) -> bool {
        self.remaining().is_none_or(|left| wait < left)
    }

    /// `timeout`, shortened to the time left.
    pub fn cap(&self, timeout: Duration) -> Duration {
        match self.remaining() {
            Some(left) => timeout.min(left),
            None => timeout,
        }
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.at, other.at) {
            (Some(a), Some(b)) => Deadline { at: Some(a.min(b)) },
            (a, b) => Deadline { at: a.or(b) },
        }
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Deadline::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2_deadline_bounds_waits_and_timeouts() {
        assert!(Deadline::NONE.allows(Duration::from_secs(1_000_000)));
        assert_eq!(
            Deadline::NONE.cap(Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        let d = Deadline::after(Duration::from_secs(60));
        assert!(!d.is_expired());
        assert!(d.allows(Duration::from_secs(1)));
        assert!(!d.allows(Duration::from_secs(61)));
        assert!(d.cap(Duration::from_secs(600)) <= Duration::from_secs(60));
        let past = Deadline::after(Duration::ZERO);
        assert!(past.is_expired());
        assert!(!past.allows(Duration::ZERO));
        assert_eq!(d.min(past), past);
        assert_eq!(Deadline::NONE.min(d), d);
    }
}
