//! The projector: folds events into the read-model tables (`proj_*`) and moves the checkpoint
//! in the same transaction (lessons.md #2: checkpointed catch-up readers, not post-commit
//! callbacks). Appends project their own events before they commit; `catch_up` projects
//! whatever lies between the checkpoint and the end of the log; `rebuild` truncates and
//! replays from position 0; `verify` rebuilds into a scratch database and compares.
//!
//! Every table mirrors what `Workspace::apply` does, event by event, including its tolerance
//! of odd histories (a member added to an unknown group is ignored, a re-registered device
//! loses its metadata).

use crate::codec::{EVENT_COLUMNS, RowDecoder, format_time, parse_time};
use crate::error::{Error, Result};
use crate::query::{
    HeldSyncRow, LastFailureRow, LastSuccessRow, LastSyncRow, SyncOutcome, WorkspaceRow,
    enum_from_text, enum_to_text,
};
use crate::upcast::Upcasters;
use chrono::{DateTime, Utc};
use mdmsync_core::{
    DeviceId, Event, GroupId, GroupSource, Plan, Position, RecordedEvent, ScheduleFacts,
    SyncPolicy, WorkspaceId,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use uuid::Uuid;

/// Events read per page when replaying from the log.
pub(crate) const REPLAY_PAGE: usize = 10_000;

/// The checkpoint row's name.
const CHECKPOINT: &str = "projections";

/// A UUID as hyphenated lower-case text, without allocating.
pub(crate) fn uuid_text<'b>(u: &Uuid, buf: &'b mut [u8; 36]) -> &'b str {
    u.hyphenated().encode_lower(buf)
}

/// Applies events to the projection tables of one schema (`""` = main, `"scratch."`).
pub(crate) struct Projector<'c> {
    conn: &'c Connection,
    policy: &'c SyncPolicy,
    sql: Sql,
    workspaces: HashMap<WorkspaceId, WorkspaceRow>,
    /// Whether a group exists in the projection (a member of an unknown group is ignored,
    /// as in `Workspace::apply`); filled as groups are created, deleted or looked up.
    groups_known: HashMap<(WorkspaceId, GroupId), bool>,
    /// `MemberAdded` rows waiting to be written in multi-row statements.
    pending_adds: Vec<(WorkspaceId, GroupId, DeviceId, Option<String>)>,
}

/// Rows per multi-row membership insert.
const ADD_CHUNK: usize = 128;

struct Sql {
    member_add_head: String,
    member_add_tail: &'static str,
    group_exists: String,
    member_remove: String,
    members_clear: String,
    device_register: String,
    device_metadata: String,
    device_clear: String,
    group_create: String,
    group_rename: String,
    group_detach: String,
    group_delete: String,
    group_policies_get: String,
    group_policies_set: String,
    workspace_get: String,
    workspace_put: String,
    checkpoint_get: String,
    checkpoint_set: String,
}

