//! Domain events and the envelope every event travels in (G12). Events are facts: `apply`
//! never fails on them. Serialised with an explicit `type` tag; each type has a schema version
//! ([`Event::schema_version`]) that stores record next to the payload, so old payloads can be
//! upcast when a type evolves.

use crate::error::ErrorKind;
use crate::ids::{DeviceId, GroupId, MdmDeviceId, MdmGroupId, MdmUserId, SyncId, WorkspaceId};
use crate::provider::{Plan, Provider};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who or what caused an event (G12).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// The daemon's scheduler (T1, T5).
    Scheduler,
    /// A person at the CLI or console, by name.
    Operator(String),
    /// A program calling the admin API or the library, by name.
    ApiCaller(String),
    /// The engine itself (follow-ups such as the sync after a provider change, C3).
    System,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Scheduler => f.write_str("scheduler"),
            Actor::Operator(n) => write!(f, "operator:{n}"),
            Actor::ApiCaller(n) => write!(f, "api:{n}"),
            Actor::System => f.write_str("system"),
        }
    }
}

/// What started a sync (T1–T3), or the operator's bypass of the cooldown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// T1: the 6-hourly schedule.
    Scheduled,
    /// T2: on demand, subject to the cooldown.
    Manual,
    /// An operator's explicit bypass of the T2 cooldown (`--force`), recorded as such.
    ForcedManual,
    /// T3: the provider was set or changed.
    ProviderChanged,
    /// G11: an operator confirmed a held sync.
    Confirmation,
}

/// Why an event happened, beyond who did it: the command or trigger behind it (G12).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// A user command, by its name (`create_group`).
    Command {
        /// The command's name.
        command: String,
    },
    /// A sync, started by this trigger.
    Sync {
        /// The trigger.
        trigger: SyncTrigger,
    },
    /// The confirmation of a held sync (G11).
    Confirmation {
        /// The sync that was held.
        held_sync: SyncId,
    },
    /// A metadata refresh (M1, M2).
    MetadataRefresh,
}

/// The metadata every stored event carries (G12).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// When the event was recorded (passed in, never read from a clock by the core).
    pub recorded_at: DateTime<Utc>,
    /// Who or what caused it.
    pub actor: Actor,
    /// The sync it belongs to, if any.
    pub sync_id: Option<SyncId>,
    /// Why it happened.
    pub cause: Cause,
}

/// An event and its metadata, ready to append to a workspace's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The stream (one per workspace).
    pub workspace: WorkspaceId,
    /// Metadata (G12).
    pub meta: EventMeta,
    /// The event.
    pub event: Event,
}

/// Position of an event in the whole log, across streams. Starts at 1; 0 means "before
/// everything".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Position(pub u64);

/// An event as read back from a store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global position.
    pub position: Position,
    /// Version within its stream: 1 for the first event.
    pub stream_version: u64,
    /// The event and its metadata.
    pub envelope: EventEnvelope,
}

/// MDM metadata of one device (M1), with its console link (M4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdmMetadata {
    /// The device's id in the MDM; group membership is matched by it (G3).
    pub mdm_device_id: MdmDeviceId,
    /// The assigned user's id, if a user is assigned.
    pub mdm_user_id: Option<MdmUserId>,
    /// The assigned user's name, else the device name.
    pub mdm_display_name: Option<String>,
    /// Link to the device in the MDM's web console (M4).
    pub console_url: Option<String>,
}

/// Why a device's metadata was cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataClearedReason {
    /// C4: credentials or provider changed; fetched again from the new provider.
    CredentialsChanged,
    /// The MDM has no record with the device's serial (M1).
    NotFoundInMdm,
    /// The workspace was disconnected from its MDM.
    Disconnected,
}

/// Why a synced group was detached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetachReason {
    /// G2: its MDM group is gone from the snapshot.
    GoneFromMdm,
    /// The workspace's provider changed or was disconnected; the link means nothing any more.
    ProviderChanged,
}

