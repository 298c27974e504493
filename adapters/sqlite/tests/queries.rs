//! Audit queries: device search (M3), histories (G12), time travel, export, listings.

mod common;

use chrono::TimeDelta;
use common::{Scenario, run_full_scenario, ws_id};
use mdmsync_core::testkit::{device, mdm_device, t0};
use mdmsync_core::{
    Command, ConnectionSettings, Event, MdmMetadata, Plan, Position, Provider, Snapshot, Workspace,
};
use mdmsync_sqlite::{AsOf, HistorySubject, SqliteEventStore};

/// Acme (Pro, Jamf) with devices 0..6; even ones assigned to "Ada Lovelace", and one sync of
/// two groups.
fn small() -> Scenario {
    let mut s = Scenario::new(SqliteEventStore::open_in_memory().unwrap(), ws_id(7));
    s.command(Command::CreateWorkspace {
        workspace_id: s.ws,
        name: "Acme".into(),
        plan: Plan::Pro,
    });
    s.command(Command::Connect {
        provider: Provider::Jamf,
        settings: ConnectionSettings::default(),
    });
    for n in 0..6u32 {
        s.command(Command::RegisterDevice {
            device_id: device(n),
            serial_number: Some(format!("C02XK{n}")),
            name: None,
        });
        s.command(Command::RecordDeviceMetadata {
            device_id: device(n),
            metadata: Some(MdmMetadata {
                mdm_device_id: mdm_device(n),
                mdm_user_id: None,
                mdm_display_name: Some(if n % 2 == 0 {
                    format!("Ada Lövelace {n}")
                } else {
                    format!("kiosk-{n}")
                }),
                console_url: None,
            }),
            ambiguous_candidates: 0,
        });
    }
    s.sync(
        Snapshot::new(Provider::Jamf)
            .with_group("10", "Engineering", ["m0", "m1", "m2"])
            .with_group("11", "Sales", ["m3"]),
        None,
    );
    s
}

#[test]
fn m3_device_search_matches_serial_and_display_name_case_insensitively() {
    let s = small();
    let serials = |q: &str| -> Vec<String> {
        s.store
            .devices(s.ws, Some(q))
            .unwrap()
            .into_iter()
            .filter_map(|d| d.serial_number)
            .collect()
    };
    assert_eq!(serials("c02xk3"), ["C02XK3"]);
    assert_eq!(serials("LÖVELACE"), ["C02XK0", "C02XK2", "C02XK4"]);
    assert_eq!(serials("KIOSK-5"), ["C02XK5"]);
    assert!(serials("nobody").is_empty());
    assert_eq!(serials("  ").len(), 6, "a blank search matches everything");
    assert_eq!(s.store.devices(s.ws, None).unwrap().len(), 6);
    assert!(s.store.devices(ws_id(999), None).unwrap().is_empty());
}

#[test]
fn groups_and_members_carry_serials_and_sources() {
    let s = small();
    let groups = s.store.groups(s.ws).unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["Engineering", "Sales"]);
    assert_eq!(groups[0].member_count, 3);
    assert_eq!(groups[0].managed_by.as_deref(), Some("Jamf"));
    let members = s.store.group_members(s.ws, groups[0].group_id).unwrap();
    let serials: Vec<_> = members
        .iter()
        .map(|m| m.serial_number.clone().unwrap())
        .collect();
    assert_eq!(serials.len(), 3);
    assert!(serials.contains(&"C02XK1".to_owned()));
    assert!(
        members.iter().all(|m| m.via.is_some()),
        "synced members say which MDM id matched"
    );
    let one = s.store.group(s.ws, groups[1].group_id).unwrap().unwrap();
    assert_eq!(one, groups[1]);
    let listed = s.store.workspaces().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "Acme");
    assert!(listed[0].last_success.is_some());
    let json = serde_json::to_value(s.store.groups_with_members(s.ws).unwrap()).unwrap();
    assert_eq!(json[0]["name"], "Engineering");
    assert_eq!(json[0]["members"].as_array().unwrap().len(), 3);
}