impl Sql {
    fn new(s: &str) -> Self {
        Self {
            member_add_head: format!(
                "INSERT INTO {s}proj_memberships (workspace_id, group_id, device_id, via) VALUES "
            ),
            member_add_tail: " ON CONFLICT (workspace_id, group_id, device_id) DO UPDATE SET via = excluded.via",
            group_exists: format!(
                "SELECT 1 FROM {s}proj_groups WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            member_remove: format!(
                "DELETE FROM {s}proj_memberships WHERE workspace_id = ?1 AND group_id = ?2 AND device_id = ?3"
            ),
            members_clear: format!(
                "DELETE FROM {s}proj_memberships WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            device_register: format!(
                "INSERT OR REPLACE INTO {s}proj_devices (workspace_id, device_id, serial_number, name,
                   mdm_device_id, mdm_user_id, mdm_display_name, console_url, metadata_checked_at,
                   ambiguous_candidates)
                 VALUES (?1, ?2, ?3, ?4, NULL, NULL, NULL, NULL, NULL, 0)"
            ),
            device_metadata: format!(
                "UPDATE {s}proj_devices SET mdm_device_id = ?3, mdm_user_id = ?4,
                   mdm_display_name = ?5, console_url = ?6, metadata_checked_at = ?7,
                   ambiguous_candidates = ?8
                 WHERE workspace_id = ?1 AND device_id = ?2"
            ),
            device_clear: format!(
                "UPDATE {s}proj_devices SET mdm_device_id = NULL, mdm_user_id = NULL,
                   mdm_display_name = NULL, console_url = NULL, metadata_checked_at = ?3,
                   ambiguous_candidates = 0
                 WHERE workspace_id = ?1 AND device_id = ?2"
            ),
            group_create: format!(
                "INSERT OR REPLACE INTO {s}proj_groups (workspace_id, group_id, name, source, provider,
                   mdm_group_id, mdm_name, managed_by, policies)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '{{}}')"
            ),
            group_rename: format!(
                "UPDATE {s}proj_groups SET name = ?3, mdm_name = COALESCE(?4, mdm_name)
                 WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            group_detach: format!(
                "UPDATE {s}proj_groups SET source = 'manual', provider = NULL, mdm_group_id = NULL,
                   mdm_name = NULL, managed_by = NULL
                 WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            group_delete: format!(
                "DELETE FROM {s}proj_groups WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            group_policies_get: format!(
                "SELECT policies FROM {s}proj_groups WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            group_policies_set: format!(
                "UPDATE {s}proj_groups SET policies = ?3 WHERE workspace_id = ?1 AND group_id = ?2"
            ),
            workspace_get: format!(
                "SELECT {} FROM {s}proj_workspaces WHERE workspace_id = ?1",
                crate::query::WORKSPACE_COLUMNS
            ),
            workspace_put: format!(
                "INSERT OR REPLACE INTO {s}proj_workspaces ({}) VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
                crate::query::WORKSPACE_COLUMNS
            ),
            checkpoint_get: format!("SELECT position FROM {s}proj_checkpoint WHERE name = ?1"),
            checkpoint_set: format!(
                "INSERT OR REPLACE INTO {s}proj_checkpoint (name, position) VALUES (?1, ?2)"
            ),
        }
    }
}

/// Due times from the core's policy, fed the few facts the projection keeps (plan, connection,
/// last sync start, failures since the last success).
fn schedule(
    policy: &SyncPolicy,
    row: &WorkspaceRow,
) -> (bool, Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let facts = ScheduleFacts {
        workspace_id: row.workspace_id,
        plan: row.plan,
        connected: row.provider.is_some(),
        last_sync_started_at: row.last_sync.as_ref().map(|l| l.started_at),
        consecutive_failures: row.consecutive_failures,
    };
    // "Now" at the beginning of time: the policy then reports the raw instants, which do not
    // depend on when the projection ran (so a rebuild equals the live rows).
    let epoch = DateTime::<Utc>::MIN_UTC;
    let next_or_now = policy.next_scheduled_for(&facts, epoch);
    let enabled = next_or_now.is_some();
    let next = next_or_now.filter(|t| *t != epoch);
    let manual = policy.manual_allowed_for(&facts, epoch);
    (enabled, manual, next)
}

impl<'c> Projector<'c> {
    /// A projector writing to the tables of `schema_prefix` (`""` or `"scratch."`).
    pub(crate) fn new(conn: &'c Connection, policy: &'c SyncPolicy, schema_prefix: &str) -> Self {
        Self {
            conn,
            policy,
            sql: Sql::new(schema_prefix),
            workspaces: HashMap::new(),
            groups_known: HashMap::new(),
            pending_adds: Vec::new(),
        }
    }

    /// The checkpoint: the position of the last event projected.
    pub(crate) fn checkpoint(&self) -> Result<u64> {
        let p: Option<i64> = self
            .conn
            .prepare_cached(&self.sql.checkpoint_get)?
            .query_row([CHECKPOINT], |r| r.get(0))
            .optional()?;
        Ok(p.unwrap_or(0) as u64)
    }

