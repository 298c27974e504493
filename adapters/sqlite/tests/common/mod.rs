//! A scenario that emits every event type through the store, with the aggregate folded next
//! to it, so projections can be compared with `Workspace` after each step.

#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, Utc};
use mdmsync_core::testkit::{device, mdm_device, t0};
use mdmsync_core::workspace::Context;
use mdmsync_core::{
    Actor, Command, ConnectionSettings, DeviceId, ErrorKind, Event, ExpectedVersion, GroupId,
    MdmMetadata, Plan, Provider, SafetyThresholds, Snapshot, SyncId, SyncPolicy, SyncTrigger,
    Workspace, WorkspaceId,
};
use mdmsync_sqlite::query::SourceKind;
use mdmsync_sqlite::{SqliteEventStore, WorkspaceRow};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A workspace driven through the store, with its state folded alongside.
pub struct Scenario {
    pub store: SqliteEventStore,
    pub ws: WorkspaceId,
    pub state: Workspace,
    pub version: u64,
    pub now: DateTime<Utc>,
    syncs: u128,
}

impl Scenario {
    pub fn new(store: SqliteEventStore, ws: WorkspaceId) -> Self {
        Self {
            store,
            ws,
            state: Workspace::new(),
            version: 0,
            now: t0(),
            syncs: 0,
        }
    }

    fn append(&mut self, ctx: &Context, events: Vec<Event>) -> Vec<Event> {
        let envs = ctx.envelopes(self.ws, events.clone());
        let out = self
            .store
            .append_blocking(self.ws, ExpectedVersion::Exact(self.version), envs)
            .expect("append");
        self.version = out.stream_version;
        for e in &events {
            self.state.apply(e);
        }
        events
    }

    /// Runs a user command as `operator:ada`, a minute after the previous step.
    pub fn command(&mut self, c: Command) -> Vec<Event> {
        self.now += TimeDelta::minutes(1);
        let ctx = Context::command(self.now, Actor::Operator("ada".into()), c.name());
        let events = self.state.decide(c, &ctx).expect("command accepted");
        self.append(&ctx, events)
    }

    /// Runs a sync of `snapshot` by the scheduler, an hour after the previous step.
    pub fn sync(&mut self, snapshot: Snapshot, confirm: Option<SyncId>) -> (SyncId, Vec<Event>) {
        self.now += TimeDelta::hours(1);
        self.syncs += 1;
        let sync_id = SyncId(Uuid::from_u128(0x5_0000 + self.syncs));
        let trigger = if confirm.is_some() {
            SyncTrigger::Confirmation
        } else {
            SyncTrigger::Scheduled
        };
        let ctx = Context::sync(self.now, Actor::Scheduler, sync_id, trigger);
        let events = self
            .state
            .decide(
                Command::ApplySnapshot {
                    snapshot,
                    trigger,
                    started_at: self.now - TimeDelta::seconds(30),
                    confirm,
                },
                &ctx,
            )
            .expect("sync accepted");
        (sync_id, self.append(&ctx, events))
    }

    /// Records a failed sync.
    pub fn fail(&mut self) -> Vec<Event> {
        self.now += TimeDelta::hours(1);
        self.syncs += 1;
        let sync_id = SyncId(Uuid::from_u128(0x5_0000 + self.syncs));
        let ctx = Context::sync(self.now, Actor::Scheduler, sync_id, SyncTrigger::Scheduled);
        let events = self
            .state
            .decide(
                Command::RecordSyncFailure {
                    trigger: SyncTrigger::Scheduled,
                    started_at: self.now,
                    kind: ErrorKind::Unauthorized,
                    message: "Jamf: list computer groups: HTTP 401".into(),
                },
                &ctx,
            )
            .expect("failure recorded");
        self.append(&ctx, events)
    }

    pub fn group_named(&self, name: &str) -> GroupId {
        self.state.group_named(name).expect("group exists")
    }
}

pub fn ws_id(n: u128) -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(0xAB_0000 + n))
}

pub fn manual(n: u128) -> GroupId {
    GroupId(Uuid::from_u128(0xCD_0000 + n))
}

fn members(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|n| mdm_device(n).as_str().to_owned()).collect()
}

