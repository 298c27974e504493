//! # mdmsync-daemon
//!
//! `mdmsyncd`, the long-running host of mdmsync: it decides when each workspace syncs and
//! runs the syncs, and serves a small JSON admin API. It tails the event log by position, so
//! workspaces and connections created with the CLI (or by another daemon) are picked up
//! without a restart; it keeps one sync per workspace at a time across processes with the
//! store's sync leases (T4); it bounds concurrency globally and per MDM host (P5); and it
//! shuts down without leaving anything partial.
//!
//! - [`config::Config`]: the TOML file and environment overrides.
//! - [`scheduler::Scheduler`]: T1–T5 over every workspace, with an injected
//!   [`factory::ClientFactory`] (the provider adapters in production, fakes in tests).
//! - [`api::router`]: the admin API; [`metrics::Metrics`]: the Prometheus exposition.
//! - [`daemon::run`]: everything wired together, as the `mdmsyncd` binary runs it.
//!
//! See `docs/daemon.md` for the configuration keys, the routes and the metrics.

pub mod api;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod factory;
pub mod metrics;
pub mod providers;
pub mod scheduler;

pub use api::{AdminToken, ApiState, router};
pub use clock::{SharedClock, SharedIds, SystemClock, UuidIds};
pub use config::{Config, ConfigError, LogFormat, SchedulerConfig};
pub use daemon::{DaemonError, forward_signals, init_logging, run};
pub use factory::{ClientFactory, host_key};
pub use metrics::{Metrics, SyncLabel};
pub use scheduler::{
    JobEnd, Scheduler, SchedulerDeps, SchedulerError, ShutdownReport, TriggerError,
    WorkspaceStatus, WorkspaceSummary,
};
