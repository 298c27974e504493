//! [`SqliteEventStore`]: the log, its projector, and the blocking and async entry points.

use crate::codec::{EVENT_COLUMNS, MetaColumns, RowDecoder};
use crate::error::{Error, Result};
use crate::projection::{self, Projector};
use crate::query::{
    self, AsOf, DeviceRow, ExportedEvent, GroupRow, GroupWithMembers, HistoryEntry, HistorySubject,
    MemberRow, TimeTravel, WorkspaceRow,
};
use crate::schema;
use crate::upcast::Upcasters;
use async_trait::async_trait;
use mdmsync_core::{
    AppendOutcome, Event, EventEnvelope, EventMeta, EventStore, ExpectedVersion, GroupId, Position,
    RecordedEvent, StoreError, SyncPolicy, WorkspaceId,
};
use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Options for opening a store.
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// The schedule policy the workspace projection computes due times with (T1, T2).
    pub policy: SyncPolicy,
    /// The upcaster chain (the default knows every current event version).
    pub upcasters: Upcasters,
}

/// How long the parts of one append took (for the benchmark and for tracing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AppendTimings {
    /// Encoding and inserting the events.
    pub insert: Duration,
    /// Projecting them (same transaction).
    pub project: Duration,
    /// Committing.
    pub commit: Duration,
}

/// One difference between the live projections and a rebuild from the log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    /// The projection table (`proj_groups`).
    pub table: String,
    /// The row's key, `/`-separated (`workspace/group`).
    pub key: String,
    /// The live row, if there is one.
    pub live: Option<serde_json::Value>,
    /// The rebuilt row, if there is one.
    pub rebuilt: Option<serde_json::Value>,
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The live checkpoint the rebuild stopped at.
    pub checkpoint: u64,
    /// Events replayed into the scratch database.
    pub events_replayed: u64,
    /// Events in the log after the live checkpoint (not yet projected; `catch_up` fixes it).
    pub lag: u64,
    /// Every row that differs.
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    /// True if the live projections equal the rebuild and nothing lags.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.lag == 0
    }
}

pub(crate) struct Inner {
    writer: Mutex<Connection>,
    /// A separate connection for reads (WAL lets it read while the writer writes). `None`
    /// for in-memory stores, which have one connection.
    reader: Option<Mutex<Connection>>,
    path: Option<PathBuf>,
    pub(crate) options: StoreOptions,
    /// File stores: the thread that checkpoints the WAL after commits.
    checkpointer: Option<Checkpointer>,
}

impl Inner {
    /// Tells the checkpointer a commit happened.
    fn committed(&self) {
        if let Some(c) = &self.checkpointer {
            c.hint();
        }
    }
}

/// Copies committed WAL frames into the database file on its own thread and connection
/// (`PRAGMA wal_checkpoint(PASSIVE)`: never blocks readers or writers), so a commit does not
/// pay for the checkpoint and its `fsync`. Writers run with `wal_autocheckpoint` off; hints
/// arriving while a checkpoint runs are coalesced. Dropping the store checkpoints what is
/// pending and stops the thread.
struct Checkpointer {
    tx: Option<std::sync::mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Self> {
        let conn = schema::open_file(path)?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("mdmsync-sqlite-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!(error = %e, "WAL checkpoint failed; the next commit retries");
                    }
                }
            })
            .map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    fn hint(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The SQLite event store: append-only log, same-transaction projections, queries, leases.
///
/// Cheap to clone (the connections are shared). `Send + Sync`; the async [`EventStore`]
/// methods run their blocking work on tokio's blocking pool, and the `*_blocking` and query
/// methods can be called directly from plain threads.
#[derive(Clone)]
pub struct SqliteEventStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves the connection usable: an open transaction was
    // rolled back when it was dropped.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation
            && (f.extended_code == 2067 || f.extended_code == 1555))
}

fn stream_version(conn: &Connection, stream: &str) -> Result<u64> {
    let v: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?1")?
        .query_row([stream], |r| r.get(0))?;
    Ok(v as u64)
}

fn last_position(conn: &Connection) -> Result<u64> {
    let v: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")?
        .query_row([], |r| r.get(0))?;
    Ok(v as u64)
}

