//! Generators shared by the property tests in `tests/`: random command histories and random
//! snapshots over small pools of ids and names, so that collisions (G4), renames, detaches and
//! unmatched members happen often.

use mdmsync_core::testkit::{device, manual_group, mdm_device, t0, ws_id};
use mdmsync_core::{
    Actor, Command, Context, Event, MdmMetadata, Plan, Provider, SafetyThresholds, Snapshot,
    SyncTrigger, Workspace,
};
use mdmsync_core::{GroupKind, MdmGroup, SyncId};
use proptest::prelude::*;
use uuid::Uuid;

/// Names drawn from a pool with case and white-space variants and provider-suffixed forms.
pub const NAMES: [&str; 8] = [
    "Eng",
    "eng ",
    "Sales",
    "Ops",
    "Ops (Jamf)",
    "Ops (Jamf) 2",
    "Design",
    "QA",
];
/// MDM group ids in the pool.
pub const MDM_GROUPS: u32 = 8;
/// Devices in the pool; MDM ids `m0..m{DEVICES}`; members may also be `x0..x3` (unmatched).
pub const DEVICES: u32 = 12;

/// A random snapshot of `provider`.
pub fn snapshot(provider: Provider) -> impl Strategy<Value = Snapshot> {
    prop::collection::btree_map(
        0..MDM_GROUPS,
        (
            0..NAMES.len(),
            prop::collection::btree_set(0..(DEVICES + 4), 0..8),
        ),
        0..6,
    )
    .prop_map(move |groups| Snapshot {
        provider,
        groups: groups
            .into_iter()
            .map(|(id, (name, members))| MdmGroup {
                id: u64::from(id).into(),
                name: NAMES[name].to_owned(),
                kind: GroupKind::Static,
                members: members
                    .into_iter()
                    .map(|m| {
                        if m < DEVICES {
                            mdm_device(m)
                        } else {
                            format!("x{}", m - DEVICES).into()
                        }
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// One step of a random history.
#[derive(Clone, Debug)]
pub enum Step {
    /// A user or operator command (the group index is resolved against the state at run time).
    User(UserStep),
    /// A sync of this snapshot.
    Sync(Snapshot),
    /// A failed sync.
    Fail,
}

/// User steps over pools.
#[derive(Clone, Debug)]
pub enum UserStep {
    /// Create manual group `n` with a pool name.
    Create(u32, usize),
    /// Rename the `n`-th existing group.
    Rename(usize, usize),
    /// Delete the `n`-th existing group.
    Delete(usize),
    /// Add a device to the `n`-th existing group.
    Add(usize, u32),
    /// Set a policy on the `n`-th existing group.
    Policy(usize, u8),
    /// Include MDM group `n` again.
    Include(u32),
    /// Forget device `n`'s MDM metadata (not found in the MDM).
    Unmatch(u32),
}

/// A random step.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => snapshot(Provider::Jamf).prop_map(Step::Sync),
        1 => Just(Step::Fail),
        1 => (0..6u32, 0..NAMES.len()).prop_map(|(n, name)| Step::User(UserStep::Create(n, name))),
        1 => (0..10usize, 0..NAMES.len()).prop_map(|(g, name)| Step::User(UserStep::Rename(g, name))),
        1 => (0..10usize).prop_map(|g| Step::User(UserStep::Delete(g))),
        1 => (0..10usize, 0..DEVICES).prop_map(|(g, d)| Step::User(UserStep::Add(g, d))),
        1 => (0..10usize, any::<u8>()).prop_map(|(g, v)| Step::User(UserStep::Policy(g, v))),
        1 => (0..MDM_GROUPS).prop_map(|n| Step::User(UserStep::Include(n))),
        1 => (0..DEVICES).prop_map(|n| Step::User(UserStep::Unmatch(n))),
    ]
}

/// A workspace being driven through a history, with its log.
#[derive(Clone, Debug)]
pub struct Driver {
    /// The live state.
    pub state: Workspace,
    /// Every event so far.
    pub log: Vec<Event>,
    syncs: u128,
}

impl Driver {
    /// A Pro workspace connected to Jamf with devices `0..DEVICES` matched as `m{n}`.
    /// `thresholds_off` disables G11 (except for empty snapshots, which are always held).
    pub fn new(thresholds_off: bool) -> Self {
        let mut d = Self {
            state: Workspace::new(),
            log: Vec::new(),
            syncs: 0,
        };
        d.run(Command::CreateWorkspace {
            workspace_id: ws_id(),
            name: "P".into(),
            plan: Plan::Pro,
        })
        .unwrap();
        d.run(Command::Connect {
            provider: Provider::Jamf,
            settings: Default::default(),
        })
        .unwrap();
        if thresholds_off {
            let off = SafetyThresholds {
                enabled: false,
                ..SafetyThresholds::default()
            };
            d.run(Command::SetSafetyThresholds { thresholds: off })
                .unwrap();
        }
        for n in 0..DEVICES {
            d.run(Command::RegisterDevice {
                device_id: device(n),
                serial_number: Some(format!("S{n}")),
                name: None,
            })
            .unwrap();
            d.run(Command::RecordDeviceMetadata {
                device_id: device(n),
                metadata: Some(MdmMetadata {
                    mdm_device_id: mdm_device(n),
                    mdm_user_id: None,
                    mdm_display_name: None,
                    console_url: None,
                }),
                ambiguous_candidates: 0,
            })
            .unwrap();
        }
        d
    }

    fn ctx(&self, sync: bool) -> Context {
        let mut ctx = Context::command(t0(), Actor::Operator("prop".into()), "prop");
        if sync {
            ctx.sync_id = Some(SyncId(Uuid::from_u128(0x5000 + self.syncs)));
        }
        ctx
    }

    /// Decides and applies a command; returns its events or the refusal.
    pub fn run(&mut self, c: Command) -> Result<Vec<Event>, mdmsync_core::DomainError> {
        let sync = matches!(
            c,
            Command::ApplySnapshot { .. } | Command::RecordSyncFailure { .. }
        );
        if sync {
            self.syncs += 1;
        }
        let events = self.state.decide(c, &self.ctx(sync))?;
        for e in &events {
            self.state.apply(e);
        }
        self.log.extend(events.iter().cloned());
        Ok(events)
    }

    /// Syncs a snapshot.
    pub fn sync(&mut self, s: Snapshot) -> Vec<Event> {
        self.run(Command::ApplySnapshot {
            snapshot: s,
            trigger: SyncTrigger::Scheduled,
            started_at: t0(),
            confirm: None,
        })
        .expect("sync of a connected Pro workspace")
    }

    /// Runs one step; refusals of user steps are fine (they change nothing).
    pub fn step(&mut self, s: &Step) {
        let nth = |st: &Workspace, i: usize| {
            st.groups()
                .keys()
                .nth(i % st.groups().len().max(1))
                .copied()
        };
        match s {
            Step::Sync(snap) => {
                self.sync(snap.clone());
            }
            Step::Fail => {
                self.run(Command::RecordSyncFailure {
                    trigger: SyncTrigger::Scheduled,
                    started_at: t0(),
                    kind: mdmsync_core::ErrorKind::ServerError,
                    message: "HTTP 503".into(),
                })
                .expect("failure is always recorded");
            }
            Step::User(u) => {
                let c = match u {
                    UserStep::Create(n, name) => Some(Command::CreateGroup {
                        group_id: manual_group(*n),
                        name: NAMES[*name].into(),
                    }),
                    UserStep::Rename(g, name) => {
                        nth(&self.state, *g).map(|group_id| Command::RenameGroup {
                            group_id,
                            name: NAMES[*name].into(),
                        })
                    }
                    UserStep::Delete(g) => {
                        nth(&self.state, *g).map(|group_id| Command::DeleteGroup { group_id })
                    }
                    UserStep::Add(g, d) => {
                        nth(&self.state, *g).map(|group_id| Command::AddMembers {
                            group_id,
                            device_ids: vec![device(*d)],
                        })
                    }
                    UserStep::Policy(g, v) => {
                        nth(&self.state, *g).map(|group_id| Command::SetPolicy {
                            group_id,
                            key: "k".into(),
                            value: Some((*v).into()),
                        })
                    }
                    UserStep::Include(n) => Some(Command::IncludeGroup {
                        mdm_group_id: u64::from(*n).into(),
                    }),
                    UserStep::Unmatch(n) => Some(Command::RecordDeviceMetadata {
                        device_id: device(*n),
                        metadata: None,
                        ambiguous_candidates: 0,
                    }),
                };
                if let Some(c) = c {
                    let _ = self.run(c);
                }
            }
        }
    }
}
