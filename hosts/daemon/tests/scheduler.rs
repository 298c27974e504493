//! The scheduler against scripted MDMs, a real SQLite file and a manual clock: T1 backoff,
//! T3, T4 coalescing and leases across processes, bounded concurrency (global and per host,
//! P5), T5 metadata, pick-up by tailing the log, shutdown.

mod common;

use chrono::TimeDelta;
use common::{World, config, eventually, one_group};
use mdmsync_core::workspace::SyncOutcomeKind;
use mdmsync_core::{
    Actor, ErrorKind, Event, MdmDeviceId, MdmDeviceRecord, MdmError, Plan, Provider, SyncRequest,
    SyncTrigger,
};
use mdmsync_daemon::scheduler::{JobEnd, TriggerError};
use mdmsync_daemon::{Scheduler, SyncLabel};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

fn gate() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(0))
}

async fn settle(s: &Scheduler) {
    s.wait_idle().await;
    s.poll_log().await.unwrap();
}

#[tokio::test]
async fn t4_global_concurrency_is_bounded() {
    let w = World::new();
    let g = gate();
    let mut clients = Vec::new();
    for n in 0..5 {
        let ws = w.create(&format!("ws{n}"), Plan::Pro).await;
        // Distinct hosts: only the global limit applies.
        clients.push(
            w.connect(ws, Provider::Fleet, &format!("h{n}.test"), Some(g.clone()))
                .await,
        );
    }
    let (s, _) = w.scheduler(config(2, 10));
    assert_eq!(s.tick().await, 5, "every workspace is due (never synced)");
    let tracker = w.tracker.clone();
    eventually("two fetches in flight", || tracker.in_flight() == 2).await;
    assert_eq!(s.running_jobs(), 5, "three wait for a slot");
    g.add_permits(5);
    settle(&s).await;
    assert_eq!(w.tracker.max(), 2, "never more than the global limit");
    for c in &clients {
        assert_eq!(c.fetches(), 1);
    }
    for ws in s.workspaces() {
        let st = s.status(ws.id).unwrap();
        assert_eq!(
            st.last_sync.unwrap().outcome,
            SyncOutcomeKind::Succeeded,
            "{}",
            ws.name
        );
    }
}

#[tokio::test]
async fn p5_per_host_concurrency_is_bounded() {
    let w = World::new();
    let g = gate();
    for n in 0..4 {
        let ws = w.create(&format!("a{n}"), Plan::Pro).await;
        w.connect(ws, Provider::Jamf, "a.jamfcloud.test", Some(g.clone()))
            .await;
    }
    for n in 0..2 {
        let ws = w.create(&format!("b{n}"), Plan::Pro).await;
        w.connect(ws, Provider::Jamf, "b.jamfcloud.test", Some(g.clone()))
            .await;
    }
    let (s, _) = w.scheduler(config(10, 1));
    assert_eq!(s.tick().await, 6);
    let tracker = w.tracker.clone();
    eventually("one fetch per host in flight", || tracker.in_flight() == 2).await;
    g.add_permits(6);
    settle(&s).await;
    assert_eq!(w.tracker.max_for("a.jamfcloud.test"), 1);
    assert_eq!(w.tracker.max_for("b.jamfcloud.test"), 1);
    assert_eq!(w.tracker.max(), 2, "the two hosts ran side by side");
}

