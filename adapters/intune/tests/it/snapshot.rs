//! P2/G3/G8/P5: complete snapshots joined to managed devices, or an error.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Group, Scenario, ids};
use mdmsync_core::{ErrorKind, GroupKind, MdmClient, Provider};
use mdmsync_intune::{IntuneClient, MAX_DEVICE_PAGE_SIZE, MAX_DIRECTORY_PAGE_SIZE};

/// 60 devices (about 3 % kiosk, never Entra members), 7 groups, plus an empty group.
fn scenario() -> Scenario {
    let mut s = Scenario::generate(3, 60, 7, 200);
    s.groups.push(Group {
        id: 40,
        name: "Nobody Yet".into(),
        smart: false,
        members: vec![],
    });
    s
}

#[tokio::test]
async fn p2_g3_a_multi_page_snapshot_equals_the_scenario() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let intune = client(&sim, 3, 25);
    let snap = intune.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
    // The Microsoft 365 group is not a security group; dynamic groups are smart.
    assert!(snap.groups.iter().all(|g| g.name != "All Company"));
    assert!(snap.groups.iter().any(|g| g.kind == GroupKind::Smart));
    // Members are managed device ids, not Entra ids.
    let some = snap.groups.iter().find(|g| !g.members.is_empty()).unwrap();
    let first = some.members[0].as_str();
    assert!(
        ctl.scenario()
            .devices
            .iter()
            .any(|d| ids::intune_managed_device_id(d.id) == first)
    );

    let log = ctl.requests();
    let groups = on(GROUPS, &log);
    assert_eq!(groups.len(), 3, "8 security groups at 3 a page");
    assert_eq!(
        param(&groups[0], "$filter").as_deref(),
        Some("securityEnabled eq true")
    );
    assert!(groups[0].query.contains("%20eq%20"), "{}", groups[0].query);
    assert!(
        groups
            .iter()
            .all(|r| r.page_size == Some(3) && r.status == Some(200))
    );
    assert!(groups[1..].iter().all(|r| param(r, "$skiptoken").is_some()));
    let devices = on(DEVICES, &log);
    assert_eq!(devices.len(), 3, "60 devices at 25 a page");
    assert!(devices.iter().all(|r| r.page_size == Some(25)));
    let members = on(MEMBERS, &log);
    assert!(members.len() > 8, "several pages per group");
    for r in &members {
        assert!(
            r.path
                .ends_with("/transitiveMembers/microsoft.graph.device"),
            "{}",
            r.path
        );
        assert_eq!(param(r, "$count").as_deref(), Some("true"));
        assert_eq!(r.status, Some(200), "ConsistencyLevel: eventual was sent");
    }
    assert_no_secret_in_urls(&sim);
}

/// The "must show" of issue 5: the request log of a full-size sync, printed (run with
/// `--nocapture`), with the page sizes asked for and no secret in any URL.
#[tokio::test]
async fn c2_p2_request_log_of_a_full_size_sync_shows_page_sizes_and_no_secret() {
    let mut s = Scenario::generate(11, 2100, 4, 600);
    s.groups[0].members = (1..=1500).collect();
    let sim = start(s).await;
    let ctl = sim.control();
    let intune = client(&sim, MAX_DIRECTORY_PAGE_SIZE, MAX_DEVICE_PAGE_SIZE);
    let snap = intune.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
    let log = ctl.requests();
    println!(
        "mdmsim request log (Intune, 2,100 managed devices, 4 security groups, one of 1,500):"
    );
    println!(
        "{:>3} {:<6} {:>6} {:>9}  path?query",
        "seq", "method", "status", "page_size"
    );
    for r in &log {
        let target = if r.query.is_empty() {
            r.path.clone()
        } else {
            format!("{}?{}", r.path, r.query)
        };
        println!(
            "{:>3} {:<6} {:>6} {:>9}  {target}",
            r.seq,
            r.method,
            r.status.map_or("-".into(), |s| s.to_string()),
            r.page_size.map_or("-".into(), |s| s.to_string()),
        );
    }
    let devices = on(DEVICES, &log);
    assert_eq!(devices.len(), 3, "2,100 devices at 1,000 a page");
    assert!(devices.iter().all(|r| r.page_size == Some(1000)));
    let members = on(MEMBERS, &log);
    assert!(members.iter().all(|r| r.page_size == Some(999)));
    assert!(members.len() >= 5, "the big group takes two pages");
    assert!(on(GROUPS, &log).iter().all(|r| r.page_size == Some(999)));
    assert_eq!(ctl.tokens_issued(), 1);
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn g8_a_fault_on_the_last_page_fails_the_whole_snapshot() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    // The last page of the managed-device listing.
    let intune = client(&sim, 10, 25); // 3 device pages
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .route(DEVICES)
            .times(2),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::InternalServerError)
            .route(DEVICES)
            .times(1),
    );
    let err = intune.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    let statuses: Vec<_> = on(DEVICES, &ctl.requests())
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(200), Some(500)]);

    // The very last request of a sync: the last page of the last group's members.
    let mut c = config(&sim);
    c.directory_page_size = 10;
    c.member_concurrency = 1;
    let serial = IntuneClient::new(c).unwrap();
    ctl.clear_requests();
    serial.fetch_snapshot().await.unwrap();
    let n = on(MEMBERS, &ctl.requests()).len() as u32;
    ctl.clear_requests();
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .route(MEMBERS)
            .times(n - 1),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::TruncatedJson)
            .route(MEMBERS)
            .times(1),
    );
    let err = serial.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    let log = ctl.requests();
    assert_eq!(log.last().unwrap().fault.as_deref(), Some("truncated_json"));
    // Fault gone: complete again.
    let snap = serial.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
}

