//! T4 across processes: a sync lease per workspace in the shared database. A daemon takes the
//! lease before it syncs a workspace and releases it after; a lease held by another holder
//! and not expired refuses, an expired one is taken over (its holder crashed). Acquisition is
//! an IMMEDIATE transaction, so two processes cannot both win.

use crate::codec::{format_time, parse_time};
use crate::error::{Error, Result};
use crate::store::SqliteEventStore;
use chrono::{DateTime, TimeDelta, Utc};
use mdmsync_core::WorkspaceId;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

/// Who holds a workspace's sync lease, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncLease {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The holder (e.g. `host:pid`).
    pub holder: String,
    /// When the holder took (or last renewed) it.
    pub acquired_at: DateTime<Utc>,
    /// When it lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

impl SqliteEventStore {
    /// T4: takes (or renews, for the same holder) the sync lease of `workspace` until
    /// `now + ttl`. Returns `false` if another holder has it and it has not expired.
    pub fn try_acquire_sync_lease(
        &self,
        workspace: WorkspaceId,
        holder: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<bool> {
        if ttl <= TimeDelta::zero() {
            return Err(Error::Invalid(
                "a sync lease needs a positive time to live".into(),
            ));
        }
        self.with_writer(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = workspace.to_string();
            let current: Option<(String, String)> = tx
                .query_row(
                    "SELECT holder, expires_at FROM sync_leases WHERE workspace_id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((other, expires)) = current {
                let expires = parse_time(&expires).map_err(Error::Invalid)?;
                if other != holder && expires > now {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO sync_leases (workspace_id, holder, acquired_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, holder, format_time(now), format_time(now + ttl)],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Releases the lease if `holder` has it. Returns whether it did.
    pub fn release_sync_lease(&self, workspace: WorkspaceId, holder: &str) -> Result<bool> {
        self.with_writer(|conn| {
            let n = conn.execute(
                "DELETE FROM sync_leases WHERE workspace_id = ?1 AND holder = ?2",
                params![workspace.to_string(), holder],
            )?;
            Ok(n > 0)
        })
    }

    /// The current lease of `workspace`, expired or not.
    pub fn sync_lease(&self, workspace: WorkspaceId) -> Result<Option<SyncLease>> {
        self.with_reader(|conn| {
            let row: Option<(String, String, String)> = conn
                .query_row(
                    "SELECT holder, acquired_at, expires_at FROM sync_leases WHERE workspace_id = ?1",
                    [workspace.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            row.map(|(holder, acquired, expires)| {
                Ok(SyncLease {
                    workspace_id: workspace,
                    holder,
                    acquired_at: parse_time(&acquired).map_err(Error::Invalid)?,
                    expires_at: parse_time(&expires).map_err(Error::Invalid)?,
                })
            })
            .transpose()
        })
    }
}
