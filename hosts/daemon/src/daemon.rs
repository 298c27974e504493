//! Wiring: open the store and the vault, start the scheduler and the admin API, and shut down
//! cleanly on a signal.

use crate::api::{AdminToken, ApiState, router};
use crate::clock::{SystemClock, UuidIds};
use crate::config::{Config, LogFormat};
use crate::factory::ClientFactory;
use crate::metrics::Metrics;
use crate::scheduler::{Scheduler, SchedulerDeps};
use mdmsync_core::Clock;
use mdmsync_sqlite::{SqliteEventStore, SqliteVault, StoreOptions, resolve_key};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

/// What can stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The database could not be opened.
    #[error("cannot open the database {path}: {message}")]
    Store {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The vault key could not be read or created.
    #[error("cannot load the vault key: {0}")]
    Key(String),
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; pick another address with `listen` or MDMSYNCD_LISTEN"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log could not be read at startup.
    #[error("cannot read the event log: {0}")]
    Log(String),
}

/// Installs the `tracing` subscriber: JSON or pretty lines on stderr, filtered by `filter`.
/// Returns an error message if the filter is not valid.
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("log filter {filter:?} is not valid: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Runs the daemon until the first message on `signals` (SIGTERM / Ctrl-C), then stops
/// taking work, lets in-flight syncs finish for `shutdown_grace` (a second message abandons
/// them at once) and returns. Prints `listening on http://ADDR` on stdout once the API is up.
pub async fn run(
    config: Config,
    factory: Arc<dyn ClientFactory>,
    mut signals: mpsc::Receiver<()>,
) -> Result<(), DaemonError> {
    let path = config.database.clone();
    let options = StoreOptions {
        policy: config.policy.clone(),
        ..StoreOptions::default()
    };
    let store = tokio::task::spawn_blocking(move || SqliteEventStore::open_with(&path, options))
        .await
        .map_err(|e| DaemonError::Store {
            path: config.database.display().to_string(),
            message: e.to_string(),
        })?
        .map_err(|e| DaemonError::Store {
            path: config.database.display().to_string(),
            message: e.to_string(),
        })?;
    // A missing key file is created on first use, but not when connected workspaces exist:
    // their credentials were encrypted with another key, and a fresh one would only turn
    // every sync into a decryption error.
    let key_in_env = std::env::var_os(mdmsync_sqlite::vault::KEY_ENV).is_some();
    if !key_in_env && !config.key_file.exists() {
        let probe = store.clone();
        let connected = tokio::task::spawn_blocking(move || probe.workspaces())
            .await
            .map_err(|e| DaemonError::Key(e.to_string()))?
            .map_err(|e| DaemonError::Key(e.to_string()))?
            .iter()
            .filter(|w| w.provider.is_some())
            .count();
        if connected > 0 {
            return Err(DaemonError::Key(format!(
                "the key file {} does not exist, but {connected} connected workspace(s) have credentials encrypted with another key; set key_file (or MDMSYNC_KEY_FILE) to the key file the CLI uses (by default the database path with the extension .key)",
                config.key_file.display()
            )));
        }
    }
    let key_file = config.key_file.clone();
    let key = tokio::task::spawn_blocking(move || resolve_key(&key_file))
        .await
        .map_err(|e| DaemonError::Key(e.to_string()))?
        .map_err(|e| DaemonError::Key(e.to_string()))?;
    let vault = SqliteVault::new(&store, key);
    let metrics = Arc::new(Metrics::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let scheduler = Scheduler::new(
        SchedulerDeps {
            store: store.clone(),
            vault,
            clock: clock.clone(),
            ids: Arc::new(UuidIds),
            factory,
            metrics: metrics.clone(),
        },
        config.policy.clone(),
        config.scheduler.clone(),
    );
    scheduler
        .poll_log()
        .await
        .map_err(|e| DaemonError::Log(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::Bind {
        addr: config.listen,
        source,
    })?;
    if !addr.ip().is_loopback() {
        warn!(%addr, "the admin API listens beyond loopback over plain HTTP: put it behind a TLS proxy");
    }
    let app = router(ApiState {
        scheduler: scheduler.clone(),
        store: store.clone(),
        token: Arc::new(AdminToken::new(&config.admin_token)),
        default_caller: config.api_caller.clone(),
        metrics,
        manual_wait: config.scheduler.manual_wait,
        clock,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let ticking = {
        let scheduler = scheduler.clone();
        tokio::spawn(async move { scheduler.run(stop_rx).await })
    };
    info!(
        %addr,
        database = %config.database.display(),
        instance = %config.scheduler.instance_id,
        concurrency = config.scheduler.concurrency,
        per_host_concurrency = config.scheduler.per_host_concurrency,
        "mdmsyncd started"
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }

    let _ = signals.recv().await;
    info!(
        grace_secs = config.shutdown_grace.as_secs(),
        running = scheduler.running_jobs(),
        "shutting down: no new work; waiting for in-flight syncs"
    );
    let _ = stop_tx.send(true);
    let _ = ticking.await;
    let report = scheduler
        .shutdown(config.shutdown_grace, async move {
            let _ = signals.recv().await;
            warn!("second signal: abandoning in-flight syncs now");
        })
        .await;
    // The API drains its open requests (a manual sync's waiting request has its answer by
    // now); don't let a stuck client hold the exit.
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => error!(error = %e, "the admin API failed"),
        Ok(Err(e)) => error!(error = %e, "the admin API task failed"),
        Err(_) => warn!("the admin API did not close its connections in time"),
    }
    info!(
        in_flight = report.in_flight,
        abandoned = report.abandoned,
        "mdmsyncd stopped"
    );
    Ok(())
}

/// Forwards SIGTERM and Ctrl-C (SIGINT) to a channel, one message per signal.
pub fn forward_signals() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the daemon");
                    loop {
                        if tokio::signal::ctrl_c().await.is_err() || tx.send(()).await.is_err() {
                            return;
                        }
                    }
                }
            };
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    r = tokio::signal::ctrl_c() => {
                        if r.is_err() {
                            return;
                        }
                    }
                }
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        }
        #[cfg(not(unix))]
        loop {
            if tokio::signal::ctrl_c().await.is_err() || tx.send(()).await.is_err() {
                return;
            }
        }
    });
    rx
}