fn clamp(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl SqliteEventStore {
    /// Opens (creating if needed) the database file at `path`, in WAL mode, and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let path = path.as_ref();
        let mut writer = schema::open_file(path)?;
        schema::migrate(&mut writer)?;
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let reader = schema::open_file(path)?;
        let checkpointer = Checkpointer::start(path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                reader: Some(Mutex::new(reader)),
                path: Some(path.to_owned()),
                options,
                checkpointer: Some(checkpointer),
            }),
        })
    }

    /// A store in memory (one connection; gone when dropped). For tests and scratch work.
    pub fn open_in_memory() -> Result<Self> {
        Self::open_in_memory_with(StoreOptions::default())
    }

    /// [`open_in_memory`](Self::open_in_memory) with options.
    pub fn open_in_memory_with(options: StoreOptions) -> Result<Self> {
        let mut conn = Connection::open_in_memory()?;
        schema::configure(&conn, false)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(conn),
                reader: None,
                path: None,
                options,
                checkpointer: None,
            }),
        })
    }

    /// The database file, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The schema version of the database (see [`schema::SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> Result<i64> {
        self.with_reader(schema::schema_version)
    }

    /// Runs `f` on the read connection.
    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.inner.reader {
            Some(r) => f(&lock(r)),
            None => f(&lock(&self.inner.writer)),
        }
    }

    /// Runs `f` on the write connection.
    pub(crate) fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let out = f(&mut lock(&self.inner.writer));
        self.inner.committed();
        out
    }

    /// Runs blocking work off the async runtime (tokio's blocking pool), or inline when no
    /// runtime is running.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteEventStore) -> Result<T, StoreError> + Send + 'static,
    {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => match handle.spawn_blocking(move || f(&this)).await {
                Ok(r) => r,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(StoreError::Backend(format!(
                    "the database task was cancelled ({e}); retry"
                ))),
            },
            Err(_) => f(&this),
        }
    }

    /// G10: appends `events` to `stream` atomically if its version matches `expected`, and
    /// projects them in the same transaction. Blocking.
    pub fn append_blocking(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        self.append_timed(stream, expected, events).map(|(o, _)| o)
    }

    /// [`append_blocking`](Self::append_blocking), also saying how long insert, projection
    /// and commit took.
    pub fn append_timed(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<(AppendOutcome, AppendTimings), StoreError> {
        if let Some(stray) = events.iter().find(|e| e.workspace != stream) {
            return Err(StoreError::Backend(format!(
                "an event for stream {} was in a batch for stream {stream}; nothing was appended",
                stray.workspace
            )));
        }
        let out = self.with_writer(|conn| {
            self.append_in(conn, stream, expected, events.len(), |i| {
                (&events[i].meta, &events[i].event)
            })
        });
        Ok(out?)
    }

    /// Appends a decided batch whose events share one metadata (what `Context::envelopes`
    /// would build), without materialising an envelope per event: same transaction, checks
    /// and projection as [`append_blocking`](Self::append_blocking), a fraction of the memory
    /// for large syncs.
    pub fn append_events(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        meta: &EventMeta,
        events: &[Event],
    ) -> Result<AppendOutcome, StoreError> {
        self.append_events_timed(stream, expected, meta, events)
            .map(|(o, _)| o)
    }

    /// [`append_events`](Self::append_events), also saying how long insert, projection and
    /// commit took.
    pub fn append_events_timed(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        meta: &EventMeta,
        events: &[Event],
    ) -> Result<(AppendOutcome, AppendTimings), StoreError> {
        let out = self.with_writer(|conn| {
            self.append_in(conn, stream, expected, events.len(), |i| (meta, &events[i]))
        });
        Ok(out?)
    }

    fn append_in<'e>(
        &self,
        conn: &mut Connection,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        n: usize,
        item: impl Fn(usize) -> (&'e EventMeta, &'e Event),
    ) -> Result<(AppendOutcome, AppendTimings)> {
        let mut timings = AppendTimings::default();
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stream_text = stream.to_string();
        let actual = stream_version(&tx, &stream_text)?;
        if !expected.matches(actual) {
            return Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            }
            .into());
        }
        if n == 0 {
            let last = last_position(&tx)?;
            return Ok((
                AppendOutcome {
                    stream_version: actual,
                    last_position: Position(last),
                },
                timings,
            ));
        }
        let policy = &self.inner.options.policy;
        let upcasters = &self.inner.options.upcasters;
        // Anything committed without projection (an older build, an interrupted rebuild) is
        // projected first, so the checkpoint never skips an event.
        {
            let mut p = Projector::new(&tx, policy, "");
            if p.checkpoint()? < last_position(&tx)? {
                p.replay(upcasters, None)?;
            }
        }
        insert_events(&tx, stream, expected, &stream_text, actual, n, &item)?;
        let last = tx.last_insert_rowid();
        timings.insert = started.elapsed();
        let t = Instant::now();
        let new_version = actual + n as u64;
        {
            let mut p = Projector::new(&tx, policy, "");
            p.apply_batch(n, |i| (stream, actual + 1 + i as u64, item(i).1))?;
            p.finish(Position(last as u64))?;
        }
        timings.project = t.elapsed();
        let t = Instant::now();
        tx.commit()?;
        timings.commit = t.elapsed();
        Ok((
            AppendOutcome {
                stream_version: new_version,
                last_position: Position(last as u64),
            },
            timings,
        ))
    }

    /// Up to `limit` events of `stream` with version greater than `after_version`. Blocking.
    pub fn read_stream_blocking(
        &self,
        stream: WorkspaceId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let upcasters = &self.inner.options.upcasters;
        Ok(self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events
                  WHERE stream_id = ?1 AND stream_version > ?2
                  ORDER BY stream_version LIMIT ?3"
            ))?;
            let mut rows = stmt.query(params![
                stream.to_string(),
                i64::try_from(after_version).unwrap_or(i64::MAX),
                clamp(limit)
            ])?;
            let mut decoder = RowDecoder::new(upcasters);
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(decoder.decode(r)?);
            }
            Ok(out)
        })?)
    }

    /// Up to `limit` events of all streams with position greater than `after`. Blocking.
    pub fn read_all_blocking(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let upcasters = &self.inner.options.upcasters;
        Ok(self
            .with_reader(|conn| projection::read_page(conn, upcasters, after.0, u64::MAX, limit))?)
    }

    /// The position of the last event in the log (0 if empty).
    pub fn last_position(&self) -> Result<Position> {
        self.with_reader(|c| last_position(c).map(Position))
    }

    /// The position of the last projected event.
    pub fn checkpoint(&self) -> Result<Position> {
        let policy = &self.inner.options.policy;
        self.with_reader(|c| Projector::new(c, policy, "").checkpoint().map(Position))
    }

    /// Projects every event after the checkpoint (each page in its own transaction with the
    /// checkpoint). Returns how many were projected. Appends project their own events, so
    /// this only has work after an interrupted rebuild or an older writer.
    pub fn catch_up(&self) -> Result<u64> {
        let options = &self.inner.options;
        self.with_writer(|conn| {
            let mut total = 0;
            loop {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut p = Projector::new(&tx, &options.policy, "");
                let from = p.checkpoint()?;
                let until = from + projection::REPLAY_PAGE as u64;
                let n = p.replay(&options.upcasters, Some(until))?;
                drop(p);
                tx.commit()?;
                total += n;
                if n == 0 {
                    return Ok(total);
                }
            }
        })
    }

    /// Truncates the projections and replays the whole log into them, in one transaction
    /// (readers see the old rows until it commits). Returns how many events were replayed.
    pub fn rebuild(&self) -> Result<u64> {
        let options = &self.inner.options;
        self.with_writer(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            projection::truncate(&tx, "")?;
            let n = Projector::new(&tx, &options.policy, "").replay(&options.upcasters, None)?;
            tx.commit()?;
            Ok(n)
        })
    }

    /// Rebuilds the projections into a scratch database from the log (up to the live
    /// checkpoint, in one read snapshot) and reports every row that differs from the live
    /// projections.
    pub fn verify(&self) -> Result<VerifyReport> {
        let options = &self.inner.options;
        self.with_reader(|conn| {
            conn.execute_batch("ATTACH DATABASE '' AS scratch")?;
            let result = verify_attached(conn, options);
            if result.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            conn.execute_batch("DETACH DATABASE scratch")?;
            result
        })
    }

    /// Every workspace, by name.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceRow>> {
        self.with_reader(query::workspaces)
    }

    /// One workspace's projection row.
    pub fn workspace(&self, id: WorkspaceId) -> Result<Option<WorkspaceRow>> {
        self.with_reader(|c| query::workspace(c, id))
    }

    /// The groups of a workspace, by name, with member counts.
    pub fn groups(&self, ws: WorkspaceId) -> Result<Vec<GroupRow>> {
        self.with_reader(|c| query::groups(c, ws))
    }

    /// One group.
    pub fn group(&self, ws: WorkspaceId, group: GroupId) -> Result<Option<GroupRow>> {
        self.with_reader(|c| query::group(c, ws, group))
    }

    /// The members of a group, with their serial numbers and MDM display names.
    pub fn group_members(&self, ws: WorkspaceId, group: GroupId) -> Result<Vec<MemberRow>> {
        self.with_reader(|c| query::members(c, ws, group))
    }

    /// Every group of a workspace with its members (one read snapshot).
    pub fn groups_with_members(&self, ws: WorkspaceId) -> Result<Vec<GroupWithMembers>> {
        self.with_reader(|c| {
            let tx = c.unchecked_transaction()?;
            let mut out = Vec::new();
            for group in query::groups(&tx, ws)? {
                let members = query::members(&tx, ws, group.group_id)?;
                out.push(GroupWithMembers { group, members });
            }
            tx.finish()?;
            Ok(out)
        })
    }

    /// The devices of a workspace; with `search`, those whose serial number or MDM display
    /// name contains it, case-insensitively (M3).
    pub fn devices(&self, ws: WorkspaceId, search: Option<&str>) -> Result<Vec<DeviceRow>> {
        self.with_reader(|c| query::devices(c, ws, search))
    }

    /// G12: up to `limit` history entries of a workspace, group or device after `after`.
    pub fn history(
        &self,
        ws: WorkspaceId,
        subject: HistorySubject,
        after: Position,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let upcasters = &self.inner.options.upcasters;
        self.with_reader(|c| query::history(c, upcasters, ws, subject, after, limit))
    }

    /// Time travel: the workspace as of a position or a time, by replaying its stream.
    pub fn state_at(&self, ws: WorkspaceId, as_of: AsOf) -> Result<TimeTravel> {
        let upcasters = &self.inner.options.upcasters;
        self.with_reader(|c| {
            let tx = c.unchecked_transaction()?;
            let out = query::state_at(&tx, upcasters, ws, as_of)?;
            tx.finish()?;
            Ok(out)
        })
    }

    /// Up to `limit` stored events after `after`, as stored (for export).
    pub fn export(&self, after: Position, limit: usize) -> Result<Vec<ExportedEvent>> {
        self.with_reader(|c| query::export(c, after, limit))
    }
}

