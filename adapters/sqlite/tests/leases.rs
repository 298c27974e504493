//! T4 across processes: one sync lease per workspace in the shared database, checked here
//! from two connections (two stores on one file).

use chrono::TimeDelta;
use mdmsync_core::WorkspaceId;
use mdmsync_core::testkit::t0;
use mdmsync_sqlite::SqliteEventStore;
use uuid::Uuid;

#[test]
fn t4_a_lease_held_by_another_refuses_until_it_expires_or_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lease.db");
    let a = SqliteEventStore::open(&path).unwrap();
    let b = SqliteEventStore::open(&path).unwrap();
    let ws = WorkspaceId(Uuid::from_u128(1));
    let other_ws = WorkspaceId(Uuid::from_u128(2));
    let ttl = TimeDelta::minutes(10);
    assert!(a.try_acquire_sync_lease(ws, "host-a:1", t0(), ttl).unwrap());
    assert!(
        !b.try_acquire_sync_lease(ws, "host-b:2", t0() + TimeDelta::minutes(5), ttl)
            .unwrap()
    );
    assert!(
        b.try_acquire_sync_lease(other_ws, "host-b:2", t0(), ttl)
            .unwrap(),
        "per workspace"
    );
    // The holder renews.
    assert!(
        a.try_acquire_sync_lease(ws, "host-a:1", t0() + TimeDelta::minutes(9), ttl)
            .unwrap()
    );
    assert!(
        !b.try_acquire_sync_lease(ws, "host-b:2", t0() + TimeDelta::minutes(12), ttl)
            .unwrap()
    );
    let lease = b.sync_lease(ws).unwrap().unwrap();
    assert_eq!(lease.holder, "host-a:1");
    assert_eq!(lease.expires_at, t0() + TimeDelta::minutes(19));
    // Expired: taken over.
    assert!(
        b.try_acquire_sync_lease(ws, "host-b:2", t0() + TimeDelta::minutes(19), ttl)
            .unwrap()
    );
    assert!(
        !a.release_sync_lease(ws, "host-a:1").unwrap(),
        "no longer a's to release"
    );
    assert!(b.release_sync_lease(ws, "host-b:2").unwrap());
    assert!(b.sync_lease(ws).unwrap().is_none());
    assert!(
        a.try_acquire_sync_lease(ws, "host-a:1", t0() + TimeDelta::minutes(20), ttl)
            .unwrap()
    );
    assert!(
        a.try_acquire_sync_lease(ws, "host-a:1", t0(), TimeDelta::zero())
            .is_err()
    );
}

#[test]
fn t4_two_threads_racing_for_a_lease_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    for round in 0..10u128 {
        let ws = WorkspaceId(Uuid::from_u128(100 + round));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|holder| {
                let store = SqliteEventStore::open(&path).unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .try_acquire_sync_lease(ws, holder, t0(), TimeDelta::minutes(1))
                        .unwrap()
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(wins, 1, "round {round}");
    }
}
