//! Read models and audit queries: what the CLI and the hosts print. Every result type is
//! `Serialize`, so it can be printed as JSON as it is.

use crate::codec::{EVENT_COLUMNS, RowDecoder, parse_time};
use crate::error::{Error, Result};
use crate::projection::{DEFAULT_PLAN, opt_enum, opt_time};
use crate::upcast::Upcasters;
use chrono::{DateTime, Utc};
use mdmsync_core::workspace::{Device, Group, HeldSync, LastFailure, LastSync};
use mdmsync_core::{
    DeviceId, ErrorKind, GroupId, HoldReason, MdmGroupId, Plan, Position, Provider, SyncId,
    SyncTrigger, Workspace, WorkspaceId,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// A serde enum as stored in a text column (`pro`, `jamf`, `scheduled`).
pub(crate) fn enum_to_text<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Parses a text column written by [`enum_to_text`].
pub(crate) fn enum_from_text<T: DeserializeOwned>(s: &str) -> std::result::Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| format!("unknown value {s:?}: {e}"))
}

/// How a sync ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// Applied.
    Succeeded,
    /// Failed (G8).
    Failed,
    /// Held (G11).
    Held,
}

impl SyncOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Succeeded => "succeeded",
            SyncOutcome::Failed => "failed",
            SyncOutcome::Held => "held",
        }
    }

    fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "succeeded" => Ok(SyncOutcome::Succeeded),
            "failed" => Ok(SyncOutcome::Failed),
            "held" => Ok(SyncOutcome::Held),
            other => Err(format!("unknown sync outcome {other:?}")),
        }
    }
}

/// The last sync of a workspace, whatever its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastSyncRow {
    /// The sync.
    pub sync_id: SyncId,
    /// What started it.
    pub trigger: SyncTrigger,
    /// When it started (T2 counts from here).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: SyncOutcome,
}

/// The last successful sync.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastSuccessRow {
    /// The sync.
    pub sync_id: SyncId,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

/// The last failure, shown until the next success (G8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastFailureRow {
    /// The failed sync.
    pub sync_id: SyncId,
    /// E1 kind.
    pub kind: ErrorKind,
    /// Provider, operation, status.
    pub message: String,
    /// When it failed.
    pub at: DateTime<Utc>,
}

/// A sync waiting for an operator's confirmation (G11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldSyncRow {
    /// The held sync (pass it to the confirmation).
    pub sync_id: SyncId,
    /// Why, in words.
    pub reason: String,
    /// Why, structured.
    pub detail: HoldReason,
}

/// One workspace, as the `proj_workspaces` projection keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkspaceRow {
    /// The workspace (and stream) id.
    pub workspace_id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// The connected provider, if any.
    pub provider: Option<Provider>,
    /// The stream's version (events so far).
    pub stream_version: u64,
    /// The last sync.
    pub last_sync: Option<LastSyncRow>,
    /// The last successful sync.
    pub last_success: Option<LastSuccessRow>,
    /// The last failure, until the next success (G8).
    pub last_failure: Option<LastFailureRow>,
    /// The held sync (G11).
    pub held: Option<HeldSyncRow>,
    /// Whether the workspace syncs groups at all (G1 and a connection).
    pub sync_enabled: bool,
    /// T2: when the cooldown after the last sync ends (compare with now: a manual sync before
    /// it is refused). `None`: never synced.
    pub manual_allowed_at: Option<DateTime<Utc>>,
    /// T1: when the next automatic sync is due. `None` with `sync_enabled`: never synced, so
    /// due at once.
    pub next_scheduled_at: Option<DateTime<Utc>>,
    /// Failed syncs since the last success (the scheduler backs off by it).
    pub consecutive_failures: u32,
}

impl WorkspaceRow {
    pub(crate) fn empty(workspace_id: WorkspaceId) -> Self {
        Self {
            workspace_id,
            name: String::new(),
            plan: DEFAULT_PLAN,
            provider: None,
            stream_version: 0,
            last_sync: None,
            last_success: None,
            last_failure: None,
            held: None,
            sync_enabled: false,
            manual_allowed_at: None,
            next_scheduled_at: None,
            consecutive_failures: 0,
        }
    }

