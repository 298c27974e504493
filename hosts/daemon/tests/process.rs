//! `mdmsyncd` started as a process on 127.0.0.1, over a database prepared with the SQLite
//! crate and a workspace connected to an in-test `mdmsim`: the token (401), a manual sync that
//! runs once then 429 with Retry-After, `/healthz` and `/metrics`, SIGTERM → exit 0 (in-flight
//! sync finished or abandoned without a trace), two daemons on one database (T4), `--help`
//! and configuration errors, and no secret in the logs.

use chrono::{TimeDelta, Utc};
use mdmsim::{FaultKind, FaultRule, Scenario, SimOptions, Simulator};
use mdmsync_core::testkit::{FakeMdm, ManualClock};
use mdmsync_core::{
    Actor, Command, ConnectionSettings, Credentials, Event, EventStore, Plan, Provider,
    SyncRequest, SyncService, SyncTrigger, WorkspaceId,
};
use mdmsync_daemon::{SharedClock, SharedIds, UuidIds};
use mdmsync_sqlite::{KeyFile, SqliteEventStore, SqliteVault};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "process-test-admin-token-42";

/// Prepares a database: a Pro workspace connected to `sim` (credentials in the vault, keyed
/// by the key file), optionally with a sync `synced_ago` in the past (so nothing is due).
async fn prepare(
    dir: &Path,
    sim: &mdmsim::RunningSim,
    synced_ago: Option<TimeDelta>,
) -> (WorkspaceId, SqliteEventStore) {
    let store = SqliteEventStore::open(dir.join("mdmsync.db")).unwrap();
    let key = KeyFile::load_or_create(dir.join("mdmsync.key")).unwrap();
    let vault = SqliteVault::new(&store, key);
    let start = Utc::now() - synced_ago.unwrap_or_default();
    let clock = Arc::new(ManualClock::new(start));
    let cli = SyncService::new(
        store.clone(),
        SharedClock(clock),
        SharedIds(Arc::new(UuidIds)),
    );
    let ws = WorkspaceId(uuid::Uuid::new_v4());
    let provider = sim.provider();
    let credentials = Credentials::new(
        provider,
        sim.credentials()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v))),
    )
    .unwrap();
    vault.save_blocking(ws, &credentials).unwrap();
    {
        let actor = Actor::Operator("test".into());
        cli.execute(
            ws,
            Command::CreateWorkspace {
                workspace_id: ws,
                name: "Acme".into(),
                plan: Plan::Pro,
            },
            actor.clone(),
        )
        .await
        .unwrap();
        cli.execute(
            ws,
            Command::Connect {
                provider,
                settings: ConnectionSettings {
                    base_url: Some(sim.base_url()),
                    login_url: sim.login_url(),
                },
            },
            actor.clone(),
        )
        .await
        .unwrap();
        if synced_ago.is_some() {
            cli.sync(
                ws,
                &FakeMdm::new(provider),
                SyncRequest::new(SyncTrigger::ProviderChanged, actor),
            )
            .await
            .unwrap();
        }
    }
    (ws, store)
}

struct Daemon {
    child: Child,
    base: String,
    stderr: PathBuf,
}

