//! The `Workspace` aggregate: one tenant's state, folded from its stream (`apply`), and the
//! decisions on it (`decide`). Both are pure: time, ids and the actor come in a [`Context`].

use crate::command::Command;
use crate::error::ErrorKind;
use crate::event::{
    Actor, Cause, ConnectionSettings, DetachReason, Event, EventEnvelope, EventMeta, GroupSource,
    HoldReason, MdmMetadata, MetadataClearedReason, SafetyThresholds, SyncReport, SyncTrigger,
};
use crate::ids::{DeviceId, GroupId, MdmDeviceId, MdmGroupId, SyncId, WorkspaceId};
use crate::provider::{Plan, Provider};
use crate::reconcile;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a decision needs from outside: the time, who acts, the sync it belongs to, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// Now, as the caller's clock says.
    pub now: DateTime<Utc>,
    /// Who or what acts (G12).
    pub actor: Actor,
    /// The sync, for sync commands.
    pub sync_id: Option<SyncId>,
    /// Why.
    pub cause: Cause,
}

impl Context {
    /// A context for a user command.
    pub fn command(now: DateTime<Utc>, actor: Actor, command: &str) -> Self {
        Self {
            now,
            actor,
            sync_id: None,
            cause: Cause::Command {
                command: command.to_owned(),
            },
        }
    }

    /// A context for a sync.
    pub fn sync(now: DateTime<Utc>, actor: Actor, sync_id: SyncId, trigger: SyncTrigger) -> Self {
        Self {
            now,
            actor,
            sync_id: Some(sync_id),
            cause: Cause::Sync { trigger },
        }
    }

    /// The metadata events decided in this context carry.
    pub fn meta(&self) -> EventMeta {
        EventMeta {
            recorded_at: self.now,
            actor: self.actor.clone(),
            sync_id: self.sync_id,
            cause: self.cause.clone(),
        }
    }

    /// Wraps decided events in envelopes for `workspace`'s stream.
    pub fn envelopes(&self, workspace: WorkspaceId, events: Vec<Event>) -> Vec<EventEnvelope> {
        let meta = self.meta();
        events
            .into_iter()
            .map(|event| EventEnvelope {
                workspace,
                meta: meta.clone(),
                event,
            })
            .collect()
    }
}

/// A rule forbids the command. Each message says what to do instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The workspace does not exist yet.
    #[error("the workspace does not exist; create it first")]
    NoWorkspace,
    /// The workspace exists already.
    #[error("the workspace exists already")]
    WorkspaceExists,
    /// No such group.
    #[error("no group {0} in this workspace; list groups to find its id")]
    GroupNotFound(GroupId),
    /// No such device.
    #[error("no device {0} in this workspace; register or import it first")]
    DeviceNotFound(DeviceId),
    /// A device with this id exists.
    #[error("device {0} is registered already")]
    DeviceExists(DeviceId),
    /// A group with this id exists.
    #[error("group id {0} is taken")]
    GroupExists(GroupId),
    /// G5: synced groups' names and members are read-only.
    #[error("group {name:?} is managed by {}: its name and members follow the MDM; edit them there, or delete the group here (its policies stay editable)", provider.display_name())]
    ManagedByProvider {
        /// The group's name.
        name: String,
        /// The provider managing it.
        provider: Provider,
    },
    /// Names are unique per workspace (case-insensitively, trimmed).
    #[error("the name {name:?} is taken by another group; choose another")]
    NameTaken {
        /// The name asked for.
        name: String,
    },
    /// Blank names are refused.
    #[error("a name cannot be blank")]
    BlankName,
    /// No MDM is connected.
    #[error("no MDM is connected to this workspace; connect one first")]
    NotConnected,
    /// G1: the plan does not sync groups.
    #[error("the {0} plan does not sync groups; upgrade to Pro or Enterprise")]
    PlanDoesNotSyncGroups(Plan),
    /// The snapshot is of another provider than the one connected.
    #[error("the snapshot is from {snapshot} but the workspace is connected to {connected}")]
    ProviderMismatch {
        /// The connected provider.
        connected: Provider,
        /// The snapshot's provider.
        snapshot: Provider,
    },
    /// G6: only excluded MDM groups can be included again.
    #[error("MDM group {0} is not excluded; nothing to include")]
    NotExcluded(MdmGroupId),
    /// G11: the sync to confirm is not the one held.
    #[error("sync {requested} is not held (held now: {held}); run `status` to see the held sync")]
    NotHeld {
        /// The sync asked to confirm.
        requested: SyncId,
        /// The sync held now, if any.
        held: String,
    },
    /// A sync command without a sync id in its context.
    #[error("a sync command needs a sync id in its context")]
    MissingSyncId,
}

