//! `SyncService`: the use cases, runtime-agnostic and generic over the ports. It loads a
//! workspace from its stream, asks the MDM, lets the aggregate decide, and appends the result
//! atomically with optimistic concurrency (G10). It never sleeps and never spawns: the host
//! decides when (T1–T5) and how many at once.

use crate::command::Command;
use crate::credentials::Credentials;
use crate::error::MdmError;
use crate::event::{
    Actor, Cause, ConnectionSettings, Event, EventEnvelope, HoldReason, SyncReport, SyncTrigger,
};
use crate::ids::{DeviceId, SyncId, WorkspaceId};
use crate::metadata::{choose_record, metadata_from};
use crate::policy::{Admission, Refusal, SyncPolicy};
use crate::ports::{
    Clock, CredentialCheck, CredentialVault, EventStore, ExpectedVersion, IdGenerator, MdmClient,
    StoreError, VaultError,
};
use crate::reconcile::plan_sync;
use crate::workspace::{Context, DomainError, Workspace};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many times a decision is retried from fresh state after a `Conflict` (G10).
pub const DEFAULT_CONFLICT_RETRIES: u32 = 3;
/// Events read per page when loading a stream.
const PAGE: usize = 10_000;
/// Serials per MDM look-up call in a metadata refresh.
const LOOKUP_CHUNK: usize = 500;

/// A workspace as loaded: state and the stream version it was folded from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The state.
    pub state: Workspace,
    /// The stream version (number of events folded).
    pub version: u64,
}

/// What can go wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The workspace has no events.
    #[error("workspace {0} does not exist; create it first")]
    UnknownWorkspace(WorkspaceId),
    /// A rule refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// C1: the test call failed; nothing was saved.
    #[error("the credential test failed, nothing was saved: {0}")]
    CredentialTest(MdmError),
    /// An MDM call failed (metadata refresh, force sync).
    #[error(transparent)]
    Mdm(MdmError),
    /// G10: other writers kept moving the stream; nothing was appended.
    #[error("gave up after {attempts} attempts: the workspace kept changing underneath; try again")]
    TooManyConflicts {
        /// Attempts made.
        attempts: u32,
    },
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e)
    }
}

/// How a sync request ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SyncResult {
    /// Applied (or, in a dry run, would be).
    Succeeded {
        /// What it did.
        report: SyncReport,
    },
    /// Failed; nothing but `SyncFailed` was appended (G8).
    Failed {
        /// E1 kind.
        error_kind: crate::error::ErrorKind,
        /// The message.
        message: String,
    },
    /// Held by G11; nothing but `SyncHeld` was appended.
    Held {
        /// Why.
        reason: HoldReason,
        /// What it would have done.
        report: SyncReport,
    },
    /// Not started (G1, T2, not connected). Nothing appended.
    Refused {
        /// Why.
        refusal: Refusal,
    },
    /// T4: another sync of this workspace is running; this trigger is folded into it.
    Coalesced,
}

/// A sync request's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncOutcome {
    /// The sync's id (`None` if it never started).
    pub sync_id: Option<SyncId>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub result: SyncResult,
    /// For a dry run, every planned event. For a sync that ran, only its last event (the
    /// `SyncSucceeded`, `SyncFailed` or `SyncHeld` that says how it ended): the rest is in the
    /// store, and copying half a million envelopes to return them would double the memory.
    pub events: Vec<EventEnvelope>,
    /// True for a dry run: nothing was appended.
    pub dry_run: bool,
}

/// A sync request.
#[derive(Clone, Debug)]
pub struct SyncRequest {
    /// What starts it.
    pub trigger: SyncTrigger,
    /// Who asks.
    pub actor: Actor,
    /// Plan only; append nothing.
    pub dry_run: bool,
    /// Confirm this held sync (G11).
    pub confirm: Option<SyncId>,
}

impl SyncRequest {
    /// A request with the given trigger and actor.
    pub fn new(trigger: SyncTrigger, actor: Actor) -> Self {
        Self {
            trigger,
            actor,
            dry_run: false,
            confirm: None,
        }
    }
}

/// What a metadata refresh did (M1, M2, M6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetadataReport {
    /// Devices whose metadata was recorded.
    pub refreshed: u64,
    /// Devices the MDM has no record of.
    pub not_found: u64,
    /// Devices without a serial number (M6: skipped, not an error).
    pub skipped: u64,
    /// Devices whose serial matched several MDM records (M6).
    pub ambiguous: u64,
    /// Devices not due yet (M2).
    pub not_due: u64,
}

