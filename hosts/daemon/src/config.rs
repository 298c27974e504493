//! The daemon's configuration: a TOML file, then environment overrides, then checks.
//!
//! Every key has a default except the admin token. Relative paths in the file are resolved
//! against the file's directory; relative paths from the environment against the working
//! directory. `docs/daemon.md` lists every key and variable.

use chrono::TimeDelta;
use mdmsync_core::SyncPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7717";
/// The shortest admin token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// Every environment variable the daemon reads, with the key it overrides (for `--help` and
/// the docs).
pub const ENV_VARS: &[(&str, &str)] = &[
    ("MDMSYNCD_CONFIG", "the config file (same as --config)"),
    ("MDMSYNC_DB", "database"),
    ("MDMSYNC_KEY_FILE", "key_file"),
    (
        "MDMSYNC_KEY",
        "the vault key itself, 64 hex digits (instead of key_file)",
    ),
    ("MDMSYNCD_LISTEN", "listen"),
    ("MDMSYNCD_ADMIN_TOKEN", "admin_token"),
    ("MDMSYNCD_ADMIN_TOKEN_FILE", "admin_token_file"),
    ("MDMSYNCD_API_CALLER", "api_caller"),
    ("MDMSYNCD_INSTANCE_ID", "instance_id"),
    ("MDMSYNCD_SHUTDOWN_GRACE_SECS", "shutdown_grace_secs"),
    ("MDMSYNCD_LOG_FORMAT", "log.format"),
    ("MDMSYNCD_LOG", "log.filter"),
    ("MDMSYNCD_CONCURRENCY", "scheduler.concurrency"),
    (
        "MDMSYNCD_PER_HOST_CONCURRENCY",
        "scheduler.per_host_concurrency",
    ),
    ("MDMSYNCD_JITTER_SECS", "scheduler.jitter_secs"),
    ("MDMSYNCD_INTERVAL_SECS", "scheduler.interval_secs"),
    ("MDMSYNCD_COOLDOWN_SECS", "scheduler.cooldown_secs"),
    (
        "MDMSYNCD_FAILURE_BACKOFF_SECS",
        "scheduler.failure_backoff_secs",
    ),
    (
        "MDMSYNCD_METADATA_MAX_AGE_SECS",
        "scheduler.metadata_max_age_secs",
    ),
    ("MDMSYNCD_METADATA", "scheduler.metadata"),
    ("MDMSYNCD_POLL_INTERVAL_MS", "scheduler.poll_interval_ms"),
    ("MDMSYNCD_SYNC_TIMEOUT_SECS", "scheduler.sync_timeout_secs"),
    ("MDMSYNCD_LEASE_TTL_SECS", "scheduler.lease_ttl_secs"),
    ("MDMSYNCD_MANUAL_WAIT_SECS", "scheduler.manual_wait_secs"),
    (
        "MDMSYNCD_EXTRA_CA_FILES",
        "tls.extra_ca_files (comma-separated)",
    ),
    (
        "MDMSYNC_CA_CERT",
        "tls.extra_ca_files, one file (the CLI's variable; MDMSYNCD_EXTRA_CA_FILES wins)",
    ),
];

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use json or pretty")),
        }
    }
}

/// How the scheduler runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most syncs and metadata refreshes running at once, over all workspaces.
    pub concurrency: usize,
    /// Most running at once against one MDM host (P5), e.g. one Jamf tenant or
    /// `graph.microsoft.com` for every Intune workspace.
    pub per_host_concurrency: usize,
    /// How often the log is tailed and due work started.
    pub poll_interval: Duration,
    /// A sync (or metadata refresh) running longer is abandoned: nothing of it is appended.
    pub sync_timeout: Duration,
    /// The cross-process sync lease's time to live (T4); renewed every third of it.
    pub lease_ttl: Duration,
    /// How long `POST /workspaces/{id}/sync` waits for the outcome before answering 202.
    pub manual_wait: Duration,
    /// Whether the daemon refreshes device metadata on its schedule (T5, M2).
    pub metadata: bool,
    /// This process's name in sync leases (unique per process).
    pub instance_id: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            per_host_concurrency: 2,
            poll_interval: Duration::from_secs(1),
            sync_timeout: Duration::from_secs(30 * 60),
            lease_ttl: Duration::from_secs(120),
            manual_wait: Duration::from_secs(60),
            metadata: true,
            instance_id: default_instance_id(),
        }
    }
}