    fn group_exists(&mut self, ws: WorkspaceId, group: GroupId) -> Result<bool> {
        if let Some(known) = self.groups_known.get(&(ws, group)) {
            return Ok(*known);
        }
        let mut wb = [0u8; 36];
        let mut gb = [0u8; 36];
        let exists = self
            .conn
            .prepare_cached(&self.sql.group_exists)?
            .query_row(
                params![uuid_text(&ws.0, &mut wb), uuid_text(&group.0, &mut gb)],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        self.groups_known.insert((ws, group), exists);
        Ok(exists)
    }

    /// Writes the pending `MemberAdded` rows, in order, in multi-row statements.
    fn flush_adds(&mut self) -> Result<()> {
        if self.pending_adds.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending_adds);
        for chunk in pending.chunks(ADD_CHUNK) {
            let mut sql =
                String::with_capacity(self.sql.member_add_head.len() + chunk.len() * 16 + 96);
            sql.push_str(&self.sql.member_add_head);
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str("(?,?,?,?)");
            }
            sql.push_str(self.sql.member_add_tail);
            let mut stmt = self.conn.prepare_cached(&sql)?;
            // All ids of the chunk as text in one buffer: 36 bytes each, three per row.
            let mut texts = String::with_capacity(chunk.len() * 108);
            let mut b = [0u8; 36];
            for (ws, g, d, _) in chunk {
                texts.push_str(uuid_text(&ws.0, &mut b));
                texts.push_str(uuid_text(&g.0, &mut b));
                texts.push_str(uuid_text(&d.0, &mut b));
            }
            let mut idx = 1;
            for (i, (_, _, _, via)) in chunk.iter().enumerate() {
                for k in 0..3 {
                    let at = (i * 3 + k) * 36;
                    stmt.raw_bind_parameter(idx, &texts[at..at + 36])?;
                    idx += 1;
                }
                stmt.raw_bind_parameter(idx, via.as_deref())?;
                idx += 1;
            }
            stmt.raw_execute()?;
        }
        let mut pending = pending;
        pending.clear();
        self.pending_adds = pending;
        Ok(())
    }

    fn workspace(&mut self, id: WorkspaceId) -> Result<&mut WorkspaceRow> {
        if !self.workspaces.contains_key(&id) {
            let mut buf = [0u8; 36];
            let row = self
                .conn
                .prepare_cached(&self.sql.workspace_get)?
                .query_row(
                    [uuid_text(&id.0, &mut buf)],
                    crate::query::workspace_from_row,
                )
                .optional()?;
            let row = match row {
                Some(r) => r.map_err(|e| {
                    Error::Invalid(format!(
                        "the projection row of workspace {id} is damaged ({e}); run `rebuild`"
                    ))
                })?,
                None => WorkspaceRow::empty(id),
            };
            self.workspaces.insert(id, row);
        }
        Ok(self.workspaces.get_mut(&id).expect("inserted above"))
    }

    /// Projects one event of `ws`'s stream at `stream_version`.
    pub(crate) fn apply(
        &mut self,
        ws: WorkspaceId,
        stream_version: u64,
        event: &Event,
    ) -> Result<()> {
        let mut wb = [0u8; 36];
        let mut gb = [0u8; 36];
        let mut db = [0u8; 36];
        let conn = self.conn;
        if !matches!(event, Event::MemberAdded { .. }) {
            self.flush_adds()?;
        }
        match event {
            Event::MemberAdded {
                group_id,
                device_id,
                via,
            } => {
                if self.group_exists(ws, *group_id)? {
                    self.pending_adds.push((
                        ws,
                        *group_id,
                        *device_id,
                        via.as_ref().map(|v| v.as_str().to_owned()),
                    ));
                    if self.pending_adds.len() >= ADD_CHUNK {
                        self.flush_adds()?;
                    }
                }
                self.workspace(ws)?.stream_version = stream_version;
                return Ok(());
            }
            Event::MemberRemoved {
                group_id,
                device_id,
            } => {
                conn.prepare_cached(&self.sql.member_remove)?
                    .execute(params![
                        uuid_text(&ws.0, &mut wb),
                        uuid_text(&group_id.0, &mut gb),
                        uuid_text(&device_id.0, &mut db),
                    ])?;
            }
            Event::DeviceRegistered {
                device_id,
                serial_number,
                name,
            } => {
                conn.prepare_cached(&self.sql.device_register)?
                    .execute(params![
                        uuid_text(&ws.0, &mut wb),
                        uuid_text(&device_id.0, &mut db),
                        serial_number,
                        name,
                    ])?;
            }
            Event::DeviceMetadataRecorded {
                device_id,
                metadata,
                fetched_at,
                ambiguous_candidates,
            } => {
                conn.prepare_cached(&self.sql.device_metadata)?
                    .execute(params![
                        uuid_text(&ws.0, &mut wb),
                        uuid_text(&device_id.0, &mut db),
                        metadata.mdm_device_id.as_str(),
                        metadata.mdm_user_id.as_ref().map(|u| u.as_str()),
                        metadata.mdm_display_name,
                        metadata.console_url,
                        format_time(*fetched_at),
                        i64::from(*ambiguous_candidates),
                    ])?;
            }
            Event::DeviceMetadataCleared {
                device_id,
                checked_at,
                ..
            } => {
                conn.prepare_cached(&self.sql.device_clear)?
                    .execute(params![
                        uuid_text(&ws.0, &mut wb),
                        uuid_text(&device_id.0, &mut db),
                        checked_at.map(format_time),
                    ])?;
            }
            Event::GroupCreated {
                group_id,
                name,
                source,
                mdm_name,
            } => {
                let (kind, provider, mdm_group_id, managed_by) = match source {
                    GroupSource::Manual => ("manual", None, None, None),
                    GroupSource::Synced {
                        provider,
                        mdm_group_id,
                    } => (
                        "synced",
                        Some(enum_to_text(provider)),
                        Some(mdm_group_id.as_str()),
                        Some(provider.display_name()),
                    ),
                };
                let (w, g) = (uuid_text(&ws.0, &mut wb), uuid_text(&group_id.0, &mut gb));
                // A re-created id starts empty, as in `Workspace::apply`.
                conn.prepare_cached(&self.sql.members_clear)?
                    .execute(params![w, g])?;
                conn.prepare_cached(&self.sql.group_create)?
                    .execute(params![
                        w,
                        g,
                        name,
                        kind,
                        provider,
                        mdm_group_id,
                        mdm_name,
                        managed_by
                    ])?;
            }
            Event::GroupRenamed {
                group_id,
                to,
                mdm_name,
                ..
            } => {
                conn.prepare_cached(&self.sql.group_rename)?
                    .execute(params![
                        uuid_text(&ws.0, &mut wb),
                        uuid_text(&group_id.0, &mut gb),
                        to,
                        mdm_name
                    ])?;
            }
            Event::GroupDetached { group_id, .. } => {
                conn.prepare_cached(&self.sql.group_detach)?
                    .execute(params![
                        uuid_text(&ws.0, &mut wb),
                        uuid_text(&group_id.0, &mut gb),
                    ])?;
            }
            Event::GroupDeleted { group_id, .. } => {
                self.groups_known.insert((ws, *group_id), false);
                let (w, g) = (uuid_text(&ws.0, &mut wb), uuid_text(&group_id.0, &mut gb));
                conn.prepare_cached(&self.sql.group_delete)?
                    .execute(params![w, g])?;
                conn.prepare_cached(&self.sql.members_clear)?
                    .execute(params![w, g])?;
            }
            Event::GroupPolicySet {
                group_id,
                key,
                value,
            } => {
                let (w, g) = (uuid_text(&ws.0, &mut wb), uuid_text(&group_id.0, &mut gb));
                let current: Option<String> = conn
                    .prepare_cached(&self.sql.group_policies_get)?
                    .query_row(params![w, g], |r| r.get(0))
                    .optional()?;
                if let Some(current) = current {
                    let mut map: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&current).map_err(|e| {
                            Error::Invalid(format!(
                                "the policies of group {group_id} in the projection are damaged ({e}); run `rebuild`"
                            ))
                        })?;
                    match value {
                        Some(v) => {
                            map.insert(key.clone(), v.clone());
                        }
                        None => {
                            map.remove(key);
                        }
                    }
                    let text = serde_json::Value::Object(map).to_string();
                    conn.prepare_cached(&self.sql.group_policies_set)?
                        .execute(params![w, g, text])?;
                }
            }
            Event::GroupExcluded { .. } | Event::GroupIncluded { .. } => {}
            Event::SafetyThresholdsChanged { .. } => {}
            Event::WorkspaceCreated { name, plan, .. } => {
                let row = self.workspace(ws)?;
                row.name = name.clone();
                row.plan = *plan;
            }
            Event::PlanChanged { to, .. } => self.workspace(ws)?.plan = *to,
            Event::ProviderConnected { provider, .. } => {
                let row = self.workspace(ws)?;
                row.provider = Some(*provider);
                row.held = None;
            }
            Event::CredentialsChanged { provider, .. } => {
                self.workspace(ws)?.provider = Some(*provider);
            }
            Event::ProviderDisconnected { .. } => {
                let row = self.workspace(ws)?;
                row.provider = None;
                row.held = None;
            }
            Event::SyncSucceeded {
                sync_id,
                trigger,
                started_at,
                finished_at,
                ..
            } => {
                let row = self.workspace(ws)?;
                row.last_sync = Some(LastSyncRow {
                    sync_id: *sync_id,
                    trigger: *trigger,
                    started_at: *started_at,
                    finished_at: *finished_at,
                    outcome: SyncOutcome::Succeeded,
                });
                row.last_success = Some(LastSuccessRow {
                    sync_id: *sync_id,
                    finished_at: *finished_at,
                });
                row.last_failure = None;
                row.held = None;
                row.consecutive_failures = 0;
            }
            Event::SyncFailed {
                sync_id,
                trigger,
                started_at,
                finished_at,
                kind,
                message,
            } => {
                let row = self.workspace(ws)?;
                row.last_sync = Some(LastSyncRow {
                    sync_id: *sync_id,
                    trigger: *trigger,
                    started_at: *started_at,
                    finished_at: *finished_at,
                    outcome: SyncOutcome::Failed,
                });
                row.last_failure = Some(LastFailureRow {
                    sync_id: *sync_id,
                    kind: *kind,
                    message: message.clone(),
                    at: *finished_at,
                });
                row.consecutive_failures = row.consecutive_failures.saturating_add(1);
            }
            Event::SyncHeld {
                sync_id,
                trigger,
                started_at,
                finished_at,
                reason,
                ..
            } => {
                let row = self.workspace(ws)?;
                row.last_sync = Some(LastSyncRow {
                    sync_id: *sync_id,
                    trigger: *trigger,
                    started_at: *started_at,
                    finished_at: *finished_at,
                    outcome: SyncOutcome::Held,
                });
                row.held = Some(HeldSyncRow {
                    sync_id: *sync_id,
                    reason: reason.to_string(),
                    detail: reason.clone(),
                });
            }
            Event::SyncConfirmed { .. } => self.workspace(ws)?.held = None,
        }
        self.workspace(ws)?.stream_version = stream_version;
        Ok(())
    }

    /// Projects a batch: `item(i)` is the i-th event with its stream and version. Runs of
    /// consecutive `MemberAdded` are written in key order (a stable sort, so a repeated
    /// membership still ends with its last `via`): B-tree inserts then walk the memberships
    /// table once instead of jumping between groups. The result is the same as applying the
    /// events one by one: within such a run, events on different keys commute.
    pub(crate) fn apply_batch<'e>(
        &mut self,
        n: usize,
        item: impl Fn(usize) -> (WorkspaceId, u64, &'e Event),
    ) -> Result<()> {
        let key = |i: usize| match item(i) {
            (
                ws,
                _,
                Event::MemberAdded {
                    group_id,
                    device_id,
                    ..
                },
            ) => Some((ws, *group_id, *device_id)),
            _ => None,
        };
        let mut i = 0;
        while i < n {
            let mut j = i;
            while j < n && key(j).is_some() {
                j += 1;
            }
            if j - i >= 2 {
                let mut order: Vec<u32> = (i as u32..j as u32).collect();
                order.sort_by_key(|&k| key(k as usize));
                for k in order {
                    let (ws, version, event) = item(k as usize);
                    self.apply(ws, version, event)?;
                }
                // Each stream's version ends where its last event of the run is, whatever
                // the write order.
                let mut seen = std::collections::HashSet::new();
                for k in (i..j).rev() {
                    let (ws, version, _) = item(k);
                    if seen.insert(ws) {
                        self.workspace(ws)?.stream_version = version;
                    }
                }
                i = j;
            } else {
                let (ws, version, event) = item(i);
                self.apply(ws, version, event)?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Writes the workspaces touched since the last flush and moves the checkpoint to `to`.
    pub(crate) fn finish(&mut self, to: Position) -> Result<()> {
        self.flush_adds()?;
        let mut rows: Vec<WorkspaceRow> = self.workspaces.drain().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| r.workspace_id);
        for mut row in rows {
            let (enabled, manual, next) = schedule(self.policy, &row);
            row.sync_enabled = enabled;
            row.manual_allowed_at = manual;
            row.next_scheduled_at = next;
            self.put_workspace(&row)?;
        }
        self.conn
            .prepare_cached(&self.sql.checkpoint_set)?
            .execute(params![CHECKPOINT, to.0 as i64])?;
        Ok(())
    }

    fn put_workspace(&self, r: &WorkspaceRow) -> Result<()> {
        let t = |d: Option<DateTime<Utc>>| d.map(format_time);
        let last = r.last_sync.as_ref();
        let fail = r.last_failure.as_ref();
        let held = r.held.as_ref();
        let held_json = held
            .map(|h| serde_json::to_string(&h.detail))
            .transpose()
            .map_err(|e| Error::Invalid(format!("cannot encode a hold reason: {e}")))?;
        self.conn
            .prepare_cached(&self.sql.workspace_put)?
            .execute(params![
                r.workspace_id.to_string(),
                r.name,
                enum_to_text(&r.plan),
                r.provider.map(|p| enum_to_text(&p)),
                r.stream_version as i64,
                last.map(|l| l.sync_id.to_string()),
                last.map(|l| enum_to_text(&l.trigger)),
                t(last.map(|l| l.started_at)),
                t(last.map(|l| l.finished_at)),
                last.map(|l| l.outcome.as_str()),
                r.last_success.as_ref().map(|s| s.sync_id.to_string()),
                t(r.last_success.as_ref().map(|s| s.finished_at)),
                fail.map(|f| f.sync_id.to_string()),
                fail.map(|f| f.kind.as_str()),
                fail.map(|f| f.message.clone()),
                t(fail.map(|f| f.at)),
                held.map(|h| h.sync_id.to_string()),
                held.map(|h| h.reason.clone()),
                held_json,
                r.sync_enabled,
                t(r.manual_allowed_at),
                t(r.next_scheduled_at),
                i64::from(r.consecutive_failures),
            ])?;
        Ok(())
    }

    /// Projects every event after the checkpoint, up to `until` (inclusive; `None` = the end
    /// of the log), reading them from `main.events`. Returns how many were projected. The
    /// caller owns the transaction.
    pub(crate) fn replay(&mut self, upcasters: &Upcasters, until: Option<u64>) -> Result<u64> {
        let mut after = self.checkpoint()?;
        let until = until.unwrap_or(i64::MAX as u64);
        let mut count = 0u64;
        loop {
            let page = read_page(self.conn, upcasters, after, until, REPLAY_PAGE)?;
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            self.apply_batch(page.len(), |i| {
                let e = &page[i];
                (e.envelope.workspace, e.stream_version, &e.envelope.event)
            })?;
            count += page.len() as u64;
            after = last.0;
            self.finish(last)?;
            if page.len() < REPLAY_PAGE {
                break;
            }
        }
        Ok(count)
    }
}

/// Up to `limit` events with `after < position <= until`, decoded.
pub(crate) fn read_page(
    conn: &Connection,
    upcasters: &Upcasters,
    after: u64,
    until: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM main.events WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params![
        after as i64,
        until.min(i64::MAX as u64) as i64,
        limit as i64
    ])?;
    let mut decoder = RowDecoder::new(upcasters);
    let mut out = Vec::with_capacity(limit.min(REPLAY_PAGE));
    while let Some(row) = rows.next()? {
        out.push(decoder.decode(row)?);
    }
    Ok(out)
}

