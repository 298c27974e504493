//! The scheduler: decides when each workspace syncs (T1–T5) and runs the syncs.
//!
//! - **State by tailing the log.** Every workspace's state is folded in memory from the global
//!   log, read by position after a checkpoint ([`Scheduler::poll_log`]), so workspaces,
//!   provider and credential changes made by the CLI, the API or another daemon are picked up
//!   without a restart. A `ProviderConnected` makes the workspace due at once (T3).
//! - **What is due** is the core policy's decision ([`SyncPolicy`]): T1 every interval plus
//!   the workspace's jitter, sooner after failures with a backoff that resets on success
//!   (decision 0009), T3 after a provider change, T5 device metadata at most daily (M2).
//! - **Single flight (T4).** A workspace has at most one job queued or running in this
//!   process; a trigger meanwhile is folded into it. Across processes a job first takes the
//!   workspace's sync lease in the database, renews it while it runs, and re-reads the
//!   workspace after taking it, so two daemons on one store never sync the same workspace at
//!   once, nor twice in a row for one due time.
//! - **Bounded concurrency.** A global semaphore and one per MDM host (P5).
//! - **Nothing partial.** A sync appends all its events in one transaction at its end; a job
//!   that times out, loses its lease or is abandoned at shutdown is dropped before that
//!   append, so it leaves nothing behind.

use crate::clock::{SharedClock, SharedIds};
use crate::config::SchedulerConfig;
use crate::factory::{ClientFactory, host_key};
use crate::metrics::{Metrics, SyncLabel};
use chrono::{DateTime, TimeDelta, Utc};
use mdmsync_core::workspace::{LastFailure, LastSync};
use mdmsync_core::{
    Actor, Admission, Clock, CredentialVault, Event, EventStore, HoldReason, IdGenerator,
    MdmClient, MetadataReport, Plan, Position, Provider, RecordedEvent, Refusal, ServiceError,
    SyncId, SyncOutcome, SyncPolicy, SyncRequest, SyncResult, SyncService, SyncTrigger, Workspace,
    WorkspaceId,
};
use mdmsync_sqlite::{SqliteEventStore, SqliteVault};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// The use cases as the daemon runs them.
pub type Service = SyncService<SqliteEventStore, SharedClock, SharedIds>;

/// Events read per page when tailing the log.
const TAIL_PAGE: usize = 1000;
/// Events read per page when catching one workspace up.
const STREAM_PAGE: usize = 1000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// T3 then T1: the trigger a scheduled round syncs the workspace with now, if any. `None` if
/// it cannot sync (G1, not connected) or is not due.
///
/// T3: a `ProviderConnected` recorded at `connected_at` makes the workspace due at once until
/// a sync has started at or after that moment (the CLI's own connect syncs at once, so the
/// daemon does not sync a second time if it sees that sync first).
pub fn sync_due(
    ws: &Workspace,
    connected_at: Option<DateTime<Utc>>,
    policy: &SyncPolicy,
    now: DateTime<Utc>,
) -> Option<SyncTrigger> {
    if !matches!(
        policy.admit(ws, SyncTrigger::Scheduled, now, false),
        Admission::Start
    ) {
        return None;
    }
    if t3_pending(ws, connected_at) {
        return Some(SyncTrigger::ProviderChanged);
    }
    policy
        .scheduled_due(ws, now)
        .then_some(SyncTrigger::Scheduled)
}

fn t3_pending(ws: &Workspace, connected_at: Option<DateTime<Utc>>) -> bool {
    connected_at.is_some_and(|at| ws.last_sync().is_none_or(|l| l.started_at < at))
}

/// When the next automatic sync is due (T1, T3); `None` if the workspace cannot sync.
pub fn next_sync_at(
    ws: &Workspace,
    connected_at: Option<DateTime<Utc>>,
    policy: &SyncPolicy,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let next = policy.next_scheduled_at(ws, now)?;
    Some(if t3_pending(ws, connected_at) {
        now
    } else {
        next
    })
}

/// What a job does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Work {
    metadata: bool,
    sync: Option<SyncTrigger>,
}

impl Work {
    fn is_empty(&self) -> bool {
        !self.metadata && self.sync.is_none()
    }
}

/// A failure of the daemon itself for one workspace (no credentials stored, a client that
/// cannot be built, a store error): nothing is recorded in the log, the daemon retries with
/// the policy's backoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SchedulerError {
    /// What went wrong and what to do.
    pub message: String,
    /// Consecutive failures.
    pub failures: u32,
    /// When the daemon tries again.
    pub retry_at: DateTime<Utc>,
}

/// One workspace as the scheduler keeps it.
struct Entry {
    state: Workspace,
    version: u64,
    connected_at: Option<DateTime<Utc>>,
    /// Bumped by every connection change; the cached client belongs to one epoch.
    connection_epoch: u64,
    client: Option<(u64, Arc<dyn MdmClient>)>,
    running: bool,
    lease_held: bool,
    local: Option<SchedulerError>,
    metadata_failures: u32,
    metadata_retry_at: Option<DateTime<Utc>>,
    lease_retry_at: Option<DateTime<Utc>>,
    /// `(version, a device never checked, earliest check + max age)` for T5.
    metadata_cache: Option<(u64, bool, Option<DateTime<Utc>>)>,
}

