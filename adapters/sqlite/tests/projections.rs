//! The checkpointed projector: projections equal the aggregate after every step, rebuild
//! equals live, `verify` finds tampering, `catch_up` closes gaps, failed batches leave no
//! trace (G10).

mod common;

use common::{Scenario, assert_projection_matches, run_full_scenario, ws_id};
use mdmsync_core::testkit::{device, t0};
use mdmsync_core::workspace::Context;
use mdmsync_core::{Actor, Command, Event, ExpectedVersion, Plan, Position, StoreError};
use mdmsync_sqlite::SqliteEventStore;
use std::collections::BTreeSet;

fn file_store(dir: &tempfile::TempDir) -> SqliteEventStore {
    SqliteEventStore::open(dir.path().join("mdmsync.db")).expect("open")
}

fn scenario_store() -> (tempfile::TempDir, Scenario) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Scenario::new(file_store(&dir), ws_id(1));
    run_full_scenario(&mut s, |_| {});
    (dir, s)
}

#[test]
fn g12_projections_match_the_aggregate_after_every_step_of_all_22_event_types() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Scenario::new(file_store(&dir), ws_id(1));
    let mut checks = 0;
    run_full_scenario(&mut s, |s| {
        assert_projection_matches(s);
        checks += 1;
    });
    assert!(checks >= 10);
    let types: BTreeSet<&str> = s
        .store
        .read_all_blocking(Position(0), usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.envelope.event.event_type())
        .collect();
    let all: BTreeSet<&str> = Event::TYPES.iter().copied().collect();
    assert_eq!(types, all, "the scenario covers every event type");
}

#[test]
fn projections_in_memory_equal_projections_on_disk() {
    let mut s = Scenario::new(SqliteEventStore::open_in_memory().unwrap(), ws_id(2));
    run_full_scenario(&mut s, assert_projection_matches);
    assert!(s.store.verify().unwrap().is_clean());
}

#[test]
fn rebuild_equals_live_and_verify_is_clean() {
    let (_dir, s) = scenario_store();
    let before = (
        serde_json::to_value(s.store.workspaces().unwrap()).unwrap(),
        serde_json::to_value(s.store.groups_with_members(s.ws).unwrap()).unwrap(),
        serde_json::to_value(s.store.devices(s.ws, None).unwrap()).unwrap(),
    );
    let report = s.store.verify().unwrap();
    assert!(report.is_clean(), "{:#?}", report.differences);
    assert_eq!(report.events_replayed, s.version);
    let replayed = s.store.rebuild().unwrap();
    assert_eq!(replayed, s.version);
    let after = (
        serde_json::to_value(s.store.workspaces().unwrap()).unwrap(),
        serde_json::to_value(s.store.groups_with_members(s.ws).unwrap()).unwrap(),
        serde_json::to_value(s.store.devices(s.ws, None).unwrap()).unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(
        s.store.checkpoint().unwrap(),
        s.store.last_position().unwrap()
    );
    assert_projection_matches(&s);
}

fn raw(s: &Scenario) -> rusqlite::Connection {
    rusqlite::Connection::open(s.store.path().expect("file store")).unwrap()
}

#[test]
fn verify_reports_every_tampered_row_with_live_and_rebuilt_values() {
    let (_dir, s) = scenario_store();
    let conn = raw(&s);
    let manual = common::manual(1).to_string();
    conn.execute(
        "UPDATE proj_groups SET name = 'Tampered' WHERE group_id = ?1",
        [&manual],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM proj_memberships WHERE group_id = ?1 AND device_id = ?2",
        [&manual, &device(0).to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO proj_devices (workspace_id, device_id, ambiguous_candidates) VALUES (?1, 'ghost', 0)",
        [&s.ws.to_string()],
    )
    .unwrap();
    let report = s.store.verify().unwrap();
    assert!(!report.is_clean());
    let by_table: Vec<(&str, bool, bool)> = report
        .differences
        .iter()
        .map(|d| (d.table.as_str(), d.live.is_some(), d.rebuilt.is_some()))
        .collect();
    assert_eq!(
        by_table,
        vec![
            ("proj_groups", true, true),
            ("proj_memberships", false, true),
            ("proj_devices", true, false),
        ]
    );
    let g = &report.differences[0];
    assert_eq!(g.live.as_ref().unwrap()["name"], "Tampered");
    assert_eq!(g.rebuilt.as_ref().unwrap()["name"], "Manual B");
    assert_eq!(g.key, format!("{}/{manual}", s.ws));
    s.store.rebuild().unwrap();
    assert!(s.store.verify().unwrap().is_clean());
}

#[test]
fn catch_up_projects_what_the_checkpoint_has_not_seen() {
    let (_dir, s) = scenario_store();
    let conn = raw(&s);
    // As if the projections were added after the events were written.
    conn.execute_batch(
        "DELETE FROM proj_workspaces; DELETE FROM proj_groups; DELETE FROM proj_memberships;
         DELETE FROM proj_devices; UPDATE proj_checkpoint SET position = 0;",
    )
    .unwrap();
    let report = s.store.verify().unwrap();
    assert_eq!(report.lag, s.version);
    assert!(!report.is_clean());
    assert_eq!(s.store.catch_up().unwrap(), s.version);
    assert_eq!(s.store.catch_up().unwrap(), 0, "nothing left");
    assert!(s.store.verify().unwrap().is_clean());
    assert_projection_matches(&s);
}

#[test]
fn an_append_projects_the_gap_before_its_own_events() {
    let (_dir, mut s) = scenario_store();
    raw(&s)
        .execute_batch("DELETE FROM proj_devices; UPDATE proj_checkpoint SET position = 2;")
        .unwrap();
    s.command(Command::CreateGroup {
        group_id: common::manual(9),
        name: "After the gap".into(),
    });
    assert_eq!(
        s.store.checkpoint().unwrap(),
        s.store.last_position().unwrap()
    );
    // Positions 1-2 create and connect the workspace; every device comes after, so the
    // replayed gap restores the wiped device rows.
    assert!(s.store.verify().unwrap().is_clean());
    assert_projection_matches(&s);
}

#[test]
fn g10_a_rejected_batch_leaves_no_event_and_no_projection_row() {
    let (_dir, s) = scenario_store();
    let before = serde_json::to_value(s.store.groups_with_members(s.ws).unwrap()).unwrap();
    let checkpoint = s.store.checkpoint().unwrap();
    let ctx = Context::command(t0(), Actor::Operator("late".into()), "create_group");
    let events = vec![Event::GroupCreated {
        group_id: common::manual(7),
        name: "Stale".into(),
        source: mdmsync_core::GroupSource::Manual,
        mdm_name: None,
    }];
    let err = s
        .store
        .append_blocking(
            s.ws,
            ExpectedVersion::Exact(s.version - 1),
            ctx.envelopes(s.ws, events.clone()),
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { actual, .. } if actual == s.version),
        "{err:?}"
    );
    // A batch with an event of another stream: refused whole.
    let mut mixed = ctx.envelopes(s.ws, events);
    mixed.extend(ctx.envelopes(
        ws_id(99),
        vec![Event::PlanChanged {
            from: Plan::Free,
            to: Plan::Pro,
        }],
    ));
    s.store
        .append_blocking(s.ws, ExpectedVersion::Exact(s.version), mixed)
        .unwrap_err();
    assert_eq!(s.store.checkpoint().unwrap(), checkpoint);
    assert_eq!(s.store.last_position().unwrap(), checkpoint);
    let after = serde_json::to_value(s.store.groups_with_members(s.ws).unwrap()).unwrap();
    assert_eq!(before, after);
    assert!(s.store.workspace(ws_id(99)).unwrap().is_none());
}

#[test]
fn lessons_1_the_log_is_append_only() {
    let (_dir, s) = scenario_store();
    let conn = raw(&s);
    let err = conn
        .execute("UPDATE events SET payload = '{}' WHERE position = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn
        .execute("DELETE FROM events WHERE position = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(
        s.store.read_all_blocking(Position(0), 1).unwrap()[0].position,
        Position(1)
    );
}

#[test]
fn migrations_are_recorded_and_reopening_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let store = SqliteEventStore::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        mdmsync_sqlite::schema::SCHEMA_VERSION
    );
    drop(store);
    let again = SqliteEventStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (n, user_version): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), (SELECT user_version FROM pragma_user_version) FROM schema_migrations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(n, mdmsync_sqlite::schema::SCHEMA_VERSION);
    assert_eq!(user_version, mdmsync_sqlite::schema::SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')",
        [],
    )
    .unwrap();
    drop(again);
    let err = SqliteEventStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("upgrade mdmsync"), "{err}");
}

