//! The end-to-end harness: the built `mdmsync` binary, run as a separate process against a
//! database in a temporary directory, and `mdmsim` started in the test process on 127.0.0.1.

#![allow(dead_code)]

use mdmsim::{RunningSim, Scenario, SimCredentials, SimOptions, Simulator};
use mdmsync_core::{Endpoint, Provider};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The operator the tests run as (`USER`).
pub const OPERATOR: &str = "e2e-tester";

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Stdout as exactly one JSON document.
    pub fn json(&self) -> Value {
        let mut docs = serde_json::Deserializer::from_str(&self.stdout).into_iter::<Value>();
        let first = docs
            .next()
            .unwrap_or_else(|| panic!("no JSON on stdout; stderr: {}", self.stderr))
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout));
        assert!(
            docs.next().is_none(),
            "more than one JSON document on stdout: {}",
            self.stdout
        );
        first
    }
}

/// The binary with its own database and key file.
pub struct Cli {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub key_file: PathBuf,
    env: Vec<(String, String)>,
    printed: Mutex<String>,
}

impl Cli {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("e2e.db");
        let key_file = dir.path().join("vault.key");
        Self {
            dir,
            db,
            key_file,
            env: Vec::new(),
            printed: Mutex::new(String::new()),
        }
    }

    /// An extra environment variable for every run.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self, extra_env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mdmsync"));
        // A clean environment: no proxy, no MDMSYNC_KEY, nothing from the developer's shell.
        c.env_clear()
            .env("MDMSYNC_DB", &self.db)
            .env("MDMSYNC_KEY_FILE", &self.key_file)
            .env("USER", OPERATOR)
            // Fast failures for injected faults (docs/cli.md, environment).
            .env("MDMSYNC_HTTP_ATTEMPTS", "2")
            .env("MDMSYNC_HTTP_RETRY_DELAY_MS", "1")
            .env("MDMSYNC_HTTP_TIMEOUT_SECS", "2")
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c
    }

    /// Runs `mdmsync ARGS` (human output).
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Runs with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.finish(self.command(env).args(args))
    }

    /// Runs without `MDMSYNC_DB` and `MDMSYNC_KEY_FILE`: the defaults apply.
    pub fn run_defaults(&self, args: &[&str]) -> Run {
        let mut c = self.command(&[]);
        c.env_remove("MDMSYNC_DB").env_remove("MDMSYNC_KEY_FILE");
        self.finish(c.args(args))
    }

    fn finish(&self, command: &mut Command) -> Run {
        let out = command.output().expect("the mdmsync binary runs");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut p = self.printed.lock().unwrap();
        p.push_str(&run.stdout);
        p.push_str(&run.stderr);
        run
    }

    /// Runs `mdmsync ARGS --json`: the exit code and the one JSON document.
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        self.json_env(args, &[])
    }

    /// [`Cli::json`] with extra environment variables.
    pub fn json_env(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
        let mut a = args.to_vec();
        a.push("--json");
        let run = self.run_env(&a, env);
        (run.code, run.json())
    }

    /// Like [`Cli::json`], asserting the exit code.
    pub fn ok(&self, args: &[&str], code: i32) -> Value {
        let (c, v) = self.json(args);
        assert_eq!(c, code, "mdmsync {args:?} exited {c}: {v}");
        v
    }

    /// Everything every run printed, stdout and stderr.
    pub fn printed(&self) -> String {
        self.printed.lock().unwrap().clone()
    }

    /// C2: none of `secrets` is in the database files or in anything printed so far.
    pub fn assert_secrets_absent(&self, secrets: &[&str]) {
        let printed = self.printed();
        let mut files = vec![self.db.clone()];
        for suffix in ["-wal", "-shm"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            files.push(PathBuf::from(p));
        }
        assert!(self.db.exists());
        for s in secrets {
            assert!(!printed.contains(s), "a secret was printed");
            for f in &files {
                if let Ok(bytes) = std::fs::read(f) {
                    assert!(
                        !contains(&bytes, s.as_bytes()),
                        "a secret is in {} in clear text",
                        f.display()
                    );
                }
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A simulator on its own runtime (the test body stays synchronous and spawns processes).
pub struct Sim {
    pub sim: RunningSim,
    _rt: tokio::runtime::Runtime,
}

impl Sim {
    pub fn start(provider: Provider, scenario: Scenario, tls: bool) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut opts = SimOptions::new(provider, scenario);
        if tls {
            opts = opts.with_tls();
        }
        let sim = rt.block_on(Simulator::start(opts)).unwrap();
        Self { sim, _rt: rt }
    }

    pub fn control(&self) -> mdmsim::SimControl {
        self.sim.control()
    }

    /// `connect` arguments for this simulator: tenant-host providers get the `host` credential,
    /// fixed-endpoint ones `--base-url` (and Intune `--login-url`). `secret` replaces every
    /// secret credential field.
    pub fn connect_args(&self, ws: &str, secret: &str) -> Vec<String> {
        let provider = self.sim.provider();
        let mut a = vec![
            "connect".to_owned(),
            "--workspace".into(),
            ws.into(),
            "--provider".into(),
            provider.slug().into(),
        ];
        if matches!(provider.endpoint(), Endpoint::Fixed { .. }) {
            a.push("--base-url".into());
            a.push(self.sim.base_url());
        }
        if let Some(l) = self.sim.login_url() {
            a.push("--login-url".into());
            a.push(l);
        }
        for (k, v) in self.credentials(secret) {
            a.push("--credential".into());
            a.push(format!("{k}={v}"));
        }
        a
    }

    /// The credential fields, secret ones replaced by `secret`.
    pub fn credentials(&self, secret: &str) -> BTreeMap<String, String> {
        let provider = self.sim.provider();
        let mut c = self.sim.credentials();
        for f in provider.credential_fields() {
            if f.secret {
                c.insert(f.key.to_owned(), secret.to_owned());
            }
        }
        c
    }
}

/// The sample fleet (5 devices, 3 groups) with `secret` as every secret credential.
pub fn scenario(secret: &str) -> Scenario {
    let mut s = Scenario::sample();
    s.credentials = SimCredentials {
        client_secret: secret.into(),
        api_token: secret.into(),
        api_key: secret.into(),
        ..SimCredentials::default()
    };
    s
}

/// A value unique to this test run (secrets must not collide with anything else in the files).
pub fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", t, std::process::id())
}

/// What a correct sync makes of a scenario: group name → member serials. Intune kiosk
/// devices are never Entra members.
pub fn expected_groups(provider: Provider, s: &Scenario) -> BTreeMap<String, BTreeSet<String>> {
    s.groups
        .iter()
        .map(|g| {
            let members = g
                .members
                .iter()
                .filter_map(|id| s.devices.iter().find(|d| d.id == *id))
                .filter(|d| !(provider == Provider::Intune && d.kiosk))
                .filter_map(|d| d.serial_number.clone())
                .collect();
            (g.name.clone(), members)
        })
        .collect()
}

/// A `groups list` document as name → (source, member serials).
pub fn groups_by_name(doc: &Value) -> BTreeMap<String, (String, BTreeSet<String>)> {
    doc.as_array()
        .expect("groups list is an array")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                (
                    g["source"].as_str().unwrap().to_owned(),
                    g["members"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| m["serial_number"].as_str().unwrap_or("").to_owned())
                        .collect(),
                ),
            )
        })
        .collect()
}

/// Asserts a JSON object has exactly these keys (the contract's shapes, docs/cli.md).
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let got: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(got, want, "keys of {v}");
}

/// Writes a file in the test's directory.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
