//! The pieces every command works with: the SQLite store, the sync service over it with the
//! system clock and random ids, the credential vault (opened on first use), the operator as
//! actor, and look-ups of workspaces, groups and devices by id or by name.

use crate::output::CliError;
use chrono::{DateTime, TimeDelta, Utc};
use mdmsync_core::{
    Actor, Clock, DeviceId, Event, EventEnvelope, ExpectedVersion, GroupId, IdGenerator,
    StoreError, SyncId, SyncService, Workspace, WorkspaceId,
};
use mdmsync_core::{Context, EventStore};
use mdmsync_sqlite::{DeviceRow, GroupRow, SqliteEventStore, SqliteVault, WorkspaceRow};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The database path when neither `--db` nor `MDMSYNC_DB` is given.
pub const DEFAULT_DB: &str = "mdmsync.db";

/// The time to live of the workspace's sync lease a CLI sync holds (T4); renewed every
/// [`LEASE_RENEW`] while the sync runs, so a crashed process's lease lapses after this.
pub const LEASE_TTL: TimeDelta = TimeDelta::minutes(2);

/// How often a held lease is renewed.
pub const LEASE_RENEW: std::time::Duration = std::time::Duration::from_secs(40);

/// How often a batch append is retried after a conflict with another writer (G10).
const CONFLICT_RETRIES: u32 = 3;

/// The time from the system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Random (version 4) sync ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGenerator for RandomIds {
    fn new_sync_id(&self) -> SyncId {
        SyncId(random_uuid())
    }
}

/// A random (version 4) UUID.
pub fn random_uuid() -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// The service type the CLI runs.
pub type Service = SyncService<SqliteEventStore, SystemClock, RandomIds>;

/// Where things live, from the global flags.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The database.
    pub db: PathBuf,
    /// The vault's key file.
    pub key_file: PathBuf,
    /// An extra CA certificate (PEM file) for the MDM connection.
    pub ca_cert: Option<PathBuf>,
}

impl Paths {
    /// The paths from the flags, with the defaults: `./mdmsync.db`, and the key file next to
    /// the database with the extension `.key`.
    pub fn new(db: Option<PathBuf>, key_file: Option<PathBuf>, ca_cert: Option<PathBuf>) -> Self {
        let db = db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
        let key_file = key_file.unwrap_or_else(|| default_key_file(&db));
        Self {
            db,
            key_file,
            ca_cert,
        }
    }
}

/// `mdmsync.db` → `mdmsync.key`; a database already named `*.key` gets `*.key.key`.
pub fn default_key_file(db: &Path) -> PathBuf {
    let k = db.with_extension("key");
    if k == db {
        let mut s = db.as_os_str().to_owned();
        s.push(".key");
        PathBuf::from(s)
    } else {
        k
    }
}

/// The operator running the CLI: `$USER` (or `$USERNAME`), else `operator`.
pub fn operator() -> Actor {
    let name = ["USER", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "operator".to_owned());
    Actor::Operator(name)
}

/// The store, the service and the vault of one database.
#[derive(Debug)]
pub struct App {
    /// Paths from the flags.
    pub paths: Paths,
    /// The store.
    pub store: SqliteEventStore,
    /// The use cases over it.
    pub service: Service,
    /// Who is acting.
    pub actor: Actor,
    vault: OnceLock<SqliteVault>,
}

impl App {
    /// Opens the database; with `create` false a missing file is an error (so a mistyped
    /// `--db` does not silently start an empty database).
    pub fn open(paths: Paths, create: bool) -> Result<Self, CliError> {
        if !create && !paths.db.exists() {
            return Err(CliError::Failed(format!(
                "no database at {}; create a workspace first (`mdmsync workspace create --name N --plan pro`), or pass --db / set MDMSYNC_DB",
                paths.db.display()
            )));
        }
        let store = SqliteEventStore::open(&paths.db)?;
        let service = SyncService::new(store.clone(), SystemClock, RandomIds);
        Ok(Self {
            paths,
            store,
            service,
            actor: operator(),
            vault: OnceLock::new(),
        })
    }