/// Commits do not checkpoint the WAL themselves; the store's checkpointer copies committed
/// frames into the database file in the background (so the file grows while the store is
/// open and the WAL does not have to).
#[test]
fn the_checkpointer_moves_committed_frames_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.db");
    let mut s = Scenario::new(SqliteEventStore::open(&path).unwrap(), ws_id(5));
    let before = std::fs::metadata(&path).unwrap().len();
    run_full_scenario(&mut s, |_| {});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 64 * 1024 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was checkpointed into the database file ({before} -> {now} bytes)"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(s.store.verify().unwrap().is_clean());
}

/// Runs of `MemberAdded` are written in key order; a membership added twice in one batch
/// still ends with the later `via`, exactly as the one-by-one fold.
#[test]
fn a_repeated_member_added_in_one_batch_keeps_the_last_via() {
    let store = SqliteEventStore::open_in_memory().unwrap();
    let ws = ws_id(6);
    let g = common::manual(1);
    let ctx = Context::command(t0(), Actor::System, "test");
    let added = |d: u32, via: &str| Event::MemberAdded {
        group_id: g,
        device_id: device(d),
        via: Some(via.into()),
    };
    let events = vec![
        Event::GroupCreated {
            group_id: g,
            name: "G".into(),
            source: mdmsync_core::GroupSource::Manual,
            mdm_name: None,
        },
        added(5, "first"),
        added(1, "x"),
        added(9, "y"),
        added(5, "last"),
        Event::MemberRemoved {
            group_id: g,
            device_id: device(9),
        },
        added(2, "z"),
        added(9, "again"),
    ];
    store
        .append_blocking(ws, ExpectedVersion::NoStream, ctx.envelopes(ws, events))
        .unwrap();
    let members = store.group_members(ws, g).unwrap();
    let got: Vec<(mdmsync_core::DeviceId, Option<String>)> =
        members.into_iter().map(|m| (m.device_id, m.via)).collect();
    let mut want = vec![
        (device(1), Some("x".to_owned())),
        (device(2), Some("z".to_owned())),
        (device(5), Some("last".to_owned())),
        (device(9), Some("again".to_owned())),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(store.workspace(ws).unwrap().unwrap().stream_version, 8);
    assert!(store.verify().unwrap().is_clean());
}
