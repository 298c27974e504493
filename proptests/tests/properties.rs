//! Properties of reconciliation and replay over random histories and snapshots (256 cases
//! each, or `PROPTEST_CASES`).

use mdmsync_core::testkit::device;
use mdmsync_core::workspace::name_key;
use mdmsync_core::{Event, GroupSource, Provider, Snapshot, Workspace};
use mdmsync_proptests::{DEVICES, Driver, Step, snapshot, step};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn history() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 0..25)
}

fn succeeded(events: &[Event]) -> bool {
    matches!(events.last(), Some(Event::SyncSucceeded { .. }))
}

fn groups_of(ws: &Workspace) -> BTreeMap<mdmsync_core::GroupId, mdmsync_core::workspace::Group> {
    ws.groups().clone()
}

proptest! {
    #![proptest_config(config())]

    /// Convergence (G2, G3): after a successful sync, the synced groups mirror the snapshot's
    /// non-excluded groups, members matched through the MDM device ids.
    #[test]
    fn convergence(h in history(), s in snapshot(Provider::Jamf)) {
        let mut d = Driver::new(true);
        for st in &h { d.step(st); }
        let events = d.sync(s.clone());
        prop_assume!(succeeded(&events));
        let ws = &d.state;
        let mut mirrored = BTreeSet::new();
        for g in &s.groups {
            if ws.excluded().contains(&(Provider::Jamf, g.id.clone())) {
                prop_assert!(ws.synced_group(Provider::Jamf, &g.id).is_none());
                continue;
            }
            let gid = ws.synced_group(Provider::Jamf, &g.id).expect("mirrored");
            mirrored.insert(gid);
            let expected: BTreeSet<_> = g.members.iter()
                .flat_map(|m| ws.devices_with_mdm_id(m))
                .copied()
                .collect();
            prop_assert_eq!(&ws.group(gid).unwrap().members, &expected);
            prop_assert_eq!(ws.group(gid).unwrap().mdm_name.as_deref(), Some(g.name.as_str()));
        }
        let synced: BTreeSet<_> = ws.groups().iter().filter(|(_, g)| g.synced_key().is_some()).map(|(id, _)| *id).collect();
        prop_assert_eq!(synced, mirrored, "no synced group without its MDM group");
    }

    /// G9: syncing the same snapshot twice, the second sync emits no group or membership event.
    #[test]
    fn idempotence(h in history(), s in snapshot(Provider::Jamf)) {
        let mut d = Driver::new(true);
        for st in &h { d.step(st); }
        let first = d.sync(s.clone());
        prop_assume!(succeeded(&first));
        let second = d.sync(s);
        prop_assert!(second.iter().all(|e| !e.touches_groups()), "{:?}", second);
    }

    /// Replay: folding the log from scratch, through its JSON form, equals the live state.
    #[test]
    fn replay(h in history()) {
        let mut d = Driver::new(false);
        for st in &h { d.step(st); }
        let json: Vec<String> = d.log.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
        let back: Vec<Event> = json.iter().map(|j| serde_json::from_str(j).unwrap()).collect();
        prop_assert_eq!(Workspace::from_events(&back), d.state.clone());
        let via_payload: Vec<Event> = d.log.iter().map(|e| Event::from_payload(e.event_type(), e.to_payload()).unwrap()).collect();
        prop_assert_eq!(Workspace::from_events(&via_payload), d.state.clone());
        let via_text: Vec<Event> = d.log.iter().map(|e| Event::from_payload_str(e.event_type(), &e.payload_json().unwrap()).unwrap()).collect();
        prop_assert_eq!(Workspace::from_events(&via_text), d.state);
    }

    /// G4: group names are unique per workspace (trimmed, case-insensitive), whatever happened.
    #[test]
    fn unique_names(h in history()) {
        let mut d = Driver::new(false);
        for st in &h { d.step(st); }
        let mut seen = BTreeSet::new();
        for g in d.state.groups().values() {
            prop_assert!(seen.insert(name_key(&g.name)), "duplicate name {:?}", g.name);
        }
    }

    /// G4: a synced group whose MDM name is unchanged keeps its name across syncs.
    #[test]
    fn name_stability(h in history(), s1 in snapshot(Provider::Jamf), s2 in snapshot(Provider::Jamf)) {
        let mut d = Driver::new(true);
        for st in &h { d.step(st); }
        prop_assume!(succeeded(&d.sync(s1.clone())));
        let before = d.state.clone();
        // s2's groups, but every id also in s1 keeps s1's name.
        let names: BTreeMap<_, _> = s1.groups.iter().map(|g| (g.id.clone(), g.name.clone())).collect();
        let mut s2 = s2;
        for g in &mut s2.groups {
            if let Some(n) = names.get(&g.id) { g.name = n.clone(); }
        }
        prop_assume!(succeeded(&d.sync(s2.clone())));
        for g in &s2.groups {
            if let (Some(old), Some(new)) = (before.synced_group(Provider::Jamf, &g.id), d.state.synced_group(Provider::Jamf, &g.id)) {
                prop_assert_eq!(old, new);
                prop_assert_eq!(&before.group(old).unwrap().name, &d.state.group(new).unwrap().name);
            }
        }
    }

    /// G7: manual and detached groups are untouched by any sync.
    #[test]
    fn manual_groups_untouched(h in history(), s in snapshot(Provider::Jamf)) {
        let mut d = Driver::new(false);
        for st in &h { d.step(st); }
        let manual: BTreeMap<_, _> = d.state.groups().iter()
            .filter(|(_, g)| g.source == GroupSource::Manual)
            .map(|(id, g)| (*id, g.clone()))
            .collect();
        d.sync(s);
        for (id, g) in manual {
            prop_assert_eq!(d.state.group(id), Some(&g));
        }
    }

    /// G8: a failed sync changes no group and no membership.
    #[test]
    fn failed_sync_changes_nothing(h in history()) {
        let mut d = Driver::new(false);
        for st in &h { d.step(st); }
        let before = groups_of(&d.state);
        d.step(&Step::Fail);
        prop_assert_eq!(groups_of(&d.state), before);
        prop_assert!(d.state.last_failure().is_some());
    }

    /// G11: a held sync changes no group and no membership.
    #[test]
    fn held_sync_changes_nothing(h in history(), s in snapshot(Provider::Jamf)) {
        let mut d = Driver::new(false);
        for st in &h { d.step(st); }
        let before = groups_of(&d.state);
        let events = d.sync(s);
        if matches!(events.last(), Some(Event::SyncHeld { .. })) {
            prop_assert_eq!(events.len(), 1);
            prop_assert_eq!(groups_of(&d.state), before);
            prop_assert!(d.state.held().is_some());
        }
    }

    /// Order independence: a shuffled snapshot gives the same events and state.
    #[test]
    fn order_independence(h in history(), s in snapshot(Provider::Jamf), seed in any::<u64>()) {
        let mut d = Driver::new(false);
        for st in &h { d.step(st); }
        let mut shuffled = s.clone();
        let mut rng = seed;
        let mut next = || { rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (rng >> 33) as usize };
        for i in (1..shuffled.groups.len()).rev() { let j = next() % (i + 1); shuffled.groups.swap(i, j); }
        for g in &mut shuffled.groups { g.members.reverse(); }
        let mut a = d.clone();
        let ea = a.sync(s);
        let eb = d.sync(shuffled);
        prop_assert_eq!(ea, eb);
        prop_assert_eq!(a.state, d.state);
    }

    /// Determinism: the same inputs give the same events.
    #[test]
    fn determinism(h in history()) {
        let mut a = Driver::new(false);
        let mut b = Driver::new(false);
        for st in &h { a.step(st); b.step(st); }
        prop_assert_eq!(a.log, b.log);
    }
}

#[test]
fn generators_reach_interesting_cases() {
    // Guards the generators themselves: a fixed history must produce conflicts and detaches.
    let mut d = Driver::new(true);
    let s = Snapshot::new(Provider::Jamf)
        .with_group("1", "Eng", ["m0", "x1"])
        .with_group("2", "eng ", ["m1"]);
    d.sync(s);
    d.sync(Snapshot::new(Provider::Jamf).with_group("2", "eng ", ["m1"]));
    assert!(
        d.log
            .iter()
            .any(|e| matches!(e, Event::GroupDetached { .. }))
    );
    assert!(
        d.state
            .groups()
            .values()
            .any(|g| g.name == "eng  (Jamf)" || g.name == "eng (Jamf)")
    );
    assert!(d.state.devices().contains_key(&device(DEVICES - 1)));
}
