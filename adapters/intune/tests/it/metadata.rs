//! M1/M4/M6/A1: look-ups by serial, console links, syncDevice.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Scenario, ids};
use mdmsync_core::{ErrorKind, MdmClient, MdmDeviceId, MdmDeviceRecord, Provider};

/// 40 devices; device 2 shares device 1's serial (M6), device 4 has none, device 6 no user.
fn scenario() -> Scenario {
    let mut s = Scenario::generate(9, 40, 4, 60);
    let first = s.devices[0].serial_number.clone();
    s.devices[1].serial_number = first;
    s.devices[3].serial_number = None;
    s.devices[5].user = None;
    s.devices[6].kiosk = true;
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
async fn m1_m6_a_few_serials_are_looked_up_one_filter_each() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let s = ctl.scenario();
    let intune = client(&sim, 10, 25);
    let wanted = vec![
        serial(&s, 0),                // two managed devices (M6)
        serial(&s, 5),                // no user
        serial(&s, 6),                // kiosk: a managed device, just never a group member
        serial(&s, 9).to_lowercase(), // other case
        "C02NOTKNOWN1".to_owned(),    // unknown
        " ".to_owned(),               // blank
    ];
    let found = intune.lookup_devices(&wanted).await.unwrap();
    assert_eq!(found.len(), wanted.len());
    for w in &wanted[..3] {
        assert_eq!(
            sorted(found[w].clone()),
            sorted(s.expected_records(Provider::Intune, w)),
            "{w}"
        );
    }
    assert_eq!(
        sorted(found[&wanted[3]].clone()),
        sorted(s.expected_records(Provider::Intune, &serial(&s, 9)))
    );
    assert_eq!(found[&wanted[0]].len(), 2);
    assert!(found[&wanted[4]].is_empty() && found[&wanted[5]].is_empty());
    let r = &found[&wanted[1]][0];
    assert_eq!(r.user_id, None);
    assert_eq!(r.display_name(), r.device_name);
    let filters: Vec<String> = on(DEVICES, &ctl.requests())
        .iter()
        .map(|r| param(r, "$filter").unwrap())
        .collect();
    assert_eq!(filters.len(), 5, "one request per distinct serial");
    assert!(filters.contains(&format!("serialNumber eq '{}'", serial(&s, 0))));
}

#[tokio::test]
async fn m1_many_serials_list_every_device_once() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let s = ctl.scenario();
    let intune = client(&sim, 10, 25);
    let wanted: Vec<String> = s
        .devices
        .iter()
        .filter_map(|d| d.serial_number.clone())
        .collect();
    assert!(wanted.len() > 25);
    let found = intune.lookup_devices(&wanted).await.unwrap();
    for w in &wanted {
        assert_eq!(
            sorted(found[w].clone()),
            sorted(s.expected_records(Provider::Intune, w)),
            "{w}"
        );
    }
    let devices = on(DEVICES, &ctl.requests());
    assert_eq!(devices.len(), 2, "40 devices at 25 a page, no $filter");
    assert!(devices.iter().all(|r| param(r, "$filter").is_none()));
    // The next chunk of the same metadata run is answered from that listing.
    ctl.clear_requests();
    intune.lookup_devices(&wanted[..30]).await.unwrap();
    assert!(ctl.requests().is_empty());
}

#[tokio::test]
async fn m1_after_a_sync_lookups_are_answered_from_its_device_listing() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let s = ctl.scenario();
    let intune = client(&sim, 10, 25);
    intune.fetch_snapshot().await.unwrap();
    ctl.clear_requests();
    let found = intune
        .lookup_devices(&[serial(&s, 0), serial(&s, 2)])
        .await
        .unwrap();
    assert_eq!(found[&serial(&s, 0)].len(), 2);
    assert!(ctl.requests().is_empty());
}

#[tokio::test]
async fn m4_console_link_opens_the_managed_device() {
    let sim = start(scenario()).await;
    let intune = client(&sim, 10, 25);
    let id = ids::intune_managed_device_id(3);
    assert_eq!(
        intune.console_url(&MdmDeviceId::new(id.clone())).unwrap(),
        format!(
            "https://intune.microsoft.com/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/{id}"
        )
    );
    assert_eq!(intune.console_url(&MdmDeviceId::new("a/../b")), None);
}

#[tokio::test]
async fn a1_force_sync_calls_sync_device() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let intune = client(&sim, 10, 25);
    intune
        .force_sync(&MdmDeviceId::new(ids::intune_managed_device_id(3)))
        .await
        .unwrap();
    let pushed: Vec<u64> = ctl.force_syncs().iter().map(|a| a.device).collect();
    assert_eq!(pushed, [3]);
    let r = on("intune.sync_device", &ctl.requests());
    assert_eq!(r[0].method, "POST");
    assert_eq!(r[0].status, Some(204));
    // An unknown id: 404.
    let err = intune
        .force_sync(&MdmDeviceId::new("00000000-0000-4000-8000-000000000999"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    // Missing the privileged-operations permission.
    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("intune.sync_device"));
    let err = intune
        .force_sync(&MdmDeviceId::new(ids::intune_managed_device_id(4)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    assert!(
        err.to_string().contains("PrivilegedOperations.All"),
        "{err}"
    );
}