/// The workspace's MDM connection (no secrets: those live in the vault).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// The provider.
    pub provider: Provider,
    /// Non-secret settings.
    pub settings: ConnectionSettings,
}

/// A device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Serial number, if any (M6).
    pub serial_number: Option<String>,
    /// Name in the product.
    pub name: Option<String>,
    /// MDM metadata (M1), if fetched and found.
    pub metadata: Option<MdmMetadata>,
    /// When the MDM was last asked about this device (M2); `None` = never, or cleared (C4).
    pub metadata_checked_at: Option<DateTime<Utc>>,
    /// Other MDM records with the same serial at the last fetch (M6).
    pub ambiguous_candidates: u32,
}

/// A device group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Display name (unique per workspace, G4).
    pub name: String,
    /// Manual or synced.
    pub source: GroupSource,
    /// For synced groups: the MDM name last seen (G2 renames compare against it).
    pub mdm_name: Option<String>,
    /// Members.
    pub members: BTreeSet<DeviceId>,
    /// Policies and settings: opaque key → JSON value.
    pub policies: BTreeMap<String, serde_json::Value>,
}

impl Group {
    /// The provider and MDM id, for synced groups.
    pub fn synced_key(&self) -> Option<(Provider, &MdmGroupId)> {
        match &self.source {
            GroupSource::Synced {
                provider,
                mdm_group_id,
            } => Some((*provider, mdm_group_id)),
            GroupSource::Manual => None,
        }
    }
}

/// How a sync ended, for status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcomeKind {
    /// Applied.
    Succeeded,
    /// Failed (G8).
    Failed,
    /// Held (G11).
    Held,
}

/// The last sync, for status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastSync {
    /// Its id.
    pub sync_id: SyncId,
    /// Its trigger.
    pub trigger: SyncTrigger,
    /// When it started (T2 counts from here).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: SyncOutcomeKind,
}

/// The last failure, shown until the next successful sync (G8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastFailure {
    /// The failed sync.
    pub sync_id: SyncId,
    /// E1 kind.
    pub kind: ErrorKind,
    /// Message.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A sync waiting for an operator's confirmation (G11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldSync {
    /// The held sync.
    pub sync_id: SyncId,
    /// Why it was held.
    pub reason: HoldReason,
    /// Digest of its snapshot.
    pub snapshot_digest: String,
}

/// One workspace's state, folded from its events.
#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub(crate) id: Option<WorkspaceId>,
    pub(crate) name: String,
    pub(crate) plan: Plan,
    pub(crate) connection: Option<Connection>,
    pub(crate) thresholds: SafetyThresholds,
    pub(crate) devices: BTreeMap<DeviceId, Device>,
    pub(crate) by_mdm_device: HashMap<MdmDeviceId, DeviceSet>,
    pub(crate) groups: BTreeMap<GroupId, Group>,
    pub(crate) synced: HashMap<(Provider, MdmGroupId), GroupId>,
    pub(crate) names: HashMap<String, GroupId>,
    pub(crate) excluded: BTreeSet<(Provider, MdmGroupId)>,
    pub(crate) last_sync: Option<LastSync>,
    pub(crate) last_success: Option<LastSync>,
    pub(crate) last_failure: Option<LastFailure>,
    pub(crate) held: Option<HeldSync>,
    pub(crate) consecutive_failures: u32,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// The devices one MDM device id matches (G3). Almost always one, kept inline: reconciling
/// 500,000 memberships looks this up 500,000 times, and a heap node per entry would be one more
/// cache miss each time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DeviceSet {
    /// One device (the usual case).
    One(DeviceId),
    /// Several devices with one MDM id (duplicate serials, M6): sorted, at least two.
    Many(Vec<DeviceId>),
}

impl DeviceSet {
    pub(crate) fn as_slice(&self) -> &[DeviceId] {
        match self {
            DeviceSet::One(d) => std::slice::from_ref(d),
            DeviceSet::Many(v) => v,
        }
    }

