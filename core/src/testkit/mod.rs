//! Test helpers (feature `testkit`): a given/when/then harness over the pure aggregate, a
//! scripted fake MDM, a settable clock, sequential ids, and the `EventStore` contract suite
//! every store runs.

pub mod contract;

use crate::command::Command;
use crate::error::MdmError;
use crate::event::{Actor, Event, SyncTrigger};
use crate::ids::{DeviceId, GroupId, MdmDeviceId, SyncId, WorkspaceId};
use crate::ports::{Capability, Clock, CredentialCheck, IdGenerator, MdmClient, MdmDeviceRecord};
use crate::provider::{Plan, Provider};
use crate::snapshot::Snapshot;
use crate::workspace::{Context, DomainError, Workspace};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// A fixed instant tests start from: 2026-01-01T00:00:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// A deterministic UUID from a small number (`00000000-…-000000000007`).
pub fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Workspace id used by the harness.
pub fn ws_id() -> WorkspaceId {
    WorkspaceId(uuid(0xAAAA))
}

/// Device `n` (ids `0x1_0000 + n`).
pub fn device(n: u32) -> DeviceId {
    DeviceId(uuid(0x1_0000 + u128::from(n)))
}

/// The MDM id of device `n` (`"m{n}"`).
pub fn mdm_device(n: u32) -> MdmDeviceId {
    MdmDeviceId::new(format!("m{n}"))
}

/// Manual group `n` (ids `0x2_0000 + n`).
pub fn manual_group(n: u32) -> GroupId {
    GroupId(uuid(0x2_0000 + u128::from(n)))
}

/// Sync `n` (ids `0x3_0000 + n`).
pub fn sync_id(n: u32) -> SyncId {
    SyncId(uuid(0x3_0000 + u128::from(n)))
}

/// The events of a Pro workspace connected to `provider` with devices `0..devices`, each with
/// MDM id `m{n}`.
pub fn connected_workspace(provider: Provider, devices: u32) -> Vec<Event> {
    let mut ws = Workspace::new();
    let ctx = Context::command(t0(), Actor::Operator("test".into()), "setup");
    let mut all = Vec::new();
    let mut run = |ws: &mut Workspace, c: Command| {
        let events = ws.decide(c, &ctx).expect("setup command");
        for e in &events {
            ws.apply(e);
        }
        all.extend(events);
    };
    run(
        &mut ws,
        Command::CreateWorkspace {
            workspace_id: ws_id(),
            name: "Acme".into(),
            plan: Plan::Pro,
        },
    );
    run(
        &mut ws,
        Command::Connect {
            provider,
            settings: Default::default(),
        },
    );
    for n in 0..devices {
        run(
            &mut ws,
            Command::RegisterDevice {
                device_id: device(n),
                serial_number: Some(format!("S{n}")),
                name: None,
            },
        );
        run(
            &mut ws,
            Command::RecordDeviceMetadata {
                device_id: device(n),
                metadata: Some(crate::event::MdmMetadata {
                    mdm_device_id: mdm_device(n),
                    mdm_user_id: None,
                    mdm_display_name: Some(format!("Device {n}")),
                    console_url: None,
                }),
                ambiguous_candidates: 0,
            },
        );
    }
    all
}

/// Given/when/then over the pure aggregate.
#[derive(Debug, Clone)]
pub struct Given {
    /// The state folded from the given events.
    pub state: Workspace,
    /// Context for the next command.
    pub ctx: Context,
    sync_counter: u32,
}

/// Starts a scenario from past events.
pub fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let mut state = Workspace::new();
    for e in events {
        state.apply(&e);
    }
    Given {
        state,
        ctx: Context::command(t0(), Actor::Operator("test".into()), "test"),
        sync_counter: 0,
    }
}

impl Given {
    /// Applies more events.
    pub fn and(mut self, events: impl IntoIterator<Item = Event>) -> Self {
        for e in events {
            self.state.apply(&e);
        }
        self
    }

    /// Runs a command and applies its events (panics if refused): for building up state.
    pub fn and_command(mut self, command: Command) -> Self {
        let events = self.decide(command).expect("setup command refused");
        for e in &events {
            self.state.apply(e);
        }
        self
    }

    /// Runs a sync of `snapshot` and applies its events: for building up state.
    pub fn and_synced(self, snapshot: Snapshot) -> Self {
        let then = self.when_synced(snapshot);
        let mut g = then.given;
        for e in then.result.as_ref().expect("sync refused") {
            g.state.apply(e);
        }
        g
    }