/// Every step of the scenario; `check` runs after each one. Emits all 22 event types.
pub fn run_full_scenario(s: &mut Scenario, mut check: impl FnMut(&Scenario)) {
    s.command(Command::CreateWorkspace {
        workspace_id: s.ws,
        name: "Acme".into(),
        plan: Plan::Pro,
    });
    check(s);
    s.command(Command::Connect {
        provider: Provider::Jamf,
        settings: ConnectionSettings {
            base_url: Some("https://acme.jamfcloud.com".into()),
            login_url: None,
        },
    });
    for n in 0..20u32 {
        s.command(Command::RegisterDevice {
            device_id: device(n),
            serial_number: (n != 19).then(|| format!("C02SER{n:03}")),
            name: Some(format!("mac-{n}")),
        });
        if n < 18 {
            s.command(Command::RecordDeviceMetadata {
                device_id: device(n),
                metadata: Some(MdmMetadata {
                    mdm_device_id: mdm_device(n),
                    mdm_user_id: (n % 2 == 0).then(|| format!("u{n}").into()),
                    mdm_display_name: Some(if n % 2 == 0 {
                        format!("Ada Lovelace {n}")
                    } else {
                        format!("mac-{n}")
                    }),
                    console_url: Some(format!("https://acme.jamfcloud.com/computers.html?id={n}")),
                }),
                ambiguous_candidates: u32::from(n == 3),
            });
        }
    }
    s.command(Command::RecordDeviceMetadata {
        device_id: device(18),
        metadata: None,
        ambiguous_candidates: 0,
    });
    check(s);
    s.command(Command::SetSafetyThresholds {
        thresholds: SafetyThresholds {
            min_groups: 10,
            ..SafetyThresholds::default()
        },
    });
    let snap1 = Snapshot::new(Provider::Jamf)
        .with_group("1", "Engineering", members(0..10))
        .with_group("2", "Sales", members(10..15))
        .with_group("3", "Ops", members(15..17));
    s.sync(snap1, None);
    check(s);
    s.command(Command::CreateGroup {
        group_id: manual(1),
        name: "Manual A".into(),
    });
    s.command(Command::AddMembers {
        group_id: manual(1),
        device_ids: vec![device(0), device(1), device(19)],
    });
    let eng = s.group_named("Engineering");
    s.command(Command::SetPolicy {
        group_id: eng,
        key: "wifi".into(),
        value: Some(serde_json::json!({"ssid": "acme", "hidden": false})),
    });
    s.command(Command::SetPolicy {
        group_id: eng,
        key: "vpn".into(),
        value: Some(serde_json::json!(true)),
    });
    check(s);
    let snap2 = Snapshot::new(Provider::Jamf)
        .with_group("1", "Eng", members(0..9))
        .with_group("2", "Sales", members(10..18));
    s.sync(snap2.clone(), None);
    check(s);
    s.fail();
    check(s);
    s.fail();
    check(s);
    let (held, events) = s.sync(Snapshot::new(Provider::Jamf), None);
    assert!(
        matches!(events.last(), Some(Event::SyncHeld { .. })),
        "{events:?}"
    );
    check(s);
    s.sync(Snapshot::new(Provider::Jamf), Some(held));
    check(s);
    // The MDM comes back: groups are created anew (G7), then one is deleted and excluded (G6).
    s.sync(snap2.clone(), None);
    let sales = s
        .state
        .synced_group(Provider::Jamf, &"2".into())
        .expect("synced Sales");
    s.command(Command::DeleteGroup { group_id: sales });
    s.command(Command::IncludeGroup {
        mdm_group_id: "2".into(),
    });
    check(s);
    s.command(Command::SetPlan {
        plan: Plan::Enterprise,
    });
    s.command(Command::RenameGroup {
        group_id: manual(1),
        name: "Manual B".into(),
    });
    s.command(Command::RemoveMembers {
        group_id: manual(1),
        device_ids: vec![device(1)],
    });
    s.command(Command::SetPolicy {
        group_id: eng,
        key: "vpn".into(),
        value: None,
    });
    check(s);
    // Same provider again: new credentials (C4 clears metadata).
    s.command(Command::Connect {
        provider: Provider::Jamf,
        settings: ConnectionSettings::default(),
    });
    check(s);
    s.command(Command::Connect {
        provider: Provider::Iru,
        settings: ConnectionSettings::default(),
    });
    s.command(Command::Disconnect);
    check(s);
}

