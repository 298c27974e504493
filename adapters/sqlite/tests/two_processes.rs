//! G10 and the global position across processes: two OS processes append to one database
//! file at once (the test binary runs itself as the writers), with optimistic concurrency
//! and retries on the shared stream. Nothing is lost, positions stay unique and gap-free,
//! projections stay exact.
//!
//! `harness = false`: `main` is the parent, or a writer when `MDMSYNC_TWO_PROCESSES_CHILD`
//! is set.

use mdmsync_core::{
    Actor, Cause, DeviceId, Event, EventEnvelope, EventMeta, ExpectedVersion, Plan, Position,
    StoreError, WorkspaceId,
};
use mdmsync_sqlite::SqliteEventStore;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CHILD: &str = "MDMSYNC_TWO_PROCESSES_CHILD";
const DB: &str = "MDMSYNC_TWO_PROCESSES_DB";
const PER_CHILD: u128 = 40;

fn shared() -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(0x2_0000))
}

fn own(child: u128) -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(0x2_0000 + 1 + child))
}

fn env(w: WorkspaceId, event: Event) -> EventEnvelope {
    EventEnvelope {
        workspace: w,
        meta: EventMeta {
            recorded_at: chrono::Utc::now(),
            actor: Actor::System,
            sync_id: None,
            cause: Cause::Command {
                command: "two_processes".into(),
            },
        },
        event,
    }
}

fn device(w: WorkspaceId, n: u128) -> EventEnvelope {
    env(
        w,
        Event::DeviceRegistered {
            device_id: DeviceId(Uuid::from_u128(n)),
            serial_number: Some(format!("S{n}")),
            name: None,
        },
    )
}

fn child(id: u128, db: &str) -> Result<(), String> {
    let store = SqliteEventStore::open(db).map_err(|e| e.to_string())?;
    let mut conflicts = 0u32;
    for n in 0..PER_CHILD {
        loop {
            let version = store
                .read_stream_blocking(shared(), 0, usize::MAX)
                .map_err(|e| e.to_string())?
                .len() as u64;
            match store.append_blocking(
                shared(),
                ExpectedVersion::Exact(version),
                vec![device(shared(), id * 1_000 + n)],
            ) {
                Ok(_) => break,
                Err(StoreError::Conflict { .. }) => conflicts += 1,
                Err(e) => return Err(e.to_string()),
            }
        }
        store
            .append_blocking(own(id), ExpectedVersion::Any, vec![device(own(id), n)])
            .map_err(|e| e.to_string())?;
    }
    eprintln!("writer {id}: {PER_CHILD} appends, {conflicts} conflicts retried");
    Ok(())
}

fn parent() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = dir.path().join("shared.db");
    let store = SqliteEventStore::open(&db).map_err(|e| e.to_string())?;
    store
        .append_blocking(
            shared(),
            ExpectedVersion::NoStream,
            vec![env(
                shared(),
                Event::WorkspaceCreated {
                    workspace_id: shared(),
                    name: "shared".into(),
                    plan: Plan::Pro,
                },
            )],
        )
        .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for id in 1..=2u128 {
        children.push(
            Command::new(&exe)
                .env(CHILD, id.to_string())
                .env(DB, &db)
                .spawn()
                .map_err(|e| format!("cannot start writer {id}: {e}"))?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for (i, mut c) in children.into_iter().enumerate() {
        loop {
            if let Some(status) = c.try_wait().map_err(|e| e.to_string())? {
                if !status.success() {
                    return Err(format!("writer {} failed: {status}", i + 1));
                }
                break;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return Err(format!("writer {} did not finish in 120 s", i + 1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let all = store
        .read_all_blocking(Position(0), usize::MAX)
        .map_err(|e| e.to_string())?;
    let total = 1 + 4 * PER_CHILD as usize;
    check(
        all.len() == total,
        format!("{} events, expected {total}", all.len()),
    )?;
    for (i, e) in all.iter().enumerate() {
        check(
            e.position == Position(i as u64 + 1),
            format!("position gap at {i}: {:?}", e.position),
        )?;
    }
    let stream = store
        .read_stream_blocking(shared(), 0, usize::MAX)
        .map_err(|e| e.to_string())?;
    for (i, e) in stream.iter().enumerate() {
        check(
            e.stream_version == i as u64 + 1,
            format!("version gap at {i}"),
        )?;
    }
    let devices = store.devices(shared(), None).map_err(|e| e.to_string())?;
    check(
        devices.len() == 2 * PER_CHILD as usize,
        format!("{} devices in the shared projection", devices.len()),
    )?;
    for id in 1..=2u128 {
        let mine = store.devices(own(id), None).map_err(|e| e.to_string())?;
        check(
            mine.len() == PER_CHILD as usize,
            format!("writer {id}: {} devices", mine.len()),
        )?;
    }
    let report = store.verify().map_err(|e| e.to_string())?;
    check(report.is_clean(), format!("verify: {report:?}"))?;
    Ok(())
}

fn check(ok: bool, what: String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what) }
}

fn main() -> ExitCode {
    if let Ok(id) = std::env::var(CHILD) {
        let db = std::env::var(DB).unwrap_or_default();
        return match child(id.parse().unwrap_or(9), &db) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("writer {id}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let name = "g10_two_processes_on_one_file_lose_nothing_and_keep_positions_dense";
    println!("\nrunning 1 test");
    match parent() {
        Ok(()) => {
            println!(
                "test {name} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "test {name} ... FAILED\n\n{e}\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
            ExitCode::FAILURE
        }
    }
}
