//! The `EventStore` contract: checks every store must pass, run by the in-memory store's tests
//! and by each backend's (`mdmsync-sqlite`). Each check takes a fresh, empty store.
//!
//! ```text
//! mdmsync_core::testkit::contract::run_all(|| MyStore::open_temp()).await;
//! ```

use crate::event::{Actor, Cause, Event, EventEnvelope, EventMeta, Position};
use crate::ids::{DeviceId, WorkspaceId};
use crate::ports::{EventStore, ExpectedVersion, StoreError};
use crate::provider::Plan;
use crate::workspace::Workspace;
use uuid::Uuid;

fn envelope(ws: WorkspaceId, event: Event) -> EventEnvelope {
    EventEnvelope {
        workspace: ws,
        meta: EventMeta {
            recorded_at: super::t0(),
            actor: Actor::Operator("contract".into()),
            sync_id: None,
            cause: Cause::Command {
                command: "contract".into(),
            },
        },
        event,
    }
}

fn created(ws: WorkspaceId) -> EventEnvelope {
    envelope(
        ws,
        Event::WorkspaceCreated {
            workspace_id: ws,
            name: format!("ws {ws}"),
            plan: Plan::Pro,
        },
    )
}

fn registered(ws: WorkspaceId, n: u128) -> EventEnvelope {
    envelope(
        ws,
        Event::DeviceRegistered {
            device_id: DeviceId(Uuid::from_u128(n)),
            serial_number: Some(format!("S{n}")),
            name: None,
        },
    )
}

fn ws(n: u128) -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(0xC0_0000 + n))
}

/// Runs every check, each on a fresh store from `make`.
pub async fn run_all<S: EventStore, F: FnMut() -> S>(mut make: F) {
    conflict_on_stale_expected_version(&make()).await;
    no_stream_refuses_an_existing_stream(&make()).await;
    batch_is_atomic(&make()).await;
    empty_batch_changes_nothing(&make()).await;
    order_across_streams(&make()).await;
    resume_after_a_position(&make()).await;
    read_stream_pages_by_version(&make()).await;
    replay_from_all_equals_replay_from_stream(&make()).await;
    roundtrip_keeps_metadata(&make()).await;
}

/// G10: an append with a stale expected version is a typed `Conflict` and writes nothing.
pub async fn conflict_on_stale_expected_version<S: EventStore>(store: &S) {
    let a = ws(1);
    store
        .append(a, ExpectedVersion::NoStream, vec![created(a)])
        .await
        .expect("first append");
    store
        .append(a, ExpectedVersion::Exact(1), vec![registered(a, 1)])
        .await
        .expect("second append");
    let err = store
        .append(a, ExpectedVersion::Exact(1), vec![registered(a, 2)])
        .await
        .expect_err("stale");
    match err {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => {
            assert_eq!(stream, a);
            assert_eq!(expected, ExpectedVersion::Exact(1));
            assert_eq!(actual, 2);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.read_stream(a, 0, 100).await.unwrap().len(),
        2,
        "nothing of the stale batch landed"
    );
    store
        .append(a, ExpectedVersion::Any, vec![registered(a, 3)])
        .await
        .expect("Any always appends");
}

/// `NoStream` on an existing stream is a conflict.
pub async fn no_stream_refuses_an_existing_stream<S: EventStore>(store: &S) {
    let a = ws(2);
    store
        .append(a, ExpectedVersion::NoStream, vec![created(a)])
        .await
        .unwrap();
    let err = store
        .append(a, ExpectedVersion::NoStream, vec![created(a)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual: 1, .. }),
        "{err:?}"
    );
}

/// G10: a batch that cannot be stored whole is not stored at all (here: it holds an event for
/// another stream).
pub async fn batch_is_atomic<S: EventStore>(store: &S) {
    let a = ws(3);
    let b = ws(4);
    let batch = vec![
        created(a),
        registered(a, 1),
        registered(b, 2),
        registered(a, 3),
    ];
    store
        .append(a, ExpectedVersion::NoStream, batch)
        .await
        .expect_err("mixed batch must fail");
    assert!(store.read_stream(a, 0, 100).await.unwrap().is_empty());
    assert!(store.read_all(Position(0), 100).await.unwrap().is_empty());
    let ok = store
        .append(
            a,
            ExpectedVersion::NoStream,
            vec![created(a), registered(a, 1), registered(a, 2)],
        )
        .await
        .unwrap();
    assert_eq!(ok.stream_version, 3);
}

