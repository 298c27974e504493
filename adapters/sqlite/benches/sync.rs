//! `cargo bench -p mdmsync-sqlite --bench sync` — the SQLite store on generated data, in one
//! process (see `docs/performance.md`):
//!
//! 1. initial sync of 100,000 devices / 2,000 groups / 500,000 memberships: reconcile
//!    (`Workspace::decide(ApplySnapshot)`), append and projection (same transaction);
//! 2. resyncs with 1% membership churn on that state, end to end without the fetch;
//! 3. replay of 1,000,000 events into in-memory `Workspace` state, a projection rebuild, and
//!    `verify` (must report no difference);
//! 4. a raw rusqlite baseline: as many rows of the same size inserted in one transaction with
//!    a prepared statement, and the log's rows read back and JSON-decoded.
//!
//! Prints every figure, the peak RSS (VmHWM) and `ratio.<name> <value>` lines.
//! `MDMSYNC_BENCH_SCALE=0.1` runs a tenth of the sizes.

use chrono::{TimeDelta, TimeZone, Utc};
use mdmsync_core::workspace::Context;
use mdmsync_core::{
    Actor, Command, ConnectionSettings, DeviceId, Event, ExpectedVersion, MdmMetadata, Plan,
    Position, Provider, Snapshot, SyncId, SyncTrigger, Workspace, WorkspaceId,
};
use mdmsync_sqlite::{AppendTimings, SqliteEventStore};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("{name:<44} {value:>12.1} {unit}");
}

fn timings(prefix: &str, t: &AppendTimings) {
    figure(&format!("{prefix}.append.insert"), ms(t.insert), "ms");
    figure(&format!("{prefix}.append.project"), ms(t.project), "ms");
    figure(&format!("{prefix}.append.commit"), ms(t.commit), "ms");
}

struct Sizes {
    devices: u32,
    groups: u32,
    memberships: u64,
    replay_events: u64,
}

fn mdm_id(n: u32) -> String {
    format!("m{n}")
}

/// Group `g`'s members: a window of `per_group` consecutive devices starting at a spread-out
/// offset, shifted by `shift` (churn).
fn members(g: u32, per_group: u32, shift: u32, devices: u32) -> Vec<String> {
    let start = (u64::from(g) * 7_919 % u64::from(devices)) as u32;
    (0..per_group)
        .map(|k| mdm_id((start + shift + k) % devices))
        .collect()
}

fn snapshot(sizes: &Sizes, shifts: &[u32]) -> Snapshot {
    let per_group = (sizes.memberships / u64::from(sizes.groups)) as u32;
    let mut s = Snapshot::new(Provider::Jamf);
    for g in 0..sizes.groups {
        s = s.with_group(
            format!("{}", 10_000 + g),
            &format!("Group {g}"),
            members(g, per_group, shifts[g as usize], sizes.devices),
        );
    }
    s
}