    /// The credential vault; the key comes from `MDMSYNC_KEY` or the key file (created 0600
    /// on first use).
    pub fn vault(&self) -> Result<&SqliteVault, CliError> {
        if let Some(v) = self.vault.get() {
            return Ok(v);
        }
        let key = mdmsync_sqlite::resolve_key(&self.paths.key_file).map_err(|e| {
            CliError::Failed(format!(
                "{e} (key file {}; set --key-file or MDMSYNC_KEY_FILE)",
                self.paths.key_file.display()
            ))
        })?;
        Ok(self
            .vault
            .get_or_init(|| SqliteVault::new(&self.store, key)))
    }

    /// The extra CA certificates to trust, read from `--ca-cert`.
    pub fn extra_ca_pem(&self) -> Result<Vec<String>, CliError> {
        match &self.paths.ca_cert {
            None => Ok(Vec::new()),
            Some(p) => std::fs::read_to_string(p).map(|s| vec![s]).map_err(|e| {
                CliError::Failed(format!(
                    "cannot read the CA certificate {}: {e}; pass a PEM file with --ca-cert",
                    p.display()
                ))
            }),
        }
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// A workspace by id or name (names compared case-insensitively).
    pub fn workspace(&self, key: &str) -> Result<WorkspaceRow, CliError> {
        let all = self.store.workspaces()?;
        if let Ok(id) = key.parse::<WorkspaceId>() {
            if let Some(w) = all.iter().find(|w| w.workspace_id == id) {
                return Ok(w.clone());
            }
        }
        let wanted = key.trim().to_lowercase();
        let named: Vec<_> = all
            .iter()
            .filter(|w| w.name.trim().to_lowercase() == wanted)
            .collect();
        match named.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(CliError::Failed(format!(
                "no workspace {key:?} in {}; `mdmsync workspace list` shows them",
                self.paths.db.display()
            ))),
            _ => Err(CliError::Failed(format!(
                "{} workspaces are named {key:?}; give the id instead (`mdmsync workspace list`)",
                named.len()
            ))),
        }
    }

    /// A workspace's state folded from its stream.
    pub async fn state(&self, ws: WorkspaceId) -> Result<(Workspace, u64), CliError> {
        let loaded = self.service.load(ws).await?;
        Ok((loaded.state, loaded.version))
    }

    /// A group by id or name.
    pub fn group(&self, ws: WorkspaceId, key: &str) -> Result<GroupRow, CliError> {
        if let Ok(id) = key.parse::<GroupId>() {
            if let Some(g) = self.store.group(ws, id)? {
                return Ok(g);
            }
        }
        // Group names compare as G4 compares them (trimmed, case-insensitive).
        let wanted = mdmsync_core::workspace::name_key(key);
        self.store
            .groups(ws)?
            .into_iter()
            .find(|g| mdmsync_core::workspace::name_key(&g.name) == wanted)
            .ok_or_else(|| {
                CliError::Rule(format!(
                    "no group {key:?} in this workspace; `mdmsync groups list` shows ids and names"
                ))
            })
    }