    /// T1: when the next automatic sync is due, as of `now` (`None`: never, G1 or no MDM).
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.sync_enabled
            .then(|| self.next_scheduled_at.unwrap_or(now))
    }

    /// T2: when a manual sync is allowed, as of `now` (`None`: now).
    pub fn manual_allowed(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.manual_allowed_at.filter(|t| *t > now)
    }
}

/// The columns of `proj_workspaces`, in the order [`workspace_from_row`] reads them.
pub(crate) const WORKSPACE_COLUMNS: &str = "workspace_id, name, plan, provider, stream_version, \
last_sync_id, last_sync_trigger, last_sync_started_at, last_sync_finished_at, last_sync_outcome, \
last_success_sync_id, last_success_at, last_failure_sync_id, last_failure_kind, \
last_failure_message, last_failure_at, held_sync_id, held_reason, held_reason_json, \
sync_enabled, manual_allowed_at, next_scheduled_at, consecutive_failures";

fn parse_id<T: std::str::FromStr>(s: &str) -> std::result::Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| format!("bad id {s:?}: {e}"))
}

/// Reads a `proj_workspaces` row selected with [`WORKSPACE_COLUMNS`].
pub(crate) fn workspace_from_row(
    r: &Row<'_>,
) -> rusqlite::Result<std::result::Result<WorkspaceRow, String>> {
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    let plan: String = r.get(2)?;
    let provider: Option<String> = r.get(3)?;
    let version: i64 = r.get(4)?;
    let cols: Vec<Option<String>> = (5..19).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
    let sync_enabled: bool = r.get(19)?;
    let manual: Option<String> = r.get(20)?;
    let next: Option<String> = r.get(21)?;
    let failures: i64 = r.get(22)?;
    Ok((|| {
        let c = |i: usize| cols[i - 5].clone();
        let last_sync = match (c(5), c(6), c(7), c(8), c(9)) {
            (Some(id), Some(trigger), Some(started), Some(finished), Some(outcome)) => {
                Some(LastSyncRow {
                    sync_id: parse_id(&id)?,
                    trigger: enum_from_text(&trigger)?,
                    started_at: parse_time(&started)?,
                    finished_at: parse_time(&finished)?,
                    outcome: SyncOutcome::parse(&outcome)?,
                })
            }
            _ => None,
        };
        let last_success = match (c(10), c(11)) {
            (Some(id), Some(at)) => Some(LastSuccessRow {
                sync_id: parse_id(&id)?,
                finished_at: parse_time(&at)?,
            }),
            _ => None,
        };
        let last_failure = match (c(12), c(13), c(14), c(15)) {
            (Some(id), Some(kind), Some(message), Some(at)) => Some(LastFailureRow {
                sync_id: parse_id(&id)?,
                kind: enum_from_text(&kind)?,
                message,
                at: parse_time(&at)?,
            }),
            _ => None,
        };
        let held = match (c(16), c(17), c(18)) {
            (Some(id), Some(reason), Some(json)) => Some(HeldSyncRow {
                sync_id: parse_id(&id)?,
                reason,
                detail: serde_json::from_str(&json).map_err(|e| format!("hold reason: {e}"))?,
            }),
            _ => None,
        };
        Ok(WorkspaceRow {
            workspace_id: parse_id(&id)?,
            name,
            plan: enum_from_text(&plan)?,
            provider: opt_enum(provider, "provider")?,
            stream_version: version as u64,
            last_sync,
            last_success,
            last_failure,
            held,
            sync_enabled,
            manual_allowed_at: opt_time(manual)?,
            next_scheduled_at: opt_time(next)?,
            consecutive_failures: failures.clamp(0, i64::from(u32::MAX)) as u32,
        })
    })())
}

/// Manual or synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Made and edited by users.
    Manual,
    /// Mirrors an MDM group (G2).
    Synced,
}