fn main() {
    let scale: f64 = std::env::var("MDMSYNC_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let sizes = Sizes {
        devices: (100_000.0 * scale) as u32,
        groups: ((2_000.0 * scale) as u32).max(1),
        memberships: (500_000.0 * scale) as u64,
        replay_events: (1_000_000.0 * scale) as u64,
    };
    println!(
        "# mdmsync-sqlite bench: scale {scale}: {} devices, {} groups, {} memberships, replay {} events",
        sizes.devices, sizes.groups, sizes.memberships, sizes.replay_events
    );
    figure(
        "mem.size_of_event",
        std::mem::size_of::<Event>() as f64,
        "bytes",
    );
    figure(
        "mem.size_of_envelope",
        std::mem::size_of::<mdmsync_core::EventEnvelope>() as f64,
        "bytes",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteEventStore::open(dir.path().join("bench.db")).expect("open store");
    let ws_id = WorkspaceId(Uuid::from_u128(0xBE_0000));
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let mut now = t0;
    let mut ws = Workspace::new();
    let mut version = 0u64;

    // --- setup: a Pro workspace on Jamf with devices registered with metadata -------------
    let ctx = Context::command(now, Actor::Operator("bench".into()), "setup");
    let mut setup = Vec::new();
    for c in [
        Command::CreateWorkspace {
            workspace_id: ws_id,
            name: "Bench".into(),
            plan: Plan::Pro,
        },
        Command::Connect {
            provider: Provider::Jamf,
            settings: ConnectionSettings::default(),
        },
    ] {
        let events = ws.decide(c, &ctx).expect("setup");
        events.iter().for_each(|e| ws.apply(e));
        setup.extend(events);
    }
    for n in 0..sizes.devices {
        let device_id = DeviceId(Uuid::from_u128(0xD0_0000_0000 + u128::from(n)));
        let events = [
            Event::DeviceRegistered {
                device_id,
                serial_number: Some(format!("C02BENCH{n:06}")),
                name: Some(format!("mac-{n}")),
            },
            Event::DeviceMetadataRecorded {
                device_id,
                metadata: Box::new(MdmMetadata {
                    mdm_device_id: mdm_id(n).into(),
                    mdm_user_id: Some(format!("u{n}").into()),
                    mdm_display_name: Some(format!("User {n}")),
                    console_url: Some(format!("https://bench.jamfcloud.com/computers.html?id={n}")),
                }),
                fetched_at: now,
                ambiguous_candidates: 0,
            },
        ];
        events.iter().for_each(|e| ws.apply(e));
        setup.extend(events);
    }
    let n_setup = setup.len();
    let t = Instant::now();
    let (out, st) = store
        .append_timed(
            ws_id,
            ExpectedVersion::NoStream,
            ctx.envelopes(ws_id, setup),
        )
        .expect("setup append");
    version = version.max(out.stream_version);
    figure("setup.events", n_setup as f64, "events");
    figure("setup.append_total", ms(t.elapsed()), "ms");
    timings("setup", &st);
    figure("rss.after_setup", peak_rss_mb(), "MB");

    // --- (1) initial sync -------------------------------------------------------------------
    let mut shifts = vec![0u32; sizes.groups as usize];
    let snap = snapshot(&sizes, &shifts);
    now += TimeDelta::hours(1);
    let sync_ctx = |now, n: u128| {
        Context::sync(
            now,
            Actor::Scheduler,
            SyncId(Uuid::from_u128(0x5E_0000 + n)),
            SyncTrigger::Scheduled,
        )
    };
    let ctx = sync_ctx(now, 0);
    let t_total = Instant::now();
    let t = Instant::now();
    let events = ws
        .decide(
            Command::ApplySnapshot {
                snapshot: snap,
                trigger: SyncTrigger::Scheduled,
                started_at: now,
                confirm: None,
            },
            &ctx,
        )
        .expect("initial sync");
    let reconcile = t.elapsed();
    let n_initial = events.len();
    assert!(
        matches!(events.last(), Some(Event::SyncSucceeded { .. })),
        "initial sync applied"
    );
    let t = Instant::now();
    let (out, it) = store
        .append_events_timed(ws_id, ExpectedVersion::Exact(version), &ctx.meta(), &events)
        .expect("initial append");
    let append = t.elapsed();
    let untimed = Instant::now();
    events.iter().for_each(|e| ws.apply(e));
    drop(events);
    let state_apply = untimed.elapsed();
    version = out.stream_version;
    let initial_total = t_total.elapsed() - state_apply;
    figure("initial_sync.events", n_initial as f64, "events");
    figure("initial_sync.reconcile", ms(reconcile), "ms");
    figure("initial_sync.append_and_project", ms(append), "ms");
    timings("initial_sync", &it);
    figure("initial_sync.total", ms(initial_total), "ms");
    figure("initial_sync.state_apply(untimed)", ms(state_apply), "ms");
    figure("rss.after_initial_sync", peak_rss_mb(), "MB");

    // --- (4a) raw baseline: the same number of rows of the same size, one transaction -----
    let raw_path = dir.path().join("raw.db");
    let raw = rusqlite::Connection::open(&raw_path).expect("raw db");
    raw.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;
         PRAGMA wal_autocheckpoint = 0;
",
    )
    .expect("raw schema");
    let stream = ws_id.to_string();
    let sync = SyncId(Uuid::from_u128(0x5E_0000)).to_string();
    // Run twice into fresh tables and keep the faster run (the conservative baseline on a
    // shared machine).
    let raw_insert_once = |table: &str| -> Duration {
        raw.execute_batch(&format!(
            "CREATE TABLE {table} (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL,
               stream_version INTEGER NOT NULL, event_type TEXT NOT NULL,
               event_version INTEGER NOT NULL, payload TEXT NOT NULL, recorded_at TEXT NOT NULL,
               actor TEXT NOT NULL, sync_id TEXT, cause TEXT NOT NULL);"
        ))
        .expect("raw table");
        let t = Instant::now();
        {
            let tx = raw.unchecked_transaction().expect("tx");
            {
                let mut stmt = tx
                    .prepare(&format!(
                        "INSERT INTO {table} (stream_id, stream_version, event_type, event_version,
                       payload, recorded_at, actor, sync_id, cause)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                    ))
                    .expect("prepare");
                for i in 0..n_initial as u64 {
                    let payload = format!(
                        r#"{{"group_id":"{}","device_id":"{}","via":"m{}"}}"#,
                        Uuid::from_u128(0x6E_0000_0000 + u128::from(i % 2_000)),
                        Uuid::from_u128(0xD0_0000_0000 + u128::from(i)),
                        i % 100_000
                    );
                    stmt.execute(rusqlite::params![
                        stream,
                        (n_setup as u64 + i + 1) as i64,
                        "MemberAdded",
                        1,
                        payload,
                        "2026-01-01T01:00:00.000000Z",
                        "scheduler",
                        sync,
                        r#"{"kind":"sync","trigger":"scheduled"}"#
                    ])
                    .expect("raw insert");
                }
            }
            tx.commit().expect("raw commit");
        }
        t.elapsed()
    };
    let raw_first = raw_insert_once("raw_events_1");
    let raw_second = raw_insert_once("raw_events_2");
    let raw_insert = raw_first.min(raw_second);
    figure("raw.insert.first_run", ms(raw_first), "ms");
    figure("raw.insert.second_run", ms(raw_second), "ms");
    figure("raw.insert_rows", n_initial as f64, "rows");
    figure("raw.insert", ms(raw_insert), "ms");
    figure("rss.after_raw_insert", peak_rss_mb(), "MB");

    // --- (2) resyncs with 1% membership churn -----------------------------------------------
    let churn = (sizes.memberships / 100 / 2).max(1) as usize;
    let mut resync_totals = Vec::new();
    let mut resync_parts = Vec::new();
    let mut validates = Vec::new();
    let mut n = 0u128;
    let max_resyncs = 100;
    while (version < sizes.replay_events && (n as usize) < max_resyncs) || n == 0 {
        n += 1;
        for k in 0..churn {
            let g = (k + n as usize * 7) % shifts.len();
            shifts[g] += 1;
        }
        let snap = snapshot(&sizes, &shifts);
        let t = Instant::now();
        black_box(snap.validate().expect("valid snapshot"));
        validates.push(t.elapsed());
        now += TimeDelta::hours(6);
        let ctx = sync_ctx(now, n);
        let t = Instant::now();
        let events = ws
            .decide(
                Command::ApplySnapshot {
                    snapshot: snap,
                    trigger: SyncTrigger::Scheduled,
                    started_at: now,
                    confirm: None,
                },
                &ctx,
            )
            .expect("resync");
        let decide = t.elapsed();
        let count = events.len();
        assert!(
            matches!(events.last(), Some(Event::SyncSucceeded { .. })),
            "resync applied, not held"
        );
        let untimed = Instant::now();
        events.iter().for_each(|e| ws.apply(e));
        let apply = untimed.elapsed();
        let t2 = Instant::now();
        let (out, rt) = store
            .append_timed(
                ws_id,
                ExpectedVersion::Exact(version),
                ctx.envelopes(ws_id, events),
            )
            .expect("resync append");
        let append = t2.elapsed();
        version = out.stream_version;
        resync_totals.push(t.elapsed() - apply);
        resync_parts.push((decide, append, rt, count));
    }
    let mut sorted = resync_totals.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let (decide, append, rt, count) = resync_parts[0];
    figure("resync.count", resync_totals.len() as f64, "syncs");
    figure("resync.first.events", count as f64, "events");
    figure("resync.first.reconcile", ms(decide), "ms");
    figure("resync.first.append_and_project", ms(append), "ms");
    timings("resync.first", &rt);
    figure("resync.first.total", ms(resync_totals[0]), "ms");
    figure("resync.median.total", ms(median), "ms");
    figure("resync.max.total", ms(*sorted.last().expect("one")), "ms");
    let mut decides: Vec<Duration> = resync_parts.iter().map(|p| p.0).collect();
    decides.sort();
    figure(
        "resync.median.reconcile",
        ms(decides[decides.len() / 2]),
        "ms",
    );
    validates.sort();
    figure(
        "resync.median.reconcile.snapshot_validate",
        ms(validates[validates.len() / 2]),
        "ms",
    );
    let mut appends: Vec<Duration> = resync_parts.iter().map(|p| p.1).collect();
    appends.sort();
    figure(
        "resync.median.append_and_project",
        ms(appends[appends.len() / 2]),
        "ms",
    );
    figure("rss.after_resyncs", peak_rss_mb(), "MB");
    drop(ws);

    // Top up the log to the replay size with a second workspace's devices, if needed.
    let mut total = store.last_position().expect("position").0;
    if total < sizes.replay_events {
        let other = WorkspaceId(Uuid::from_u128(0xBE_0001));
        let ctx = Context::command(now, Actor::Operator("bench".into()), "filler");
        let mut v = 0u64;
        let mut i = 0u64;
        while total < sizes.replay_events {
            let batch = (sizes.replay_events - total).min(50_000);
            let events: Vec<Event> = (0..batch)
                .map(|k| Event::DeviceRegistered {
                    device_id: DeviceId(Uuid::from_u128(0xF0_0000_0000 + u128::from(i + k))),
                    serial_number: Some(format!("FILL{:07}", i + k)),
                    name: None,
                })
                .collect();
            i += batch;
            let out = store
                .append_blocking(
                    other,
                    ExpectedVersion::Exact(v),
                    ctx.envelopes(other, events),
                )
                .expect("filler");
            v = out.stream_version;
            total = out.last_position.0;
        }
    }
    figure("log.events", total as f64, "events");

    // --- (3) replay into in-memory state ----------------------------------------------------
    let t = Instant::now();
    let mut states: HashMap<WorkspaceId, Workspace> = HashMap::new();
    let mut after = Position(0);
    let mut replayed = 0u64;
    loop {
        let page = store.read_all_blocking(after, 10_000).expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        replayed += page.len() as u64;
        for e in &page {
            states
                .entry(e.envelope.workspace)
                .or_default()
                .apply(&e.envelope.event);
        }
    }
    let replay = t.elapsed();
    black_box(&states);
    let groups_after = states.get(&ws_id).map_or(0, |w| w.groups().len());
    drop(states);
    figure("replay.events", replayed as f64, "events");
    figure("replay.into_state", ms(replay), "ms");
    figure("replay.groups_in_state", groups_after as f64, "groups");
    let t = Instant::now();
    let mut after = Position(0);
    let mut decoded = 0u64;
    loop {
        let page = store.read_all_blocking(after, 10_000).expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        decoded += page.len() as u64;
        black_box(&page);
    }
    figure("replay.read_and_decode_only", ms(t.elapsed()), "ms");
    assert_eq!(decoded, replayed);
    figure("rss.after_replay", peak_rss_mb(), "MB");

    // --- (4b) raw read + JSON decode of the same rows ---------------------------------------
    raw.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS log;
         CREATE TABLE copy_events AS SELECT * FROM log.events;
         DETACH DATABASE log;",
        dir.path().join("bench.db").display()
    ))
    .expect("copy rows");
    raw.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("raw checkpoint");
    let t = Instant::now();
    let mut rows_read = 0u64;
    {
        let mut stmt = raw
            .prepare(
                "SELECT position, stream_id, stream_version, event_type, event_version, payload,
                        recorded_at, actor, sync_id, cause FROM copy_events ORDER BY position",
            )
            .expect("prepare");
        let mut rows = stmt.query([]).expect("query");
        while let Some(r) = rows.next().expect("row") {
            let payload = r.get_ref(5).expect("payload").as_str().expect("text");
            let v: serde_json::Value = serde_json::from_str(payload).expect("json");
            black_box(v);
            rows_read += 1;
        }
    }
    let raw_read = t.elapsed();
    assert_eq!(rows_read, replayed);
    figure("raw.read_and_decode_rows", rows_read as f64, "rows");
    figure("raw.read_and_decode", ms(raw_read), "ms");
    figure("rss.after_raw_read", peak_rss_mb(), "MB");

    // --- projection rebuild and verify --------------------------------------------------------
    let t = Instant::now();
    let rebuilt = store.rebuild().expect("rebuild");
    let rebuild = t.elapsed();
    figure("rebuild.events", rebuilt as f64, "events");
    figure("rebuild.total", ms(rebuild), "ms");
    figure("rss.after_rebuild", peak_rss_mb(), "MB");
    let t = Instant::now();
    let report = store.verify().expect("verify");
    figure("verify.total", ms(t.elapsed()), "ms");
    figure(
        "verify.differences",
        report.differences.len() as f64,
        "rows",
    );
    assert!(
        report.is_clean(),
        "verify found differences: {:?}",
        &report.differences[..report.differences.len().min(5)]
    );
    let db_size: u64 = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("bench.db"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    figure("db.size", db_size as f64 / 1_048_576.0, "MB");
    let rss = peak_rss_mb();
    figure("rss.peak(VmHWM)", rss, "MB");

    println!(
        "ratio.initial_sync_vs_raw_insert {:.2}",
        initial_total.as_secs_f64() / raw_insert.as_secs_f64()
    );
    println!("ratio.resync_median_vs_150ms {:.2}", ms(median) / 150.0);
    println!(
        "ratio.replay_vs_raw_read_decode {:.2}",
        replay.as_secs_f64() / raw_read.as_secs_f64()
    );
    println!(
        "ratio.rebuild_vs_raw_insert_per_row {:.2}",
        (rebuild.as_secs_f64() / rebuilt.max(1) as f64)
            / (raw_insert.as_secs_f64() / n_initial as f64)
    );
    println!("ratio.peak_rss_vs_400mb {:.2}", rss / 400.0);
}
