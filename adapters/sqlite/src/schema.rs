//! Opening a database: pragmas, and the versioned migrations (recorded in `schema_migrations`
//! and mirrored in `PRAGMA user_version`).

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// How long a connection waits for another writer (thread or process) before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The projection tables, created in `main` and, for `verify`, in a scratch schema.
pub(crate) const PROJECTION_TABLES: &str = "
CREATE TABLE IF NOT EXISTS {s}proj_checkpoint (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {s}proj_workspaces (
    workspace_id          TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    plan                  TEXT NOT NULL,
    provider              TEXT,
    stream_version        INTEGER NOT NULL,
    last_sync_id          TEXT,
    last_sync_trigger     TEXT,
    last_sync_started_at  TEXT,
    last_sync_finished_at TEXT,
    last_sync_outcome     TEXT,
    last_success_sync_id  TEXT,
    last_success_at       TEXT,
    last_failure_sync_id  TEXT,
    last_failure_kind     TEXT,
    last_failure_message  TEXT,
    last_failure_at       TEXT,
    held_sync_id          TEXT,
    held_reason           TEXT,
    held_reason_json      TEXT,
    sync_enabled          INTEGER NOT NULL,
    manual_allowed_at     TEXT,
    next_scheduled_at     TEXT,
    consecutive_failures  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {s}proj_groups (
    workspace_id TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    source       TEXT NOT NULL,
    provider     TEXT,
    mdm_group_id TEXT,
    mdm_name     TEXT,
    managed_by   TEXT,
    policies     TEXT NOT NULL,
    PRIMARY KEY (workspace_id, group_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {s}proj_memberships (
    workspace_id TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    via          TEXT,
    PRIMARY KEY (workspace_id, group_id, device_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {s}proj_devices (
    workspace_id         TEXT NOT NULL,
    device_id            TEXT NOT NULL,
    serial_number        TEXT,
    name                 TEXT,
    mdm_device_id        TEXT,
    mdm_user_id          TEXT,
    mdm_display_name     TEXT,
    console_url          TEXT,
    metadata_checked_at  TEXT,
    ambiguous_candidates INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, device_id)
) WITHOUT ROWID;
";

/// The projection tables with their schema prefix (`""` for main, `"scratch."` for verify).
pub(crate) fn projection_ddl(schema_prefix: &str) -> String {
    PROJECTION_TABLES.replace("{s}", schema_prefix)
}

/// The projection tables, in the order `verify` compares them, with their key columns.
pub(crate) const PROJECTION_KEYS: &[(&str, &[&str])] = &[
    ("proj_workspaces", &["workspace_id"]),
    ("proj_groups", &["workspace_id", "group_id"]),
    (
        "proj_memberships",
        &["workspace_id", "group_id", "device_id"],
    ),
    ("proj_devices", &["workspace_id", "device_id"]),
];

/// One migration: its version, a name, and the SQL that brings the schema from the previous
/// version to this one. Append new ones; never edit a released one.
struct Migration {
    version: i64,
    name: &'static str,
    sql: fn() -> String,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "event log",
        sql: || {
            "
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    event_version  INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    sync_id        TEXT,
    cause          TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be updated'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: events cannot be deleted'); END;
"
            .to_owned()
        },
    },
    Migration {
        version: 2,
        name: "projections",
        sql: || {
            let mut sql = projection_ddl("");
            sql.push_str(
                "CREATE INDEX proj_devices_serial ON proj_devices (workspace_id, serial_number);
                 INSERT INTO proj_checkpoint (name, position) VALUES ('projections', 0);",
            );
            sql
        },
    },
    Migration {
        version: 3,
        name: "credential vault",
        sql: || {
            "
CREATE TABLE credentials (
    workspace_id TEXT PRIMARY KEY,
    nonce        BLOB NOT NULL,
    ciphertext   BLOB NOT NULL,
    updated_at   TEXT NOT NULL
) WITHOUT ROWID;
"
            .to_owned()
        },
    },
    Migration {
        version: 4,
        name: "sync leases",
        sql: || {
            "
CREATE TABLE sync_leases (
    workspace_id TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) WITHOUT ROWID;
"
            .to_owned()
        },
    },
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 4;

/// Sets the per-connection pragmas. `wal` is false for in-memory databases.
pub(crate) fn configure(conn: &Connection, wal: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if wal {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!(
                "the database could not switch to WAL mode (it is in {mode} mode); is it on a network file system?"
            )));
        }
        // Durable across process crashes; an OS crash may lose the last commits, never corrupt.
        conn.execute_batch("PRAGMA synchronous = NORMAL;")?;
    }
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -32768;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Opens (creating if needed) a database file and brings its schema up to date.
pub(crate) fn open_file(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn, true)?;
    Ok(conn)
}

/// Applies every migration the database has not seen yet, each in its own IMMEDIATE
/// transaction (safe when several processes open the file at once).
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        );",
    )?;
    for m in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        if current > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        if current >= m.version {
            continue;
        }
        tx.execute_batch(&(m.sql)())?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                m.version,
                m.name,
                crate::codec::format_time(chrono::Utc::now())
            ],
        )?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version recorded in the database.
pub(crate) fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}
