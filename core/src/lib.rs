//! # mdmsync-core
//!
//! The pure domain of mdmsync: what a workspace is, what a sync does to it, and when syncs may
//! run. No I/O, no async runtime, no clock and no random ids: the time, the actor and new ids
//! are passed in, so every decision is a function of its inputs and can be proven with
//! property tests.
//!
//! - [`Workspace`] is the aggregate: `apply` folds events, `decide` turns a [`Command`] into
//!   events. [`reconcile::plan_sync`] implements the group sync rules G2–G11.
//! - [`SyncPolicy`] decides schedules and admission (T1–T5, G1, M2).
//! - [`ports`] are the traits adapters implement ([`MdmClient`], [`EventStore`],
//!   [`CredentialVault`]); [`SyncService`] runs the use cases over them.
//! - [`InMemoryEventStore`] is a complete store for tests and embedding.
//!
//! Rule numbers (G4, T2, …) refer to the project's `spec.md`.

pub mod command;
pub mod credentials;
pub mod error;
pub mod event;
pub mod ids;
pub mod memory;
pub mod metadata;
pub mod policy;
pub mod ports;
pub mod provider;
pub mod reconcile;
pub mod service;
pub mod snapshot;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod workspace;

/// The README's Rust blocks, compiled and run as doctests so the embedding example stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use command::Command;
pub use credentials::{Credentials, CredentialsError};
pub use error::{ErrorKind, MdmError};
pub use event::{
    Actor, Cause, ConnectionSettings, DetachReason, Event, EventEnvelope, EventMeta, GroupSource,
    HoldReason, MdmMetadata, MetadataClearedReason, Position, RecordedEvent, SafetyThresholds,
    SyncReport, SyncTrigger,
};
pub use ids::{DeviceId, GroupId, MdmDeviceId, MdmGroupId, MdmUserId, SyncId, WorkspaceId};
pub use memory::{InMemoryEventStore, InMemoryVault};
pub use policy::{Admission, Refusal, ScheduleFacts, SyncPolicy};
pub use ports::{
    AppendOutcome, Capability, Clock, CredentialCheck, CredentialVault, EventStore,
    ExpectedVersion, IdGenerator, MdmClient, MdmDeviceRecord, StoreError, VaultError,
};
pub use provider::{Endpoint, Plan, Provider};
pub use service::{
    ConnectOutcome, Loaded, MetadataReport, ServiceError, SyncOutcome, SyncRequest, SyncResult,
    SyncService,
};
pub use snapshot::{GroupKind, MdmGroup, Snapshot, SnapshotError, ValidSnapshot};
pub use workspace::{Context, DomainError, Workspace};
