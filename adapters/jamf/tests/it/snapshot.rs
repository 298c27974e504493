//! P2/G3/G8: complete snapshots from the inventory sweep, or an error.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Group, Scenario};
use mdmsync_core::{ErrorKind, GroupKind, MdmClient, Provider};
use mdmsync_jamf::MAX_PAGE_SIZE;

/// 45 computers in 8 groups plus one empty static group.
fn scenario() -> Scenario {
    let mut s = Scenario::generate(3, 45, 8, 120);
    s.groups.push(Group {
        id: 40,
        name: "Nobody Yet".into(),
        smart: false,
        members: vec![],
    });
    s
}

#[tokio::test]
async fn p2_a_multi_page_snapshot_equals_the_scenario() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 10);
    let snap = jamf.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    // Empty groups come from the group list; the smart flag is kept.
    let empty = snap.groups.iter().find(|g| g.id.as_str() == "40").unwrap();
    assert!(empty.members.is_empty());
    assert_eq!(empty.kind, GroupKind::Static);
    assert!(snap.groups.iter().any(|g| g.kind == GroupKind::Smart));

    let log = ctl.requests();
    let pages = on(INVENTORY, &log);
    assert_eq!(pages.len(), 5, "45 computers at 10 a page");
    for (n, r) in pages.iter().enumerate() {
        assert_eq!(r.path, "/api/v4/computers-inventory", "11.30 serves v4");
        assert_eq!(r.page_size, Some(10));
        assert_eq!(param(r, "page"), Some(n.to_string()));
        assert_eq!(param(r, "sort").as_deref(), Some("id:asc"));
        assert!(r.query.contains("section=GROUP_MEMBERSHIPS"), "{}", r.query);
        assert_eq!(r.status, Some(200));
    }
    assert_eq!(on("jamf.groups", &log).len(), 1);
    assert_eq!(on("jamf.version", &log).len(), 1);
    assert_no_secret_in_urls(&sim);
}

/// The "must show" of issue 5: the request log of a full-size sync, printed (run with
/// `--nocapture`), with the page size asked for and no secret in any URL.
#[tokio::test]
async fn c2_p2_request_log_of_a_full_size_sync_shows_page_sizes_and_no_secret() {
    let sim = start(Scenario::generate(11, 4500, 12, 9000)).await;
    let ctl = sim.control();
    let jamf = client(&sim, MAX_PAGE_SIZE);
    let snap = jamf.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    let log = ctl.requests();
    println!("mdmsim request log (Jamf, 4,500 computers, 12 groups):");
    println!(
        "{:>3} {:<6} {:<32} {:>6} {:>9}  query",
        "seq", "method", "path", "status", "page_size"
    );
    for r in &log {
        println!(
            "{:>3} {:<6} {:<32} {:>6} {:>9}  {}",
            r.seq,
            r.method,
            r.path,
            r.status.map_or("-".into(), |s| s.to_string()),
            r.page_size.map_or("-".into(), |s| s.to_string()),
            r.query
        );
    }
    let pages = on(INVENTORY, &log);
    assert_eq!(pages.len(), 3, "4,500 computers at 2,000 a page");
    assert!(
        pages
            .iter()
            .all(|r| r.page_size == Some(u64::from(MAX_PAGE_SIZE)))
    );
    assert_eq!(
        log.len(),
        1 + 1 + 1 + 3,
        "token, version, groups, three pages"
    );
    assert_eq!(ctl.tokens_issued(), 1);
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn g8_a_fault_on_the_last_page_fails_the_whole_snapshot() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 20); // 3 pages
    // The first two inventory pages are served normally, the third (last) fails.
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .route(INVENTORY)
            .times(2),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::InternalServerError)
            .route(INVENTORY)
            .times(1),
    );
    let err = jamf.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    let pages = on(INVENTORY, &ctl.requests());
    assert_eq!(
        pages.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(200), Some(200), Some(500)]
    );
    assert_eq!(param(&pages[2], "page").as_deref(), Some("2"));

    // The last page truncated: also no snapshot.
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .route(INVENTORY)
            .times(2),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::TruncatedJson)
            .route(INVENTORY)
            .times(1),
    );
    let err = jamf.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");

    // Fault gone: the same client fetches the complete snapshot.
    let snap = jamf.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
}

#[tokio::test]
async fn p2_loops_repeats_and_short_pages_are_refused() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 10);
    for (fault, needle) in [
        (FaultKind::PaginationLoop, "repeats id"),
        (FaultKind::DuplicateItems, "repeats id"),
        (FaultKind::ShortPage, "holds 9 of 10 items"),
    ] {
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route(INVENTORY));
        let err = jamf.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}: {err}");
        assert!(err.to_string().contains(needle), "{fault:?}: {err}");
        assert!(err.to_string().contains("(P2)"), "{err}");
    }
}

#[tokio::test]
async fn g11_an_empty_listing_is_reported_as_it_is() {
    // The adapter does not invent groups: an MDM that returns none gives an empty snapshot,
    // which the core's safety hold (G11) then refuses to apply over existing groups.
    let sim = start(scenario()).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::EmptyGroupList));
    let snap = client(&sim, 10).fetch_snapshot().await.unwrap();
    assert!(snap.groups.is_empty());
}

#[tokio::test]
async fn p_older_servers_get_the_v3_inventory() {
    let mut s = scenario();
    s.options.jamf_inventory_v4 = false;
    let sim = start(s).await;
    let ctl = sim.control();
    let snap = client(&sim, 25).fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    let pages = on(INVENTORY, &ctl.requests());
    assert_eq!(pages.len(), 2);
    assert!(
        pages
            .iter()
            .all(|r| r.path == "/api/v3/computers-inventory")
    );
}

#[tokio::test]
async fn p_a_missing_v4_inventory_falls_back_to_v3() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    // The server says 11.30 but has no v4 (a proxy, a trimmed build): one 404, then v3.
    ctl.add_fault(
        FaultRule::new(FaultKind::NotFound)
            .path("/api/v4/computers-inventory")
            .times(1),
    );
    let jamf = client(&sim, 25);
    let snap = jamf.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    let paths: Vec<_> = on(INVENTORY, &ctl.requests())
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(paths[0], ("/api/v4/computers-inventory".into(), Some(404)));
    assert!(
        paths[1..]
            .iter()
            .all(|(p, s)| p == "/api/v3/computers-inventory" && *s == Some(200))
    );
}

#[tokio::test]
async fn p_the_v3_fallback_is_remembered_for_the_same_server_version() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::NotFound).path("/api/v4/computers-inventory"));
    let jamf = client(&sim, 25);
    jamf.fetch_snapshot().await.unwrap();
    ctl.clear_requests();
    jamf.fetch_snapshot().await.unwrap();
    let pages = on(INVENTORY, &ctl.requests());
    assert!(
        pages
            .iter()
            .all(|r| r.path == "/api/v3/computers-inventory"),
        "{pages:?}"
    );
}