impl Entry {
    fn new() -> Self {
        Self {
            state: Workspace::new(),
            version: 0,
            connected_at: None,
            connection_epoch: 0,
            client: None,
            running: false,
            lease_held: false,
            local: None,
            metadata_failures: 0,
            metadata_retry_at: None,
            lease_retry_at: None,
            metadata_cache: None,
        }
    }

    /// [`SyncPolicy::metadata_next_due`], with the per-device scan cached per folded version (every round
    /// asks; the devices only change with new events).
    fn metadata_due_at(
        &mut self,
        policy: &SyncPolicy,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.state.connection()?;
        if self.metadata_cache.map(|c| c.0) != Some(self.version) {
            let mut unchecked = false;
            let mut earliest: Option<DateTime<Utc>> = None;
            for d in self.state.devices().values() {
                if d.serial_number.is_none() {
                    continue;
                }
                match d.metadata_checked_at {
                    None => unchecked = true,
                    Some(at) => {
                        let due = at + policy.metadata_max_age;
                        earliest = Some(earliest.map_or(due, |e| e.min(due)));
                    }
                }
            }
            self.metadata_cache = Some((self.version, unchecked, earliest));
        }
        let (_, unchecked, earliest) = self.metadata_cache?;
        if unchecked {
            Some(earliest.map_or(now, |e| e.min(now)))
        } else {
            earliest
        }
    }

    fn due(&mut self, policy: &SyncPolicy, now: DateTime<Utc>, metadata_enabled: bool) -> Work {
        let metadata = metadata_enabled
            && self.metadata_retry_at.is_none_or(|t| t <= now)
            && self.metadata_due_at(policy, now).is_some_and(|t| t <= now);
        Work {
            metadata,
            sync: sync_due(&self.state, self.connected_at, policy, now),
        }
    }

    fn reset_backoffs(&mut self) {
        self.local = None;
        self.metadata_failures = 0;
        self.metadata_retry_at = None;
        self.lease_retry_at = None;
    }
}

#[derive(Default)]
struct State {
    checkpoint: Position,
    loaded: bool,
    workspaces: BTreeMap<WorkspaceId, Entry>,
}

impl State {
    /// Folds one recorded event into its workspace, once (the tail and per-workspace
    /// catch-ups both read; whoever is first applies).
    fn apply(&mut self, r: &RecordedEvent, metrics: &Metrics) {
        let id = r.envelope.workspace;
        let live = self.loaded;
        let e = self.workspaces.entry(id).or_insert_with(Entry::new);
        if r.stream_version <= e.version {
            return;
        }
        e.state.apply(&r.envelope.event);
        e.version = r.stream_version;
        match &r.envelope.event {
            Event::WorkspaceCreated { name, plan, .. } if live => {
                info!(workspace = %id, name = %name, plan = ?plan, "picked up a new workspace");
            }
            Event::ProviderConnected { provider, .. } => {
                e.connected_at = Some(r.envelope.meta.recorded_at);
                e.connection_epoch += 1;
                e.reset_backoffs();
                if live {
                    if e.running {
                        metrics.record_coalesced();
                    }
                    info!(workspace = %id, provider = provider.slug(), "provider connected: syncing at once (T3)");
                }
            }
            Event::CredentialsChanged { provider, .. } => {
                e.connection_epoch += 1;
                e.reset_backoffs();
                if live {
                    info!(workspace = %id, provider = provider.slug(), "credentials changed: new client; device metadata due (C4)");
                }
            }
            Event::ProviderDisconnected { provider } => {
                e.connection_epoch += 1;
                e.client = None;
                e.reset_backoffs();
                if live {
                    info!(workspace = %id, provider = provider.slug(), "provider disconnected");
                }
            }
            _ => {}
        }
    }
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEnd {
    /// A sync ran (whatever its result; a metadata refresh may have run before it).
    Synced(SyncOutcome),
    /// Only a metadata refresh ran.
    MetadataOnly(Result<MetadataReport, String>),
    /// Nothing was due after a fresh read (another process did it meanwhile).
    NothingDue,
    /// Another process holds the workspace's sync lease (T4): it is syncing it now.
    LeaseHeld,
    /// The daemon could not run it (see [`SchedulerError`]); nothing appended.
    Error(String),
    /// It ran past `sync_timeout`, or lost its lease; abandoned, nothing appended.
    TimedOut,
    /// Abandoned at shutdown before it started.
    Abandoned,
}

/// Why a manual trigger was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// No such workspace in the store.
    #[error("workspace {0} does not exist")]
    UnknownWorkspace(WorkspaceId),
    /// T4: a sync of the workspace is queued or running in this daemon; the trigger is folded
    /// into it.
    #[error(
        "a sync of this workspace is already queued or running; this trigger is folded into it (T4)"
    )]
    Running,
    /// The policy refuses it (G1, not connected, T2 cooldown).
    #[error("{0}")]
    Refused(Refusal),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down; try again when it is back")]
    ShuttingDown,
    /// The store could not be read.
    #[error("the event store could not be read: {0}")]
    Store(String),
}

