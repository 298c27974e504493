//! Commands: what users, operators and syncs ask of a workspace. `Workspace::decide` turns one
//! into events or refuses it with a `DomainError`.

use crate::error::ErrorKind;
use crate::event::{ConnectionSettings, MdmMetadata, SafetyThresholds, SyncTrigger};
use crate::ids::{DeviceId, GroupId, MdmGroupId, SyncId, WorkspaceId};
use crate::provider::{Plan, Provider};
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};

/// A request to change a workspace.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Create the workspace (first event of its stream).
    CreateWorkspace {
        /// The id, chosen by the caller.
        workspace_id: WorkspaceId,
        /// Its name.
        name: String,
        /// Its plan.
        plan: Plan,
    },
    /// Change the plan (G1, M5).
    SetPlan {
        /// The new plan.
        plan: Plan,
    },
    /// Set or change the provider, or replace credentials. Only after the C1 test call passed;
    /// the secret itself goes to the vault, never into an event (C2).
    Connect {
        /// The provider.
        provider: Provider,
        /// Non-secret settings.
        settings: ConnectionSettings,
    },
    /// Remove the MDM connection.
    Disconnect,
    /// Change the G11 thresholds.
    SetSafetyThresholds {
        /// The new thresholds.
        thresholds: SafetyThresholds,
    },
    /// Register a device.
    RegisterDevice {
        /// Its id, chosen by the caller.
        device_id: DeviceId,
        /// Serial number, if any.
        serial_number: Option<String>,
        /// Name, if any.
        name: Option<String>,
    },
    /// Record the result of an MDM look-up for a device (M1): found, or not found (`None`).
    RecordDeviceMetadata {
        /// The device.
        device_id: DeviceId,
        /// What was found; choose among duplicate serials with `metadata::choose_record` (M6).
        metadata: Option<MdmMetadata>,
        /// Other records with the same serial.
        ambiguous_candidates: u32,
    },
    /// Create a manual group.
    CreateGroup {
        /// Its id, chosen by the caller.
        group_id: GroupId,
        /// Its name (unique per workspace).
        name: String,
    },
    /// Rename a manual group (G5 refuses synced ones).
    RenameGroup {
        /// The group.
        group_id: GroupId,
        /// The new name.
        name: String,
    },
    /// Delete a group; a synced one is also excluded from later syncs (G6).
    DeleteGroup {
        /// The group.
        group_id: GroupId,
    },
    /// Add devices to a manual group (G5 refuses synced ones).
    AddMembers {
        /// The group.
        group_id: GroupId,
        /// The devices.
        device_ids: Vec<DeviceId>,
    },
    /// Remove devices from a manual group (G5 refuses synced ones).
    RemoveMembers {
        /// The group.
        group_id: GroupId,
        /// The devices.
        device_ids: Vec<DeviceId>,
    },
    /// Set (or, with `None`, remove) a policy/setting on any group (G5).
    SetPolicy {
        /// The group.
        group_id: GroupId,
        /// The key.
        key: String,
        /// The value.
        value: Option<serde_json::Value>,
    },
    /// Include an excluded MDM group again; the next sync creates it anew (G6).
    IncludeGroup {
        /// The MDM group (of the connected provider).
        mdm_group_id: MdmGroupId,
    },
    /// Reconcile a fetched snapshot (G2–G11). Needs a sync id in the context.
    ApplySnapshot {
        /// What the MDM returned.
        snapshot: Snapshot,
        /// What started the sync.
        trigger: SyncTrigger,
        /// When the sync started.
        started_at: DateTime<Utc>,
        /// The held sync an operator confirms (G11), if any.
        confirm: Option<SyncId>,
    },
    /// Record a failed fetch (G8). Needs a sync id in the context.
    RecordSyncFailure {
        /// What started the sync.
        trigger: SyncTrigger,
        /// When it started.
        started_at: DateTime<Utc>,
        /// E1 kind.
        kind: ErrorKind,
        /// The message (no secret).
        message: String,
    },
}

impl Command {
    /// A short snake-case name, recorded as the events' cause (G12).
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateWorkspace { .. } => "create_workspace",
            Command::SetPlan { .. } => "set_plan",
            Command::Connect { .. } => "connect",
            Command::Disconnect => "disconnect",
            Command::SetSafetyThresholds { .. } => "set_safety_thresholds",
            Command::RegisterDevice { .. } => "register_device",
            Command::RecordDeviceMetadata { .. } => "record_device_metadata",
            Command::CreateGroup { .. } => "create_group",
            Command::RenameGroup { .. } => "rename_group",
            Command::DeleteGroup { .. } => "delete_group",
            Command::AddMembers { .. } => "add_members",
            Command::RemoveMembers { .. } => "remove_members",
            Command::SetPolicy { .. } => "set_policy",
            Command::IncludeGroup { .. } => "include_group",
            Command::ApplySnapshot { .. } => "apply_snapshot",
            Command::RecordSyncFailure { .. } => "record_sync_failure",
        }
    }
}