/// One group, as the `proj_groups` projection keeps it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupRow {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The group.
    pub group_id: GroupId,
    /// Its name.
    pub name: String,
    /// Manual or synced.
    pub source: SourceKind,
    /// For synced groups: the provider.
    pub provider: Option<Provider>,
    /// For synced groups: the MDM group id.
    pub mdm_group_id: Option<MdmGroupId>,
    /// For synced groups: the MDM name it mirrors.
    pub mdm_name: Option<String>,
    /// For synced groups: who manages name and members (G5), e.g. `Jamf`.
    pub managed_by: Option<String>,
    /// Policies and settings (a JSON object).
    pub policies: serde_json::Value,
    /// How many members it has.
    pub member_count: u64,
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberRow {
    /// The device.
    pub device_id: DeviceId,
    /// Its serial number, if the device is known and has one.
    pub serial_number: Option<String>,
    /// Its MDM display name (M1), if known.
    pub mdm_display_name: Option<String>,
    /// The MDM device id a sync matched it by (G3); `None` for manual additions.
    pub via: Option<String>,
}

/// A group with its members.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupWithMembers {
    /// The group.
    #[serde(flatten)]
    pub group: GroupRow,
    /// Its members, by device id.
    pub members: Vec<MemberRow>,
}

/// One device, as the `proj_devices` projection keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The device.
    pub device_id: DeviceId,
    /// Its serial number (M6: may be missing).
    pub serial_number: Option<String>,
    /// Its name in the product.
    pub name: Option<String>,
    /// Its id in the MDM (M1).
    pub mdm_device_id: Option<String>,
    /// The assigned user's id in the MDM.
    pub mdm_user_id: Option<String>,
    /// The MDM display name (M1).
    pub mdm_display_name: Option<String>,
    /// The device's page in the MDM console (M4).
    pub console_url: Option<String>,
    /// When the MDM was last asked about it (M2).
    pub metadata_checked_at: Option<DateTime<Utc>>,
    /// Other MDM records with the same serial (M6).
    pub ambiguous_candidates: u32,
}

/// Whose history to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistorySubject {
    /// Every event of the workspace.
    Workspace,
    /// Events that name this group.
    Group(GroupId),
    /// Events that name this device.
    Device(DeviceId),
}

/// One entry of a history (G12): what happened, when, by whom, in which sync.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Global position.
    pub position: u64,
    /// Version within the workspace's stream.
    pub stream_version: u64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The event type (`MemberAdded`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who or what caused it (`scheduler`, `operator:ada`).
    pub actor: String,
    /// The sync it belongs to.
    pub sync_id: Option<SyncId>,
    /// Why it happened (the command or trigger).
    pub cause: serde_json::Value,
    /// The payload, at the current schema version.
    pub data: serde_json::Value,
}

/// One stored event, for export: the columns as they are (payload at its stored version).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExportedEvent {
    /// Global position.
    pub position: u64,
    /// The workspace (stream).
    pub stream_id: String,
    /// Version within the stream.
    pub stream_version: u64,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload's schema version.
    pub event_version: u16,
    /// When it was recorded.
    pub recorded_at: String,
    /// Who or what caused it.
    pub actor: String,
    /// The sync it belongs to.
    pub sync_id: Option<String>,
    /// Why it happened.
    pub cause: serde_json::Value,
    /// The payload as stored.
    pub data: serde_json::Value,
}

/// Where to stop a replay (time travel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// Every event of the stream up to and including this global position.
    Position(Position),
    /// The stream's events recorded at or before this time (stopping at the first event
    /// recorded later, so the state is always a prefix of the stream).
    Time(DateTime<Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = Error;
    /// A number is a position; anything else must be an RFC 3339 time.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(p) = s.parse::<u64>() {
            return Ok(AsOf::Position(Position(p)));
        }
        parse_time(s).map(AsOf::Time).map_err(|e| {
            Error::Invalid(format!(
                "{e}; give a position (a number) or an RFC 3339 time such as 2026-01-01T12:00:00Z"
            ))
        })
    }
}

/// A workspace's state as of a point in its history.
#[derive(Clone, Debug)]
pub struct TimeTravel {
    /// The state folded from the stream's prefix.
    pub workspace: Workspace,
    /// The position of the last event folded (`None`: nothing).
    pub position: Option<Position>,
    /// The stream version reached.
    pub stream_version: u64,
    /// When the last event folded was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
}

