//! `SyncPolicy`: T1–T4, G1, M2.

use chrono::TimeDelta;
use mdmsync_core::testkit::{connected_workspace, given, t0};
use mdmsync_core::*;
use uuid::Uuid;

fn synced_at(offset: TimeDelta) -> Workspace {
    let g = given(connected_workspace(Provider::Jamf, 1));
    let started = t0() + offset;
    g.and(vec![Event::SyncSucceeded {
        sync_id: SyncId(Uuid::from_u128(1)),
        trigger: SyncTrigger::Scheduled,
        started_at: started,
        finished_at: started,
        report: Box::default(),
        snapshot_digest: String::new(),
    }])
    .state
}

#[test]
fn t1_jitter_is_stable_per_workspace_spread_across_workspaces_and_bounded() {
    let p = SyncPolicy::default();
    let a = WorkspaceId(Uuid::from_u128(0x1234_5678_9abc_def0_1111));
    assert_eq!(p.jitter(a), p.jitter(a));
    let distinct: std::collections::BTreeSet<i64> = (0..200u128)
        .map(|n| {
            p.jitter(WorkspaceId(Uuid::from_u128(n * 7_919 + (n << 64))))
                .num_seconds()
        })
        .collect();
    assert!(
        distinct.len() > 100,
        "jitter spreads workspaces: {} distinct",
        distinct.len()
    );
    assert!(distinct.iter().all(|s| (0..30 * 60).contains(s)));
}

#[test]
fn t1_next_run_is_six_hours_plus_jitter_after_the_last_start() {
    let p = SyncPolicy::default();
    let ws = synced_at(TimeDelta::zero());
    let next = p.next_scheduled_at(&ws, t0()).unwrap();
    assert_eq!(
        next,
        t0() + TimeDelta::hours(6) + p.jitter(ws.id().unwrap())
    );
    assert!(!p.scheduled_due(&ws, next - TimeDelta::seconds(1)));
    assert!(p.scheduled_due(&ws, next));
}

#[test]
fn t1_never_synced_is_due_now_and_a_free_workspace_never() {
    let p = SyncPolicy::default();
    let ws = given(connected_workspace(Provider::Jamf, 0)).state;
    assert!(p.scheduled_due(&ws, t0()));
    let free = given(connected_workspace(Provider::Jamf, 0))
        .and_command(Command::SetPlan { plan: Plan::Free })
        .state;
    assert_eq!(p.next_scheduled_at(&free, t0()), None);
}

#[test]
fn t2_manual_sync_waits_15_minutes_after_the_previous_start() {
    let p = SyncPolicy::default();
    let ws = synced_at(TimeDelta::zero());
    let allowed = t0() + TimeDelta::minutes(15);
    assert_eq!(
        p.admit(
            &ws,
            SyncTrigger::Manual,
            t0() + TimeDelta::minutes(14),
            false
        ),
        Admission::Refused(Refusal::Cooldown {
            allowed_at: allowed
        })
    );
    assert_eq!(p.manual_allowed_at(&ws, t0()), Some(allowed));
    assert_eq!(
        p.admit(&ws, SyncTrigger::Manual, allowed, false),
        Admission::Start
    );
    assert_eq!(p.manual_allowed_at(&ws, allowed), None);
}

#[test]
fn t3_provider_change_and_scheduled_syncs_ignore_the_cooldown() {
    let p = SyncPolicy::default();
    let ws = synced_at(TimeDelta::zero());
    let now = t0() + TimeDelta::minutes(1);
    for t in [
        SyncTrigger::ProviderChanged,
        SyncTrigger::ForcedManual,
        SyncTrigger::Confirmation,
        SyncTrigger::Scheduled,
    ] {
        assert_eq!(p.admit(&ws, t, now, false), Admission::Start, "{t:?}");
    }
}

#[test]
fn t4_a_trigger_while_a_sync_runs_is_coalesced() {
    let p = SyncPolicy::default();
    let ws = synced_at(TimeDelta::zero());
    assert_eq!(
        p.admit(&ws, SyncTrigger::ProviderChanged, t0(), true),
        Admission::Coalesce
    );
}

#[test]
fn g1_free_plan_is_refused_before_anything_else() {
    let p = SyncPolicy::default();
    let ws = given(connected_workspace(Provider::Jamf, 0))
        .and_command(Command::SetPlan { plan: Plan::Free })
        .state;
    assert_eq!(
        p.admit(&ws, SyncTrigger::Manual, t0(), false),
        Admission::Refused(Refusal::PlanDoesNotSyncGroups { plan: Plan::Free })
    );
}