/// What connecting did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectOutcome {
    /// What the credential test found (A7).
    pub check: CredentialCheck,
    /// True if the provider was set or changed (C3), false for new credentials of the same one.
    pub provider_changed: bool,
    /// The metadata refresh that followed (C4, M1).
    pub metadata: Option<MetadataReport>,
    /// The sync that followed a provider change (C3), if the plan syncs groups (G1).
    pub sync: Option<SyncOutcome>,
}

/// The use cases over an event store, a clock and an id source.
#[derive(Debug)]
pub struct SyncService<S, C, I> {
    store: S,
    clock: C,
    ids: I,
    policy: SyncPolicy,
    max_retries: u32,
}

impl<S: EventStore, C: Clock, I: IdGenerator> SyncService<S, C, I> {
    /// A service with the default policy.
    pub fn new(store: S, clock: C, ids: I) -> Self {
        Self {
            store,
            clock,
            ids,
            policy: SyncPolicy::default(),
            max_retries: DEFAULT_CONFLICT_RETRIES,
        }
    }

    /// Replaces the schedule policy.
    pub fn with_policy(mut self, policy: SyncPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how many times a conflicting decision is retried (G10).
    pub fn with_conflict_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The policy.
    pub fn policy(&self) -> &SyncPolicy {
        &self.policy
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Folds a workspace's stream (paged).
    pub async fn load(&self, workspace: WorkspaceId) -> Result<Loaded, ServiceError> {
        let mut state = Workspace::new();
        let mut version = 0;
        loop {
            let page = self.store.read_stream(workspace, version, PAGE).await?;
            let n = page.len();
            for e in &page {
                state.apply(&e.envelope.event);
                version = e.stream_version;
            }
            if n < PAGE {
                break;
            }
        }
        Ok(Loaded { state, version })
    }

    /// Loads, fails if the workspace does not exist.
    async fn load_existing(&self, workspace: WorkspaceId) -> Result<Loaded, ServiceError> {
        let loaded = self.load(workspace).await?;
        if loaded.state.id().is_none() {
            return Err(ServiceError::UnknownWorkspace(workspace));
        }
        Ok(loaded)
    }

    /// Decides with `decide` on fresh state and appends atomically; on `Conflict` reloads and
    /// decides again, up to the retry bound (G10). Returns the appended envelopes.
    async fn decide_and_append<F>(
        &self,
        workspace: WorkspaceId,
        ctx: &Context,
        keep: Keep,
        mut decide: F,
    ) -> Result<Vec<EventEnvelope>, ServiceError>
    where
        F: FnMut(&Workspace) -> Result<Vec<Event>, ServiceError> + Send,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let loaded = self.load(workspace).await?;
            let events = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let envelopes = ctx.envelopes(workspace, events);
            let expected = if loaded.version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(loaded.version)
            };
            // The store takes the batch; only what the caller asked to keep is copied first
            // (a sync of 500,000 memberships would otherwise hold every envelope twice).
            let kept = match keep {
                Keep::All => envelopes.clone(),
                Keep::Last => envelopes.last().cloned().into_iter().collect(),
                Keep::None => Vec::new(),
            };
            match self.store.append(workspace, expected, envelopes).await {
                Ok(_) => return Ok(kept),
                Err(StoreError::Conflict { .. }) if attempts <= self.max_retries => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(ServiceError::TooManyConflicts { attempts });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs a user command: decide on fresh state, append, retry on conflict.
    pub async fn execute(
        &self,
        workspace: WorkspaceId,
        command: Command,
        actor: Actor,
    ) -> Result<Vec<EventEnvelope>, ServiceError> {
        let ctx = Context::command(self.clock.now(), actor, command.name());
        let is_create = matches!(command, Command::CreateWorkspace { .. });
        self.decide_and_append(workspace, &ctx, Keep::All, |ws| {
            if !is_create && ws.id().is_none() {
                return Err(ServiceError::UnknownWorkspace(workspace));
            }
            Ok(ws.decide(command.clone(), &ctx)?)
        })
        .await
    }

    /// Runs one sync: admission (G1, T2), fetch, decide, atomic append (G10). A fetch error
    /// appends `SyncFailed` and nothing else (G8). A dry run appends nothing and returns the
    /// planned events.
    pub async fn sync(
        &self,
        workspace: WorkspaceId,
        client: &dyn MdmClient,
        request: SyncRequest,
    ) -> Result<SyncOutcome, ServiceError> {
        let loaded = self.load_existing(workspace).await?;
        let now = self.clock.now();
        if let Admission::Refused(refusal) =
            self.policy
                .admit(&loaded.state, request.trigger, now, false)
        {
            return Ok(SyncOutcome {
                sync_id: None,
                started_at: None,
                result: SyncResult::Refused { refusal },
                events: Vec::new(),
                dry_run: request.dry_run,
            });
        }
        if let Some(conn) = loaded.state.connection() {
            if conn.provider != client.provider() {
                return Err(DomainError::ProviderMismatch {
                    connected: conn.provider,
                    snapshot: client.provider(),
                }
                .into());
            }
        }
        let sync_id = self.ids.new_sync_id();
        let started_at = now;
        let fetched = client.fetch_snapshot().await;
        let finished = self.clock.now();
        let mut ctx = Context::sync(finished, request.actor.clone(), sync_id, request.trigger);
        if let Some(held) = request.confirm {
            ctx.cause = Cause::Confirmation { held_sync: held };
        }
        let command = match fetched {
            Ok(snapshot) => Command::ApplySnapshot {
                snapshot,
                trigger: request.trigger,
                started_at,
                confirm: request.confirm,
            },
            Err(e) => Command::RecordSyncFailure {
                trigger: request.trigger,
                started_at,
                kind: e.kind_or_server_error(),
                message: e.message(),
            },
        };
        // Decides on a state without copying the snapshot (it may hold 500,000 members and
        // is decided again after a conflict, G10).
        let plan = |ws: &Workspace| -> Result<Vec<Event>, ServiceError> {
            Ok(match &command {
                Command::ApplySnapshot {
                    snapshot,
                    trigger,
                    started_at,
                    confirm,
                } => {
                    plan_sync(
                        ws,
                        snapshot,
                        sync_id,
                        *trigger,
                        *started_at,
                        *confirm,
                        finished,
                    )?
                    .events
                }
                other => ws.decide(other.clone(), &ctx)?,
            })
        };
        let events = if request.dry_run {
            ctx.envelopes(workspace, plan(&loaded.state)?)
        } else {
            self.decide_and_append(workspace, &ctx, Keep::Last, plan)
                .await?
        };
        let result = result_of(&events);
        Ok(SyncOutcome {
            sync_id: Some(sync_id),
            started_at: Some(started_at),
            result,
            events,
            dry_run: request.dry_run,
        })
    }

    /// C1, C3, C4: tests the credentials first (nothing saved on failure), saves them to the
    /// vault, records the connection (clearing device metadata, C4), refreshes metadata (M1)
    /// and, when the provider was set or changed on a plan that syncs groups, syncs at once (C3).
    pub async fn connect(
        &self,
        workspace: WorkspaceId,
        client: &dyn MdmClient,
        vault: &dyn CredentialVault,
        credentials: &Credentials,
        settings: ConnectionSettings,
        actor: Actor,
    ) -> Result<ConnectOutcome, ServiceError> {
        let before = self.load_existing(workspace).await?;
        let check = client
            .validate_credentials()
            .await
            .map_err(ServiceError::CredentialTest)?;
        vault.save(workspace, credentials).await?;
        let provider = client.provider();
        let provider_changed = before.state.connection().map(|c| c.provider) != Some(provider);
        self.execute(
            workspace,
            Command::Connect { provider, settings },
            actor.clone(),
        )
        .await?;
        let metadata = Some(
            self.refresh_metadata(workspace, client, false, Actor::System)
                .await?,
        );
        let plan_syncs = self.load(workspace).await?.state.plan().syncs_groups();
        let sync = if provider_changed && plan_syncs {
            Some(
                self.sync(
                    workspace,
                    client,
                    SyncRequest::new(SyncTrigger::ProviderChanged, actor),
                )
                .await?,
            )
        } else {
            None
        };
        Ok(ConnectOutcome {
            check,
            provider_changed,
            metadata,
            sync,
        })
    }

    /// M1, M2, M6: looks up every device that is due (or all, with `force`) by serial, records
    /// the most recently seen match, reports ambiguity and skips devices without a serial. One
    /// atomic append for the whole refresh.
    pub async fn refresh_metadata(
        &self,
        workspace: WorkspaceId,
        client: &dyn MdmClient,
        force: bool,
        actor: Actor,
    ) -> Result<MetadataReport, ServiceError> {
        let loaded = self.load_existing(workspace).await?;
        let now = self.clock.now();
        let mut report = MetadataReport::default();
        let mut wanted: Vec<(DeviceId, String)> = Vec::new();
        for (id, d) in loaded.state.devices() {
            if !force && !self.policy.metadata_due(d, now) {
                report.not_due += 1;
                continue;
            }
            match &d.serial_number {
                Some(s) => wanted.push((*id, s.clone())),
                None => report.skipped += 1,
            }
        }
        let mut serials: Vec<String> = wanted.iter().map(|(_, s)| s.clone()).collect();
        serials.sort();
        serials.dedup();
        let mut found = std::collections::BTreeMap::new();
        for chunk in serials.chunks(LOOKUP_CHUNK) {
            found.extend(
                client
                    .lookup_devices(chunk)
                    .await
                    .map_err(ServiceError::Mdm)?,
            );
        }
        let mut commands = Vec::with_capacity(wanted.len());
        for (device_id, serial) in &wanted {
            let records = found.get(serial).map(Vec::as_slice).unwrap_or(&[]);
            match choose_record(records) {
                Some((record, others)) => {
                    report.refreshed += 1;
                    if others > 0 {
                        report.ambiguous += 1;
                    }
                    let url = client.console_url(&record.mdm_device_id);
                    commands.push(Command::RecordDeviceMetadata {
                        device_id: *device_id,
                        metadata: Some(metadata_from(record, url)),
                        ambiguous_candidates: others,
                    });
                }
                None => {
                    report.not_found += 1;
                    commands.push(Command::RecordDeviceMetadata {
                        device_id: *device_id,
                        metadata: None,
                        ambiguous_candidates: 0,
                    });
                }
            }
        }
        let ctx = Context {
            now: self.clock.now(),
            actor,
            sync_id: None,
            cause: Cause::MetadataRefresh,
        };
        self.decide_and_append(workspace, &ctx, Keep::None, |ws| {
            let mut events = Vec::new();
            for c in &commands {
                match ws.decide(c.clone(), &ctx) {
                    Ok(e) => events.extend(e),
                    // A device removed meanwhile is simply not recorded.
                    Err(DomainError::DeviceNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(events)
        })
        .await?;
        Ok(report)
    }

    /// A1: asks the MDM to make a device check in now. Needs the device's MDM id (M1).
    pub async fn force_sync_device(
        &self,
        workspace: WorkspaceId,
        client: &dyn MdmClient,
        device: DeviceId,
    ) -> Result<(), ServiceError> {
        let loaded = self.load_existing(workspace).await?;
        let d = loaded
            .state
            .devices()
            .get(&device)
            .ok_or(DomainError::DeviceNotFound(device))?;
        let Some(meta) = &d.metadata else {
            return Err(ServiceError::Mdm(MdmError::new(
                crate::error::ErrorKind::NotFound,
                format!("device {device} has no MDM device id yet; run a metadata refresh first"),
            )));
        };
        client
            .force_sync(&meta.mdm_device_id)
            .await
            .map_err(ServiceError::Mdm)
    }
}

/// Which of the appended envelopes `decide_and_append` hands back.
#[derive(Clone, Copy, Debug)]
enum Keep {
    /// All of them (user commands: a handful).
    All,
    /// The last one (a sync: its outcome).
    Last,
    /// None (metadata refresh reports counts).
    None,
}

/// Reads a sync's result off its events (the last one says how it ended).
fn result_of(events: &[EventEnvelope]) -> SyncResult {
    match events.last().map(|e| &e.event) {
        Some(Event::SyncSucceeded { report, .. }) => SyncResult::Succeeded {
            report: (**report).clone(),
        },
        Some(Event::SyncHeld { reason, report, .. }) => SyncResult::Held {
            reason: reason.clone(),
            report: (**report).clone(),
        },
        Some(Event::SyncFailed { kind, message, .. }) => SyncResult::Failed {
            error_kind: *kind,
            message: message.clone(),
        },
        _ => SyncResult::Succeeded {
            report: SyncReport::default(),
        },
    }
}