/// A serialisable view of a [`TimeTravel`] state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateView {
    /// The workspace id (`None` if the prefix does not create it).
    pub workspace_id: Option<WorkspaceId>,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// The connected provider.
    pub provider: Option<Provider>,
    /// The position of the last event folded.
    pub position: Option<u64>,
    /// The stream version reached.
    pub stream_version: u64,
    /// When the last event folded was recorded.
    pub recorded_at: Option<DateTime<Utc>>,
    /// Groups, members included.
    pub groups: BTreeMap<GroupId, Group>,
    /// Devices.
    pub devices: BTreeMap<DeviceId, Device>,
    /// MDM groups excluded from syncs (G6).
    pub excluded: Vec<(Provider, MdmGroupId)>,
    /// The last sync.
    pub last_sync: Option<LastSync>,
    /// The last failure (G8).
    pub last_failure: Option<LastFailure>,
    /// The held sync (G11).
    pub held: Option<HeldSync>,
}

impl TimeTravel {
    /// The state as a serialisable view.
    pub fn view(&self) -> StateView {
        let ws = &self.workspace;
        StateView {
            workspace_id: ws.id(),
            name: ws.name().to_owned(),
            plan: ws.plan(),
            provider: ws.connection().map(|c| c.provider),
            position: self.position.map(|p| p.0),
            stream_version: self.stream_version,
            recorded_at: self.recorded_at,
            groups: ws.groups().clone(),
            devices: ws.devices().clone(),
            excluded: ws.excluded().iter().cloned().collect(),
            last_sync: ws.last_sync().cloned(),
            last_failure: ws.last_failure().cloned(),
            held: ws.held().cloned(),
        }
    }
}

fn damaged(what: &str, e: String) -> Error {
    Error::Invalid(format!(
        "a {what} row of the projection is damaged ({e}); run `rebuild`"
    ))
}

pub(crate) fn workspaces(conn: &Connection) -> Result<Vec<WorkspaceRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WORKSPACE_COLUMNS} FROM proj_workspaces ORDER BY name, workspace_id"
    ))?;
    let rows = stmt.query_map([], workspace_from_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?.map_err(|e| damaged("workspace", e))?);
    }
    Ok(out)
}

pub(crate) fn workspace(conn: &Connection, id: WorkspaceId) -> Result<Option<WorkspaceRow>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM proj_workspaces WHERE workspace_id = ?1"
        ))?
        .query_row([id.to_string()], workspace_from_row)
        .optional()?;
    row.map(|r| r.map_err(|e| damaged("workspace", e)))
        .transpose()
}

const GROUP_SELECT: &str = "SELECT g.workspace_id, g.group_id, g.name, g.source, g.provider,
    g.mdm_group_id, g.mdm_name, g.managed_by, g.policies,
    (SELECT COUNT(*) FROM proj_memberships m
       WHERE m.workspace_id = g.workspace_id AND m.group_id = g.group_id)
  FROM proj_groups g";

fn group_from_row(r: &Row<'_>) -> rusqlite::Result<std::result::Result<GroupRow, String>> {
    let ws: String = r.get(0)?;
    let gid: String = r.get(1)?;
    let name: String = r.get(2)?;
    let source: String = r.get(3)?;
    let provider: Option<String> = r.get(4)?;
    let mdm_group_id: Option<String> = r.get(5)?;
    let mdm_name: Option<String> = r.get(6)?;
    let managed_by: Option<String> = r.get(7)?;
    let policies: String = r.get(8)?;
    let count: i64 = r.get(9)?;
    Ok((|| {
        Ok(GroupRow {
            workspace_id: parse_id(&ws)?,
            group_id: parse_id(&gid)?,
            name,
            source: match source.as_str() {
                "manual" => SourceKind::Manual,
                "synced" => SourceKind::Synced,
                other => return Err(format!("unknown source {other:?}")),
            },
            provider: opt_enum(provider, "provider")?,
            mdm_group_id: mdm_group_id.map(MdmGroupId::new),
            mdm_name,
            managed_by,
            policies: serde_json::from_str(&policies).map_err(|e| format!("policies: {e}"))?,
            member_count: count as u64,
        })
    })())
}