/// The source of a group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupSource {
    /// Made and edited by users.
    Manual,
    /// Mirrors an MDM group (G2); name and members are read-only (G5).
    Synced {
        /// The provider.
        provider: Provider,
        /// The MDM group's id.
        mdm_group_id: MdmGroupId,
    },
}

/// What a sync did or would do (the report of `SyncSucceeded` and `SyncHeld`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Groups created (G2).
    pub created: u64,
    /// Groups renamed (G2, G4).
    pub renamed: u64,
    /// Groups detached (G2).
    pub detached: u64,
    /// Memberships added (G3).
    pub members_added: u64,
    /// Memberships removed (G3).
    pub members_removed: u64,
    /// Distinct MDM device ids in the snapshot that match no device (G3).
    pub unmatched_members: u64,
    /// MDM groups skipped because an operator deleted them (G6).
    pub excluded: u64,
    /// Why the sync was held, if it was (G11).
    pub hold_reason: Option<HoldReason>,
}

/// G11: why a sync was held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldReason {
    /// The MDM returned no group while synced groups exist.
    EmptySnapshot {
        /// Synced groups that would all be detached.
        synced_groups: u64,
    },
    /// Too many synced groups would be detached.
    TooManyDetached {
        /// Would be detached.
        detached: u64,
        /// Synced groups now.
        synced_groups: u64,
    },
    /// Too many synced memberships would be removed.
    TooManyMembershipsRemoved {
        /// Would be removed.
        removed: u64,
        /// Synced memberships now.
        memberships: u64,
    },
    /// Too many members of one large group would be removed.
    TooManyRemovedFromGroup {
        /// The group.
        group_id: GroupId,
        /// Its name.
        name: String,
        /// Would be removed.
        removed: u64,
        /// Members now.
        members: u64,
    },
    /// An operator confirmed a held sync, but the MDM's answer has changed since: this is a new
    /// hold, to be confirmed on its own.
    SnapshotChangedSinceHold {
        /// The sync that was confirmed.
        held_sync: SyncId,
    },
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldReason::EmptySnapshot { synced_groups } => {
                write!(
                    f,
                    "the MDM returned no groups while {synced_groups} synced groups exist"
                )
            }
            HoldReason::TooManyDetached {
                detached,
                synced_groups,
            } => {
                write!(
                    f,
                    "would detach {detached} of {synced_groups} synced groups"
                )
            }
            HoldReason::TooManyMembershipsRemoved {
                removed,
                memberships,
            } => {
                write!(
                    f,
                    "would remove {removed} of {memberships} synced memberships"
                )
            }
            HoldReason::TooManyRemovedFromGroup {
                name,
                removed,
                members,
                ..
            } => {
                write!(
                    f,
                    "would remove {removed} of {members} members of group {name:?}"
                )
            }
            HoldReason::SnapshotChangedSinceHold { held_sync } => {
                write!(
                    f,
                    "the MDM's groups changed since sync {held_sync} was held"
                )
            }
        }
    }
}

/// G11 thresholds, configurable per workspace; on by default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SafetyThresholds {
    /// Whether the hold is active.
    pub enabled: bool,
    /// Hold if more than this fraction of synced groups would be detached…
    pub max_detached_ratio: f64,
    /// …when at least this many synced groups exist.
    pub min_groups: u64,
    /// Hold if more than this fraction of all synced memberships would be removed…
    pub max_removed_memberships_ratio: f64,
    /// …when at least this many synced memberships exist.
    pub min_memberships: u64,
    /// Hold if more than this fraction of one group's members would be removed…
    pub max_removed_from_group_ratio: f64,
    /// …for a group with at least this many members.
    pub min_group_size: u64,
}

impl Default for SafetyThresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            max_detached_ratio: 0.5,
            min_groups: 4,
            max_removed_memberships_ratio: 0.5,
            min_memberships: 100,
            max_removed_from_group_ratio: 0.3,
            min_group_size: 200,
        }
    }
}