/// Asserts that the store's projections say what the folded `Workspace` says.
pub fn assert_projection_matches(s: &Scenario) {
    let store = &s.store;
    let ws = &s.state;
    let row: WorkspaceRow = store
        .workspace(s.ws)
        .expect("query")
        .expect("workspace row");
    assert_eq!(row.name, ws.name());
    assert_eq!(row.plan, ws.plan());
    assert_eq!(row.provider, ws.connection().map(|c| c.provider));
    assert_eq!(row.stream_version, s.version);
    match (row.last_sync.as_ref(), ws.last_sync()) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(a.sync_id, b.sync_id);
            assert_eq!(a.trigger, b.trigger);
            assert_eq!(a.started_at, b.started_at);
            assert_eq!(a.finished_at, b.finished_at);
            assert_eq!(
                serde_json::to_value(a.outcome).unwrap(),
                serde_json::to_value(b.outcome).unwrap()
            );
        }
        other => panic!("last sync differs: {other:?}"),
    }
    assert_eq!(
        row.last_success
            .as_ref()
            .map(|l| (l.sync_id, l.finished_at)),
        ws.last_success().map(|l| (l.sync_id, l.finished_at))
    );
    assert_eq!(
        row.last_failure
            .as_ref()
            .map(|f| (f.sync_id, f.kind, f.message.clone(), f.at)),
        ws.last_failure()
            .map(|f| (f.sync_id, f.kind, f.message.clone(), f.at))
    );
    assert_eq!(
        row.held.as_ref().map(|h| (h.sync_id, h.detail.clone())),
        ws.held().map(|h| (h.sync_id, h.reason.clone()))
    );
    assert_eq!(row.consecutive_failures, ws.consecutive_failures());
    // T1/T2, as the core's policy computes them at several "now"s.
    let policy = SyncPolicy::default();
    for now in [t0(), s.now, s.now + TimeDelta::hours(7)] {
        assert_eq!(
            row.next_due(now),
            policy.next_scheduled_at(ws, now),
            "T1 at {now}"
        );
        assert_eq!(
            row.manual_allowed(now),
            policy.manual_allowed_at(ws, now),
            "T2 at {now}"
        );
    }

    let groups = store.groups_with_members(s.ws).expect("groups");
    assert_eq!(groups.len(), ws.groups().len(), "group count");
    for g in &groups {
        let want = ws.group(g.group.group_id).expect("group in state");
        assert_eq!(g.group.name, want.name);
        assert_eq!(g.group.mdm_name, want.mdm_name);
        match want.synced_key() {
            Some((provider, mdm_id)) => {
                assert_eq!(g.group.source, SourceKind::Synced);
                assert_eq!(g.group.provider, Some(provider));
                assert_eq!(g.group.mdm_group_id.as_ref(), Some(mdm_id));
                assert_eq!(g.group.managed_by.as_deref(), Some(provider.display_name()));
            }
            None => {
                assert_eq!(g.group.source, SourceKind::Manual);
                assert_eq!(g.group.managed_by, None);
            }
        }
        let policies: BTreeMap<String, serde_json::Value> =
            serde_json::from_value(g.group.policies.clone()).unwrap();
        assert_eq!(policies, want.policies);
        let got: BTreeSet<DeviceId> = g.members.iter().map(|m| m.device_id).collect();
        assert_eq!(got, want.members, "members of {}", want.name);
        assert_eq!(g.group.member_count as usize, want.members.len());
        for m in &g.members {
            assert_eq!(
                m.serial_number,
                ws.devices()
                    .get(&m.device_id)
                    .and_then(|d| d.serial_number.clone())
            );
        }
    }

    let devices = store.devices(s.ws, None).expect("devices");
    assert_eq!(devices.len(), ws.devices().len());
    for d in &devices {
        let want = &ws.devices()[&d.device_id];
        assert_eq!(d.serial_number, want.serial_number);
        assert_eq!(d.name, want.name);
        let md = want.metadata.as_ref();
        assert_eq!(
            d.mdm_device_id.as_deref(),
            md.map(|m| m.mdm_device_id.as_str())
        );
        assert_eq!(
            d.mdm_user_id.as_deref(),
            md.and_then(|m| m.mdm_user_id.as_ref().map(|u| u.as_str()))
        );
        assert_eq!(
            d.mdm_display_name,
            md.and_then(|m| m.mdm_display_name.clone())
        );
        assert_eq!(d.console_url, md.and_then(|m| m.console_url.clone()));
        assert_eq!(d.metadata_checked_at, want.metadata_checked_at);
        assert_eq!(d.ambiguous_candidates, want.ambiguous_candidates);
    }
}
