//! Test harness: a temp database, a "CLI" writer on its own connection, scriptable MDM
//! clients that can be held at a gate and count concurrency, and schedulers over a manual
//! clock.
#![allow(dead_code)]

use async_trait::async_trait;
use chrono::TimeDelta;
use mdmsync_core::testkit::{FakeMdm, ManualClock, t0};
use mdmsync_core::{
    Actor, Clock, Command, ConnectionSettings, CredentialCheck, Credentials, Event, EventStore,
    MdmClient, MdmDeviceId, MdmDeviceRecord, MdmError, Plan, Provider, RecordedEvent, Snapshot,
    SyncService, WorkspaceId,
};
use mdmsync_daemon::{
    ClientFactory, Metrics, SchedulerConfig, SharedClock, SharedIds, UuidIds,
    scheduler::{Scheduler, SchedulerDeps},
};
use mdmsync_sqlite::{SqliteEventStore, SqliteVault, VaultKey};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Concurrency seen by the MDM clients, overall and per host.
#[derive(Debug, Default)]
pub struct Tracker {
    state: Mutex<TrackerState>,
}

#[derive(Debug, Default)]
struct TrackerState {
    in_flight: usize,
    max: usize,
    per_host: HashMap<String, (usize, usize)>,
}

impl Tracker {
    fn enter(&self, host: &str) {
        let mut s = self.state.lock().unwrap();
        s.in_flight += 1;
        s.max = s.max.max(s.in_flight);
        let h = s.per_host.entry(host.to_owned()).or_default();
        h.0 += 1;
        h.1 = h.1.max(h.0);
    }
    fn leave(&self, host: &str) {
        let mut s = self.state.lock().unwrap();
        s.in_flight -= 1;
        s.per_host.get_mut(host).unwrap().0 -= 1;
    }
    /// Fetches in flight now.
    pub fn in_flight(&self) -> usize {
        self.state.lock().unwrap().in_flight
    }
    /// Most fetches in flight at once.
    pub fn max(&self) -> usize {
        self.state.lock().unwrap().max
    }
    /// Most fetches in flight at once against `host`.
    pub fn max_for(&self, host: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .per_host
            .get(host)
            .map_or(0, |h| h.1)
    }
}

/// A scripted MDM (FakeMdm inside) that can hold fetches at a gate and counts calls.
#[derive(Debug)]
pub struct TestMdm {
    /// The scripted fake.
    pub fake: FakeMdm,
    host: String,
    gate: Option<Arc<Semaphore>>,
    tracker: Arc<Tracker>,
    /// Metadata look-up calls.
    pub lookups: AtomicU64,
}

impl TestMdm {
    /// A client for `provider` on `host`; with a gate, every fetch waits for one permit.
    pub fn new(
        provider: Provider,
        host: &str,
        gate: Option<Arc<Semaphore>>,
        tracker: Arc<Tracker>,
    ) -> Self {
        Self {
            fake: FakeMdm::new(provider),
            host: host.to_owned(),
            gate,
            tracker,
            lookups: AtomicU64::new(0),
        }
    }
    /// Snapshots fetched (including failed ones).
    pub fn fetches(&self) -> u64 {
        self.fake.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl MdmClient for TestMdm {
    fn provider(&self) -> Provider {
        self.fake.provider()
    }
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        self.fake.validate_credentials().await
    }
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        self.tracker.enter(&self.host);
        struct Leave<'a>(&'a Tracker, &'a str);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.leave(self.1);
            }
        }
        let _leave = Leave(&self.tracker, &self.host);
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        self.fake.fetch_snapshot().await
    }
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.fake.lookup_devices(serials).await
    }
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        self.fake.console_url(device)
    }
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError> {
        self.fake.force_sync(device).await
    }
}

/// Clients by (workspace, provider), handed out by the test factory.
pub type Clients = Arc<Mutex<HashMap<(WorkspaceId, Provider), Arc<TestMdm>>>>;

/// The factory over a client map.
pub fn factory(clients: Clients) -> Arc<dyn ClientFactory> {
    Arc::new(
        move |ws: WorkspaceId,
              provider: Provider,
              _c: &Credentials,
              _s: &ConnectionSettings|
              -> Result<Arc<dyn MdmClient>, String> {
            clients
                .lock()
                .unwrap()
                .get(&(ws, provider))
                .cloned()
                .map(|c| c as Arc<dyn MdmClient>)
                .ok_or_else(|| format!("no test client for {ws} {provider:?}"))
        },
    )
}

/// Credentials any provider accepts in tests.
pub fn credentials(provider: Provider) -> Credentials {
    let fields = provider.credential_fields().iter().map(|f| {
        let v = if f.key == "host" {
            "mdm.example.test".to_owned()
        } else {
            format!("test-{}", f.key)
        };
        (f.key.to_owned(), SecretString::from(v))
    });
    Credentials::new(provider, fields).unwrap()
}

/// A temp database with a "CLI" writer (its own connection), a vault and a manual clock.
pub struct World {
    pub dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
    pub key: String,
    /// The writer a CLI would be: its own store handle.
    pub cli: SyncService<SqliteEventStore, SharedClock, SharedIds>,
    pub cli_store: SqliteEventStore,
    pub vault: SqliteVault,
    pub clock: Arc<ManualClock>,
    pub clients: Clients,
    pub tracker: Arc<Tracker>,
}