/// `mdmsyncd-<pid>-<random>`: unique per process, so two daemons never share a lease holder.
pub fn default_instance_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("mdmsyncd-{}-{}", std::process::id(), &random[..8])
}

/// The whole configuration, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// The SQLite database file.
    pub database: PathBuf,
    /// The vault key file (created with a fresh key if missing; `MDMSYNC_KEY` wins). Default:
    /// the database path with the extension `.key`, as the CLI.
    pub key_file: PathBuf,
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// The bearer token every API route but `/healthz` requires.
    pub admin_token: SecretString,
    /// The name recorded as `api:<name>` on syncs started through the API (G12), unless the
    /// request names itself with `X-Mdmsync-Caller`.
    pub api_caller: String,
    /// How long in-flight syncs may finish after SIGTERM / Ctrl-C before they are abandoned.
    pub shutdown_grace: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`info`, `mdmsync_daemon=debug,info`).
    pub log_filter: String,
    /// Extra trusted CA certificates (PEM text) for every MDM connection (E3: added, never
    /// replacing verification).
    pub extra_ca_pem: Vec<String>,
    /// The schedule (T1–T5): interval, jitter, cooldown, backoff, metadata age.
    pub policy: SyncPolicy,
    /// The scheduler's limits.
    pub scheduler: SchedulerConfig,
}

/// What can be wrong with the configuration. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file is (`config file`, `admin token file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("{path}: {message}; see docs/daemon.md for the keys")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{key}: {message}")]
    Invalid {
        /// The key (or environment variable) at fault.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// No admin token anywhere.
    #[error(
        "no admin token: set admin_token_file in the config file (or MDMSYNCD_ADMIN_TOKEN_FILE / MDMSYNCD_ADMIN_TOKEN); generate one with `openssl rand -hex 32`"
    )]
    MissingToken,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database: Option<PathBuf>,
    key_file: Option<PathBuf>,
    listen: Option<String>,
    admin_token: Option<String>,
    admin_token_file: Option<PathBuf>,
    api_caller: Option<String>,
    instance_id: Option<String>,
    shutdown_grace_secs: Option<u64>,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    scheduler: SchedulerSection,
    #[serde(default)]
    tls: TlsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    format: Option<LogFormat>,
    filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulerSection {
    concurrency: Option<u64>,
    per_host_concurrency: Option<u64>,
    jitter_secs: Option<u64>,
    interval_secs: Option<u64>,
    cooldown_secs: Option<u64>,
    failure_backoff_secs: Option<u64>,
    metadata_max_age_secs: Option<u64>,
    metadata: Option<bool>,
    poll_interval_ms: Option<u64>,
    sync_timeout_secs: Option<u64>,
    lease_ttl_secs: Option<u64>,
    manual_wait_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    #[serde(default)]
    extra_ca_files: Vec<PathBuf>,
}

/// Where the admin token came from, before it is read.
enum TokenSource {
    Inline(SecretString),
    File(PathBuf),
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

fn env_u64(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Result<Option<u64>, ConfigError> {
    match env(var) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| invalid(var, format!("{v:?} is not a whole number"))),
    }
}

fn env_bool(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Result<Option<bool>, ConfigError> {
    match env(var) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(invalid(var, format!("{v:?} is not true or false"))),
        },
    }
}

fn secs(key: &str, v: u64, min: u64) -> Result<TimeDelta, ConfigError> {
    if v < min {
        return Err(invalid(key, format!("must be at least {min} seconds")));
    }
    i64::try_from(v)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .ok_or_else(|| invalid(key, "is too large"))
}

