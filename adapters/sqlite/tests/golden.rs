//! Schema evolution: golden files of every event type at its first version must keep loading
//! (through the upcaster chain), and the chain itself works on raw JSON.
//!
//! The golden files were written from the projection scenario's log with
//! `MDMSYNC_WRITE_GOLDEN=1 cargo test -p mdmsync-sqlite --test golden` (it only writes files
//! that are missing; never rewrite a golden file — add an upcaster instead).

mod common;

use mdmsync_core::{Event, Position, StoreError, WorkspaceId};
use mdmsync_sqlite::upcast::UpcastError;
use mdmsync_sqlite::{SqliteEventStore, StoreOptions, Upcaster, Upcasters};
use serde_json::{Value, json};
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn write_missing_golden_files() {
    let mut s = common::Scenario::new(
        SqliteEventStore::open_in_memory().unwrap(),
        common::ws_id(3),
    );
    common::run_full_scenario(&mut s, |_| {});
    for e in s.store.export(Position(0), usize::MAX).unwrap() {
        let path = golden_dir().join(format!("{}.v{}.json", e.event_type, e.event_version));
        if !path.exists() {
            let doc = json!({
                "event_type": e.event_type,
                "event_version": e.event_version,
                "payload": e.data,
            });
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        }
    }
}

fn load(event_type: &str) -> (u16, Value) {
    let path = golden_dir().join(format!("{event_type}.v1.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} is missing ({e})", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["event_type"], event_type);
    (
        doc["event_version"].as_u64().unwrap() as u16,
        doc["payload"].clone(),
    )
}

#[test]
fn every_event_type_has_a_first_version_golden_file_that_still_decodes() {
    if std::env::var_os("MDMSYNC_WRITE_GOLDEN").is_some() {
        write_missing_golden_files();
    }
    let upcasters = Upcasters::default();
    let files = std::fs::read_dir(golden_dir()).unwrap().count();
    assert_eq!(files, Event::TYPES.len(), "one golden file per event type");
    for t in Event::TYPES {
        let (version, payload) = load(t);
        assert_eq!(version, 1, "{t}: golden files hold the first version");
        let current = upcasters.upcast(t, version, payload.clone()).unwrap();
        let event = Event::from_payload(t, current.clone())
            .unwrap_or_else(|e| panic!("{t} v{version} no longer decodes: {e}"));
        assert_eq!(event.event_type(), t);
        assert_eq!(event.to_payload(), current, "{t}: nothing lost in decoding");
        // And through the text path the store uses.
        let text = upcasters.decode(t, version, &payload.to_string()).unwrap();
        assert_eq!(text, event);
    }
}

fn insert_raw(store: &SqliteEventStore, event_type: &str, version: i64, payload: &Value) {
    let conn = rusqlite::Connection::open(store.path().unwrap()).unwrap();
    conn.execute(
        "INSERT INTO events (stream_id, stream_version, event_type, event_version, payload,
                             recorded_at, actor, sync_id, cause)
         VALUES (?1, (SELECT COALESCE(MAX(stream_version), 0) + 1 FROM events), ?2, ?3, ?4,
                 '2026-01-01T00:00:00.000000Z', 'system', NULL, '{\"kind\":\"metadata_refresh\"}')",
        rusqlite::params![
            WorkspaceId(uuid::Uuid::from_u128(5)).to_string(),
            event_type,
            version,
            payload.to_string()
        ],
    )
    .unwrap();
}

#[test]
fn golden_events_stored_raw_read_back_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("g.db")).unwrap();
    for t in Event::TYPES {
        let (version, payload) = load(t);
        insert_raw(&store, t, i64::from(version), &payload);
    }
    let all = store.read_all_blocking(Position(0), usize::MAX).unwrap();
    let types: Vec<&str> = all.iter().map(|e| e.envelope.event.event_type()).collect();
    assert_eq!(types, Event::TYPES);
    // The projector copes with the raw history too.
    store.catch_up().unwrap();
    assert!(store.verify().unwrap().is_clean());
}

/// An older shape of `GroupDeleted`, two versions back: `{"group": id, "title": name}` at
/// v1, `{"group_id": id, "title": name}` at v2, and today's shape at v3.
fn renames() -> Upcasters {
    fn rename(mut v: Value, from: &str, to: &str) -> Result<Value, String> {
        let obj = v.as_object_mut().ok_or("payload is not an object")?;
        let value = obj.remove(from).ok_or(format!("no field {from:?}"))?;
        obj.insert(to.to_owned(), value);
        Ok(v)
    }
    Upcasters::default()
        .with_current_version("GroupDeleted", 3)
        .with(Upcaster {
            event_type: "GroupDeleted",
            from_version: 1,
            upcast: |v| rename(v, "group", "group_id"),
        })
        .with(Upcaster {
            event_type: "GroupDeleted",
            from_version: 2,
            upcast: |v| rename(v, "title", "name"),
        })
}

#[test]
fn upcaster_chain_turns_old_payloads_into_current_events() {
    let id = uuid::Uuid::from_u128(42).to_string();
    let v1 = json!({ "group": id, "title": "Old" });
    let up = renames();
    let current = up.upcast("GroupDeleted", 1, v1.clone()).unwrap();
    assert_eq!(current, json!({ "group_id": id, "name": "Old" }));
    let e = up
        .decode(
            "GroupDeleted",
            2,
            &json!({"group_id": id, "title": "Mid"}).to_string(),
        )
        .unwrap();
    assert!(matches!(e, Event::GroupDeleted { ref name, .. } if name == "Mid"));
    // Stored at v1 in a real database, read through a store configured with the chain.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.db");
    let plain = SqliteEventStore::open(&path).unwrap();
    insert_raw(&plain, "GroupDeleted", 1, &v1);
    let store = SqliteEventStore::open_with(
        &path,
        StoreOptions {
            upcasters: up,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let back = store.read_all_blocking(Position(0), 10).unwrap();
    assert!(matches!(&back[0].envelope.event, Event::GroupDeleted { name, .. } if name == "Old"));
    let history = store
        .history(
            WorkspaceId(uuid::Uuid::from_u128(5)),
            mdmsync_sqlite::HistorySubject::Workspace,
            Position(0),
            10,
        )
        .unwrap();
    assert_eq!(history[0].data, json!({ "group_id": id, "name": "Old" }));
    // Without the chain, the old row is reported as corrupt at its position, with the reason.
    let err = plain.read_all_blocking(Position(0), 10).unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { position: 1, message } if message.contains("does not match")),
        "{err:?}"
    );
}

#[test]
fn upcaster_chain_refuses_unknown_types_newer_versions_and_gaps() {
    let up = renames();
    assert!(matches!(
        up.upcast("Nope", 1, json!({})),
        Err(UpcastError::UnknownType(_))
    ));
    assert!(matches!(
        up.upcast("GroupDeleted", 4, json!({})),
        Err(UpcastError::TooNew {
            version: 4,
            current: 3,
            ..
        })
    ));
    assert!(matches!(
        up.upcast("GroupDeleted", 0, json!({})),
        Err(UpcastError::MissingStep { version: 0, .. })
    ));
    assert!(matches!(
        up.upcast("GroupDeleted", 1, json!({"title": "x"})),
        Err(UpcastError::Failed { version: 1, .. })
    ));
    assert!(
        up.upcast("GroupDeleted", 4, json!({}))
            .unwrap_err()
            .to_string()
            .contains("upgrade mdmsync")
    );
}