/// A workspace's status, as `GET /workspaces/{id}` shows it (the CLI's `status` document plus
/// the daemon's view).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkspaceStatus {
    /// The workspace.
    pub id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// The connected provider.
    pub provider: Option<Provider>,
    /// The last sync, whatever its outcome.
    pub last_sync: Option<LastSync>,
    /// The last failure, shown until the next success (G8).
    pub last_error: Option<LastFailure>,
    /// T1/T3: when the next automatic sync is due (`null`: it never syncs, G1 or no MDM).
    pub next_scheduled_at: Option<DateTime<Utc>>,
    /// T2: when a manual sync is allowed (`null`: now).
    pub manual_allowed_at: Option<DateTime<Utc>>,
    /// G11: a sync waiting for an operator's confirmation.
    pub held: Option<HeldView>,
    /// A sync of it is queued or running in this daemon.
    pub running: bool,
    /// Failed syncs since the last success (the backoff of decision 0009).
    pub consecutive_failures: u32,
    /// T5: when the next device falls due for a metadata refresh.
    pub metadata_next_due: Option<DateTime<Utc>>,
    /// A failure of the daemon itself for this workspace, if any.
    pub scheduler_error: Option<SchedulerError>,
}

/// A held sync (G11) as shown in a status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeldView {
    /// The held sync: confirm it with `POST /workspaces/{id}/sync?confirm=SYNC_ID`.
    pub sync_id: SyncId,
    /// Why, in words.
    pub reason: String,
    /// Why, structured.
    pub detail: HoldReason,
}

/// One line of `GET /workspaces`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkspaceSummary {
    /// The workspace.
    pub id: WorkspaceId,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// The connected provider.
    pub provider: Option<Provider>,
    /// When the next automatic sync is due.
    pub next_scheduled_at: Option<DateTime<Utc>>,
    /// A sync of it is queued or running in this daemon.
    pub running: bool,
}

/// What shutting down did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs that were queued or running when shutdown began.
    pub in_flight: usize,
    /// Jobs abandoned after the grace period (nothing of them appended).
    pub abandoned: usize,
}

/// What the scheduler works with.
pub struct SchedulerDeps {
    /// The store (log, projections, leases).
    pub store: SqliteEventStore,
    /// The credential vault.
    pub vault: SqliteVault,
    /// The time (the system clock in production, a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Sync ids.
    pub ids: Arc<dyn IdGenerator>,
    /// Builds MDM clients.
    pub factory: Arc<dyn ClientFactory>,
    /// Where counters go.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for SchedulerDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerDeps")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: SqliteEventStore,
    vault: SqliteVault,
    clock: SharedClock,
    factory: Arc<dyn ClientFactory>,
    metrics: Arc<Metrics>,
    service: Service,
    policy: SyncPolicy,
    config: SchedulerConfig,
    global: Arc<Semaphore>,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    state: Mutex<State>,
    tail_lock: tokio::sync::Mutex<()>,
    jobs: Mutex<JoinSet<()>>,
    running: watch::Sender<usize>,
    stopping: AtomicBool,
}

/// The scheduler. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("instance", &self.inner.config.instance_id)
            .finish_non_exhaustive()
    }
}