/// Non-secret connection settings (P1). Credentials are never in an event (C2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    /// The tenant host or API base URL override.
    pub base_url: Option<String>,
    /// The token endpoint base override (Intune national clouds, tests).
    pub login_url: Option<String>,
}

/// Every domain event. See `docs/events.md` for when each is emitted and by which rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    // --- workspace ---
    /// A workspace was created.
    WorkspaceCreated {
        /// Its id (the stream id).
        workspace_id: WorkspaceId,
        /// Its name.
        name: String,
        /// Its plan.
        plan: Plan,
    },
    /// The plan changed (G1, M5).
    PlanChanged {
        /// Before.
        from: Plan,
        /// After.
        to: Plan,
    },
    /// A provider was set or changed (C1 passed; triggers a sync, C3).
    ProviderConnected {
        /// The provider.
        provider: Provider,
        /// The one before, if any.
        previous: Option<Provider>,
        /// Non-secret settings.
        settings: ConnectionSettings,
    },
    /// Credentials of the same provider were replaced (C1 passed; C4).
    CredentialsChanged {
        /// The provider.
        provider: Provider,
        /// Non-secret settings.
        settings: ConnectionSettings,
    },
    /// The MDM connection was removed.
    ProviderDisconnected {
        /// The provider it had.
        provider: Provider,
    },
    /// G11 thresholds changed.
    SafetyThresholdsChanged {
        /// The new thresholds.
        thresholds: SafetyThresholds,
    },

    // --- devices ---
    /// A device became known to the product.
    DeviceRegistered {
        /// Its id.
        device_id: DeviceId,
        /// Its serial number, if it has one (M6).
        serial_number: Option<String>,
        /// Its name in the product.
        name: Option<String>,
    },
    /// MDM metadata was fetched for a device (M1).
    DeviceMetadataRecorded {
        /// The device.
        device_id: DeviceId,
        /// What the MDM said (boxed: keeps `Event` small).
        metadata: Box<MdmMetadata>,
        /// When it was fetched (M2 counts from here).
        fetched_at: DateTime<Utc>,
        /// How many other MDM records had the same serial (M6); 0 if unambiguous.
        ambiguous_candidates: u32,
    },
    /// A device's MDM metadata was cleared.
    DeviceMetadataCleared {
        /// The device.
        device_id: DeviceId,
        /// Why.
        reason: MetadataClearedReason,
        /// When the MDM was asked, for a not-found result (M2 counts from here).
        checked_at: Option<DateTime<Utc>>,
    },

    // --- groups ---
    /// A group was created: by a user (manual) or by a sync (G2).
    GroupCreated {
        /// Its id.
        group_id: GroupId,
        /// Its name (after G4 for synced groups).
        name: String,
        /// Manual or synced.
        source: GroupSource,
        /// For synced groups: the MDM name it mirrors.
        mdm_name: Option<String>,
    },
    /// A group was renamed: by a user, or by a sync after the MDM name changed (G2, G4).
    GroupRenamed {
        /// The group.
        group_id: GroupId,
        /// Old name.
        from: String,
        /// New name.
        to: String,
        /// For synced groups: the new MDM name.
        mdm_name: Option<String>,
    },
    /// A synced group lost its MDM link and became manual, keeping name, members and
    /// policies (G2, G7).
    GroupDetached {
        /// The group.
        group_id: GroupId,
        /// The provider it was linked to.
        provider: Provider,
        /// The MDM group it mirrored.
        mdm_group_id: MdmGroupId,
        /// Why.
        reason: DetachReason,
    },
    /// A group was deleted by a user (G5, G6).
    GroupDeleted {
        /// The group.
        group_id: GroupId,
        /// Its name at the time.
        name: String,
    },
    /// An MDM group is excluded from later syncs because its synced group was deleted (G6).
    GroupExcluded {
        /// The provider.
        provider: Provider,
        /// The MDM group.
        mdm_group_id: MdmGroupId,
    },
    /// An operator included an excluded MDM group again; the next sync creates it (G6).
    GroupIncluded {
        /// The provider.
        provider: Provider,
        /// The MDM group.
        mdm_group_id: MdmGroupId,
    },
    /// A device joined a group: by a user, or by a sync (G3).
    MemberAdded {
        /// The group.
        group_id: GroupId,
        /// The device.
        device_id: DeviceId,
        /// For synced groups: the MDM device id that matched (G3, G12).
        via: Option<MdmDeviceId>,
    },
    /// A device left a group: by a user, or by a sync (G3).
    MemberRemoved {
        /// The group.
        group_id: GroupId,
        /// The device.
        device_id: DeviceId,
    },
    /// A policy/setting of a group was set or removed (G5: editable on every group).
    GroupPolicySet {
        /// The group.
        group_id: GroupId,
        /// The key.
        key: String,
        /// The value; `None` removes the key.
        value: Option<serde_json::Value>,
    },

    // --- syncs ---
    /// A sync applied a snapshot. Last of the sync's events (G10).
    SyncSucceeded {
        /// The sync.
        sync_id: SyncId,
        /// What started it.
        trigger: SyncTrigger,
        /// When it started (T2 counts from here).
        started_at: DateTime<Utc>,
        /// When it ended.
        finished_at: DateTime<Utc>,
        /// What it did (boxed: keeps `Event` small, 500,000 of them make one initial sync).
        report: Box<SyncReport>,
        /// Digest of the snapshot applied.
        snapshot_digest: String,
    },
    /// A sync failed; nothing else of it was appended (G8).
    SyncFailed {
        /// The sync.
        sync_id: SyncId,
        /// What started it.
        trigger: SyncTrigger,
        /// When it started.
        started_at: DateTime<Utc>,
        /// When it ended.
        finished_at: DateTime<Utc>,
        /// E1 kind.
        kind: ErrorKind,
        /// Provider, operation, status.
        message: String,
    },
    /// A sync was held by the safety thresholds; nothing else of it was appended (G11).
    SyncHeld {
        /// The sync.
        sync_id: SyncId,
        /// What started it.
        trigger: SyncTrigger,
        /// When it started.
        started_at: DateTime<Utc>,
        /// When it ended.
        finished_at: DateTime<Utc>,
        /// Why.
        reason: HoldReason,
        /// What it would have done (boxed, as in `SyncSucceeded`).
        report: Box<SyncReport>,
        /// Digest of the held snapshot; confirmation applies only this content.
        snapshot_digest: String,
    },
    /// An operator confirmed a held sync; its changes follow in the same batch (G11).
    SyncConfirmed {
        /// The sync that was held.
        held_sync_id: SyncId,
    },
}