    /// A device by id or serial number (a serial must be unique in the workspace).
    pub fn device(&self, ws: WorkspaceId, key: &str) -> Result<DeviceRow, CliError> {
        let all = self.store.devices(ws, None)?;
        if let Ok(id) = key.parse::<DeviceId>() {
            if let Some(d) = all.iter().find(|d| d.device_id == id) {
                return Ok(d.clone());
            }
        }
        let wanted = key.trim();
        let by_serial: Vec<_> = all
            .iter()
            .filter(|d| {
                d.serial_number
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(wanted))
            })
            .collect();
        match by_serial.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(CliError::Rule(format!(
                "no device {key:?} in this workspace; give a device id or serial number from `mdmsync devices list`"
            ))),
            _ => Err(CliError::Rule(format!(
                "{} devices have the serial number {key:?}; give the device id instead",
                by_serial.len()
            ))),
        }
    }

    /// Decides a batch on fresh state and appends it in one transaction; on a conflict with
    /// another writer, reloads and decides again (G10). Returns the appended envelopes.
    pub async fn append_batch<F>(
        &self,
        ws: WorkspaceId,
        ctx: &Context,
        mut decide: F,
    ) -> Result<Vec<EventEnvelope>, CliError>
    where
        F: FnMut(&Workspace) -> Result<Vec<Event>, CliError>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (state, version) = self.state(ws).await?;
            let events = decide(&state)?;
            if events.is_empty() {
                return Ok(Vec::new());
            }
            let envelopes = ctx.envelopes(ws, events);
            let expected = if version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(version)
            };
            match self.store.append(ws, expected, envelopes.clone()).await {
                Ok(_) => return Ok(envelopes),
                Err(StoreError::Conflict { .. }) if attempts <= CONFLICT_RETRIES => continue,
                Err(e) => return Err(CliError::Failed(e.to_string())),
            }
        }
    }
}

/// T4: a workspace's sync lease, held (and renewed) while this process syncs; released when
/// dropped.
#[derive(Debug)]
pub struct LeaseGuard {
    store: SqliteEventStore,
    workspace: WorkspaceId,
    holder: String,
    renew: Option<tokio::task::JoinHandle<()>>,
}

/// Whether this process got the lease, or who has it.
#[derive(Debug)]
pub enum Lease {
    /// Ours until dropped.
    Acquired(LeaseGuard),
    /// Another process syncs this workspace now.
    Busy {
        /// Who holds it.
        holder: String,
        /// Since when.
        since: DateTime<Utc>,
    },
}

impl App {
    /// Takes the sync lease of `ws` (T4).
    pub fn take_lease(&self, ws: WorkspaceId) -> Result<Lease, CliError> {
        let holder = format!(
            "mdmsync-cli/{}/{}",
            std::process::id(),
            &random_uuid().simple().to_string()[..8]
        );
        if self
            .store
            .try_acquire_sync_lease(ws, &holder, Utc::now(), LEASE_TTL)?
        {
            let renew = tokio::runtime::Handle::try_current().ok().map(|rt| {
                let (store, holder) = (self.store.clone(), holder.clone());
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(LEASE_RENEW).await;
                        match store.try_acquire_sync_lease(ws, &holder, Utc::now(), LEASE_TTL) {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::warn!(workspace = %ws, "the sync lease was taken over while this sync ran");
                                return;
                            }
                            Err(e) => tracing::warn!(workspace = %ws, error = %e, "could not renew the sync lease"),
                        }
                    }
                })
            });
            return Ok(Lease::Acquired(LeaseGuard {
                store: self.store.clone(),
                workspace: ws,
                holder,
                renew,
            }));
        }
        let current = self.store.sync_lease(ws)?;
        Ok(Lease::Busy {
            holder: current
                .as_ref()
                .map_or_else(|| "another process".to_owned(), |l| l.holder.clone()),
            since: current.map_or_else(Utc::now, |l| l.acquired_at),
        })
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(t) = self.renew.take() {
            t.abort();
        }
        if let Err(e) = self.store.release_sync_lease(self.workspace, &self.holder) {
            tracing::warn!(workspace = %self.workspace, error = %e, "could not release the sync lease; it lapses on its own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_defaults_to_the_database_path_with_key() {
        assert_eq!(
            default_key_file(Path::new("mdmsync.db")),
            PathBuf::from("mdmsync.key")
        );
        assert_eq!(
            default_key_file(Path::new("/x/state")),
            PathBuf::from("/x/state.key")
        );
        assert_eq!(
            default_key_file(Path::new("/x/a.key")),
            PathBuf::from("/x/a.key.key")
        );
    }

    #[test]
    fn random_ids_are_version_4_and_distinct() {
        let a = RandomIds.new_sync_id();
        let b = RandomIds.new_sync_id();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 4);
    }
}