pub(crate) fn groups(conn: &Connection, ws: WorkspaceId) -> Result<Vec<GroupRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{GROUP_SELECT} WHERE g.workspace_id = ?1 ORDER BY g.name COLLATE NOCASE, g.group_id"
    ))?;
    let rows = stmt.query_map([ws.to_string()], group_from_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?.map_err(|e| damaged("group", e))?);
    }
    Ok(out)
}

pub(crate) fn group(
    conn: &Connection,
    ws: WorkspaceId,
    group: GroupId,
) -> Result<Option<GroupRow>> {
    let row = conn
        .prepare_cached(&format!(
            "{GROUP_SELECT} WHERE g.workspace_id = ?1 AND g.group_id = ?2"
        ))?
        .query_row(params![ws.to_string(), group.to_string()], group_from_row)
        .optional()?;
    row.map(|r| r.map_err(|e| damaged("group", e))).transpose()
}

pub(crate) fn members(
    conn: &Connection,
    ws: WorkspaceId,
    group: GroupId,
) -> Result<Vec<MemberRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.device_id, d.serial_number, d.mdm_display_name, m.via
           FROM proj_memberships m
           LEFT JOIN proj_devices d ON d.workspace_id = m.workspace_id AND d.device_id = m.device_id
          WHERE m.workspace_id = ?1 AND m.group_id = ?2
          ORDER BY m.device_id",
    )?;
    let rows = stmt.query_map(params![ws.to_string(), group.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (device, serial_number, mdm_display_name, via) = r?;
        out.push(MemberRow {
            device_id: parse_id(&device).map_err(|e| damaged("membership", e))?,
            serial_number,
            mdm_display_name,
            via,
        });
    }
    Ok(out)
}

pub(crate) fn devices(
    conn: &Connection,
    ws: WorkspaceId,
    search: Option<&str>,
) -> Result<Vec<DeviceRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT workspace_id, device_id, serial_number, name, mdm_device_id, mdm_user_id,
                mdm_display_name, console_url, metadata_checked_at, ambiguous_candidates
           FROM proj_devices WHERE workspace_id = ?1
          ORDER BY serial_number, device_id",
    )?;
    let mut rows = stmt.query([ws.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let serial: Option<String> = r.get(2)?;
        let display: Option<String> = r.get(6)?;
        // M3: the core's search semantics (case-insensitive substring of serial or name).
        if let Some(q) = search {
            if !mdmsync_core::metadata::matches_search(serial.as_deref(), display.as_deref(), q) {
                continue;
            }
        }
        let ws_s: String = r.get(0)?;
        let id: String = r.get(1)?;
        let checked: Option<String> = r.get(8)?;
        let ambiguous: i64 = r.get(9)?;
        out.push(DeviceRow {
            workspace_id: parse_id(&ws_s).map_err(|e| damaged("device", e))?,
            device_id: parse_id(&id).map_err(|e| damaged("device", e))?,
            serial_number: serial,
            name: r.get(3)?,
            mdm_device_id: r.get(4)?,
            mdm_user_id: r.get(5)?,
            mdm_display_name: display,
            console_url: r.get(7)?,
            metadata_checked_at: opt_time(checked).map_err(|e| damaged("device", e))?,
            ambiguous_candidates: ambiguous.clamp(0, i64::from(u32::MAX)) as u32,
        });
    }
    Ok(out)
}