fn positive(key: &str, v: u64) -> Result<usize, ConfigError> {
    if v == 0 {
        return Err(invalid(key, "must be at least 1"));
    }
    usize::try_from(v).map_err(|_| invalid(key, "is too large"))
}

impl Config {
    /// Reads the config file at `path` (if any), applies the process environment and checks.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, &|k| std::env::var(k).ok())
    }

    /// [`Config::load`] with the environment given as a function (tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        match path {
            None => Self::from_parts(FileConfig::default(), Path::new("."), env),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    what: "config file",
                    path: p.to_owned(),
                    source,
                })?;
                Self::from_toml(&text, p, env)
            }
        }
    }

    /// Parses TOML `text` (as if read from `path`; relative paths resolve against its
    /// directory), applies `env` and checks.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::from_parts(file, base, env)
    }

    fn from_parts(
        file: FileConfig,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let in_file = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let database = env("MDMSYNC_DB")
            .map(PathBuf::from)
            .or_else(|| file.database.map(in_file))
            .unwrap_or_else(|| PathBuf::from("mdmsync.db"));
        // Same default as the CLI: the database path with the extension `.key`.
        let key_file = env("MDMSYNC_KEY_FILE")
            .map(PathBuf::from)
            .or_else(|| file.key_file.map(in_file))
            .unwrap_or_else(|| database.with_extension("key"));
        let (listen_key, listen_text) = match env("MDMSYNCD_LISTEN") {
            Some(v) => ("MDMSYNCD_LISTEN", v),
            None => (
                "listen",
                file.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            ),
        };
        let listen: SocketAddr = listen_text.trim().parse().map_err(|_| {
            invalid(
                listen_key,
                format!("{listen_text:?} is not an address such as 127.0.0.1:7717"),
            )
        })?;

        let token_source = if let Some(t) = env("MDMSYNCD_ADMIN_TOKEN") {
            Some(("MDMSYNCD_ADMIN_TOKEN", TokenSource::Inline(t.into())))
        } else if let Some(p) = env("MDMSYNCD_ADMIN_TOKEN_FILE") {
            Some((
                "MDMSYNCD_ADMIN_TOKEN_FILE",
                TokenSource::File(PathBuf::from(p)),
            ))
        } else if let Some(t) = file.admin_token {
            Some(("admin_token", TokenSource::Inline(t.into())))
        } else {
            file.admin_token_file
                .map(|p| ("admin_token_file", TokenSource::File(in_file(p))))
        };
        let (token_key, token_source) = token_source.ok_or(ConfigError::MissingToken)?;
        let admin_token = match token_source {
            TokenSource::Inline(t) => t,
            TokenSource::File(p) => {
                let text = std::fs::read_to_string(&p).map_err(|source| ConfigError::Read {
                    what: "admin token file",
                    path: p.clone(),
                    source,
                })?;
                SecretString::from(text.trim().to_owned())
            }
        };
        let token_text = admin_token.expose_secret();
        if token_text.chars().count() < MIN_TOKEN_LEN
            || token_text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                token_key,
                format!(
                    "the admin token must be at least {MIN_TOKEN_LEN} characters without spaces; generate one with `openssl rand -hex 32`"
                ),
            ));
        }

        let api_caller = env("MDMSYNCD_API_CALLER")
            .or(file.api_caller)
            .unwrap_or_else(|| "admin-api".to_owned());
        if !valid_caller(&api_caller) {
            return Err(invalid(
                "api_caller",
                "use 1 to 64 letters, digits, '.', '_', '-' or '@'",
            ));
        }
        let grace = env_u64(env, "MDMSYNCD_SHUTDOWN_GRACE_SECS")?
            .or(file.shutdown_grace_secs)
            .unwrap_or(30);

        let log_format = match env("MDMSYNCD_LOG_FORMAT") {
            Some(v) => v
                .parse()
                .map_err(|m: String| invalid("MDMSYNCD_LOG_FORMAT", m))?,
            None => file.log.format.unwrap_or(LogFormat::Pretty),
        };
        let log_filter = env("MDMSYNCD_LOG")
            .or(file.log.filter)
            .unwrap_or_else(|| "info".to_owned());

        let s = file.scheduler;
        let pick = |var: &str, v: Option<u64>| -> Result<Option<u64>, ConfigError> {
            Ok(env_u64(env, var)?.or(v))
        };
        let defaults = SyncPolicy::default();
        let mut policy = defaults.clone();
        if let Some(v) = pick("MDMSYNCD_INTERVAL_SECS", s.interval_secs)? {
            policy.interval = secs("scheduler.interval_secs", v, 60)?;
        }
        if let Some(v) = pick("MDMSYNCD_JITTER_SECS", s.jitter_secs)? {
            policy.max_jitter = secs("scheduler.jitter_secs", v, 0)?;
        }
        if let Some(v) = pick("MDMSYNCD_COOLDOWN_SECS", s.cooldown_secs)? {
            policy.cooldown = secs("scheduler.cooldown_secs", v, 0)?;
        }
        if let Some(v) = pick("MDMSYNCD_FAILURE_BACKOFF_SECS", s.failure_backoff_secs)? {
            policy.failure_backoff = secs("scheduler.failure_backoff_secs", v, 1)?;
        }
        if let Some(v) = pick("MDMSYNCD_METADATA_MAX_AGE_SECS", s.metadata_max_age_secs)? {
            policy.metadata_max_age = secs("scheduler.metadata_max_age_secs", v, 60)?;
        }
        if policy.max_jitter > policy.interval {
            return Err(invalid(
                "scheduler.jitter_secs",
                "must not be longer than scheduler.interval_secs",
            ));
        }

        let mut scheduler = SchedulerConfig::default();
        if let Some(v) = pick("MDMSYNCD_CONCURRENCY", s.concurrency)? {
            scheduler.concurrency = positive("scheduler.concurrency", v)?;
        }
        if let Some(v) = pick("MDMSYNCD_PER_HOST_CONCURRENCY", s.per_host_concurrency)? {
            scheduler.per_host_concurrency = positive("scheduler.per_host_concurrency", v)?;
        }
        if let Some(v) = pick("MDMSYNCD_POLL_INTERVAL_MS", s.poll_interval_ms)? {
            if !(10..=60_000).contains(&v) {
                return Err(invalid(
                    "scheduler.poll_interval_ms",
                    "must be between 10 and 60000",
                ));
            }
            scheduler.poll_interval = Duration::from_millis(v);
        }
        if let Some(v) = pick("MDMSYNCD_SYNC_TIMEOUT_SECS", s.sync_timeout_secs)? {
            positive("scheduler.sync_timeout_secs", v)?;
            scheduler.sync_timeout = Duration::from_secs(v);
        }
        if let Some(v) = pick("MDMSYNCD_LEASE_TTL_SECS", s.lease_ttl_secs)? {
            if v < 3 {
                return Err(invalid(
                    "scheduler.lease_ttl_secs",
                    "must be at least 3 seconds",
                ));
            }
            scheduler.lease_ttl = Duration::from_secs(v);
        }
        if let Some(v) = pick("MDMSYNCD_MANUAL_WAIT_SECS", s.manual_wait_secs)? {
            scheduler.manual_wait = Duration::from_secs(v);
        }
        if let Some(v) = env_bool(env, "MDMSYNCD_METADATA")?.or(s.metadata) {
            scheduler.metadata = v;
        }
        if let Some(id) = env("MDMSYNCD_INSTANCE_ID").or(file.instance_id) {
            if !valid_caller(&id) {
                return Err(invalid(
                    "instance_id",
                    "use 1 to 64 letters, digits, '.', '_', '-' or '@'",
                ));
            }
            scheduler.instance_id = id;
        }

        let ca_env = env("MDMSYNCD_EXTRA_CA_FILES").or_else(|| env("MDMSYNC_CA_CERT"));
        let ca_files: Vec<PathBuf> = match ca_env {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => file.tls.extra_ca_files.into_iter().map(in_file).collect(),
        };
        let mut extra_ca_pem = Vec::new();
        for p in ca_files {
            let pem = std::fs::read_to_string(&p).map_err(|source| ConfigError::Read {
                what: "CA certificate file",
                path: p.clone(),
                source,
            })?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid(
                    "tls.extra_ca_files",
                    format!("{} holds no PEM certificate", p.display()),
                ));
            }
            extra_ca_pem.push(pem);
        }

        Ok(Config {
            database,
            key_file,
            listen,
            admin_token,
            api_caller,
            shutdown_grace: Duration::from_secs(grace),
            log_format,
            log_filter,
            extra_ca_pem,
            policy,
            scheduler,
        })
    }
}