/// Rows per multi-row event insert.
const EVENT_CHUNK: usize = 32;

/// Inserts `n` events at versions `actual + 1 ..`, in multi-row statements. A unique
/// violation (another writer got there first) is a `Conflict`.
fn insert_events<'e>(
    tx: &Connection,
    stream: WorkspaceId,
    expected: ExpectedVersion,
    stream_text: &str,
    actual: u64,
    n: usize,
    item: &impl Fn(usize) -> (&'e EventMeta, &'e Event),
) -> Result<()> {
    let mut metas: Vec<(&EventMeta, MetaColumns)> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut payloads = String::with_capacity(EVENT_CHUNK * 160);
    let mut rows: Vec<(usize, std::ops::Range<usize>)> = Vec::with_capacity(EVENT_CHUNK);
    let mut start = 0;
    while start < n {
        let end = (start + EVENT_CHUNK).min(n);
        payloads.clear();
        rows.clear();
        for i in start..end {
            let (meta, event) = item(i);
            if metas.last().is_none_or(|(m, _)| *m != meta) {
                metas.push((meta, MetaColumns::encode(meta)?));
            }
            let event_type = event.event_type();
            buf.clear();
            serde_json::to_writer(&mut buf, event).map_err(|e| {
                StoreError::Backend(format!("cannot encode a {event_type} event: {e}"))
            })?;
            let from = payloads.len();
            match payload_of(&buf, event_type) {
                Some(p) => payloads.push_str(p),
                None => payloads.push_str(&event.to_payload().to_string()),
            }
            rows.push((metas.len() - 1, from..payloads.len()));
        }
        let mut sql = String::with_capacity(200 + rows.len() * 24);
        sql.push_str(
            "INSERT INTO events (stream_id, stream_version, event_type, event_version, payload, \
             recorded_at, actor, sync_id, cause) VALUES ",
        );
        for k in 0..rows.len() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?,?,?,?,?,?,?,?)");
        }
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut p = 1;
        for (k, (meta_index, range)) in rows.iter().enumerate() {
            let i = start + k;
            let event = item(i).1;
            let cols = &metas[*meta_index].1;
            stmt.raw_bind_parameter(p, stream_text)?;
            stmt.raw_bind_parameter(p + 1, (actual + 1 + i as u64) as i64)?;
            stmt.raw_bind_parameter(p + 2, event.event_type())?;
            stmt.raw_bind_parameter(p + 3, i64::from(event.schema_version()))?;
            stmt.raw_bind_parameter(p + 4, &payloads[range.clone()])?;
            stmt.raw_bind_parameter(p + 5, cols.recorded_at.as_str())?;
            stmt.raw_bind_parameter(p + 6, cols.actor.as_str())?;
            stmt.raw_bind_parameter(p + 7, cols.sync_id.as_deref())?;
            stmt.raw_bind_parameter(p + 8, cols.cause.as_str())?;
            p += 9;
        }
        match stmt.raw_execute() {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict {
                    stream,
                    expected,
                    actual: stream_version(tx, stream_text)?,
                }
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        start = end;
    }
    Ok(())
}