    /// Advances the context's clock.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.ctx.now = now;
        self
    }

    fn decide(&mut self, command: Command) -> Result<Vec<Event>, DomainError> {
        if matches!(
            command,
            Command::ApplySnapshot { .. } | Command::RecordSyncFailure { .. }
        ) {
            self.sync_counter += 1;
            self.ctx.sync_id = Some(sync_id(self.sync_counter));
        } else {
            self.ctx.sync_id = None;
        }
        self.state.decide(command, &self.ctx)
    }

    /// Runs a command.
    pub fn when(mut self, command: Command) -> Then {
        let result = self.decide(command);
        Then {
            given: self,
            result,
        }
    }

    /// Runs a scheduled sync of `snapshot`.
    pub fn when_synced(self, snapshot: Snapshot) -> Then {
        let now = self.ctx.now;
        self.when(Command::ApplySnapshot {
            snapshot,
            trigger: SyncTrigger::Scheduled,
            started_at: now,
            confirm: None,
        })
    }
}

/// The outcome of `when`.
#[derive(Debug)]
pub struct Then {
    /// The scenario before the command.
    pub given: Given,
    /// What `decide` returned.
    pub result: Result<Vec<Event>, DomainError>,
}

impl Then {
    /// The events (panics if the command was refused).
    pub fn events(&self) -> &[Event] {
        self.result.as_ref().expect("command refused")
    }

    /// The error (panics if the command was accepted).
    pub fn error(&self) -> &DomainError {
        self.result.as_ref().expect_err("command accepted")
    }

    /// The state after applying the events.
    pub fn state(&self) -> Workspace {
        let mut s = self.given.state.clone();
        for e in self.events() {
            s.apply(e);
        }
        s
    }

    /// Events that change groups or memberships.
    pub fn group_events(&self) -> Vec<&Event> {
        self.events()
            .iter()
            .filter(|e| e.touches_groups())
            .collect()
    }

    /// Continues the scenario from the state after this step.
    pub fn then_given(self) -> Given {
        let state = self.state();
        Given {
            state,
            ctx: self.given.ctx,
            sync_counter: self.given.sync_counter,
        }
    }
}

/// A clock tests set by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// Starts at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }
    /// Moves forward.
    pub fn advance(&self, by: TimeDelta) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t += by;
    }
    /// Sets the time.
    pub fn set(&self, at: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sync ids 1, 2, 3, … (as `sync_id(n)`).
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl IdGenerator for SequentialIds {
    fn new_sync_id(&self) -> SyncId {
        sync_id(self.0.fetch_add(1, Ordering::SeqCst) as u32 + 1)
    }
}

/// A scripted MDM: serves a snapshot and device records, or a fault, as set.
#[derive(Debug)]
pub struct FakeMdm {
    provider: Provider,
    snapshot: Mutex<Snapshot>,
    records: Mutex<BTreeMap<String, Vec<MdmDeviceRecord>>>,
    fault: Mutex<Option<MdmError>>,
    /// How many snapshots were fetched.
    pub fetches: AtomicU64,
}

impl FakeMdm {
    /// A fake with an empty snapshot.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            snapshot: Mutex::new(Snapshot::new(provider)),
            records: Mutex::new(BTreeMap::new()),
            fault: Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }
    /// Serves this snapshot from now on.
    pub fn set_snapshot(&self, s: Snapshot) {
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
    }
    /// Fails every call with this error until cleared.
    pub fn set_fault(&self, e: Option<MdmError>) {
        *self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = e;
    }
    /// Adds a device record found by its serial.
    pub fn add_record(&self, r: MdmDeviceRecord) {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(r.serial_number.clone())
            .or_default()
            .push(r);
    }
    fn fault(&self) -> Result<(), MdmError> {
        match self
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl MdmClient for FakeMdm {
    fn provider(&self) -> Provider {
        self.provider
    }
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        self.fault()?;
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata: Capability::Yes,
            force_sync: Capability::Unknown,
            server_version: None,
        })
    }
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.fault()?;
        Ok(self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        self.fault()?;
        let records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(serials
            .iter()
            .filter_map(|s| records.get(s).map(|r| (s.clone(), r.clone())))
            .collect())
    }
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        Some(format!("https://mdm.example.test/devices/{device}"))
    }
    async fn force_sync(&self, _device: &MdmDeviceId) -> Result<(), MdmError> {
        self.fault()
    }
}
