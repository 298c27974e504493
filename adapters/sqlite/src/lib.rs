//! # mdmsync-sqlite
//!
//! The embedded default store of mdmsync: the durable, append-only event log every sync lands
//! in (one stream per workspace, a global position, typed conflicts), the read models kept
//! next to it by a checkpointed projector in the same transaction, the audit queries the CLI
//! and the hosts print (groups, members, device search, history, time travel), the encrypted
//! credential vault, and the sync leases that keep one sync per workspace across processes.
//!
//! - [`SqliteEventStore`] implements the core's [`EventStore`](mdmsync_core::EventStore);
//!   `append` is one IMMEDIATE transaction per batch (G10) that also projects the batch.
//!   Blocking work runs on tokio's blocking pool; every operation also has a plain blocking
//!   form for programs without a runtime.
//! - [`SqliteVault`] implements [`CredentialVault`](mdmsync_core::CredentialVault) with
//!   XChaCha20-Poly1305 (C2); keys come from [`KeyFile`] or `MDMSYNC_KEY`.
//! - [`Upcasters`] turn stored payloads of older event versions into current ones.
//!
//! See `docs/decisions/0006-sqlite-log-and-projections.md` for the design.

mod codec;
pub mod error;
mod lease;
mod projection;
pub mod query;
pub mod schema;
mod store;
pub mod upcast;
pub mod vault;

pub use codec::{format_time, parse_time};
pub use error::{Error, Result};
pub use lease::SyncLease;
pub use query::{
    AsOf, DeviceRow, ExportedEvent, GroupRow, GroupWithMembers, HistoryEntry, HistorySubject,
    MemberRow, StateView, TimeTravel, WorkspaceRow,
};
pub use store::{AppendTimings, Difference, SqliteEventStore, StoreOptions, VerifyReport};
pub use upcast::{Upcaster, Upcasters};
pub use vault::{KeyFile, SqliteVault, VaultKey, resolve_key};