/// The payload part of an event serialised in its tagged form
/// (`{"type":"T","data":<payload>}`), without re-encoding it.
fn payload_of<'a>(buf: &'a [u8], event_type: &str) -> Option<&'a str> {
    let s = std::str::from_utf8(buf).ok()?;
    let rest = s.strip_prefix("{\"type\":\"")?;
    let rest = rest.strip_prefix(event_type)?;
    let rest = rest.strip_prefix("\",\"data\":")?;
    rest.strip_suffix('}')
}

fn verify_attached(conn: &Connection, options: &StoreOptions) -> Result<VerifyReport> {
    conn.execute_batch(&schema::projection_ddl("scratch."))?;
    conn.execute_batch("BEGIN")?;
    let checkpoint = Projector::new(conn, &options.policy, "").checkpoint()?;
    let last = last_position(conn)?;
    let lag: i64 = conn.query_row(
        "SELECT COUNT(*) FROM main.events WHERE position > ?1",
        [checkpoint as i64],
        |r| r.get(0),
    )?;
    let mut p = Projector::new(conn, &options.policy, "scratch.");
    let events_replayed = p.replay(&options.upcasters, Some(checkpoint.min(last)))?;
    drop(p);
    let mut differences = Vec::new();
    for (table, keys) in schema::PROJECTION_KEYS {
        compare_table(conn, table, keys, &mut differences)?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(VerifyReport {
        checkpoint,
        events_replayed,
        lag: lag as u64,
        differences,
    })
}

fn compare_table(
    conn: &Connection,
    table: &str,
    keys: &[&str],
    out: &mut Vec<Difference>,
) -> Result<()> {
    let columns: Vec<String> = conn
        .prepare(&format!("PRAGMA main.table_info({table})"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<_>>()?;
    let key_list = keys.join(", ");
    let json = columns
        .iter()
        .map(|c| format!("'{c}', {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cond = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} = ?{}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut differing = conn.prepare(&format!(
        "SELECT {key_list} FROM (SELECT * FROM main.{table} EXCEPT SELECT * FROM scratch.{table})
         UNION
         SELECT {key_list} FROM (SELECT * FROM scratch.{table} EXCEPT SELECT * FROM main.{table})
         ORDER BY {key_list}"
    ))?;
    let mut live = conn.prepare(&format!(
        "SELECT json_object({json}) FROM main.{table} WHERE {cond}"
    ))?;
    let mut rebuilt = conn.prepare(&format!(
        "SELECT json_object({json}) FROM scratch.{table} WHERE {cond}"
    ))?;
    let key_rows: Vec<Vec<String>> = differing
        .query_map([], |r| {
            (0..keys.len())
                .map(|i| r.get::<_, String>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })?
        .collect::<rusqlite::Result<_>>()?;
    let fetch =
        |stmt: &mut rusqlite::Statement<'_>, key: &[String]| -> Result<Option<serde_json::Value>> {
            let mut rows = stmt.query(rusqlite::params_from_iter(key.iter()))?;
            match rows.next()? {
                Some(r) => {
                    let text: String = r.get(0)?;
                    Ok(Some(serde_json::from_str(&text).map_err(|e| {
                        Error::Invalid(format!("cannot read a projection row as JSON: {e}"))
                    })?))
                }
                None => Ok(None),
            }
        };
    for key in key_rows {
        out.push(Difference {
            table: table.to_owned(),
            key: key.join("/"),
            live: fetch(&mut live, &key)?,
            rebuilt: fetch(&mut rebuilt, &key)?,
        });
    }
    Ok(())
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: WorkspaceId,
        expected: ExpectedVersion,
        events: Vec<EventEnvelope>,
    ) -> Result<AppendOutcome, StoreError> {
        self.blocking(move |s| s.append_blocking(stream, expected, events))
            .await
    }

    async fn read_stream(
        &self,
        stream: WorkspaceId,
        after_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.blocking(move |s| s.read_stream_blocking(stream, after_version, limit))
            .await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.blocking(move |s| s.read_all_blocking(after, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cut_from_the_tagged_form() {
        let e = mdmsync_core::Event::GroupDeleted {
            group_id: GroupId(uuid::Uuid::nil()),
            name: "x}".into(),
        };
        let buf = serde_json::to_vec(&e).unwrap();
        let p = payload_of(&buf, e.event_type()).unwrap();
        let v: serde_json::Value = serde_json::from_str(p).unwrap();
        assert_eq!(v, e.to_payload());
        assert!(payload_of(&buf, "GroupCreated").is_none());
    }
}
