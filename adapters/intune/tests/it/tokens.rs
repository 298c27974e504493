//! P4: tokens cached, refreshed before expiry, replaced once when refused mid-run.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Scenario};
use mdmsync_core::{MdmClient, Provider};
use std::time::Duration;

#[tokio::test]
async fn p4_a_token_expired_between_pages_is_replaced_once() {
    let sim = start(Scenario::generate(2, 30, 4, 50)).await;
    let ctl = sim.control();
    let intune = client(&sim, 20, 10); // 3 device pages
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 400 }).route(DEVICES));
    // Expire every token once the first device page is served, while the second waits.
    let watcher = {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            for _ in 0..2000 {
                let first_done = ctl
                    .requests()
                    .iter()
                    .any(|r| r.route.as_deref() == Some(DEVICES) && r.status == Some(200));
                if first_done {
                    ctl.expire_tokens();
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        })
    };
    let snap = intune.fetch_snapshot().await.unwrap();
    assert!(watcher.await.unwrap());
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
    let statuses: Vec<_> = on(DEVICES, &ctl.requests())
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(401), Some(200), Some(200)]);
    assert_eq!(ctl.tokens_issued(), 2);
    assert_eq!(intune.tokens_fetched(), 2);
}

#[tokio::test]
async fn p4_a_short_lived_token_is_refreshed_before_a_page_not_after_a_401() {
    let mut s = Scenario::generate(2, 30, 4, 50);
    s.token_lifetime_secs = Some(1); // margin: 0.5 s
    let sim = start(s).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 600 }).route(DEVICES));
    let snap = client(&sim, 20, 10).fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
    assert!(ctl.requests().iter().all(|r| r.status != Some(401)));
    assert!(
        ctl.tokens_issued() >= 3,
        "a new token before device pages 2 and 3"
    );
}

#[tokio::test]
async fn p4_one_token_serves_a_whole_sync_and_the_next() {
    let sim = start(Scenario::generate(2, 30, 4, 50)).await;
    let intune = client(&sim, 20, 10);
    intune.fetch_snapshot().await.unwrap();
    intune.fetch_snapshot().await.unwrap();
    assert_eq!(sim.control().tokens_issued(), 1);
    // The token request carries the Graph scope in its form body, never in the URL.
    let token = on("intune.token", &sim.control().requests());
    assert!(token[0].query.is_empty());
}