#[test]
fn g12_device_history_says_why_a_device_is_in_a_group() {
    let s = small();
    let entries = s
        .store
        .history(s.ws, HistorySubject::Device(device(1)), Position(0), 100)
        .unwrap();
    let types: Vec<&str> = entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["DeviceRegistered", "DeviceMetadataRecorded", "MemberAdded"]
    );
    let added = &entries[2];
    assert_eq!(added.actor, "scheduler");
    assert!(added.sync_id.is_some(), "the sync that added it");
    assert_eq!(added.cause["kind"], "sync");
    assert_eq!(added.data["via"], "m1");
    assert_eq!(added.data["device_id"], device(1).to_string());
    assert!(added.recorded_at > t0());
    assert_eq!(entries[0].actor, "operator:ada");
    // Paged by position.
    let rest = s
        .store
        .history(
            s.ws,
            HistorySubject::Device(device(1)),
            Position(entries[0].position),
            1,
        )
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].position, entries[1].position);
}

#[test]
fn g12_group_and_workspace_histories() {
    let s = small();
    let eng = s.group_named("Engineering");
    let entries = s
        .store
        .history(s.ws, HistorySubject::Group(eng), Position(0), 100)
        .unwrap();
    let types: Vec<&str> = entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["GroupCreated", "MemberAdded", "MemberAdded", "MemberAdded"]
    );
    let sync = entries[0].sync_id;
    assert!(entries.iter().all(|e| e.sync_id == sync), "one sync");
    let all = s
        .store
        .history(s.ws, HistorySubject::Workspace, Position(0), usize::MAX)
        .unwrap();
    assert_eq!(all.len() as u64, s.version);
    assert_eq!(all.last().unwrap().event_type, "SyncSucceeded");
    let json = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(json["type"], "WorkspaceCreated");
}

#[test]
fn time_travel_by_position_and_by_time_replays_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Scenario::new(
        SqliteEventStore::open(dir.path().join("t.db")).unwrap(),
        ws_id(8),
    );
    let mut marks: Vec<(Position, chrono::DateTime<chrono::Utc>, Workspace)> = Vec::new();
    run_full_scenario(&mut s, |s| {
        marks.push((s.store.last_position().unwrap(), s.now, s.state.clone()))
    });
    for (position, now, state) in &marks {
        let by_pos = s.store.state_at(s.ws, AsOf::Position(*position)).unwrap();
        assert_eq!(&by_pos.workspace, state, "as of position {position:?}");
        assert_eq!(by_pos.position, Some(*position));
        let by_time = s.store.state_at(s.ws, AsOf::Time(*now)).unwrap();
        assert_eq!(&by_time.workspace, state, "as of {now}");
        // Just before that step, the state is different (each step changed something).
        let before = s
            .store
            .state_at(s.ws, AsOf::Time(*now - TimeDelta::seconds(1)))
            .unwrap();
        assert!(before.position < Some(*position));
    }
    let nothing = s.store.state_at(s.ws, AsOf::Position(Position(0))).unwrap();
    assert_eq!(nothing.workspace, Workspace::new());
    let view = serde_json::to_value(marks_view(&s)).unwrap();
    assert_eq!(view["name"], "Acme");
    assert!("12".parse::<AsOf>().is_ok());
    assert!("2026-01-01T00:00:00Z".parse::<AsOf>().is_ok());
    assert!("yesterday".parse::<AsOf>().is_err());
}

fn marks_view(s: &Scenario) -> mdmsync_sqlite::StateView {
    s.store
        .state_at(s.ws, AsOf::Position(Position(u64::MAX)))
        .unwrap()
        .view()
}

#[test]
fn export_pages_after_a_position_with_stored_versions() {
    let s = small();
    let first = s.store.export(Position(0), 5).unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first[0].position, 1);
    assert_eq!(first[0].event_type, "WorkspaceCreated");
    assert_eq!(first[0].event_version, 1);
    assert_eq!(first[0].stream_id, s.ws.to_string());
    let next = s.store.export(Position(5), usize::MAX).unwrap();
    assert_eq!(next[0].position, 6);
    assert_eq!(next.len() as u64 + 5, s.version);
    let decoded = Event::from_payload(&next[0].event_type, next[0].data.clone()).unwrap();
    assert_eq!(decoded.event_type(), next[0].event_type);
}