impl Event {
    /// The type tag, as stored (`GroupCreated`).
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::WorkspaceCreated { .. } => "WorkspaceCreated",
            Event::PlanChanged { .. } => "PlanChanged",
            Event::ProviderConnected { .. } => "ProviderConnected",
            Event::CredentialsChanged { .. } => "CredentialsChanged",
            Event::ProviderDisconnected { .. } => "ProviderDisconnected",
            Event::SafetyThresholdsChanged { .. } => "SafetyThresholdsChanged",
            Event::DeviceRegistered { .. } => "DeviceRegistered",
            Event::DeviceMetadataRecorded { .. } => "DeviceMetadataRecorded",
            Event::DeviceMetadataCleared { .. } => "DeviceMetadataCleared",
            Event::GroupCreated { .. } => "GroupCreated",
            Event::GroupRenamed { .. } => "GroupRenamed",
            Event::GroupDetached { .. } => "GroupDetached",
            Event::GroupDeleted { .. } => "GroupDeleted",
            Event::GroupExcluded { .. } => "GroupExcluded",
            Event::GroupIncluded { .. } => "GroupIncluded",
            Event::MemberAdded { .. } => "MemberAdded",
            Event::MemberRemoved { .. } => "MemberRemoved",
            Event::GroupPolicySet { .. } => "GroupPolicySet",
            Event::SyncSucceeded { .. } => "SyncSucceeded",
            Event::SyncFailed { .. } => "SyncFailed",
            Event::SyncHeld { .. } => "SyncHeld",
            Event::SyncConfirmed { .. } => "SyncConfirmed",
        }
    }

    /// The current schema version of this event's payload. Stores record it; an upcaster
    /// turns older payloads into this one. Every type is at version 1 so far.
    pub fn schema_version(&self) -> u16 {
        1
    }

    /// Every event type name, for stores and golden-file tests.
    pub const TYPES: [&'static str; 22] = [
        "WorkspaceCreated",
        "PlanChanged",
        "ProviderConnected",
        "CredentialsChanged",
        "ProviderDisconnected",
        "SafetyThresholdsChanged",
        "DeviceRegistered",
        "DeviceMetadataRecorded",
        "DeviceMetadataCleared",
        "GroupCreated",
        "GroupRenamed",
        "GroupDetached",
        "GroupDeleted",
        "GroupExcluded",
        "GroupIncluded",
        "MemberAdded",
        "MemberRemoved",
        "GroupPolicySet",
        "SyncSucceeded",
        "SyncFailed",
        "SyncHeld",
        "SyncConfirmed",
    ];

    /// The payload alone (the `data` of the tagged form), for stores that keep the type in a
    /// column of its own.
    pub fn to_payload(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("data").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds an event from its type tag and a current-version payload.
    pub fn from_payload(
        event_type: &str,
        payload: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": payload }))
    }

    /// The payload as JSON text, without building a `serde_json::Value` (the fast path stores use).
    /// Equal to `to_payload().to_string()`.
    pub fn payload_json(&self) -> Result<String, serde_json::Error> {
        // Adjacently tagged, compact: `{"type":"<T>","data":<payload>}`; cut out `<payload>`.
        let tagged = serde_json::to_string(self)?;
        let prefix = "{\"type\":\"\",\"data\":".len() + self.event_type().len();
        Ok(tagged[prefix..tagged.len() - 1].to_owned())
    }

    /// Rebuilds an event from its type tag and a current-version payload given as JSON text.
    pub fn from_payload_str(event_type: &str, payload: &str) -> Result<Self, serde_json::Error> {
        let mut tagged = String::with_capacity(payload.len() + event_type.len() + 24);
        tagged.push_str("{\"type\":");
        tagged.push_str(&serde_json::to_string(event_type)?);
        tagged.push_str(",\"data\":");
        tagged.push_str(payload);
        tagged.push('}');
        serde_json::from_str(&tagged)
    }

    /// True for events that change groups or memberships (what G8, G9 and G11 talk about).
    pub fn touches_groups(&self) -> bool {
        matches!(
            self,
            Event::GroupCreated { .. }
                | Event::GroupRenamed { .. }
                | Event::GroupDetached { .. }
                | Event::GroupDeleted { .. }
                | Event::MemberAdded { .. }
                | Event::MemberRemoved { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_roundtrips_through_type_and_data() {
        let e = Event::MemberAdded {
            group_id: GroupId(uuid::Uuid::nil()),
            device_id: DeviceId(uuid::Uuid::nil()),
            via: Some("42".into()),
        };
        let payload = e.to_payload();
        assert_eq!(payload["via"], "42");
        assert_eq!(Event::from_payload(e.event_type(), payload).unwrap(), e);
        let tagged = serde_json::to_value(&e).unwrap();
        assert_eq!(tagged["type"], "MemberAdded");
        let text = e.payload_json().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            e.to_payload()
        );
        assert_eq!(Event::from_payload_str("MemberAdded", &text).unwrap(), e);
        assert!(Event::from_payload_str("MemberAdded", "{\"group_id\":1}").is_err());
    }
}
