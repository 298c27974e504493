//! Building an MDM client for a workspace: credentials from the command line or the vault,
//! the connection's non-secret settings, an extra CA, and HTTP tuning from the environment.

use crate::app::App;
use crate::output::CliError;
use mdmsync_core::workspace::Workspace;
use mdmsync_core::{Credentials, MdmClient, MdmError, Provider, WorkspaceId};
use mdmsync_http::HttpConfig;
use mdmsync_providers::{ConnectError, ConnectOptions};
use std::sync::Arc;
use std::time::Duration;

/// Environment: attempts per request in all (1 = no retries), overriding the provider default.
pub const ENV_HTTP_ATTEMPTS: &str = "MDMSYNC_HTTP_ATTEMPTS";
/// Environment: the first retry backoff step in milliseconds (later steps double, up to 8×).
pub const ENV_HTTP_RETRY_DELAY_MS: &str = "MDMSYNC_HTTP_RETRY_DELAY_MS";
/// Environment: the time allowed for one request, in seconds.
pub const ENV_HTTP_TIMEOUT_SECS: &str = "MDMSYNC_HTTP_TIMEOUT_SECS";

/// What the CLI passes to the providers crate besides the credentials.
#[derive(Debug, Clone, Default)]
pub struct MdmOptions {
    /// API base URL override (P1).
    pub base_url: Option<String>,
    /// Token endpoint base override (Intune).
    pub login_url: Option<String>,
    /// Extra trusted CA certificates (PEM).
    pub extra_ca_pem: Vec<String>,
    /// HTTP tuning from the environment, if any is set.
    pub http: Option<HttpConfig>,
}

/// Why no client could be built.
#[derive(Debug)]
pub enum ClientError {
    /// A setting is wrong (a URL, a CA file): fix the command line.
    Config(String),
    /// An E1 failure (reported like a failed test call).
    Mdm(MdmError),
}

fn env_u64(name: &str) -> Result<Option<u64>, CliError> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| CliError::Failed(format!("{name} must be a whole number, got {v:?}"))),
        Err(_) => Ok(None),
    }
}

/// HTTP tuning from `MDMSYNC_HTTP_ATTEMPTS`, `MDMSYNC_HTTP_RETRY_DELAY_MS` and
/// `MDMSYNC_HTTP_TIMEOUT_SECS` on top of the provider's recommended configuration; `None`
/// when none is set.
pub fn http_from_env(provider: Provider) -> Result<Option<HttpConfig>, CliError> {
    let attempts = env_u64(ENV_HTTP_ATTEMPTS)?;
    let delay = env_u64(ENV_HTTP_RETRY_DELAY_MS)?;
    let timeout = env_u64(ENV_HTTP_TIMEOUT_SECS)?;
    if attempts.is_none() && delay.is_none() && timeout.is_none() {
        return Ok(None);
    }
    // The extra CA goes through `ConnectOptions::extra_ca_pem`, which adds it to this.
    let mut config = mdmsync_providers::default_http(provider);
    if let Some(n) = attempts {
        config.retry.max_attempts = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    }
    if let Some(ms) = delay {
        config.retry.base_delay = Duration::from_millis(ms);
        config.retry.max_delay = Duration::from_millis(ms.saturating_mul(8));
    }
    if let Some(s) = timeout {
        config.request_timeout = Duration::from_secs(s.max(1));
        config.connect_timeout = config.connect_timeout.min(config.request_timeout);
    }
    Ok(Some(config))
}

/// Checks a URL override: it must parse, and `http://` only for loopback hosts.
pub fn check_url(flag: &str, url: &str) -> Result<(), CliError> {
    mdmsync_http::parse_base_url(url)
        .map(|_| ())
        .map_err(|e| CliError::Failed(format!("{flag}: {e}")))
}

/// Credentials from `KEY=VALUE` pairs, checked against the provider's fields.
pub fn parse_credentials(
    provider: Provider,
    pairs: Vec<(String, String)>,
) -> Result<Credentials, CliError> {
    mdmsync_providers::parse_credentials(provider, pairs)
        .map_err(|e| CliError::Failed(e.to_string()))
}

/// A client for `provider` with these credentials and options (no network call yet).
pub fn client(
    provider: Provider,
    credentials: &Credentials,
    options: &MdmOptions,
) -> Result<Arc<dyn MdmClient>, ClientError> {
    let options = ConnectOptions {
        base_url: options.base_url.clone(),
        login_url: options.login_url.clone(),
        extra_ca_pem: options.extra_ca_pem.clone(),
        http: options.http.clone(),
    };
    mdmsync_providers::connect(provider, credentials, &options).map_err(|e| match e {
        ConnectError::Config(e) => ClientError::Mdm(e),
        other => ClientError::Config(other.to_string()),
    })
}

impl App {
    /// The options for a client of `provider` with these URL overrides.
    pub fn mdm_options(
        &self,
        provider: Provider,
        base_url: Option<String>,
        login_url: Option<String>,
    ) -> Result<MdmOptions, CliError> {
        let extra_ca_pem = self.extra_ca_pem()?;
        let http = http_from_env(provider)?;
        Ok(MdmOptions {
            base_url,
            login_url,
            extra_ca_pem,
            http,
        })
    }

    /// A client for a connected workspace, with the credentials from the vault.
    pub async fn client_for(
        &self,
        ws: WorkspaceId,
        state: &Workspace,
    ) -> Result<Arc<dyn MdmClient>, CliError> {
        let Some(conn) = state.connection() else {
            return Err(CliError::Failed(format!(
                "no MDM is connected to this workspace; connect one first (`mdmsync connect --workspace {ws} --provider P --credential KEY=VALUE …`)"
            )));
        };
        let credentials = mdmsync_core::CredentialVault::load(self.vault()?, ws)
            .await?
            .ok_or_else(|| {
                CliError::Failed(format!(
                    "no credentials are stored for this workspace (or for this key file, {}); run `mdmsync connect` again",
                    self.paths.key_file.display()
                ))
            })?;
        let options = self.mdm_options(
            conn.provider,
            conn.settings.base_url.clone(),
            conn.settings.login_url.clone(),
        )?;
        client(conn.provider, &credentials, &options).map_err(|e| match e {
            ClientError::Config(m) => CliError::Failed(m),
            ClientError::Mdm(e) => CliError::Mdm {
                kind: e.kind(),
                message: e.message(),
            },
        })
    }
}