/// A caller or instance name: 1–64 of `[A-Za-z0-9._@-]`.
pub fn valid_caller(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn defaults_need_only_a_token() {
        let c = Config::load_with_env(None, &env_of(&[("MDMSYNCD_ADMIN_TOKEN", TOKEN)])).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.database, PathBuf::from("mdmsync.db"));
        assert_eq!(c.key_file, PathBuf::from("mdmsync.key"));
        assert_eq!(c.policy, SyncPolicy::default());
        assert_eq!(c.scheduler.concurrency, 4);
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.admin_token.expose_secret(), TOKEN);
    }

    #[test]
    fn missing_token_is_refused_with_advice() {
        let err = Config::load_with_env(None, &env_of(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::MissingToken));
        assert!(err.to_string().contains("admin_token_file"));
    }

    #[test]
    fn short_token_is_refused_and_never_echoed() {
        let err = Config::load_with_env(None, &env_of(&[("MDMSYNCD_ADMIN_TOKEN", "shorty")]))
            .unwrap_err();
        assert!(!err.to_string().contains("shorty"), "{err}");
    }

    #[test]
    fn file_values_then_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let cfg = dir.path().join("mdmsyncd.toml");
        std::fs::write(
            &cfg,
            r#"
database = "data/m.db"
admin_token_file = "token"
listen = "127.0.0.1:0"
shutdown_grace_secs = 5
[log]
format = "json"
[scheduler]
concurrency = 8
per_host_concurrency = 3
jitter_secs = 60
"#,
        )
        .unwrap();
        let c = Config::load_with_env(
            Some(&cfg),
            &env_of(&[("MDMSYNCD_CONCURRENCY", "2"), ("MDMSYNCD_JITTER_SECS", "0")]),
        )
        .unwrap();
        assert_eq!(c.database, dir.path().join("data/m.db"));
        assert_eq!(
            c.key_file,
            dir.path().join("data/m.key"),
            "the CLI's default"
        );
        assert_eq!(c.admin_token.expose_secret(), TOKEN, "token file trimmed");
        assert_eq!(c.scheduler.concurrency, 2, "env wins over the file");
        assert_eq!(c.scheduler.per_host_concurrency, 3);
        assert_eq!(
            c.policy.max_jitter,
            TimeDelta::zero(),
            "T1 jitter maps to the policy"
        );
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let env = env_of(&[("MDMSYNCD_ADMIN_TOKEN", TOKEN)]);
        let err = Config::from_toml("concurency = 3", Path::new("x.toml"), &env).unwrap_err();
        assert!(err.to_string().contains("concurency"), "{err}");
        let err = Config::from_toml("[scheduler]\nconcurrency = 0", Path::new("x.toml"), &env)
            .unwrap_err();
        assert!(err.to_string().contains("scheduler.concurrency"), "{err}");
        let err = Config::from_toml("listen = \"nowhere\"", Path::new("x.toml"), &env).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = Config::from_toml(
            "[scheduler]\ninterval_secs = 600\njitter_secs = 900",
            Path::new("x.toml"),
            &env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("jitter"), "{err}");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let c = Config::load_with_env(None, &env_of(&[("MDMSYNCD_ADMIN_TOKEN", TOKEN)])).unwrap();
        assert!(!format!("{c:?}").contains(TOKEN));
    }
}