/// Decrements the running-job count when a job ends or is dropped (aborted).
struct RunningGuard {
    inner: Arc<Inner>,
    workspace: WorkspaceId,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Some(e) = lock(&self.inner.state).workspaces.get_mut(&self.workspace) {
            e.running = false;
        }
        self.inner.running.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Scheduler {
    /// A scheduler over `deps` with the schedule `policy` and limits `config`. Call
    /// [`Scheduler::poll_log`] (or [`Scheduler::run`]) to load the workspaces.
    pub fn new(deps: SchedulerDeps, policy: SyncPolicy, config: SchedulerConfig) -> Self {
        let clock = SharedClock(deps.clock);
        let service = SyncService::new(deps.store.clone(), clock.clone(), SharedIds(deps.ids))
            .with_policy(policy.clone());
        let (running, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                store: deps.store,
                vault: deps.vault,
                clock,
                factory: deps.factory,
                metrics: deps.metrics,
                service,
                global: Arc::new(Semaphore::new(config.concurrency.max(1))),
                policy,
                config,
                hosts: Mutex::new(HashMap::new()),
                state: Mutex::new(State::default()),
                tail_lock: tokio::sync::Mutex::new(()),
                jobs: Mutex::new(JoinSet::new()),
                running,
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// The schedule policy.
    pub fn policy(&self) -> &SyncPolicy {
        &self.inner.policy
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The use cases the scheduler runs (same store, clock and policy).
    pub fn service(&self) -> &Service {
        &self.inner.service
    }

    /// Reads the log after the checkpoint and folds every event into its workspace (new
    /// workspaces included). Returns how many events were read.
    pub async fn poll_log(&self) -> Result<usize, mdmsync_core::StoreError> {
        let inner = &self.inner;
        let _tail = inner.tail_lock.lock().await;
        let mut total = 0;
        loop {
            let after = lock(&inner.state).checkpoint;
            let page = inner.store.read_all(after, TAIL_PAGE).await?;
            let n = page.len();
            {
                let mut st = lock(&inner.state);
                let live = st.loaded;
                for r in &page {
                    st.apply(r, &inner.metrics);
                    if live {
                        inner.metrics.record_event(r.envelope.event.event_type());
                    }
                    st.checkpoint = r.position;
                }
            }
            total += n;
            if n < TAIL_PAGE {
                break;
            }
        }
        let mut st = lock(&inner.state);
        inner.metrics.set_log_position(st.checkpoint.0);
        if !st.loaded {
            st.loaded = true;
            info!(
                workspaces = st.workspaces.len(),
                position = st.checkpoint.0,
                "loaded the event log"
            );
        }
        Ok(total)
    }

    /// One round: tail the log, start every due job, update the gauges. Returns how many
    /// jobs were started.
    pub async fn tick(&self) -> usize {
        if let Err(e) = self.poll_log().await {
            self.inner.metrics.record_tail_error();
            warn!(error = %e, "reading the event log failed; retrying next round");
        }
        self.reap();
        self.dispatch_due()
    }

    /// Starts a job for every workspace with due work that has none queued or running and
    /// is not backing off. Returns how many were started.
    pub fn dispatch_due(&self) -> usize {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut started = Vec::new();
        let (count, due, metadata_due, position) = {
            let mut st = lock(&inner.state);
            let stopping = inner.stopping.load(Ordering::SeqCst);
            let (mut due, mut metadata_due) = (0u64, 0u64);
            for (id, e) in st.workspaces.iter_mut() {
                if e.state.id().is_none() {
                    continue;
                }
                let work = e.due(&inner.policy, now, inner.config.metadata);
                due += u64::from(work.sync.is_some());
                metadata_due += u64::from(work.metadata);
                if work.is_empty() || e.running || stopping {
                    continue;
                }
                if e.local.as_ref().is_some_and(|l| l.retry_at > now)
                    || e.lease_retry_at.is_some_and(|t| t > now)
                {
                    continue;
                }
                e.running = true;
                started.push(*id);
            }
            (st.workspaces.len(), due, metadata_due, st.checkpoint.0)
        };
        for id in &started {
            self.spawn(*id, JobKind::Scheduled, None);
        }
        inner.metrics.set_gauges(
            count as u64,
            due,
            metadata_due,
            *inner.running.borrow() as u64,
            position,
        );
        started.len()
    }

    /// T2/T4: a manual sync (or a forced one, or a confirmation, by the request's trigger).
    /// Refused at once if the workspace is unknown, already syncing here, or the policy says
    /// no; otherwise queued, and the receiver gets the job's end.
    pub async fn trigger(
        &self,
        workspace: WorkspaceId,
        request: SyncRequest,
    ) -> Result<oneshot::Receiver<JobEnd>, TriggerError> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            return Err(TriggerError::ShuttingDown);
        }
        self.poll_log()
            .await
            .map_err(|e| TriggerError::Store(e.to_string()))?;
        let now = self.inner.clock.now();
        {
            let mut st = lock(&self.inner.state);
            let e = st
                .workspaces
                .get_mut(&workspace)
                .filter(|e| e.state.id().is_some())
                .ok_or(TriggerError::UnknownWorkspace(workspace))?;
            if e.running {
                self.inner.metrics.record_coalesced();
                return Err(TriggerError::Running);
            }
            if let Admission::Refused(r) =
                self.inner
                    .policy
                    .admit(&e.state, request.trigger, now, false)
            {
                self.inner.metrics.record_sync(SyncLabel::Refused, "", None);
                return Err(TriggerError::Refused(r));
            }
            e.running = true;
        }
        let (tx, rx) = oneshot::channel();
        self.spawn(workspace, JobKind::Manual(request), Some(tx));
        Ok(rx)
    }

    /// The workspaces, by name.
    pub fn workspaces(&self) -> Vec<WorkspaceSummary> {
        let now = self.inner.clock.now();
        let st = lock(&self.inner.state);
        let mut out: Vec<WorkspaceSummary> = st
            .workspaces
            .iter()
            .filter(|(_, e)| e.state.id().is_some())
            .map(|(id, e)| WorkspaceSummary {
                id: *id,
                name: e.state.name().to_owned(),
                plan: e.state.plan(),
                provider: e.state.connection().map(|c| c.provider),
                next_scheduled_at: next_sync_at(&e.state, e.connected_at, &self.inner.policy, now),
                running: e.running,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }

    /// One workspace's status, or `None` if it does not exist.
    pub fn status(&self, workspace: WorkspaceId) -> Option<WorkspaceStatus> {
        let now = self.inner.clock.now();
        let policy = &self.inner.policy;
        let st = lock(&self.inner.state);
        let e = st.workspaces.get(&workspace)?;
        let ws = &e.state;
        ws.id()?;
        Some(WorkspaceStatus {
            id: workspace,
            name: ws.name().to_owned(),
            plan: ws.plan(),
            provider: ws.connection().map(|c| c.provider),
            last_sync: ws.last_sync().cloned(),
            last_error: ws.last_failure().cloned(),
            next_scheduled_at: next_sync_at(ws, e.connected_at, policy, now),
            manual_allowed_at: policy.manual_allowed_at(ws, now),
            held: ws.held().map(|h| HeldView {
                sync_id: h.sync_id,
                reason: h.reason.to_string(),
                detail: h.reason.clone(),
            }),
            running: e.running,
            consecutive_failures: ws.consecutive_failures(),
            metadata_next_due: policy.metadata_next_due(ws, now),
            scheduler_error: e.local.clone(),
        })
    }

    /// Whether the workspace exists (as far as the log has been read).
    pub fn exists(&self, workspace: WorkspaceId) -> bool {
        lock(&self.inner.state)
            .workspaces
            .get(&workspace)
            .is_some_and(|e| e.state.id().is_some())
    }

    /// The position of the last event read.
    pub fn checkpoint(&self) -> Position {
        lock(&self.inner.state).checkpoint
    }

    /// Jobs queued or running.
    pub fn running_jobs(&self) -> usize {
        *self.inner.running.borrow()
    }

    /// Waits until no job is queued or running.
    pub async fn wait_idle(&self) {
        let mut rx = self.inner.running.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
        self.reap();
    }

    /// Ticks every `poll_interval` until `shutdown` turns true (or its sender is dropped).
    /// Does not wait for running jobs: see [`Scheduler::shutdown`].
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.inner.config.poll_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = interval.tick() => {
                    self.tick().await;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Stops taking work and waits for queued and running jobs for up to `grace` (or until
    /// `abandon_now` completes: a second signal); then abandons the rest. An abandoned job is
    /// dropped before its append, so it leaves nothing in the log (an append already under
    /// way is one transaction and completes whole). Leases of abandoned jobs are released.
    pub async fn shutdown(
        &self,
        grace: Duration,
        abandon_now: impl std::future::Future<Output = ()>,
    ) -> ShutdownReport {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        // Jobs still waiting for a slot give up at once.
        inner.global.close();
        for s in lock(&inner.hosts).values() {
            s.close();
        }
        let mut jobs = std::mem::take(&mut *lock(&inner.jobs));
        let in_flight = *inner.running.borrow();
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline, abandon_now);
        let mut cut_short = false;
        loop {
            tokio::select! {
                next = jobs.join_next() => {
                    if next.is_none() {
                        break;
                    }
                }
                _ = &mut deadline => {
                    cut_short = true;
                    break;
                }
                _ = &mut abandon_now => {
                    cut_short = true;
                    break;
                }
            }
        }
        let mut abandoned = 0;
        if cut_short {
            abandoned = jobs.len();
            jobs.abort_all();
            while jobs.join_next().await.is_some() {}
        }
        let held: Vec<WorkspaceId> = {
            let mut st = lock(&inner.state);
            st.workspaces
                .iter_mut()
                .filter(|(_, e)| e.lease_held)
                .map(|(id, e)| {
                    e.lease_held = false;
                    *id
                })
                .collect()
        };
        for id in held {
            inner.metrics.record_sync(SyncLabel::Abandoned, "", None);
            warn!(workspace = %id, "sync abandoned at shutdown; nothing of it was appended");
            inner.release_lease(id).await;
        }
        ShutdownReport {
            in_flight,
            abandoned,
        }
    }

    fn reap(&self) {
        let mut jobs = lock(&self.inner.jobs);
        while let Some(done) = jobs.try_join_next() {
            if let Err(e) = done {
                if e.is_panic() {
                    warn!(error = %e, "a sync job panicked");
                }
            }
        }
    }

    fn spawn(&self, workspace: WorkspaceId, kind: JobKind, reply: Option<oneshot::Sender<JobEnd>>) {
        let inner = self.inner.clone();
        inner.running.send_modify(|n| *n += 1);
        let guard = RunningGuard {
            inner: inner.clone(),
            workspace,
        };
        let epoch = lock(&inner.state)
            .workspaces
            .get(&workspace)
            .map_or(0, |e| e.connection_epoch);
        lock(&self.inner.jobs).spawn(async move {
            let _guard = guard;
            let end = inner.run_job(workspace, kind).await;
            inner.finish(workspace, &end, epoch).await;
            if let Some(reply) = reply {
                let _ = reply.send(end);
            }
        });
    }
}

/// What a job was started for.
#[derive(Clone, Debug)]
enum JobKind {
    /// Whatever is due (T1, T3, T5), decided again after taking the lease.
    Scheduled,
    /// This sync request (T2, forced, confirmation).
    Manual(SyncRequest),
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn host_semaphore(&self, host: &str) -> Arc<Semaphore> {
        lock(&self.hosts)
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_host_concurrency.max(1))))
            .clone()
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteEventStore) -> mdmsync_sqlite::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("database task failed: {e}")),
        }
    }

    async fn acquire_lease(&self, workspace: WorkspaceId) -> Result<bool, String> {
        let holder = self.config.instance_id.clone();
        let now = self.now();
        let ttl = delta(self.config.lease_ttl);
        self.blocking(move |s| s.try_acquire_sync_lease(workspace, &holder, now, ttl))
            .await
    }

    async fn release_lease(&self, workspace: WorkspaceId) {
        let holder = self.config.instance_id.clone();
        if let Err(e) = self
            .blocking(move |s| s.release_sync_lease(workspace, &holder))
            .await
        {
            warn!(workspace = %workspace, error = %e, "releasing the sync lease failed; it lapses on its own");
        }
    }

    /// Catches one workspace up with its stream (after taking the lease, and after a job).
    async fn refresh_entry(&self, workspace: WorkspaceId) -> Result<(), String> {
        loop {
            let after = lock(&self.state)
                .workspaces
                .get(&workspace)
                .map_or(0, |e| e.version);
            let page = self
                .store
                .read_stream(workspace, after, STREAM_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let n = page.len();
            {
                let mut st = lock(&self.state);
                for r in &page {
                    st.apply(r, &self.metrics);
                }
            }
            if n < STREAM_PAGE {
                return Ok(());
            }
        }
    }

    async fn acquire_slot(sem: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        sem.clone().acquire_owned().await.ok()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    async fn run_job(self: &Arc<Self>, workspace: WorkspaceId, kind: JobKind) -> JobEnd {
        let Some(_global) = Self::acquire_slot(&self.global).await else {
            return JobEnd::Abandoned;
        };
        if self.stopping() {
            return JobEnd::Abandoned;
        }
        let connection = lock(&self.state)
            .workspaces
            .get(&workspace)
            .and_then(|e| e.state.connection().cloned());
        let Some(connection) = connection else {
            return JobEnd::NothingDue;
        };
        let credentials = match self.vault.load(workspace).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return JobEnd::Error(
                    "no credentials are stored for this workspace; connect it again (mdmsync connect)"
                        .into(),
                );
            }
            Err(e) => return JobEnd::Error(e.to_string()),
        };
        if credentials.provider() != connection.provider {
            return JobEnd::Error(format!(
                "the stored credentials are for {} but the workspace is connected to {}; connect it again",
                credentials.provider().display_name(),
                connection.provider.display_name()
            ));
        }
        let host = host_key(
            connection.provider,
            &connection.settings,
            Some(&credentials),
        );
        let Some(_host) = Self::acquire_slot(&self.host_semaphore(&host)).await else {
            return JobEnd::Abandoned;
        };
        if self.stopping() {
            return JobEnd::Abandoned;
        }
        match self.acquire_lease(workspace).await {
            Ok(true) => {}
            Ok(false) => {
                self.metrics.record_lease_conflict();
                debug!(workspace = %workspace, "another process holds the sync lease (T4)");
                return JobEnd::LeaseHeld;
            }
            Err(e) => return JobEnd::Error(format!("taking the sync lease failed: {e}")),
        }
        if let Some(e) = lock(&self.state).workspaces.get_mut(&workspace) {
            e.lease_held = true;
        }
        let renew = async {
            let period = (self.config.lease_ttl / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(period).await;
                match self.acquire_lease(workspace).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        warn!(workspace = %workspace, error = %e, "renewing the sync lease failed")
                    }
                }
            }
        };
        let end = tokio::select! {
            end = self.leased_work(workspace, kind, &host) => end,
            () = renew => {
                warn!(workspace = %workspace, "lost the sync lease to another process; abandoned the sync, nothing appended");
                JobEnd::TimedOut
            }
        };
        self.release_lease(workspace).await;
        if let Some(e) = lock(&self.state).workspaces.get_mut(&workspace) {
            e.lease_held = false;
        }
        end
    }

    async fn leased_work(
        self: &Arc<Self>,
        workspace: WorkspaceId,
        kind: JobKind,
        host: &str,
    ) -> JobEnd {
        // Fresh state: another process may have done the work while we waited for the lease.
        if let Err(e) = self.refresh_entry(workspace).await {
            return JobEnd::Error(e);
        }
        let now = self.now();
        let (work, cached, epoch, connection) = {
            let mut st = lock(&self.state);
            let Some(e) = st.workspaces.get_mut(&workspace) else {
                return JobEnd::NothingDue;
            };
            let work = match &kind {
                JobKind::Scheduled => e.due(&self.policy, now, self.config.metadata),
                JobKind::Manual(r) => Work {
                    metadata: false,
                    sync: Some(r.trigger),
                },
            };
            let cached = e
                .client
                .as_ref()
                .filter(|(epoch, _)| *epoch == e.connection_epoch)
                .map(|(_, c)| c.clone());
            (
                work,
                cached,
                e.connection_epoch,
                e.state.connection().cloned(),
            )
        };
        if work.is_empty() {
            return JobEnd::NothingDue;
        }
        let Some(connection) = connection else {
            return JobEnd::NothingDue;
        };
        let client = match cached {
            Some(c) => c,
            None => {
                // Read after the fresh state, so new credentials (C4) are never cached under
                // an old connection or the other way round.
                let credentials = match self.vault.load(workspace).await {
                    Ok(Some(c)) if c.provider() == connection.provider => c,
                    Ok(_) => {
                        return JobEnd::Error(format!(
                            "no {} credentials are stored for this workspace; connect it again (mdmsync connect)",
                            connection.provider.display_name()
                        ));
                    }
                    Err(e) => return JobEnd::Error(e.to_string()),
                };
                let built = self.factory.connect(
                    workspace,
                    connection.provider,
                    &credentials,
                    &connection.settings,
                );
                match built {
                    Ok(c) => {
                        if let Some(e) = lock(&self.state).workspaces.get_mut(&workspace) {
                            e.client = Some((epoch, c.clone()));
                        }
                        c
                    }
                    Err(message) => {
                        return JobEnd::Error(format!(
                            "cannot set up the {} client: {message}",
                            connection.provider.display_name()
                        ));
                    }
                }
            }
        };

        let mut metadata = None;
        if work.metadata {
            let started = Instant::now();
            let result = tokio::time::timeout(
                self.config.sync_timeout,
                self.service
                    .refresh_metadata(workspace, &*client, false, Actor::Scheduler),
            )
            .await;
            let result = match result {
                Ok(Ok(report)) => Ok(report),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the metadata refresh ran past sync_timeout_secs and was abandoned; nothing was recorded".into()),
            };
            let failure_delay = {
                let mut st = lock(&self.state);
                st.workspaces.get_mut(&workspace).map(|e| match &result {
                    Ok(_) => {
                        e.metadata_failures = 0;
                        e.metadata_retry_at = None;
                        None
                    }
                    Err(_) => {
                        e.metadata_failures += 1;
                        let d = self.policy.failure_delay(e.metadata_failures);
                        e.metadata_retry_at = Some(self.now() + d);
                        Some(d)
                    }
                })
            };
            self.metrics.record_metadata(result.is_ok());
            match &result {
                Ok(r) => info!(
                    workspace = %workspace, host, refreshed = r.refreshed, not_found = r.not_found,
                    skipped = r.skipped, ambiguous = r.ambiguous,
                    took_ms = started.elapsed().as_millis() as u64, "device metadata refreshed (T5)"
                ),
                Err(e) => warn!(
                    workspace = %workspace, host, error = %e,
                    retry_in_secs = failure_delay.flatten().map(|d| d.num_seconds()),
                    "device metadata refresh failed; nothing was recorded"
                ),
            }
            metadata = Some(result);
        }

        let Some(trigger) = work.sync else {
            return JobEnd::MetadataOnly(metadata.unwrap_or_else(|| Ok(MetadataReport::default())));
        };
        if self.stopping() {
            return JobEnd::Abandoned;
        }
        let request = match kind {
            JobKind::Manual(r) => r,
            JobKind::Scheduled => SyncRequest::new(trigger, Actor::Scheduler),
        };
        let actor = request.actor.to_string();
        let started = Instant::now();
        let result = tokio::time::timeout(
            self.config.sync_timeout,
            self.service.sync(workspace, &*client, request),
        )
        .await;
        let took = started.elapsed();
        match result {
            Ok(Ok(outcome)) => {
                self.record_outcome(workspace, host, &actor, trigger, &outcome, took);
                JobEnd::Synced(outcome)
            }
            Ok(Err(e)) => {
                self.metrics.record_sync(SyncLabel::Error, "", None);
                JobEnd::Error(service_error_message(&e))
            }
            Err(_) => {
                self.metrics.record_sync(SyncLabel::TimedOut, "", None);
                warn!(workspace = %workspace, host, "sync ran past sync_timeout_secs; abandoned, nothing appended");
                JobEnd::TimedOut
            }
        }
    }

    fn record_outcome(
        &self,
        workspace: WorkspaceId,
        host: &str,
        actor: &str,
        trigger: SyncTrigger,
        outcome: &SyncOutcome,
        took: Duration,
    ) {
        let took_ms = took.as_millis() as u64;
        let sync_id = outcome.sync_id.map(|s| s.to_string()).unwrap_or_default();
        match &outcome.result {
            SyncResult::Succeeded { report } => {
                self.metrics
                    .record_sync(SyncLabel::Succeeded, "", Some(took));
                info!(
                    workspace = %workspace, host, actor, trigger = ?trigger, sync_id, took_ms,
                    created = report.created, renamed = report.renamed, detached = report.detached,
                    members_added = report.members_added, members_removed = report.members_removed,
                    unmatched = report.unmatched_members, "sync succeeded"
                );
            }
            SyncResult::Failed {
                error_kind,
                message,
            } => {
                self.metrics
                    .record_sync(SyncLabel::Failed, error_kind.as_str(), Some(took));
                warn!(
                    workspace = %workspace, host, actor, trigger = ?trigger, sync_id, took_ms,
                    error_kind = error_kind.as_str(), detail = %message,
                    "sync failed; groups unchanged (G8), retrying with backoff"
                );
            }
            SyncResult::Held { reason, .. } => {
                self.metrics.record_sync(SyncLabel::Held, "", Some(took));
                warn!(
                    workspace = %workspace, host, actor, trigger = ?trigger, sync_id, took_ms,
                    reason = %reason, "sync held by the safety thresholds (G11); an operator must confirm it"
                );
            }
            SyncResult::Refused { refusal } => {
                self.metrics.record_sync(SyncLabel::Refused, "", None);
                info!(workspace = %workspace, actor, trigger = ?trigger, refusal = %refusal, "sync refused");
            }
            SyncResult::Coalesced => {
                self.metrics.record_coalesced();
            }
        }
    }

    /// Bookkeeping after a job: catch the workspace up with what it appended, and set or
    /// clear the daemon's own backoff.
    async fn finish(&self, workspace: WorkspaceId, end: &JobEnd, epoch_at_start: u64) {
        if let Err(e) = self.refresh_entry(workspace).await {
            warn!(workspace = %workspace, error = %e, "reading the workspace after its sync failed");
        }
        let now = self.now();
        let mut st = lock(&self.state);
        let Some(e) = st.workspaces.get_mut(&workspace) else {
            return;
        };
        match end {
            // The connection changed while the job ran (a provider change mid-sync makes the
            // old sync fail): not the daemon's fault, and the new connection is due at once.
            JobEnd::Error(message) if e.connection_epoch != epoch_at_start => {
                info!(workspace = %workspace, error = %message, "the connection changed during the job; starting over with the new one");
                e.local = None;
            }
            JobEnd::Error(message) => {
                let failures = e.local.as_ref().map_or(0, |l| l.failures) + 1;
                let retry_at = now + self.policy.failure_delay(failures);
                warn!(workspace = %workspace, error = %message, failures, retry_at = %retry_at, "the daemon could not run this workspace's sync; nothing was recorded");
                e.local = Some(SchedulerError {
                    message: message.clone(),
                    failures,
                    retry_at,
                });
            }
            JobEnd::TimedOut => {
                let failures = e.local.as_ref().map_or(0, |l| l.failures) + 1;
                e.local = Some(SchedulerError {
                    message: "the last sync ran past sync_timeout_secs (or lost its lease) and was abandoned; nothing was recorded".into(),
                    failures,
                    retry_at: now + self.policy.failure_delay(failures),
                });
            }
            JobEnd::LeaseHeld => {
                e.lease_retry_at = Some(now + delta(self.config.lease_ttl / 2));
            }
            JobEnd::Synced(_) | JobEnd::MetadataOnly(_) | JobEnd::NothingDue => {
                e.local = None;
                e.lease_retry_at = None;
            }
            JobEnd::Abandoned => {}
        }
    }
}