#[test]
fn m2_metadata_due_after_a_day_or_when_never_checked() {
    let p = SyncPolicy::default();
    let ws = given(connected_workspace(Provider::Jamf, 1)).state;
    let d = ws.devices().values().next().unwrap();
    assert!(!p.metadata_due(d, t0() + TimeDelta::hours(23)));
    assert!(p.metadata_due(d, t0() + TimeDelta::hours(24)));
    let cleared = given(connected_workspace(Provider::Jamf, 1))
        .and_command(Command::Connect {
            provider: Provider::Jamf,
            settings: Default::default(),
        })
        .state;
    assert!(
        p.metadata_due(cleared.devices().values().next().unwrap(), t0()),
        "C4 makes it due at once"
    );
}

fn failed(ws: Workspace, n: u32, offset: TimeDelta) -> Workspace {
    let mut ws = ws;
    for i in 0..n {
        let started = t0() + offset;
        ws.apply(&Event::SyncFailed {
            sync_id: SyncId(Uuid::from_u128(100 + u128::from(i))),
            trigger: SyncTrigger::Scheduled,
            started_at: started,
            finished_at: started,
            kind: ErrorKind::ServerError,
            message: "HTTP 503".into(),
        });
    }
    ws
}

#[test]
fn t1_failures_back_off_exponentially_and_reset_on_success() {
    let p = SyncPolicy::default();
    let ws = failed(synced_at(TimeDelta::zero()), 1, TimeDelta::hours(6));
    assert_eq!(ws.consecutive_failures(), 1);
    assert_eq!(
        p.next_scheduled_at(&ws, t0()),
        Some(t0() + TimeDelta::hours(6) + TimeDelta::minutes(5))
    );
    let ws = failed(ws, 2, TimeDelta::hours(6));
    assert_eq!(p.failure_delay(3), TimeDelta::minutes(20));
    assert_eq!(
        p.next_scheduled_at(&ws, t0()),
        Some(t0() + TimeDelta::hours(6) + TimeDelta::minutes(20))
    );
    assert_eq!(
        p.failure_delay(30),
        TimeDelta::hours(6),
        "capped at the interval"
    );
    let mut ok = ws;
    ok.apply(&Event::SyncSucceeded {
        sync_id: SyncId(Uuid::from_u128(9)),
        trigger: SyncTrigger::Scheduled,
        started_at: t0() + TimeDelta::hours(7),
        finished_at: t0() + TimeDelta::hours(7),
        report: Box::default(),
        snapshot_digest: String::new(),
    });
    assert_eq!(ok.consecutive_failures(), 0);
    assert_eq!(
        p.next_scheduled_at(&ok, t0()),
        Some(t0() + TimeDelta::hours(13) + p.jitter(ok.id().unwrap()))
    );
}

#[test]
fn t5_metadata_next_due_is_the_earliest_device() {
    let p = SyncPolicy::default();
    let ws = given(connected_workspace(Provider::Jamf, 2)).state;
    assert_eq!(
        p.metadata_next_due(&ws, t0() + TimeDelta::hours(1)),
        Some(t0() + TimeDelta::days(1))
    );
    let ws = given(connected_workspace(Provider::Jamf, 2))
        .and_command(Command::RegisterDevice {
            device_id: DeviceId(Uuid::from_u128(77)),
            serial_number: Some("NEW".into()),
            name: None,
        })
        .state;
    assert_eq!(
        p.metadata_next_due(&ws, t0() + TimeDelta::hours(1)),
        Some(t0() + TimeDelta::hours(1)),
        "a new device is due now"
    );
}

#[test]
fn t5_m6_a_device_without_serial_is_never_due() {
    // A refresh skips it (M6) and records nothing, so counting it would make the workspace due forever.
    let p = SyncPolicy::default();
    let ws = given(connected_workspace(Provider::Jamf, 1))
        .and_command(Command::RegisterDevice {
            device_id: DeviceId(Uuid::from_u128(78)),
            serial_number: None,
            name: None,
        })
        .state;
    assert_eq!(
        p.metadata_next_due(&ws, t0() + TimeDelta::hours(1)),
        Some(t0() + TimeDelta::days(1))
    );
}

#[test]
fn t2_refusal_names_the_time_not_a_fixed_duration() {
    let p = SyncPolicy {
        cooldown: TimeDelta::seconds(60),
        ..SyncPolicy::default()
    };
    let ws = synced_at(TimeDelta::zero());
    let Admission::Refused(refusal) = p.admit(&ws, SyncTrigger::Manual, t0(), false) else {
        panic!("not refused")
    };
    let text = refusal.to_string();
    assert!(
        text.contains(&(t0() + TimeDelta::seconds(60)).to_string()),
        "{text}"
    );
    assert!(!text.contains("15 minutes"), "{text}");
}