pub(crate) fn history(
    conn: &Connection,
    upcasters: &Upcasters,
    ws: WorkspaceId,
    subject: HistorySubject,
    after: Position,
    limit: usize,
) -> Result<Vec<HistoryEntry>> {
    // Within a stream, version order is position order; ordering by version walks the
    // (stream_id, stream_version) index instead of sorting the stream.
    // Ids are UUIDs, so an event names a group or device exactly when its payload holds the
    // quoted id (the core's events carry ids only in id fields).
    let needle = match subject {
        HistorySubject::Workspace => None,
        HistorySubject::Group(g) => Some(format!("\"{g}\"")),
        HistorySubject::Device(d) => Some(format!("\"{d}\"")),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT position, stream_version, event_type, event_version, payload, recorded_at,
                actor, sync_id, cause
           FROM events
          WHERE stream_id = ?1 AND position > ?2 AND (?3 IS NULL OR instr(payload, ?3) > 0)
          ORDER BY stream_version LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![
        ws.to_string(),
        after.0 as i64,
        needle,
        limit.min(i64::MAX as usize) as i64
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let position: i64 = r.get(0)?;
        let bad = |m: String| {
            Error::Store(mdmsync_core::StoreError::Corrupt {
                position: position as u64,
                message: m,
            })
        };
        let event_type: String = r.get(2)?;
        let version: i64 = r.get(3)?;
        let payload: String = r.get(4)?;
        let recorded: String = r.get(5)?;
        let cause: String = r.get(8)?;
        let data: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| bad(format!("payload: {e}")))?;
        let data = upcasters
            .upcast(
                &event_type,
                u16::try_from(version).unwrap_or(u16::MAX),
                data,
            )
            .map_err(|e| bad(e.to_string()))?;
        let sync_id: Option<String> = r.get(7)?;
        out.push(HistoryEntry {
            position: position as u64,
            stream_version: r.get::<_, i64>(1)? as u64,
            recorded_at: parse_time(&recorded).map_err(bad)?,
            event_type,
            actor: r.get(6)?,
            sync_id: sync_id.map(|s| parse_id(&s)).transpose().map_err(bad)?,
            cause: serde_json::from_str(&cause).map_err(|e| bad(format!("cause: {e}")))?,
            data,
        });
    }
    Ok(out)
}

pub(crate) fn export(
    conn: &Connection,
    after: Position,
    limit: usize,
) -> Result<Vec<ExportedEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, stream_id, stream_version, event_type, event_version, payload,
                recorded_at, actor, sync_id, cause
           FROM events WHERE position > ?1 ORDER BY position LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![after.0 as i64, limit.min(i64::MAX as usize) as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let position: i64 = r.get(0)?;
        let bad = |m: String| {
            Error::Store(mdmsync_core::StoreError::Corrupt {
                position: position as u64,
                message: m,
            })
        };
        let payload: String = r.get(5)?;
        let cause: String = r.get(9)?;
        out.push(ExportedEvent {
            position: position as u64,
            stream_id: r.get(1)?,
            stream_version: r.get::<_, i64>(2)? as u64,
            event_type: r.get(3)?,
            event_version: u16::try_from(r.get::<_, i64>(4)?).unwrap_or(u16::MAX),
            recorded_at: r.get(6)?,
            actor: r.get(7)?,
            sync_id: r.get(8)?,
            cause: serde_json::from_str(&cause).map_err(|e| bad(format!("cause: {e}")))?,
            data: serde_json::from_str(&payload).map_err(|e| bad(format!("payload: {e}")))?,
        });
    }
    Ok(out)
}

pub(crate) fn state_at(
    conn: &Connection,
    upcasters: &Upcasters,
    ws: WorkspaceId,
    as_of: AsOf,
) -> Result<TimeTravel> {
    let mut state = TimeTravel {
        workspace: Workspace::new(),
        position: None,
        stream_version: 0,
        recorded_at: None,
    };
    let (until_pos, until_time) = match as_of {
        AsOf::Position(p) => (p.0.min(i64::MAX as u64) as i64, None),
        AsOf::Time(t) => (i64::MAX, Some(t)),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
          WHERE stream_id = ?1 AND stream_version > ?2 AND position <= ?3
          ORDER BY stream_version LIMIT ?4"
    ))?;
    let id = ws.to_string();
    'pages: loop {
        let mut rows = stmt.query(params![
            id,
            state.stream_version as i64,
            until_pos,
            crate::projection::REPLAY_PAGE as i64
        ])?;
        let mut decoder = RowDecoder::new(upcasters);
        let mut n = 0;
        while let Some(r) = rows.next()? {
            n += 1;
            let e = decoder.decode(r)?;
            if until_time.is_some_and(|t| e.envelope.meta.recorded_at > t) {
                break 'pages;
            }
            state.workspace.apply(&e.envelope.event);
            state.position = Some(e.position);
            state.stream_version = e.stream_version;
            state.recorded_at = Some(e.envelope.meta.recorded_at);
        }
        if n < crate::projection::REPLAY_PAGE {
            break;
        }
    }
    Ok(state)
}
