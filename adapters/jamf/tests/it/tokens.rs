//! P4: tokens cached, refreshed before expiry, replaced once when refused mid-run.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Scenario};
use mdmsync_core::{MdmClient, Provider};
use std::time::Duration;

#[tokio::test]
async fn p4_a_token_expired_between_pages_is_replaced_once() {
    let sim = start(Scenario::generate(2, 30, 5, 60)).await;
    let ctl = sim.control();
    let jamf = client(&sim, 10); // 3 pages
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 400 }).route(INVENTORY));
    // Expire every token as soon as the first page has been served, while the second
    // request waits in the simulator.
    let watcher = {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            for _ in 0..2000 {
                let first_done = ctl
                    .requests()
                    .iter()
                    .any(|r| r.route.as_deref() == Some(INVENTORY) && r.status == Some(200));
                if first_done {
                    ctl.expire_tokens();
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        })
    };
    let snap = jamf.fetch_snapshot().await.unwrap();
    assert!(watcher.await.unwrap());
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    let statuses: Vec<_> = on(INVENTORY, &ctl.requests())
        .iter()
        .map(|r| (param(r, "page").unwrap(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("0".into(), Some(200)),
            ("1".into(), Some(401)),
            ("1".into(), Some(200)),
            ("2".into(), Some(200)),
        ]
    );
    assert_eq!(ctl.tokens_issued(), 2);
    assert_eq!(jamf.tokens_fetched(), 2);
}

#[tokio::test]
async fn p4_a_short_lived_token_is_refreshed_before_a_page_not_after_a_401() {
    let mut s = Scenario::generate(2, 30, 5, 60);
    s.token_lifetime_secs = Some(1); // margin: 0.5 s
    let sim = start(s).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 600 }).route(INVENTORY));
    let jamf = client(&sim, 10);
    let snap = jamf.fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    assert!(ctl.requests().iter().all(|r| r.status != Some(401)));
    assert!(ctl.tokens_issued() >= 3, "a new token before pages 2 and 3");
}

#[tokio::test]
async fn p4_one_token_serves_a_whole_sync_and_the_next() {
    let sim = start(Scenario::generate(2, 30, 5, 60)).await;
    let jamf = client(&sim, 10);
    jamf.fetch_snapshot().await.unwrap();
    jamf.fetch_snapshot().await.unwrap();
    assert_eq!(sim.control().tokens_issued(), 1);
}

#[tokio::test]
async fn p4_the_token_url_falls_back_to_v1_on_404() {
    let sim = start(Scenario::generate(2, 30, 5, 60)).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::NotFound).path("/api/oauth/token"));
    let jamf = client(&sim, 10);
    jamf.fetch_snapshot().await.unwrap();
    ctl.expire_tokens();
    jamf.fetch_snapshot().await.unwrap();
    let tokens: Vec<_> = on("jamf.token", &ctl.requests())
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(
        tokens,
        [
            ("/api/oauth/token".into(), Some(404)),
            ("/api/v1/oauth/token".into(), Some(200)),
            ("/api/v1/oauth/token".into(), Some(200)),
        ],
        "the working URL is remembered"
    );
}
