//! M1/M4/M6/A1/P5: look-ups by serial, console links, blank push, concurrency.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Scenario, User, ids};
use mdmsync_core::{ErrorKind, MdmClient, MdmDeviceId, MdmDeviceRecord, Provider};

/// 30 computers; computer 2 shares computer 1's serial (M6), computer 4 has none.
fn scenario() -> Scenario {
    let mut s = Scenario::generate(9, 30, 4, 40);
    let first = s.devices[0].serial_number.clone();
    s.devices[1].serial_number = first;
    s.devices[3].serial_number = None;
    s.devices[5].user = None;
    s.devices[2].user = Some(User {
        id: "grace".into(),
        name: "Grace Hopper".into(),
        email: "grace@example.com".into(),
    });
    s
}

fn sorted(mut v: Vec<MdmDeviceRecord>) -> Vec<MdmDeviceRecord> {
    v.sort_by(|a, b| a.mdm_device_id.cmp(&b.mdm_device_id));
    v
}

fn serial(s: &Scenario, i: usize) -> String {
    s.devices[i].serial_number.clone().unwrap()
}

#[tokio::test]
async fn m1_m6_lookups_equal_the_scenario_records() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let s = ctl.scenario();
    let jamf = client(&sim, 10);
    let wanted = vec![
        serial(&s, 0),             // two computers (M6)
        serial(&s, 2),             // a user with a real name
        serial(&s, 5),             // no user
        "C02NOTKNOWN1".to_owned(), // unknown
        "   ".to_owned(),          // blank: no request, no record
    ];
    let found = jamf.lookup_devices(&wanted).await.unwrap();
    assert_eq!(found.len(), wanted.len(), "every requested serial is a key");
    for w in &wanted[..4] {
        assert_eq!(
            sorted(found[w].clone()),
            sorted(s.expected_records(Provider::Jamf, w)),
            "{w}"
        );
    }
    assert_eq!(found[&wanted[0]].len(), 2);
    assert!(found[&wanted[3]].is_empty() && found[&wanted[4]].is_empty());
    let r = &found[&serial(&s, 2)][0];
    assert_eq!(r.user_id.as_ref().unwrap().as_str(), "grace");
    assert_eq!(r.display_name().as_deref(), Some("Grace Hopper"));
    assert!(r.last_seen.is_some());
    let r = &found[&serial(&s, 5)][0];
    assert_eq!(r.user_id, None);
    assert_eq!(
        r.display_name(),
        r.device_name,
        "no user: the device name (M1)"
    );
    // One RSQL look-up for the batch, metadata sections only.
    let looks = on(INVENTORY, &ctl.requests());
    assert_eq!(looks.len(), 1);
    let filter = param(&looks[0], "filter").unwrap();
    assert!(
        filter.starts_with("hardware.serialNumber=in=(\""),
        "{filter}"
    );
    assert!(!looks[0].query.contains("GROUP_MEMBERSHIPS"));
    // A single serial uses ==.
    ctl.clear_requests();
    jamf.lookup_devices(&[serial(&s, 7)]).await.unwrap();
    let f = param(&on(INVENTORY, &ctl.requests())[0], "filter").unwrap();
    assert_eq!(f, format!("hardware.serialNumber==\"{}\"", serial(&s, 7)));
}

#[tokio::test]
async fn m1_after_a_sync_lookups_are_answered_from_the_sweep() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let s = ctl.scenario();
    let jamf = client(&sim, 10);
    jamf.fetch_snapshot().await.unwrap();
    ctl.clear_requests();
    let wanted: Vec<String> = s
        .devices
        .iter()
        .filter_map(|d| d.serial_number.clone())
        .collect();
    let found = jamf.lookup_devices(&wanted).await.unwrap();
    for w in &wanted {
        assert_eq!(
            sorted(found[w].clone()),
            sorted(s.expected_records(Provider::Jamf, w)),
            "{w}"
        );
    }
    assert!(
        ctl.requests().is_empty(),
        "served from the snapshot's sweep"
    );
    // A serial the sweep did not see is still looked up live.
    let found = jamf
        .lookup_devices(&["C02NEWDEVICE".to_owned()])
        .await
        .unwrap();
    assert!(found["C02NEWDEVICE"].is_empty());
    assert_eq!(on(INVENTORY, &ctl.requests()).len(), 1);
}

#[tokio::test]
async fn p5_lookups_use_at_most_five_connections() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 100);
    jamf.validate_credentials().await.unwrap(); // token and version first
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 150 }).route(INVENTORY));
    ctl.clear_requests();
    let wanted: Vec<String> = (0..600).map(|i| format!("C02UNKNOWN{i:04}")).collect();
    let found = jamf.lookup_devices(&wanted).await.unwrap();
    assert!(found.values().all(Vec::is_empty));
    assert_eq!(
        on(INVENTORY, &ctl.requests()).len(),
        12,
        "600 serials, 50 a request"
    );
    let most = ctl.max_in_flight();
    assert!(most <= 5 && most > 1, "max in flight {most}");
}

#[tokio::test]
async fn m4_console_link_points_at_the_computer_record() {
    let sim = start(scenario()).await;
    let jamf = client(&sim, 10);
    assert_eq!(
        jamf.console_url(&MdmDeviceId::new("17")).unwrap(),
        format!("{}/computers.html?id=17&o=r", sim.origin())
    );
    assert_eq!(jamf.console_url(&MdmDeviceId::new("  ")), None);
}

#[tokio::test]
async fn a1_force_sync_sends_a_blank_push_to_the_management_id() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    // Cold: the management id is read from the computer record first.
    let jamf = client(&sim, 10);
    jamf.force_sync(&MdmDeviceId::new("3")).await.unwrap();
    let log = ctl.requests();
    let item = on("jamf.inventory_item", &log);
    assert_eq!(item[0].path, "/api/v4/computers-inventory/3");
    assert_eq!(on("jamf.blank_push", &log).len(), 1);
    // Warm: a sync remembered every management id; the push goes straight out.
    jamf.fetch_snapshot().await.unwrap();
    ctl.clear_requests();
    jamf.force_sync(&MdmDeviceId::new("7")).await.unwrap();
    let routes: Vec<_> = ctl.requests().into_iter().filter_map(|r| r.route).collect();
    assert_eq!(routes, ["jamf.blank_push"]);
    let pushed: Vec<u64> = ctl.force_syncs().iter().map(|a| a.device).collect();
    assert_eq!(pushed, [3, 7]);
    assert!(ids::jamf_management_id(7).len() == 36);
}

#[tokio::test]
async fn a1_a_stale_management_id_is_read_again_once() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 10);
    jamf.fetch_snapshot().await.unwrap();
    // Device 8 is removed and re-enrolled as a new record with the same computer id: here,
    // simply removed, so Jamf reports its old management id in errorUuids.
    ctl.remove_device(8).unwrap();
    ctl.clear_requests();
    let err = jamf.force_sync(&MdmDeviceId::new("8")).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    let routes: Vec<_> = ctl.requests().into_iter().filter_map(|r| r.route).collect();
    assert_eq!(
        routes,
        [
            "jamf.blank_push",
            "jamf.inventory_item",
            "jamf.inventory_item"
        ]
    );
    assert!(ctl.force_syncs().is_empty());
}
