//! The core's `EventStore` contract suite against the in-memory store and SQLite (in memory
//! and on disk), plus SQLite-specific checks: concurrent writers from two threads on one
//! store and on two connections (G10), positions unique and gap-free.

use mdmsync_core::testkit::{contract, t0};
use mdmsync_core::{
    Actor, Cause, DeviceId, Event, EventEnvelope, EventMeta, EventStore, ExpectedVersion,
    InMemoryEventStore, Plan, Position, StoreError, WorkspaceId,
};
use mdmsync_sqlite::SqliteEventStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use uuid::Uuid;

#[tokio::test]
async fn contract_suite_passes_on_the_in_memory_store() {
    contract::run_all(InMemoryEventStore::new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_suite_passes_on_sqlite_files_from_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    contract::run_all(|| {
        let i = n.fetch_add(1, Ordering::Relaxed);
        SqliteEventStore::open(dir.path().join(format!("contract-{i}.db"))).unwrap()
    })
    .await;
    assert!(n.load(Ordering::Relaxed) >= 9, "one fresh store per check");
}

#[tokio::test(flavor = "current_thread")]
async fn contract_suite_passes_on_sqlite_in_memory() {
    contract::run_all(|| SqliteEventStore::open_in_memory().unwrap()).await;
}

#[test]
fn contract_suite_passes_without_a_runtime_through_the_blocking_fallback() {
    // No tokio runtime: the store runs its blocking work inline (a plain program, the CLI).
    futures::executor::block_on(contract::run_all(|| {
        SqliteEventStore::open_in_memory().unwrap()
    }));
}

fn ws(n: u128) -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(0xF0_0000 + n))
}

fn env(w: WorkspaceId, event: Event) -> EventEnvelope {
    EventEnvelope {
        workspace: w,
        meta: EventMeta {
            recorded_at: t0(),
            actor: Actor::System,
            sync_id: None,
            cause: Cause::Command {
                command: "test".into(),
            },
        },
        event,
    }
}

fn device(w: WorkspaceId, n: u128) -> EventEnvelope {
    env(
        w,
        Event::DeviceRegistered {
            device_id: DeviceId(Uuid::from_u128(n)),
            serial_number: Some(format!("S{n}")),
            name: None,
        },
    )
}

fn assert_log_is_dense(store: &SqliteEventStore, expected_total: usize) {
    let all = store.read_all_blocking(Position(0), usize::MAX).unwrap();
    assert_eq!(all.len(), expected_total, "no lost events");
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, Position(i as u64 + 1), "positions gap-free");
    }
    let mut per_stream = std::collections::HashMap::<WorkspaceId, u64>::new();
    for e in &all {
        let v = per_stream.entry(e.envelope.workspace).or_default();
        *v += 1;
        assert_eq!(e.stream_version, *v, "stream versions gap-free");
    }
}

/// G10: of two appends with the same expected version, exactly one wins; run from two
/// threads, each with its own store (own connections) on one file, released together.
#[test]
fn g10_two_threads_same_expected_version_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let a = SqliteEventStore::open(&path).unwrap();
    let b = SqliteEventStore::open(&path).unwrap();
    let w = ws(1);
    a.append_blocking(
        w,
        ExpectedVersion::NoStream,
        vec![env(
            w,
            Event::WorkspaceCreated {
                workspace_id: w,
                name: "race".into(),
                plan: Plan::Pro,
            },
        )],
    )
    .unwrap();
    let rounds = 25u64;
    for round in 0..rounds {
        let expected = 1 + round;
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store.append_blocking(
                        w,
                        ExpectedVersion::Exact(expected),
                        vec![device(w, u128::from(round) * 10 + i as u128)],
                    )
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(r, StoreError::Conflict { actual, .. } if *actual == expected + 1),
                "{r:?}"
            );
        }
    }
    assert_log_is_dense(&a, 1 + rounds as usize);
    assert!(b.verify().unwrap().is_clean());
}

/// Many writers on one shared store and on a second store, with retries on conflict: every
/// event lands once, positions stay unique and gap-free, projections stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g10_concurrent_writers_with_retries_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.db");
    let first = SqliteEventStore::open(&path).unwrap();
    let second = SqliteEventStore::open(&path).unwrap();
    let shared = ws(2);
    let writers = 4u128;
    let per_writer = 15u128;
    let mut tasks = Vec::new();
    for t in 0..writers {
        let store = if t % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let own = ws(100 + t);
            for n in 0..per_writer {
                // The shared stream, with optimistic concurrency and retry.
                loop {
                    let version = store
                        .read_stream(shared, 0, usize::MAX)
                        .await
                        .unwrap()
                        .len() as u64;
                    match store
                        .append(
                            shared,
                            ExpectedVersion::Exact(version),
                            vec![device(shared, t * 1000 + n)],
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                // Its own stream, no contention on the version.
                store
                    .append(own, ExpectedVersion::Any, vec![device(own, n)])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = (writers * per_writer * 2) as usize;
    assert_log_is_dense(&first, total);
    let shared_events = first.read_stream_blocking(shared, 0, usize::MAX).unwrap();
    assert_eq!(shared_events.len() as u128, writers * per_writer);
    let devices = first.devices(shared, None).unwrap();
    assert_eq!(devices.len() as u128, writers * per_writer);
    let report = second.verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// The shared-metadata batch path stores exactly what the envelope path stores, with the
/// same version check (G10).
#[test]
fn append_events_with_shared_metadata_equals_the_envelope_path() {
    let a = SqliteEventStore::open_in_memory().unwrap();
    let b = SqliteEventStore::open_in_memory().unwrap();
    let w = ws(3);
    let batch: Vec<EventEnvelope> = (0..70).map(|n| device(w, n)).collect();
    let events: Vec<Event> = batch.iter().map(|e| e.event.clone()).collect();
    let meta = batch[0].meta.clone();
    let oa = a
        .append_blocking(w, ExpectedVersion::NoStream, batch.clone())
        .unwrap();
    let ob = b
        .append_events(w, ExpectedVersion::NoStream, &meta, &events)
        .unwrap();
    assert_eq!(oa, ob);
    assert_eq!(
        a.read_all_blocking(Position(0), usize::MAX).unwrap(),
        b.read_all_blocking(Position(0), usize::MAX).unwrap()
    );
    assert_eq!(
        serde_json::to_value(a.export(Position(0), usize::MAX).unwrap()).unwrap(),
        serde_json::to_value(b.export(Position(0), usize::MAX).unwrap()).unwrap()
    );
    let err = b
        .append_events(w, ExpectedVersion::Exact(69), &meta, &events[..1])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: 70, .. }),
        "{err:?}"
    );
    assert!(b.verify().unwrap().is_clean());
}

#[test]
fn the_store_and_the_vault_are_send_and_sync_for_multi_thread_runtimes() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<SqliteEventStore>();
    send_sync::<mdmsync_sqlite::SqliteVault>();
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open_in_memory().unwrap());
    let vault: Arc<dyn mdmsync_core::CredentialVault> = Arc::new(mdmsync_sqlite::SqliteVault::new(
        &SqliteEventStore::open_in_memory().unwrap(),
        mdmsync_sqlite::VaultKey::generate(),
    ));
    assert_eq!(Arc::strong_count(&store), 1);
    assert_eq!(Arc::strong_count(&vault), 1);
}