impl Daemon {
    /// Starts `mdmsyncd --config` with `extra` TOML appended, waits for its first stdout line.
    fn start(dir: &Path, name: &str, extra: &str) -> Daemon {
        std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "database = \"mdmsync.db\"\nkey_file = \"mdmsync.key\"\nlisten = \"127.0.0.1:0\"\n\
                 admin_token_file = \"token\"\n{extra}\n[log]\nformat = \"json\"\nfilter = \"info\"\n"
            ),
        )
        .unwrap();
        let stderr = dir.join(format!("{name}.log"));
        let mut child = Process::new(env!("CARGO_BIN_EXE_mdmsyncd"))
            .arg("--config")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "mdmsyncd did not start: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            });
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .to_owned();
        Daemon {
            child,
            base,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM with `kill -TERM` and waits for the exit.
    async fn terminate(mut self) -> (ExitStatus, String) {
        let status = Process::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let status = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(s) = self.child.try_wait().unwrap() {
                    return (s, self);
                }
                if std::time::Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("mdmsyncd did not exit after SIGTERM: {}", self.logs());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await
        .unwrap();
        let logs = status.1.logs();
        (status.0, logs)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.json().await.unwrap()
}

fn secrets(sim: &mdmsim::RunningSim) -> Vec<String> {
    let c = sim.control().scenario().credentials;
    vec![c.api_token, c.api_key, c.client_secret]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_token_manual_sync_once_then_429_healthz_metrics_and_sigterm_exits_0() {
    let sim = Simulator::start(SimOptions::new(Provider::Fleet, Scenario::sample()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ws, _store) = prepare(dir.path(), &sim, Some(TimeDelta::hours(1))).await;
    let d = Daemon::start(dir.path(), "a", "[scheduler]\npoll_interval_ms = 50");
    let http = http();

    // 401 without a token or with a wrong one; /healthz needs none.
    let r = http.get(d.url("/workspaces")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .post(d.url(&format!("/workspaces/{ws}/sync")))
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Nothing is due (synced an hour ago): the daemon leaves the MDM alone.
    let status = get_json(&http, &d.url(&format!("/workspaces/{ws}"))).await;
    assert_eq!(status["running"], false);
    assert_eq!(status["manual_allowed_at"], Value::Null);

    // A manual sync runs once…
    let r = http
        .post(d.url(&format!("/workspaces/{ws}/sync")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outcome"], "succeeded", "{body}");
    assert_eq!(body["report"]["created"], 3, "the sample fleet's groups");
    // …and a second within the cooldown is refused with Retry-After (T2).
    let r = http
        .post(d.url(&format!("/workspaces/{ws}/sync")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    let labels_fetched = sim
        .control()
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("fleet.labels"))
        .count();
    assert_eq!(labels_fetched, 1, "the MDM was asked once");

    let groups = get_json(&http, &d.url(&format!("/workspaces/{ws}/groups"))).await;
    assert_eq!(groups.as_array().unwrap().len(), 3);
    let metrics = http
        .get(d.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for line in [
        "mdmsyncd_syncs_total{outcome=\"succeeded\",error_kind=\"\"} 1",
        "mdmsyncd_syncs_total{outcome=\"refused\",error_kind=\"\"} 1",
        "mdmsyncd_sync_duration_seconds_count 1",
        "mdmsyncd_workspaces 1",
        "mdmsyncd_workspaces_due 0",
        "mdmsyncd_api_unauthorized_total 2",
        "mdmsyncd_events_appended_total{type=\"SyncSucceeded\"} 1",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }

    let (status, logs) = d.terminate().await;
    assert!(status.success(), "exit {status:?}: {logs}");
    assert!(logs.contains("mdmsyncd stopped"), "{logs}");
    assert!(logs.contains("sync succeeded"), "{logs}");
    for secret in secrets(&sim) {
        assert!(!logs.contains(&secret), "C2: a secret in the logs");
    }
    assert!(!logs.contains(TOKEN), "the admin token in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_sigterm_abandons_an_in_flight_sync_without_appending_and_exits_0() {
    let sim = Simulator::start(SimOptions::new(Provider::Fleet, Scenario::sample()))
        .await
        .unwrap();
    // The group listing hangs for a while.
    sim.control().add_fault(
        FaultRule::new(FaultKind::Delay { millis: 20_000 })
            .route("fleet.labels")
            .times(1),
    );
    let dir = tempfile::tempdir().unwrap();
    let (ws, store) = prepare(dir.path(), &sim, Some(TimeDelta::hours(1))).await;
    let d = Daemon::start(
        dir.path(),
        "a",
        "shutdown_grace_secs = 0\n[scheduler]\npoll_interval_ms = 50",
    );
    let http = http();
    let r = http
        .post(d.url(&format!("/workspaces/{ws}/sync?wait=false")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ctl = sim.control();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // The delayed listing is being served (requests are logged when they end).
    while ctl.stats().in_flight == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = store.read_stream(ws, 0, 10_000).await.unwrap().len();
    let (status, logs) = d.terminate().await;
    assert!(status.success(), "exit {status:?}: {logs}");
    assert!(logs.contains("abandoned"), "{logs}");
    let after = store.read_stream(ws, 0, 10_000).await.unwrap();
    assert_eq!(after.len(), before, "nothing partial appended");
    assert!(store.sync_lease(ws).unwrap().is_none(), "lease released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_t4_two_daemons_on_one_database_sync_a_workspace_once() {
    let sim = Simulator::start(SimOptions::new(Provider::Fleet, Scenario::sample()))
        .await
        .unwrap();
    // Slow enough that the second daemon looks while the first holds the lease.
    sim.control().add_fault(
        FaultRule::new(FaultKind::Delay { millis: 1_500 })
            .route("fleet.labels")
            .times(1),
    );
    let dir = tempfile::tempdir().unwrap();
    // Connected just now, never synced: due at once (T3) for both daemons.
    let (ws, store) = prepare(dir.path(), &sim, None).await;
    let extra = "[scheduler]\npoll_interval_ms = 50\nlease_ttl_secs = 3";
    let a = Daemon::start(dir.path(), "a", extra);
    let b = Daemon::start(dir.path(), "b", extra);
    let http = http();
    let conflicts = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("mdmsyncd_lease_conflicts_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let metrics = |d: &Daemon| {
        let req = http.get(d.url("/metrics")).bearer_auth(TOKEN);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    let synced = |store: &SqliteEventStore| {
        let store = store.clone();
        async move {
            store
                .read_stream(ws, 0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| matches!(r.envelope.event, Event::SyncSucceeded { .. }))
                .map(|r| r.position.0)
                .collect::<Vec<_>>()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let end = loop {
        let done = synced(&store).await;
        if let Some(p) = done.first() {
            break *p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}\n{}",
            a.logs(),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Both daemons have read the sync and run nothing.
    for d in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = get_json(&http, &d.url(&format!("/workspaces/{ws}"))).await;
            let text = metrics(d).await;
            let read = text
                .lines()
                .find_map(|l| l.strip_prefix("mdmsyncd_log_position "))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if s["running"] == false && s["last_sync"]["outcome"] == "succeeded" && read >= end {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}", d.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let total_conflicts = conflicts(&metrics(&a).await) + conflicts(&metrics(&b).await);
    let (sa, la) = a.terminate().await;
    let (sb, lb) = b.terminate().await;
    assert!(sa.success() && sb.success(), "{la}\n{lb}");
    assert!(
        total_conflicts >= 1,
        "the second daemon met the lease: {la}\n{lb}"
    );
    assert_eq!(synced(&store).await.len(), 1, "one sync, not two");
    let labels = sim
        .control()
        .requests()
        .iter()
        .filter(|r| r.route.as_deref() == Some("fleet.labels"))
        .count();
    assert_eq!(labels, 1, "the MDM was asked once");
}

#[test]
fn process_help_lists_the_environment_and_bad_config_exits_2() {
    let out = Process::new(env!("CARGO_BIN_EXE_mdmsyncd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config",
        "MDMSYNCD_ADMIN_TOKEN_FILE",
        "MDMSYNC_DB",
        "SIGTERM",
    ] {
        assert!(help.contains(needle), "{needle} missing from --help");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let out = Process::new(env!("CARGO_BIN_EXE_mdmsyncd"))
        .arg("--config")
        .arg(&config)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no admin token"));
    std::fs::write(&config, "[scheduler]\nconcurrency = \"many\"\n").unwrap();
    let out = Process::new(env!("CARGO_BIN_EXE_mdmsyncd"))
        .arg("--config")
        .arg(&config)
        .env_clear()
        .env("MDMSYNCD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_refuses_to_mint_a_new_key_over_connected_workspaces() {
    let sim = Simulator::start(SimOptions::new(Provider::Fleet, Scenario::sample()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path(), &sim, Some(TimeDelta::hours(1))).await;
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "database = \"mdmsync.db\"\nkey_file = \"other.key\"\nlisten = \"127.0.0.1:0\"\nadmin_token_file = \"token\"\n",
    )
    .unwrap();
    let out = Process::new(env!("CARGO_BIN_EXE_mdmsyncd"))
        .arg("--config")
        .arg(&config)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other.key does not exist"), "{err}");
    assert!(
        !dir.path().join("other.key").exists(),
        "no key minted over connected workspaces"
    );
}
