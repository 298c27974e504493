//! `SyncPolicy`: when syncs and metadata refreshes may run (T1–T5, G1, M2). Pure decisions
//! over the state and a time passed in; the daemon and the CLI act on them.

use crate::event::SyncTrigger;
use crate::ids::WorkspaceId;
use crate::provider::Plan;
use crate::workspace::{Device, Workspace};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

/// Schedule settings. The defaults are the spec's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPolicy {
    /// T1: time between automatic syncs (6 h).
    pub interval: TimeDelta,
    /// T1: the spread added per workspace, `[0, max_jitter)` (30 min).
    pub max_jitter: TimeDelta,
    /// T2: cooldown after the start of the previous sync (15 min).
    pub cooldown: TimeDelta,
    /// M2/T5: a device's metadata is refreshed at most this often (1 day).
    pub metadata_max_age: TimeDelta,
    /// After a failed sync, the first retry comes this long after its start; each further
    /// consecutive failure doubles it, up to `interval`. Reset by a success (5 min).
    pub failure_backoff: TimeDelta,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self {
            interval: TimeDelta::hours(6),
            max_jitter: TimeDelta::minutes(30),
            cooldown: TimeDelta::minutes(15),
            metadata_max_age: TimeDelta::days(1),
            failure_backoff: TimeDelta::minutes(5),
        }
    }
}

/// What the schedule (T1, T2, G1 and the failure backoff) depends on: a few facts of a
/// workspace, which a read model can keep without folding the whole [`Workspace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleFacts {
    /// The workspace (its jitter, T1).
    pub workspace_id: WorkspaceId,
    /// Its plan (G1).
    pub plan: Plan,
    /// Whether an MDM is connected.
    pub connected: bool,
    /// When the last sync started, whatever its outcome (T1, T2).
    pub last_sync_started_at: Option<DateTime<Utc>>,
    /// Failed syncs since the last success (backoff, decision 0009).
    pub consecutive_failures: u32,
}

impl ScheduleFacts {
    /// The facts of a workspace; `None` before it is created.
    pub fn of(ws: &Workspace) -> Option<Self> {
        Some(Self {
            workspace_id: ws.id()?,
            plan: ws.plan(),
            connected: ws.connection().is_some(),
            last_sync_started_at: ws.last_sync().map(|l| l.started_at),
            consecutive_failures: ws.consecutive_failures(),
        })
    }
}

/// Why a sync may not start now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// G1.
    #[error("the {plan} plan does not sync groups; upgrade to Pro or Enterprise")]
    PlanDoesNotSyncGroups {
        /// The plan.
        plan: Plan,
    },
    /// No MDM connected.
    #[error("no MDM is connected; connect one first")]
    NotConnected,
    /// T2: within the cooldown.
    #[error("a sync started within the cooldown; the next manual sync is allowed at {allowed_at}")]
    Cooldown {
        /// When a manual sync is allowed again.
        allowed_at: DateTime<Utc>,
    },
}

/// What to do with a trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Run a sync now.
    Start,
    /// T4: a sync is running; this trigger is folded into it, not queued again.
    Coalesce,
    /// Not allowed now.
    Refused(Refusal),
}

impl SyncPolicy {
    /// T1: this workspace's fixed spread, derived from its id so it is stable across restarts
    /// and different between workspaces.
    pub fn jitter(&self, workspace: WorkspaceId) -> TimeDelta {
        let window = self.max_jitter.num_seconds().max(0) as u64;
        if window == 0 {
            return TimeDelta::zero();
        }
        let bytes = workspace.as_uuid().as_u128().to_le_bytes();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        TimeDelta::seconds((n % window) as i64)
    }

    /// T1: when the next automatic sync is due: `interval + jitter` after the last sync started,
    /// or `now` if none ever ran. After failures it comes sooner, with a backoff that doubles per
    /// consecutive failure and resets on success ([`SyncPolicy::failure_delay`]). `None` if the
    /// workspace cannot sync (G1, not connected).
    pub fn next_scheduled_at(&self, ws: &Workspace, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.next_scheduled_for(&ScheduleFacts::of(ws)?, now)
    }

    /// [`SyncPolicy::next_scheduled_at`] from the facts alone, for read models that keep those
    /// facts and not a whole [`Workspace`].
    pub fn next_scheduled_for(
        &self,
        facts: &ScheduleFacts,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if !facts.connected || !facts.plan.syncs_groups() {
            return None;
        }
        Some(match facts.last_sync_started_at {
            Some(started) if facts.consecutive_failures > 0 => {
                started + self.failure_delay(facts.consecutive_failures)
            }
            Some(started) => started + self.interval + self.jitter(facts.workspace_id),
            None => now,
        })
    }

    /// The wait before retrying after `failures` consecutive failed syncs: `failure_backoff`,
    /// doubled per further failure, never more than `interval`.
    pub fn failure_delay(&self, failures: u32) -> TimeDelta {
        let doublings = failures.saturating_sub(1).min(20);
        let delay = self.failure_backoff * (1i32 << doublings);
        delay.min(self.interval)
    }

    /// T5: when the next device's metadata falls due (M2); `None` without a connection or
    /// without a device that can be looked up. Devices never checked are due `now`; devices
    /// without a serial number are skipped by every refresh (M6), so they are never due.
    pub fn metadata_next_due(&self, ws: &Workspace, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        ws.connection()?;
        ws.devices()
            .values()
            .filter(|d| d.serial_number.is_some())
            .map(|d| {
                d.metadata_checked_at
                    .map_or(now, |at| at + self.metadata_max_age)
            })
            .min()
    }

    /// T2: when a manual sync is allowed (`None`: now).
    pub fn manual_allowed_at(&self, ws: &Workspace, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.manual_allowed_for(&ScheduleFacts::of(ws)?, now)
    }

    /// [`SyncPolicy::manual_allowed_at`] from the facts alone.
    pub fn manual_allowed_for(
        &self,
        facts: &ScheduleFacts,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let allowed = facts.last_sync_started_at? + self.cooldown;
        (allowed > now).then_some(allowed)
    }

    /// Whether a trigger may start a sync now: G1 (plan), connection, T2 (cooldown for manual
    /// syncs only; a forced manual sync, a confirmation and T3 bypass it), T4 (single flight).
    pub fn admit(
        &self,
        ws: &Workspace,
        trigger: SyncTrigger,
        now: DateTime<Utc>,
        running: bool,
    ) -> Admission {
        if !ws.plan().syncs_groups() {
            return Admission::Refused(Refusal::PlanDoesNotSyncGroups { plan: ws.plan() });
        }
        if ws.connection().is_none() {
            return Admission::Refused(Refusal::NotConnected);
        }
        if running {
            return Admission::Coalesce;
        }
        if trigger == SyncTrigger::Manual {
            if let Some(allowed_at) = self.manual_allowed_at(ws, now) {
                return Admission::Refused(Refusal::Cooldown { allowed_at });
            }
        }
        Admission::Start
    }

    /// T1: whether the scheduler should sync now.
    pub fn scheduled_due(&self, ws: &Workspace, now: DateTime<Utc>) -> bool {
        self.next_scheduled_at(ws, now).is_some_and(|at| at <= now)
    }

    /// M2: whether a device's metadata is due for a refresh (never checked, cleared by C4, or
    /// checked longer ago than `metadata_max_age`).
    pub fn metadata_due(&self, device: &Device, now: DateTime<Utc>) -> bool {
        match device.metadata_checked_at {
            None => true,
            Some(at) => now - at >= self.metadata_max_age,
        }
    }
}