#[tokio::test]
async fn t4_a_trigger_while_a_sync_runs_is_coalesced() {
    let w = World::new();
    let g = gate();
    let ws = w.create("acme", Plan::Pro).await;
    let client = w
        .connect(ws, Provider::Jamf, "acme.test", Some(g.clone()))
        .await;
    let (s, metrics) = w.scheduler(config(4, 4));
    assert_eq!(s.tick().await, 1);
    let tracker = w.tracker.clone();
    eventually("the sync is fetching", || tracker.in_flight() == 1).await;
    // A manual trigger and further rounds are folded into the running sync.
    let err = s
        .trigger(
            ws,
            SyncRequest::new(SyncTrigger::Manual, Actor::ApiCaller("t".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(err, TriggerError::Running);
    assert_eq!(s.tick().await, 0);
    assert_eq!(s.tick().await, 0);
    assert!(s.status(ws).unwrap().running);
    g.add_permits(10);
    settle(&s).await;
    assert_eq!(client.fetches(), 1, "one sync, not three");
    assert_eq!(w.sync_ends(ws).await.len(), 1);
    assert_eq!(metrics.coalesced(), 1);
    assert_eq!(s.tick().await, 0, "not due again until T1");
}

#[tokio::test]
async fn t3_provider_change_during_a_sync_runs_exactly_one_more() {
    let w = World::new();
    let g = gate();
    let ws = w.create("acme", Plan::Pro).await;
    let jamf = w
        .connect(ws, Provider::Jamf, "acme.test", Some(g.clone()))
        .await;
    let (s, _) = w.scheduler(config(4, 4));
    assert_eq!(s.tick().await, 1);
    let tracker = w.tracker.clone();
    eventually("the Jamf sync is fetching", || tracker.in_flight() == 1).await;
    // The operator switches to Fleet (twice, even) through the CLI meanwhile.
    w.connect(ws, Provider::Fleet, "fleet.test", None).await;
    let fleet = w.connect(ws, Provider::Fleet, "fleet.test", None).await;
    for _ in 0..3 {
        assert_eq!(s.tick().await, 0, "coalesced while the first runs");
    }
    g.add_permits(1);
    settle(&s).await;
    // The Jamf sync could not apply to a Fleet workspace; the T3 sync with the new provider
    // starts at the next round, without a backoff.
    run_rounds(&s).await;
    assert_eq!(jamf.fetches(), 1);
    assert_eq!(fleet.fetches(), 1, "one T3 sync for two connects");
    let st = s.status(ws).unwrap();
    let last = st.last_sync.unwrap();
    assert_eq!(last.trigger, SyncTrigger::ProviderChanged);
    assert_eq!(last.outcome, SyncOutcomeKind::Succeeded);
    assert_eq!(st.provider, Some(Provider::Fleet));
    assert!(st.scheduler_error.is_none());
}

/// Runs rounds until the scheduler has nothing more to start.
async fn run_rounds(s: &Scheduler) {
    for _ in 0..10 {
        let started = s.tick().await;
        settle(s).await;
        if started == 0 {
            return;
        }
    }
    panic!("the scheduler kept starting jobs");
}

#[tokio::test]
async fn t1_failure_backoff_doubles_and_resets_on_success() {
    let w = World::new();
    let ws = w.create("acme", Plan::Pro).await;
    let client = w.connect(ws, Provider::Iru, "acme.test", None).await;
    client.fake.set_fault(Some(MdmError::new(
        ErrorKind::Unauthorized,
        "Iru: list tags: HTTP 401",
    )));
    let (s, metrics) = w.scheduler(config(4, 4));
    let policy = s.policy().clone();

    run_rounds(&s).await;
    let first = w.now();
    let st = s.status(ws).unwrap();
    assert_eq!(st.consecutive_failures, 1);
    assert_eq!(
        st.last_error.as_ref().unwrap().kind,
        ErrorKind::Unauthorized
    );
    assert_eq!(st.next_scheduled_at, Some(first + policy.failure_backoff));
    assert_eq!(s.tick().await, 0, "backing off");

    w.advance(policy.failure_backoff);
    run_rounds(&s).await;
    let second = w.now();
    let st = s.status(ws).unwrap();
    assert_eq!(st.consecutive_failures, 2);
    assert_eq!(
        st.next_scheduled_at,
        Some(second + policy.failure_backoff * 2),
        "doubled"
    );
    w.advance(policy.failure_backoff);
    assert_eq!(s.tick().await, 0, "still backing off");

    client.fake.set_fault(None);
    client.fake.set_snapshot(one_group(Provider::Iru));
    w.advance(policy.failure_backoff);
    run_rounds(&s).await;
    let third = w.now();
    let st = s.status(ws).unwrap();
    assert_eq!(st.consecutive_failures, 0, "reset by the success");
    assert!(st.last_error.is_none(), "G8: shown until the next success");
    assert_eq!(
        st.next_scheduled_at,
        Some(third + policy.interval + policy.jitter(ws))
    );
    assert_eq!(client.fetches(), 3);
    assert_eq!(metrics.syncs(SyncLabel::Failed), 2);
    assert_eq!(metrics.syncs(SyncLabel::Succeeded), 1);
    assert!(
        metrics
            .render()
            .contains("mdmsyncd_syncs_total{outcome=\"failed\",error_kind=\"unauthorized\"} 2")
    );

    // T1: due again exactly at interval + jitter.
    w.advance(policy.interval + policy.jitter(ws) - TimeDelta::seconds(1));
    assert_eq!(s.tick().await, 0);
    w.advance(TimeDelta::seconds(1));
    run_rounds(&s).await;
    assert_eq!(client.fetches(), 4);
    assert_eq!(
        s.status(ws).unwrap().last_sync.unwrap().trigger,
        SyncTrigger::Scheduled
    );
}

#[tokio::test]
async fn tail_picks_up_a_new_workspace_and_its_connection_without_restart() {
    let w = World::new();
    let (s, metrics) = w.scheduler(config(4, 4));
    assert_eq!(s.tick().await, 0);
    assert!(s.workspaces().is_empty());

    let ws = w.create("late", Plan::Enterprise).await;
    assert_eq!(s.tick().await, 0, "not connected: nothing to do");
    let listed = s.workspaces();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "late");
    assert_eq!(listed[0].next_scheduled_at, None);

    let client = w
        .connect(ws, Provider::SimpleMdm, "a.simplemdm.test", None)
        .await;
    client.fake.set_snapshot(one_group(Provider::SimpleMdm));
    assert_eq!(s.tick().await, 1, "T3: synced at once");
    settle(&s).await;
    let last = s.status(ws).unwrap().last_sync.unwrap();
    assert_eq!(last.trigger, SyncTrigger::ProviderChanged);
    assert_eq!(last.outcome, SyncOutcomeKind::Succeeded);
    assert!(
        metrics
            .render()
            .contains("mdmsyncd_events_appended_total{type=\"WorkspaceCreated\"} 1")
    );
}

#[tokio::test]
async fn t3_a_connect_that_already_synced_is_not_synced_again() {
    let w = World::new();
    let ws = w.create("acme", Plan::Pro).await;
    let client = w.connect(ws, Provider::Fleet, "fleet.test", None).await;
    // The CLI's connect syncs at once (C3) before the daemon looks.
    w.cli
        .sync(
            ws,
            client.as_ref(),
            SyncRequest::new(SyncTrigger::ProviderChanged, Actor::Operator("t".into())),
        )
        .await
        .unwrap();
    let (s, _) = w.scheduler(config(4, 4));
    assert_eq!(s.tick().await, 0);
    assert_eq!(client.fetches(), 1);
}

#[tokio::test]
async fn t5_metadata_refreshes_at_most_daily_and_on_every_plan() {
    let w = World::new();
    // M5: a Free workspace gets metadata, never group syncs (G1).
    let ws = w.create("free", Plan::Free).await;
    let client = w.connect(ws, Provider::Jamf, "acme.test", None).await;
    for n in 0..3 {
        w.device(ws, Some(&format!("S{n}"))).await;
    }
    w.device(ws, None).await; // M6: no serial, skipped, never makes it due
    for n in 0..2 {
        client.fake.add_record(MdmDeviceRecord {
            mdm_device_id: MdmDeviceId::new(format!("m{n}")),
            serial_number: format!("S{n}"),
            device_name: Some(format!("Mac {n}")),
            user_id: None,
            user_name: None,
            last_seen: None,
        });
    }
    let (s, metrics) = w.scheduler(config(4, 4));
    run_rounds(&s).await;
    assert_eq!(client.lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(client.fetches(), 0, "G1: no group sync on Free");
    assert_eq!(metrics.metadata_refreshes(), 1);
    let recorded = w
        .events(ws)
        .await
        .iter()
        .filter(|r| matches!(r.envelope.event, Event::DeviceMetadataRecorded { .. }))
        .count();
    assert_eq!(recorded, 2);
    let due = s.status(ws).unwrap().metadata_next_due.unwrap();
    assert_eq!(due, w.now() + s.policy().metadata_max_age);

    w.advance(TimeDelta::hours(23));
    assert_eq!(s.tick().await, 0, "M2: not within a day");
    w.advance(TimeDelta::hours(1));
    run_rounds(&s).await;
    assert_eq!(
        client.lookups.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "due again after a day"
    );
}

#[tokio::test]
async fn t5_a_failed_metadata_refresh_backs_off() {
    let w = World::new();
    let ws = w.create("free", Plan::Free).await;
    let client = w.connect(ws, Provider::Jamf, "acme.test", None).await;
    w.device(ws, Some("S1")).await;
    client.fake.set_fault(Some(MdmError::new(
        ErrorKind::ServerError,
        "Jamf: inventory: HTTP 500",
    )));
    let (s, metrics) = w.scheduler(config(4, 4));
    run_rounds(&s).await;
    assert_eq!(client.lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(s.tick().await, 0, "no retry in a loop");
    w.advance(s.policy().failure_backoff);
    client.fake.set_fault(None);
    run_rounds(&s).await;
    assert_eq!(client.lookups.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(metrics.metadata_refreshes(), 1);
}

#[tokio::test]
async fn t4_two_daemons_on_one_database_never_sync_a_workspace_at_once() {
    let w = World::new();
    let g = gate();
    let ws = w.create("shared", Plan::Pro).await;
    let client = w
        .connect(ws, Provider::Fleet, "fleet.test", Some(g.clone()))
        .await;
    // Two schedulers, each with its own database connections and lease holder name.
    let (a, _) = w.scheduler(config(4, 4));
    let (b, b_metrics) = w.scheduler(config(4, 4));
    assert_eq!(a.tick().await, 1);
    let tracker = w.tracker.clone();
    eventually("A is fetching", || tracker.in_flight() == 1).await;
    assert_eq!(b.tick().await, 1, "B sees the workspace due too");
    b.wait_idle().await;
    assert_eq!(b_metrics.lease_conflicts(), 1, "B found A's lease");
    assert_eq!(w.tracker.in_flight(), 1, "B never fetched");
    g.add_permits(10);
    a.wait_idle().await;
    assert_eq!(w.tracker.max(), 1);
    assert_eq!(client.fetches(), 1);
    // After A is done, B catches up from the log: nothing due.
    w.advance(TimeDelta::minutes(2));
    assert_eq!(b.tick().await, 0);
    assert_eq!(w.sync_ends(ws).await.len(), 1);
}

#[tokio::test]
async fn t4_a_stale_daemon_rereads_after_taking_the_lease() {
    let w = World::new();
    let ws = w.create("shared", Plan::Pro).await;
    let client = w.connect(ws, Provider::Fleet, "fleet.test", None).await;
    let (a, _) = w.scheduler(config(4, 4));
    let (b, _) = w.scheduler(config(4, 4));
    b.poll_log().await.unwrap();
    assert_eq!(a.tick().await, 1);
    a.wait_idle().await;
    // B has not read A's sync yet: it starts a job, takes the (released) lease, re-reads,
    // and finds nothing due.
    assert_eq!(b.dispatch_due(), 1);
    b.wait_idle().await;
    assert_eq!(client.fetches(), 1);
    assert_eq!(w.sync_ends(ws).await.len(), 1);
}

#[tokio::test]
async fn manual_trigger_runs_once_then_t2_cooldown_refuses_force_bypasses() {
    let w = World::new();
    let ws = w.create("acme", Plan::Pro).await;
    let client = w.connect(ws, Provider::Jamf, "acme.test", None).await;
    client.fake.set_snapshot(one_group(Provider::Jamf));
    let (s, _) = w.scheduler(config(4, 4));
    let manual = |t| SyncRequest::new(t, Actor::ApiCaller("ops".into()));
    let end = s
        .trigger(ws, manual(SyncTrigger::Manual))
        .await
        .unwrap()
        .await
        .unwrap();
    let JobEnd::Synced(outcome) = end else {
        panic!("{end:?}")
    };
    assert!(outcome.sync_id.is_some());
    s.wait_idle().await;
    w.advance(TimeDelta::minutes(14));
    let err = s
        .trigger(ws, manual(SyncTrigger::Manual))
        .await
        .unwrap_err();
    let TriggerError::Refused(mdmsync_core::Refusal::Cooldown { allowed_at }) = err else {
        panic!("{err:?}")
    };
    assert_eq!(allowed_at, w.now() + TimeDelta::minutes(1));
    // An operator's bypass is allowed and recorded as such.
    s.trigger(ws, manual(SyncTrigger::ForcedManual))
        .await
        .unwrap()
        .await
        .unwrap();
    s.wait_idle().await;
    let last = s.status(ws).unwrap().last_sync.unwrap();
    assert_eq!(last.trigger, SyncTrigger::ForcedManual);
    assert_eq!(client.fetches(), 2);
    let actors: Vec<String> = w
        .events(ws)
        .await
        .iter()
        .filter(|r| matches!(r.envelope.event, Event::SyncSucceeded { .. }))
        .map(|r| r.envelope.meta.actor.to_string())
        .collect();
    assert_eq!(actors, ["api:ops", "api:ops"], "G12: who asked");
}

#[tokio::test]
async fn shutdown_abandons_a_sync_after_the_grace_period_without_appending() {
    let w = World::new();
    let g = gate();
    let ws = w.create("acme", Plan::Pro).await;
    let client = w
        .connect(ws, Provider::Jamf, "acme.test", Some(g.clone()))
        .await;
    client.fake.set_snapshot(one_group(Provider::Jamf));
    let (s, metrics) = w.scheduler(config(4, 4));
    let before = w.events(ws).await.len();
    assert_eq!(s.tick().await, 1);
    let tracker = w.tracker.clone();
    eventually("fetching", || tracker.in_flight() == 1).await;
    let report = s
        .shutdown(Duration::from_millis(50), std::future::pending())
        .await;
    assert_eq!(report.abandoned, 1);
    assert_eq!(w.events(ws).await.len(), before, "nothing partial appended");
    assert!(
        w.cli_store.sync_lease(ws).unwrap().is_none(),
        "lease released"
    );
    assert_eq!(metrics.syncs(SyncLabel::Abandoned), 1);
    assert_eq!(s.dispatch_due(), 0, "no new work after shutdown");
}

#[tokio::test]
async fn shutdown_lets_in_flight_syncs_finish_within_the_grace_period() {
    let w = World::new();
    let g = gate();
    let ws = w.create("acme", Plan::Pro).await;
    w.connect(ws, Provider::Jamf, "acme.test", Some(g.clone()))
        .await;
    let other = w.create("queued", Plan::Pro).await;
    w.connect(other, Provider::Jamf, "acme.test", Some(g.clone()))
        .await;
    let (s, _) = w.scheduler(config(1, 4));
    assert_eq!(s.tick().await, 2);
    let tracker = w.tracker.clone();
    eventually("fetching", || tracker.in_flight() == 1).await;
    let shutdown = {
        let s = s.clone();
        tokio::spawn(async move {
            s.shutdown(Duration::from_secs(30), std::future::pending())
                .await
        })
    };
    // Whichever workspace got the only slot: release it.
    g.add_permits(1);
    let report = shutdown.await.unwrap();
    assert_eq!(report.in_flight, 2);
    assert_eq!(report.abandoned, 0);
    let done = w.sync_ends(ws).await.len() + w.sync_ends(other).await.len();
    assert_eq!(
        done, 1,
        "the running sync finished; the queued one never started"
    );
}

#[tokio::test]
async fn a_workspace_without_stored_credentials_backs_off_and_says_why() {
    let w = World::new();
    let ws = w.create("acme", Plan::Pro).await;
    w.connect(ws, Provider::Jamf, "acme.test", None).await;
    w.vault.remove_blocking(ws).unwrap();
    let (s, metrics) = w.scheduler(config(4, 4));
    run_rounds(&s).await;
    let err = s.status(ws).unwrap().scheduler_error.unwrap();
    assert!(err.message.contains("connect it again"), "{}", err.message);
    assert_eq!(err.retry_at, w.now() + s.policy().failure_backoff);
    assert_eq!(s.tick().await, 0);
    assert!(w.sync_ends(ws).await.is_empty(), "nothing recorded");
    assert_eq!(metrics.syncs(SyncLabel::Succeeded), 0);
}