/// Deletes every projection row of `schema_prefix` and resets its checkpoint to 0.
pub(crate) fn truncate(conn: &Connection, schema_prefix: &str) -> Result<()> {
    let s = schema_prefix;
    conn.execute_batch(&format!(
        "DELETE FROM {s}proj_workspaces;
         DELETE FROM {s}proj_groups;
         DELETE FROM {s}proj_memberships;
         DELETE FROM {s}proj_devices;
         INSERT OR REPLACE INTO {s}proj_checkpoint (name, position) VALUES ('{CHECKPOINT}', 0);"
    ))?;
    Ok(())
}

/// Parses an optional stored time.
pub(crate) fn opt_time(s: Option<String>) -> std::result::Result<Option<DateTime<Utc>>, String> {
    s.map(|s| parse_time(&s)).transpose()
}

/// Decodes a stored enum text, naming the column in the error.
pub(crate) fn opt_enum<T: serde::de::DeserializeOwned>(
    s: Option<String>,
    column: &str,
) -> std::result::Result<Option<T>, String> {
    s.map(|s| enum_from_text(&s).map_err(|e| format!("{column}: {e}")))
        .transpose()
}

/// The plan default of a workspace row seen before its `WorkspaceCreated`.
pub(crate) const DEFAULT_PLAN: Plan = Plan::Free;