    fn insert(&mut self, d: DeviceId) {
        match self {
            DeviceSet::One(one) if *one == d => {}
            DeviceSet::One(one) => {
                let mut v = vec![*one, d];
                v.sort_unstable();
                *self = DeviceSet::Many(v);
            }
            DeviceSet::Many(v) => {
                if let Err(at) = v.binary_search(&d) {
                    v.insert(at, d);
                }
            }
        }
    }

    /// Removes `d`; true if nothing is left.
    fn remove(&mut self, d: DeviceId) -> bool {
        match self {
            DeviceSet::One(one) => *one == d,
            // At least two before, so at least one after.
            DeviceSet::Many(v) => {
                v.retain(|x| *x != d);
                if let [last] = v.as_slice() {
                    *self = DeviceSet::One(*last);
                }
                false
            }
        }
    }
}

/// G4's comparison key: trimmed, case-insensitive.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Workspace {
    /// The state before any event.
    pub fn new() -> Self {
        Self {
            id: None,
            name: String::new(),
            plan: Plan::Free,
            connection: None,
            thresholds: SafetyThresholds::default(),
            devices: BTreeMap::new(),
            by_mdm_device: HashMap::new(),
            groups: BTreeMap::new(),
            synced: HashMap::new(),
            names: HashMap::new(),
            excluded: BTreeSet::new(),
            last_sync: None,
            last_success: None,
            last_failure: None,
            held: None,
            consecutive_failures: 0,
        }
    }

    /// Folds events into a fresh state.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut ws = Self::new();
        for e in events {
            ws.apply(e);
        }
        ws
    }

    /// The workspace id, once created.
    pub fn id(&self) -> Option<WorkspaceId> {
        self.id
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its plan.
    pub fn plan(&self) -> Plan {
        self.plan
    }
    /// Its MDM connection.
    pub fn connection(&self) -> Option<&Connection> {
        self.connection.as_ref()
    }
    /// The G11 thresholds.
    pub fn thresholds(&self) -> &SafetyThresholds {
        &self.thresholds
    }
    /// Devices by id.
    pub fn devices(&self) -> &BTreeMap<DeviceId, Device> {
        &self.devices
    }
    /// Groups by id.
    pub fn groups(&self) -> &BTreeMap<GroupId, Group> {
        &self.groups
    }
    /// One group.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(&id)
    }
    /// The group synced from `(provider, mdm_group_id)`, if any.
    pub fn synced_group(&self, provider: Provider, mdm_group_id: &MdmGroupId) -> Option<GroupId> {
        self.synced.get(&(provider, mdm_group_id.clone())).copied()
    }
    /// The group with this name (G4 comparison), if any.
    pub fn group_named(&self, name: &str) -> Option<GroupId> {
        self.names.get(&name_key(name)).copied()
    }
    /// MDM groups excluded from syncs (G6).
    pub fn excluded(&self) -> &BTreeSet<(Provider, MdmGroupId)> {
        &self.excluded
    }
    /// Devices whose metadata carries this MDM device id (G3).
    pub fn devices_with_mdm_id(&self, id: &MdmDeviceId) -> &[DeviceId] {
        self.by_mdm_device.get(id).map_or(&[], DeviceSet::as_slice)
    }
    /// The last sync, whatever its outcome.
    pub fn last_sync(&self) -> Option<&LastSync> {
        self.last_sync.as_ref()
    }
    /// The last successful sync.
    pub fn last_success(&self) -> Option<&LastSync> {
        self.last_success.as_ref()
    }
    /// The last failure, until the next success (G8).
    pub fn last_failure(&self) -> Option<&LastFailure> {
        self.last_failure.as_ref()
    }
    /// The held sync awaiting confirmation (G11).
    pub fn held(&self) -> Option<&HeldSync> {
        self.held.as_ref()
    }
    /// Failed syncs since the last success (drives the scheduler's backoff).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Evolves the state by one event. Never fails: events are facts.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::WorkspaceCreated {
                workspace_id,
                name,
                plan,
            } => {
                self.id = Some(*workspace_id);
                self.name = name.clone();
                self.plan = *plan;
            }
            Event::PlanChanged { to, .. } => self.plan = *to,
            Event::ProviderConnected {
                provider, settings, ..
            } => {
                self.connection = Some(Connection {
                    provider: *provider,
                    settings: settings.clone(),
                });
                self.held = None;
            }
            Event::CredentialsChanged { provider, settings } => {
                self.connection = Some(Connection {
                    provider: *provider,
                    settings: settings.clone(),
                });
            }
            Event::ProviderDisconnected { .. } => {
                self.connection = None;
                self.held = None;
            }
            Event::SafetyThresholdsChanged { thresholds } => self.thresholds = thresholds.clone(),
            Event::DeviceRegistered {
                device_id,
                serial_number,
                name,
            } => {
                self.devices.insert(
                    *device_id,
                    Device {
                        serial_number: serial_number.clone(),
                        name: name.clone(),
                        metadata: None,
                        metadata_checked_at: None,
                        ambiguous_candidates: 0,
                    },
                );
            }
            Event::DeviceMetadataRecorded {
                device_id,
                metadata,
                fetched_at,
                ambiguous_candidates,
            } => {
                self.unindex_device(*device_id);
                if let Some(d) = self.devices.get_mut(device_id) {
                    d.metadata = Some((**metadata).clone());
                    d.metadata_checked_at = Some(*fetched_at);
                    d.ambiguous_candidates = *ambiguous_candidates;
                    match self.by_mdm_device.entry(metadata.mdm_device_id.clone()) {
                        Entry::Occupied(mut set) => set.get_mut().insert(*device_id),
                        Entry::Vacant(slot) => {
                            slot.insert(DeviceSet::One(*device_id));
                        }
                    }
                }
            }
            Event::DeviceMetadataCleared {
                device_id,
                checked_at,
                ..
            } => {
                self.unindex_device(*device_id);
                if let Some(d) = self.devices.get_mut(device_id) {
                    d.metadata = None;
                    d.metadata_checked_at = *checked_at;
                    d.ambiguous_candidates = 0;
                }
            }
            Event::GroupCreated {
                group_id,
                name,
                source,
                mdm_name,
            } => {
                if let GroupSource::Synced {
                    provider,
                    mdm_group_id,
                } = source
                {
                    self.synced
                        .insert((*provider, mdm_group_id.clone()), *group_id);
                }
                self.names.insert(name_key(name), *group_id);
                self.groups.insert(
                    *group_id,
                    Group {
                        name: name.clone(),
                        source: source.clone(),
                        mdm_name: mdm_name.clone(),
                        members: BTreeSet::new(),
                        policies: BTreeMap::new(),
                    },
                );
            }
            Event::GroupRenamed {
                group_id,
                to,
                mdm_name,
                ..
            } => {
                if let Some(g) = self.groups.get_mut(group_id) {
                    let old = name_key(&g.name);
                    if self.names.get(&old) == Some(group_id) {
                        self.names.remove(&old);
                    }
                    g.name = to.clone();
                    if mdm_name.is_some() {
                        g.mdm_name = mdm_name.clone();
                    }
                    self.names.insert(name_key(to), *group_id);
                }
            }
            Event::GroupDetached {
                group_id,
                provider,
                mdm_group_id,
                ..
            } => {
                let key = (*provider, mdm_group_id.clone());
                if self.synced.get(&key) == Some(group_id) {
                    self.synced.remove(&key);
                }
                if let Some(g) = self.groups.get_mut(group_id) {
                    g.source = GroupSource::Manual;
                    g.mdm_name = None;
                }
            }
            Event::GroupDeleted { group_id, .. } => {
                if let Some(g) = self.groups.remove(group_id) {
                    let key = name_key(&g.name);
                    if self.names.get(&key) == Some(group_id) {
                        self.names.remove(&key);
                    }
                    if let GroupSource::Synced {
                        provider,
                        mdm_group_id,
                    } = g.source
                    {
                        let key = (provider, mdm_group_id);
                        if self.synced.get(&key) == Some(group_id) {
                            self.synced.remove(&key);
                        }
                    }
                }
            }
            Event::GroupExcluded {
                provider,
                mdm_group_id,
            } => {
                self.excluded.insert((*provider, mdm_group_id.clone()));
            }
            Event::GroupIncluded {
                provider,
                mdm_group_id,
            } => {
                self.excluded.remove(&(*provider, mdm_group_id.clone()));
            }
            Event::MemberAdded {
                group_id,
                device_id,
                ..
            } => {
                if let Some(g) = self.groups.get_mut(group_id) {
                    g.members.insert(*device_id);
                }
            }
            Event::MemberRemoved {
                group_id,
                device_id,
            } => {
                if let Some(g) = self.groups.get_mut(group_id) {
                    g.members.remove(device_id);
                }
            }
            Event::GroupPolicySet {
                group_id,
                key,
                value,
            } => {
                if let Some(g) = self.groups.get_mut(group_id) {
                    match value {
                        Some(v) => {
                            g.policies.insert(key.clone(), v.clone());
                        }
                        None => {
                            g.policies.remove(key);
                        }
                    }
                }
            }
            Event::SyncSucceeded {
                sync_id,
                trigger,
                started_at,
                finished_at,
                ..
            } => {
                let last = LastSync {
                    sync_id: *sync_id,
                    trigger: *trigger,
                    started_at: *started_at,
                    finished_at: *finished_at,
                    outcome: SyncOutcomeKind::Succeeded,
                };
                self.last_success = Some(last.clone());
                self.last_sync = Some(last);
                self.last_failure = None;
                self.held = None;
                self.consecutive_failures = 0;
            }
            Event::SyncFailed {
                sync_id,
                trigger,
                started_at,
                finished_at,
                kind,
                message,
            } => {
                self.last_sync = Some(LastSync {
                    sync_id: *sync_id,
                    trigger: *trigger,
                    started_at: *started_at,
                    finished_at: *finished_at,
                    outcome: SyncOutcomeKind::Failed,
                });
                self.last_failure = Some(LastFailure {
                    sync_id: *sync_id,
                    kind: *kind,
                    message: message.clone(),
                    at: *finished_at,
                });
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            }
            Event::SyncHeld {
                sync_id,
                trigger,
                started_at,
                finished_at,
                reason,
                snapshot_digest,
                ..
            } => {
                self.last_sync = Some(LastSync {
                    sync_id: *sync_id,
                    trigger: *trigger,
                    started_at: *started_at,
                    finished_at: *finished_at,
                    outcome: SyncOutcomeKind::Held,
                });
                self.held = Some(HeldSync {
                    sync_id: *sync_id,
                    reason: reason.clone(),
                    snapshot_digest: snapshot_digest.clone(),
                });
            }
            Event::SyncConfirmed { .. } => self.held = None,
        }
    }

    fn unindex_device(&mut self, device_id: DeviceId) {
        let Some(old) = self
            .devices
            .get(&device_id)
            .and_then(|d| d.metadata.as_ref())
        else {
            return;
        };
        if let Some(set) = self.by_mdm_device.get_mut(&old.mdm_device_id) {
            if set.remove(device_id) {
                self.by_mdm_device.remove(&old.mdm_device_id);
            }
        }
    }

    fn require_created(&self) -> Result<WorkspaceId, DomainError> {
        self.id.ok_or(DomainError::NoWorkspace)
    }

    fn check_name_free(&self, name: &str, except: Option<GroupId>) -> Result<String, DomainError> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(DomainError::BlankName);
        }
        match self.names.get(&name_key(trimmed)) {
            Some(owner) if Some(*owner) != except => Err(DomainError::NameTaken {
                name: trimmed.to_owned(),
            }),
            _ => Ok(trimmed.to_owned()),
        }
    }

    fn manual_group(&self, id: GroupId) -> Result<&Group, DomainError> {
        let g = self.groups.get(&id).ok_or(DomainError::GroupNotFound(id))?;
        match &g.source {
            GroupSource::Manual => Ok(g),
            GroupSource::Synced { provider, .. } => Err(DomainError::ManagedByProvider {
                name: g.name.clone(),
                provider: *provider,
            }),
        }
    }

    /// Events that detach every synced group and clear every device's metadata, for a change of
    /// provider (decision 0005) or credentials (C4).
    fn connection_change_events(&self, detach: bool, reason: MetadataClearedReason) -> Vec<Event> {
        let mut events = Vec::new();
        if detach {
            for (gid, g) in &self.groups {
                if let Some((provider, mdm_group_id)) = g.synced_key() {
                    events.push(Event::GroupDetached {
                        group_id: *gid,
                        provider,
                        mdm_group_id: mdm_group_id.clone(),
                        reason: DetachReason::ProviderChanged,
                    });
                }
            }
        }
        for (did, d) in &self.devices {
            if d.metadata.is_some() || d.metadata_checked_at.is_some() {
                events.push(Event::DeviceMetadataCleared {
                    device_id: *did,
                    reason,
                    checked_at: None,
                });
            }
        }
        events
    }

    /// Decides what a command changes, as events; nothing is changed here. An empty vector
    /// means the command is already satisfied (commands are idempotent where they can be).
    pub fn decide(&self, command: Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
        if !matches!(command, Command::CreateWorkspace { .. }) {
            self.require_created()?;
        }
        match command {
            Command::CreateWorkspace {
                workspace_id,
                name,
                plan,
            } => {
                if self.id.is_some() {
                    return Err(DomainError::WorkspaceExists);
                }
                let name = name.trim().to_owned();
                if name.is_empty() {
                    return Err(DomainError::BlankName);
                }
                Ok(vec![Event::WorkspaceCreated {
                    workspace_id,
                    name,
                    plan,
                }])
            }
            Command::SetPlan { plan } => Ok(if plan == self.plan {
                vec![]
            } else {
                vec![Event::PlanChanged {
                    from: self.plan,
                    to: plan,
                }]
            }),
            Command::Connect { provider, settings } => {
                let previous = self.connection.as_ref().map(|c| c.provider);
                let mut events = if previous == Some(provider) {
                    vec![Event::CredentialsChanged { provider, settings }]
                } else {
                    vec![Event::ProviderConnected {
                        provider,
                        previous,
                        settings,
                    }]
                };
                let detach = previous.is_some_and(|p| p != provider);
                events.extend(
                    self.connection_change_events(
                        detach,
                        MetadataClearedReason::CredentialsChanged,
                    ),
                );
                Ok(events)
            }
            Command::Disconnect => {
                let Some(conn) = &self.connection else {
                    return Ok(vec![]);
                };
                let mut events = vec![Event::ProviderDisconnected {
                    provider: conn.provider,
                }];
                events.extend(
                    self.connection_change_events(true, MetadataClearedReason::Disconnected),
                );
                Ok(events)
            }
            Command::SetSafetyThresholds { thresholds } => Ok(if thresholds == self.thresholds {
                vec![]
            } else {
                vec![Event::SafetyThresholdsChanged { thresholds }]
            }),
            Command::RegisterDevice {
                device_id,
                serial_number,
                name,
            } => {
                if self.devices.contains_key(&device_id) {
                    return Err(DomainError::DeviceExists(device_id));
                }
                let clean =
                    |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
                Ok(vec![Event::DeviceRegistered {
                    device_id,
                    serial_number: clean(serial_number),
                    name: clean(name),
                }])
            }
            Command::RecordDeviceMetadata {
                device_id,
                metadata,
                ambiguous_candidates,
            } => {
                if !self.devices.contains_key(&device_id) {
                    return Err(DomainError::DeviceNotFound(device_id));
                }
                Ok(match metadata {
                    Some(metadata) => vec![Event::DeviceMetadataRecorded {
                        device_id,
                        metadata: Box::new(metadata),
                        fetched_at: ctx.now,
                        ambiguous_candidates,
                    }],
                    // Not in the MDM: recorded with the time asked, so M2 waits a day again.
                    None => vec![Event::DeviceMetadataCleared {
                        device_id,
                        reason: MetadataClearedReason::NotFoundInMdm,
                        checked_at: Some(ctx.now),
                    }],
                })
            }
            Command::CreateGroup { group_id, name } => {
                if self.groups.contains_key(&group_id) {
                    return Err(DomainError::GroupExists(group_id));
                }
                let name = self.check_name_free(&name, None)?;
                Ok(vec![Event::GroupCreated {
                    group_id,
                    name,
                    source: GroupSource::Manual,
                    mdm_name: None,
                }])
            }
            Command::RenameGroup { group_id, name } => {
                let g = self.manual_group(group_id)?;
                let name = self.check_name_free(&name, Some(group_id))?;
                Ok(if name == g.name {
                    vec![]
                } else {
                    vec![Event::GroupRenamed {
                        group_id,
                        from: g.name.clone(),
                        to: name,
                        mdm_name: None,
                    }]
                })
            }
            Command::DeleteGroup { group_id } => {
                let g = self
                    .groups
                    .get(&group_id)
                    .ok_or(DomainError::GroupNotFound(group_id))?;
                let mut events = vec![Event::GroupDeleted {
                    group_id,
                    name: g.name.clone(),
                }];
                if let Some((provider, mdm_group_id)) = g.synced_key() {
                    events.push(Event::GroupExcluded {
                        provider,
                        mdm_group_id: mdm_group_id.clone(),
                    });
                }
                Ok(events)
            }
            Command::AddMembers {
                group_id,
                device_ids,
            } => {
                let g = self.manual_group(group_id)?;
                let mut events = Vec::new();
                let mut seen = BTreeSet::new();
                for device_id in device_ids {
                    if !self.devices.contains_key(&device_id) {
                        return Err(DomainError::DeviceNotFound(device_id));
                    }
                    if !g.members.contains(&device_id) && seen.insert(device_id) {
                        events.push(Event::MemberAdded {
                            group_id,
                            device_id,
                            via: None,
                        });
                    }
                }
                Ok(events)
            }
            Command::RemoveMembers {
                group_id,
                device_ids,
            } => {
                let g = self.manual_group(group_id)?;
                let mut seen = BTreeSet::new();
                Ok(device_ids
                    .into_iter()
                    .filter(|d| g.members.contains(d) && seen.insert(*d))
                    .map(|device_id| Event::MemberRemoved {
                        group_id,
                        device_id,
                    })
                    .collect())
            }
            Command::SetPolicy {
                group_id,
                key,
                value,
            } => {
                let g = self
                    .groups
                    .get(&group_id)
                    .ok_or(DomainError::GroupNotFound(group_id))?;
                Ok(if g.policies.get(&key) == value.as_ref() {
                    vec![]
                } else {
                    vec![Event::GroupPolicySet {
                        group_id,
                        key,
                        value,
                    }]
                })
            }
            Command::IncludeGroup { mdm_group_id } => {
                let provider = self
                    .connection
                    .as_ref()
                    .ok_or(DomainError::NotConnected)?
                    .provider;
                if !self.excluded.contains(&(provider, mdm_group_id.clone())) {
                    return Err(DomainError::NotExcluded(mdm_group_id));
                }
                Ok(vec![Event::GroupIncluded {
                    provider,
                    mdm_group_id,
                }])
            }
            Command::ApplySnapshot {
                snapshot,
                trigger,
                started_at,
                confirm,
            } => {
                let sync_id = ctx.sync_id.ok_or(DomainError::MissingSyncId)?;
                Ok(reconcile::plan_sync(
                    self, &snapshot, sync_id, trigger, started_at, confirm, ctx.now,
                )?
                .events)
            }
            Command::RecordSyncFailure {
                trigger,
                started_at,
                kind,
                message,
            } => {
                let sync_id = ctx.sync_id.ok_or(DomainError::MissingSyncId)?;
                Ok(vec![Event::SyncFailed {
                    sync_id,
                    trigger,
                    started_at,
                    finished_at: ctx.now,
                    kind,
                    message,
                }])
            }
        }
    }

    /// Synced groups and their member counts, for G11.
    pub(crate) fn synced_groups(&self) -> impl Iterator<Item = (GroupId, &Group)> {
        self.groups
            .iter()
            .filter(|(_, g)| g.synced_key().is_some())
            .map(|(id, g)| (*id, g))
    }

    /// The connected provider, or why there is none.
    pub(crate) fn require_sync_allowed(&self, provider: Provider) -> Result<(), DomainError> {
        let conn = self.connection.as_ref().ok_or(DomainError::NotConnected)?;
        if !self.plan.syncs_groups() {
            return Err(DomainError::PlanDoesNotSyncGroups(self.plan));
        }
        if conn.provider != provider {
            return Err(DomainError::ProviderMismatch {
                connected: conn.provider,
                snapshot: provider,
            });
        }
        Ok(())
    }

    /// The report inside a sync's last event (`SyncSucceeded` or `SyncHeld`), if there is one.
    pub fn preview_report(&self, events: &[Event]) -> Option<SyncReport> {
        events.iter().rev().find_map(|e| match e {
            Event::SyncSucceeded { report, .. } | Event::SyncHeld { report, .. } => {
                Some((**report).clone())
            }
            _ => None,
        })
    }
}