/// A service error as the status page and the API show it.
fn service_error_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Domain(d) => format!("{d}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdmsync_core::testkit::{connected_workspace, t0};
    use mdmsync_core::{Command, Context};

    fn pro_connected() -> Workspace {
        Workspace::from_events(connected_workspace(Provider::Jamf, 2).iter())
    }

    #[test]
    fn t1_never_synced_is_due_now_then_interval_plus_jitter() {
        let policy = SyncPolicy::default();
        let mut ws = pro_connected();
        assert_eq!(
            sync_due(&ws, None, &policy, t0()),
            Some(SyncTrigger::Scheduled)
        );
        let ctx = Context::sync(
            t0(),
            Actor::Scheduler,
            mdmsync_core::testkit::sync_id(1),
            SyncTrigger::Scheduled,
        );
        for e in ws
            .decide(
                Command::ApplySnapshot {
                    snapshot: mdmsync_core::Snapshot::new(Provider::Jamf),
                    trigger: SyncTrigger::Scheduled,
                    started_at: t0(),
                    confirm: None,
                },
                &ctx,
            )
            .unwrap()
        {
            ws.apply(&e);
        }
        let id = ws.id().unwrap();
        let next = t0() + policy.interval + policy.jitter(id);
        assert_eq!(next_sync_at(&ws, None, &policy, t0()), Some(next));
        assert_eq!(
            sync_due(&ws, None, &policy, next - TimeDelta::seconds(1)),
            None
        );
        assert_eq!(
            sync_due(&ws, None, &policy, next),
            Some(SyncTrigger::Scheduled)
        );
        // T3: a provider connected after that sync makes it due at once.
        let later = t0() + TimeDelta::minutes(1);
        assert_eq!(
            sync_due(&ws, Some(later), &policy, later),
            Some(SyncTrigger::ProviderChanged)
        );
        assert_eq!(next_sync_at(&ws, Some(later), &policy, later), Some(later));
        // …but not once a sync started after it.
        assert_eq!(sync_due(&ws, Some(t0()), &policy, later), None);
    }

    #[test]
    fn g1_free_plan_never_syncs_but_t5_metadata_still_runs() {
        let policy = SyncPolicy::default();
        let mut ws = pro_connected();
        let ctx = Context::command(t0(), Actor::Operator("t".into()), "set_plan");
        for e in ws
            .decide(Command::SetPlan { plan: Plan::Free }, &ctx)
            .unwrap()
        {
            ws.apply(&e);
        }
        assert_eq!(sync_due(&ws, Some(t0()), &policy, t0()), None);
        assert_eq!(next_sync_at(&ws, None, &policy, t0()), None);
        // The testkit workspace has metadata checked at t0: due a day later (M2, M5).
        assert_eq!(
            policy.metadata_next_due(&ws, t0()),
            Some(t0() + policy.metadata_max_age)
        );
    }

    #[test]
    fn t5_cached_metadata_due_time_equals_the_pure_one() {
        let policy = SyncPolicy::default();
        let mut e = Entry::new();
        e.state = pro_connected();
        e.version = 1;
        let later = t0() + TimeDelta::hours(30);
        assert_eq!(
            e.metadata_due_at(&policy, later),
            policy.metadata_next_due(&e.state, later)
        );
        // A new device, never checked: due now, and the cache sees it with the new version.
        let ctx = Context::command(t0(), Actor::Operator("t".into()), "register");
        for ev in e
            .state
            .decide(
                Command::RegisterDevice {
                    device_id: mdmsync_core::testkit::device(7),
                    serial_number: Some("S7".into()),
                    name: None,
                },
                &ctx,
            )
            .unwrap()
        {
            e.state.apply(&ev);
        }
        e.version = 2;
        for now in [t0(), later] {
            assert_eq!(
                e.metadata_due_at(&policy, now),
                policy.metadata_next_due(&e.state, now),
                "{now}"
            );
        }
        assert_eq!(e.metadata_due_at(&policy, t0()), Some(t0()));
    }

    #[test]
    fn m6_devices_without_serial_never_make_metadata_due() {
        let policy = SyncPolicy::default();
        let mut ws = Workspace::from_events(connected_workspace(Provider::Jamf, 0).iter());
        let ctx = Context::command(t0(), Actor::Operator("t".into()), "register");
        for e in ws
            .decide(
                Command::RegisterDevice {
                    device_id: mdmsync_core::testkit::device(9),
                    serial_number: None,
                    name: Some("BYOD".into()),
                },
                &ctx,
            )
            .unwrap()
        {
            ws.apply(&e);
        }
        assert_eq!(policy.metadata_next_due(&ws, t0()), None);
    }
}