/// An empty batch succeeds and changes nothing.
pub async fn empty_batch_changes_nothing<S: EventStore>(store: &S) {
    let a = ws(5);
    store
        .append(a, ExpectedVersion::NoStream, vec![created(a)])
        .await
        .unwrap();
    let out = store
        .append(a, ExpectedVersion::Exact(1), vec![])
        .await
        .unwrap();
    assert_eq!(out.stream_version, 1);
    assert_eq!(store.read_all(Position(0), 100).await.unwrap().len(), 1);
}

/// Positions are global and follow commit order across streams; versions are per stream.
pub async fn order_across_streams<S: EventStore>(store: &S) {
    let (a, b) = (ws(6), ws(7));
    store
        .append(a, ExpectedVersion::NoStream, vec![created(a)])
        .await
        .unwrap();
    store
        .append(
            b,
            ExpectedVersion::NoStream,
            vec![created(b), registered(b, 1)],
        )
        .await
        .unwrap();
    store
        .append(a, ExpectedVersion::Exact(1), vec![registered(a, 2)])
        .await
        .unwrap();
    let all = store.read_all(Position(0), 100).await.unwrap();
    let order: Vec<(WorkspaceId, u64)> = all
        .iter()
        .map(|e| (e.envelope.workspace, e.stream_version))
        .collect();
    assert_eq!(order, vec![(a, 1), (b, 1), (b, 2), (a, 2)]);
    assert!(
        all.windows(2).all(|w| w[0].position < w[1].position),
        "positions strictly increase"
    );
}

/// Reading after a position resumes exactly there, page by page.
pub async fn resume_after_a_position<S: EventStore>(store: &S) {
    let a = ws(8);
    let mut batch = vec![created(a)];
    batch.extend((0..24).map(|n| registered(a, n)));
    store
        .append(a, ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    let mut after = Position(0);
    let mut seen = Vec::new();
    loop {
        let page = store.read_all(after, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = page.last().unwrap().position;
        seen.extend(page);
    }
    assert_eq!(seen.len(), 25);
    let middle = seen[9].position;
    let rest = store.read_all(middle, 100).await.unwrap();
    assert_eq!(rest.len(), 15);
    assert_eq!(rest[0].position, seen[10].position);
}

/// A stream reads by version, paged.
pub async fn read_stream_pages_by_version<S: EventStore>(store: &S) {
    let (a, b) = (ws(9), ws(10));
    let mut batch = vec![created(a)];
    batch.extend((0..9).map(|n| registered(a, n)));
    store
        .append(a, ExpectedVersion::NoStream, batch)
        .await
        .unwrap();
    store
        .append(b, ExpectedVersion::NoStream, vec![created(b)])
        .await
        .unwrap();
    let page = store.read_stream(a, 4, 3).await.unwrap();
    let versions: Vec<u64> = page.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![5, 6, 7]);
    assert!(page.iter().all(|e| e.envelope.workspace == a));
    assert!(store.read_stream(a, 10, 3).await.unwrap().is_empty());
    assert!(store.read_stream(ws(99), 0, 3).await.unwrap().is_empty());
}

/// Folding a stream read through `read_all` equals folding it through `read_stream`.
pub async fn replay_from_all_equals_replay_from_stream<S: EventStore>(store: &S) {
    let (a, b) = (ws(11), ws(12));
    store
        .append(
            a,
            ExpectedVersion::NoStream,
            vec![created(a), registered(a, 1)],
        )
        .await
        .unwrap();
    store
        .append(b, ExpectedVersion::NoStream, vec![created(b)])
        .await
        .unwrap();
    store
        .append(a, ExpectedVersion::Exact(2), vec![registered(a, 2)])
        .await
        .unwrap();
    let from_stream = Workspace::from_events(
        store
            .read_stream(a, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| &e.envelope.event),
    );
    let all = store.read_all(Position(0), 100).await.unwrap();
    let from_all = Workspace::from_events(
        all.iter()
            .filter(|e| e.envelope.workspace == a)
            .map(|e| &e.envelope.event),
    );
    assert_eq!(from_stream, from_all);
    assert_eq!(from_stream.devices().len(), 2);
}

/// What goes in comes out: payload and metadata (G12).
pub async fn roundtrip_keeps_metadata<S: EventStore>(store: &S) {
    let a = ws(13);
    let mut e = registered(a, 1);
    e.meta.sync_id = Some(crate::ids::SyncId(Uuid::from_u128(77)));
    e.meta.actor = Actor::ApiCaller("billing".into());
    e.meta.cause = Cause::Sync {
        trigger: crate::event::SyncTrigger::Manual,
    };
    store
        .append(a, ExpectedVersion::Any, vec![created(a), e.clone()])
        .await
        .unwrap();
    let back = store.read_stream(a, 1, 10).await.unwrap();
    assert_eq!(back[0].envelope, e);
}
