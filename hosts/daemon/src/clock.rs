//! The real time and random sync ids (the core's [`Clock`] and [`IdGenerator`] ports), and
//! shareable wrappers so a scheduler and its tests can hand the same clock around.

use chrono::{DateTime, Utc};
use mdmsync_core::{Clock, IdGenerator, SyncId};
use std::sync::Arc;

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Random (v4) sync ids.
#[derive(Clone, Copy, Debug, Default)]
pub struct UuidIds;

impl IdGenerator for UuidIds {
    fn new_sync_id(&self) -> SyncId {
        SyncId(uuid::Uuid::new_v4())
    }
}

/// A clock behind an `Arc`, so one instance is shared by the scheduler, the service and tests.
#[derive(Clone)]
pub struct SharedClock(pub Arc<dyn Clock>);

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClock")
    }
}

impl Clock for SharedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// An id source behind an `Arc`.
#[derive(Clone)]
pub struct SharedIds(pub Arc<dyn IdGenerator>);

impl std::fmt::Debug for SharedIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedIds")
    }
}

impl IdGenerator for SharedIds {
    fn new_sync_id(&self) -> SyncId {
        self.0.new_sync_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_are_unique_v4() {
        let a = UuidIds.new_sync_id();
        let b = UuidIds.new_sync_id();
        assert_ne!(a, b);
        assert_eq!(a.0.get_version_num(), 4);
    }
}