#[tokio::test]
async fn p2_loops_and_repeated_items_are_refused() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let intune = client(&sim, 10, 25);
    for fault in [FaultKind::PaginationLoop, FaultKind::DuplicateItems] {
        for route in [DEVICES, MEMBERS] {
            let id = ctl.add_fault(FaultRule::new(fault.clone()).route(route));
            let err = intune.fetch_snapshot().await.unwrap_err();
            ctl.remove_fault(id);
            assert_eq!(
                err.kind(),
                Some(ErrorKind::ServerError),
                "{fault:?} {route}: {err}"
            );
            assert!(err.to_string().contains("(P2)"), "{err}");
        }
    }
}

#[tokio::test]
async fn p5_an_expired_page_token_restarts_that_listing() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let mut c = config(&sim);
    c.directory_page_size = 10;
    c.device_page_size = 25;
    c.member_concurrency = 1;
    let intune = IntuneClient::new(c).unwrap();
    ctl.add_fault(
        FaultRule::new(FaultKind::ExpiredPageToken)
            .route(MEMBERS)
            .times(1),
    );
    let snap = intune.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
    let members = on(MEMBERS, &ctl.requests());
    let at = members.iter().position(|r| r.status == Some(400)).unwrap();
    let next = &members[at + 1];
    assert_eq!(next.path, members[at].path, "the same group's listing");
    assert_eq!(
        param(next, "$skiptoken"),
        None,
        "restarted from its first page"
    );
    assert_eq!(next.status, Some(200));

    // A token that keeps expiring: bounded restarts, then the sync fails.
    ctl.add_fault(FaultRule::new(FaultKind::ExpiredPageToken).route(MEMBERS));
    ctl.clear_requests();
    let err = intune.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(
        err.to_string().contains("Directory_ExpiredPageToken"),
        "{err}"
    );
    assert!(
        err.to_string().contains("restarting the listing 3 times"),
        "{err}"
    );
    let expired = on(MEMBERS, &ctl.requests())
        .iter()
        .filter(|r| r.status == Some(400))
        .count();
    assert_eq!(expired, 4, "the first try and three restarts");
}

#[tokio::test]
async fn p_without_device_read_all_the_sync_is_forbidden_not_empty() {
    let mut s = scenario();
    s.options.intune_device_read_all = false;
    let sim = start(s).await;
    let err = client(&sim, 10, 25).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    assert!(err.to_string().contains("Device.Read.All"), "{err}");
    assert!(err.to_string().contains("Microsoft Intune"), "{err}");
}

#[tokio::test]
async fn g11_an_empty_listing_is_reported_as_it_is() {
    let sim = start(scenario()).await;
    sim.control()
        .add_fault(FaultRule::new(FaultKind::EmptyGroupList));
    let snap = client(&sim, 10, 25).fetch_snapshot().await.unwrap();
    assert!(snap.groups.is_empty());
}