impl World {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mdmsync.db");
        let cli_store = SqliteEventStore::open(&path).unwrap();
        let key = VaultKey::generate();
        let key_hex = secrecy::ExposeSecret::expose_secret(&key.to_hex()).to_owned();
        let vault = SqliteVault::new(&cli_store, key);
        let clock = Arc::new(ManualClock::new(t0()));
        let cli = SyncService::new(
            cli_store.clone(),
            SharedClock(clock.clone()),
            SharedIds(Arc::new(UuidIds)),
        );
        Self {
            dir,
            path,
            key: key_hex,
            cli,
            cli_store,
            vault,
            clock,
            clients: Arc::new(Mutex::new(HashMap::new())),
            tracker: Arc::new(Tracker::default()),
        }
    }

    /// A scheduler on its own store handle (like another process) over the manual clock.
    pub fn scheduler(&self, config: SchedulerConfig) -> (Scheduler, Arc<Metrics>) {
        let store = SqliteEventStore::open(&self.path).unwrap();
        let vault = SqliteVault::new(&store, VaultKey::from_hex(&self.key).unwrap());
        let metrics = Arc::new(Metrics::new());
        let s = Scheduler::new(
            SchedulerDeps {
                store,
                vault,
                clock: self.clock.clone(),
                ids: Arc::new(UuidIds),
                factory: factory(self.clients.clone()),
                metrics: metrics.clone(),
            },
            mdmsync_core::SyncPolicy::default(),
            config,
        );
        (s, metrics)
    }

    /// Creates a workspace with `plan` (not connected).
    pub async fn create(&self, name: &str, plan: Plan) -> WorkspaceId {
        let id = WorkspaceId(uuid::Uuid::new_v4());
        self.cli
            .execute(
                id,
                Command::CreateWorkspace {
                    workspace_id: id,
                    name: name.into(),
                    plan,
                },
                Actor::Operator("test".into()),
            )
            .await
            .unwrap();
        id
    }

    /// Connects `ws` to `provider` (event and stored credentials) and registers its test
    /// client on `host`.
    pub async fn connect(
        &self,
        ws: WorkspaceId,
        provider: Provider,
        host: &str,
        gate: Option<Arc<Semaphore>>,
    ) -> Arc<TestMdm> {
        let client = Arc::new(TestMdm::new(provider, host, gate, self.tracker.clone()));
        self.clients
            .lock()
            .unwrap()
            .insert((ws, provider), client.clone());
        self.vault
            .save_blocking(ws, &credentials(provider))
            .unwrap();
        self.cli
            .execute(
                ws,
                Command::Connect {
                    provider,
                    settings: ConnectionSettings {
                        base_url: Some(format!("https://{host}")),
                        login_url: None,
                    },
                },
                Actor::Operator("test".into()),
            )
            .await
            .unwrap();
        client
    }

    /// Registers a device with a serial number.
    pub async fn device(&self, ws: WorkspaceId, serial: Option<&str>) -> mdmsync_core::DeviceId {
        let id = mdmsync_core::DeviceId(uuid::Uuid::new_v4());
        self.cli
            .execute(
                ws,
                Command::RegisterDevice {
                    device_id: id,
                    serial_number: serial.map(str::to_owned),
                    name: None,
                },
                Actor::Operator("test".into()),
            )
            .await
            .unwrap();
        id
    }

    /// Every event of a workspace.
    pub async fn events(&self, ws: WorkspaceId) -> Vec<RecordedEvent> {
        self.cli_store.read_stream(ws, 0, 100_000).await.unwrap()
    }

    /// The sync-ending events of a workspace (`SyncSucceeded`, `SyncFailed`, `SyncHeld`).
    pub async fn sync_ends(&self, ws: WorkspaceId) -> Vec<Event> {
        self.events(ws)
            .await
            .into_iter()
            .map(|r| r.envelope.event)
            .filter(|e| {
                matches!(
                    e,
                    Event::SyncSucceeded { .. } | Event::SyncFailed { .. } | Event::SyncHeld { .. }
                )
            })
            .collect()
    }

    /// Advances the manual clock.
    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// A snapshot with one group holding MDM device `m1`.
pub fn one_group(provider: Provider) -> Snapshot {
    Snapshot::new(provider).with_group("g1", "Engineering", ["m1"])
}

/// Scheduler limits for tests: fast polling.
pub fn config(concurrency: usize, per_host: usize) -> SchedulerConfig {
    SchedulerConfig {
        concurrency,
        per_host_concurrency: per_host,
        poll_interval: Duration::from_millis(20),
        sync_timeout: Duration::from_secs(60),
        lease_ttl: Duration::from_secs(60),
        manual_wait: Duration::from_secs(30),
        metadata: true,
        instance_id: format!("test-{}", uuid::Uuid::new_v4().simple()),
    }
}

/// Waits (up to 20 s) until `cond` holds. Not a timing assertion: a deadline for a condition
/// that must eventually hold.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
