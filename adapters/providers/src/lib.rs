//! # mdmsync-providers
//!
//! The one crate hosts (the CLI, the daemon) and embedders depend on to talk to any of the six
//! MDM providers: [`parse_credentials`] checks credential fields against the provider's
//! catalogue, [`connect`] builds the provider's client (no network call) as an
//! `Arc<dyn MdmClient>`, applying the base-URL and login-URL overrides (P1).
//!
//! Each provider is a cargo feature (`jamf`, `intune`, `iru`, `simplemdm`, `fleet`,
//! `jumpcloud`), all on by default; with `default-features = false` none is built and
//! [`connect`] answers [`ConnectError::ProviderNotBuilt`] for the ones left out.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mdmsync_core::{MdmClient, Provider};
//! use mdmsync_providers::{ConnectOptions, connect, parse_credentials};
//!
//! let credentials = parse_credentials(
//!     Provider::Fleet,
//!     [("host".to_string(), "fleet.example.com".to_string()),
//!      ("api_token".to_string(), "…".to_string())],
//! )?;
//! let client = connect(Provider::Fleet, &credentials, &ConnectOptions::default())?;
//! let check = client.validate_credentials().await?; // C1: the test call
//! # let _ = check; Ok(()) }
//! ```

use mdmsync_core::{
    Credentials, CredentialsError, Endpoint, ErrorKind, MdmClient, MdmError, Provider,
};
use mdmsync_http::HttpConfig;
use secrecy::SecretString;
use std::sync::Arc;

/// How to connect, beyond the credentials. `Default` is the provider's public endpoint with
/// the provider's recommended HTTP settings.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// P1: the API base URL. For fixed-endpoint providers (SimpleMDM, JumpCloud, Intune/Graph)
    /// it replaces the public endpoint; a region name of the provider catalogue is accepted
    /// too (`eu` for JumpCloud, `us-gov` / `china` … for Graph). For tenant-host providers
    /// (Jamf, Iru, Fleet) it replaces the `host` credential field.
    pub base_url: Option<String>,
    /// Intune only: the token authority replacing `https://login.microsoftonline.com`
    /// (national clouds, tests). Refused for other providers.
    pub login_url: Option<String>,
    /// Extra CA certificates (PEM) trusted besides the public roots (a private CA, a
    /// TLS-inspecting proxy). Added to those of `http`, if any. TLS is always verified (E3).
    pub extra_ca_pem: Vec<String>,
    /// HTTP settings replacing the provider's defaults ([`default_http`]). The provider's
    /// documented request budget (P5: Iru 10,000 per hour) is kept unless this sets its own.
    pub http: Option<HttpConfig>,
}

/// Why [`connect`] built no client. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The provider's cargo feature was off when this program was built.
    #[error(
        "{} support is not built into this program (cargo feature `{}` of mdmsync-providers is off); use a build with that feature",
        .0.display_name(),
        .0.slug()
    )]
    ProviderNotBuilt(Provider),
    /// The credential fields do not fit the provider (a missing or unknown field).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The connection settings were refused before any network call: an unusable base or login
    /// URL (`NotFound`), `http://` to a remote host, an unusable CA certificate (`SslError`),
    /// credentials of another provider (`Unauthorized`). [`MdmError::kind`] gives the E1 kind.
    #[error("{}", .0.message())]
    Config(MdmError),
}

impl ConnectError {
    /// The E1 kind of a refused setting (`Config`); `None` for the other variants.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ConnectError::Config(e) => e.kind(),
            _ => None,
        }
    }
}

/// Checks credential fields against the provider's catalogue (`Provider::credential_fields`):
/// keys are trimmed and lower-cased, values trimmed; every required field must be present and
/// not blank, no unknown field is accepted. The error names the missing or unknown key and the
/// keys the provider takes.
pub fn parse_credentials(
    provider: Provider,
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<Credentials, CredentialsError> {
    Credentials::new(
        provider,
        pairs.into_iter().map(|(k, v)| (k, SecretString::from(v))),
    )
}

/// Whether this build has the provider's adapter (its cargo feature was on).
pub const fn is_built(provider: Provider) -> bool {
    match provider {
        Provider::Jamf => cfg!(feature = "jamf"),
        Provider::Intune => cfg!(feature = "intune"),
        Provider::Iru => cfg!(feature = "iru"),
        Provider::SimpleMdm => cfg!(feature = "simplemdm"),
        Provider::Fleet => cfg!(feature = "fleet"),
        Provider::JumpCloud => cfg!(feature = "jumpcloud"),
    }
}

/// The providers this build can connect to, in catalogue order.
pub fn built_providers() -> Vec<Provider> {
    Provider::ALL.into_iter().filter(|p| is_built(*p)).collect()
}

/// The HTTP settings a provider's client uses unless [`ConnectOptions::http`] replaces them:
/// `HttpConfig::for_provider`, plus SimpleMDM's request budget. Start from these when adjusting.
pub fn default_http(provider: Provider) -> HttpConfig {
    #[cfg(feature = "simplemdm")]
    if provider == Provider::SimpleMdm {
        return mdmsync_simplemdm::SimpleMdmConfig::default_http();
    }
    HttpConfig::for_provider(provider)
}

/// A region name of a fixed-endpoint provider (`eu`, `us-gov` …) as its base URL; anything
/// else unchanged.
fn resolve_base_url(provider: Provider, base_url: Option<&str>) -> Option<String> {
    let base = base_url.map(str::trim).filter(|b| !b.is_empty())?;
    if let Endpoint::Fixed { regions, .. } = provider.endpoint() {
        if let Some((_, url)) = regions.iter().find(|(n, _)| n.eq_ignore_ascii_case(base)) {
            return Some((*url).to_owned());
        }
    }
    Some(base.to_owned())
}

/// The HTTP settings for a client: the override (keeping the provider's request budget when
/// it sets none) or the provider's default, plus the extra CA certificates.
#[cfg_attr(
    not(any(
        feature = "jamf",
        feature = "intune",
        feature = "iru",
        feature = "simplemdm",
        feature = "fleet",
        feature = "jumpcloud"
    )),
    allow(dead_code)
)]
fn http_for(default: &HttpConfig, options: &ConnectOptions) -> HttpConfig {
    let mut http = match &options.http {
        Some(h) => {
            let mut h = h.clone();
            if h.rate_limit.is_none() {
                h.rate_limit = default.rate_limit;
            }
            h
        }
        None => default.clone(),
    };
    http.extra_ca_pem
        .extend(options.extra_ca_pem.iter().cloned());
    http
}

/// Builds the client for `provider` from `credentials` and `options`. Makes no network call:
/// run `validate_credentials` (C1) before saving the credentials.
///
/// Fails with [`ConnectError::ProviderNotBuilt`] if the provider's feature is off,
/// [`ConnectError::Config`] if the credentials are another provider's, if `login_url` is given
/// for a provider other than Intune, or if a URL or CA certificate is unusable.
pub fn connect(
    provider: Provider,
    credentials: &Credentials,
    options: &ConnectOptions,
) -> Result<Arc<dyn MdmClient>, ConnectError> {
    if credentials.provider() != provider {
        return Err(ConnectError::Config(MdmError::new(
            ErrorKind::Unauthorized,
            format!(
                "{}: the credentials given are for {}; give {} credentials ({})",
                provider.display_name(),
                credentials.provider().display_name(),
                provider.display_name(),
                provider
                    .credential_fields()
                    .iter()
                    .map(|f| f.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )));
    }
    let login_url = options
        .login_url
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    if login_url.is_some() && provider != Provider::Intune {
        return Err(ConnectError::Config(MdmError::new(
            ErrorKind::NotFound,
            format!(
                "{}: a login URL only applies to Microsoft Intune (its token endpoint); remove it",
                provider.display_name()
            ),
        )));
    }
    let base_url = resolve_base_url(provider, options.base_url.as_deref());
    build(
        provider,
        credentials,
        base_url.as_deref(),
        login_url,
        options,
    )
}

#[allow(unused_variables)]
fn build(
    provider: Provider,
    credentials: &Credentials,
    base_url: Option<&str>,
    login_url: Option<&str>,
    options: &ConnectOptions,
) -> Result<Arc<dyn MdmClient>, ConnectError> {
    match provider {
        #[cfg(feature = "jamf")]
        Provider::Jamf => {
            use mdmsync_jamf::{JamfClient, JamfConfig};
            let mut config = JamfConfig::from_credentials(credentials, base_url)
                .map_err(ConnectError::Config)?;
            config.http = http_for(&config.http, options);
            Ok(Arc::new(
                JamfClient::new(config).map_err(ConnectError::Config)?,
            ))
        }
        #[cfg(feature = "intune")]
        Provider::Intune => {
            use mdmsync_intune::{IntuneClient, IntuneConfig};
            let mut config = IntuneConfig::from_credentials(credentials, base_url, login_url)
                .map_err(ConnectError::Config)?;
            config.http = http_for(&config.http, options);
            Ok(Arc::new(
                IntuneClient::new(config).map_err(ConnectError::Config)?,
            ))
        }
        #[cfg(feature = "iru")]
        Provider::Iru => {
            use mdmsync_iru::{IruClient, IruConfig};
            let mut config =
                IruConfig::from_credentials(credentials, base_url).map_err(ConnectError::Config)?;
            config.http = http_for(&config.http, options);
            Ok(Arc::new(
                IruClient::new(config).map_err(ConnectError::Config)?,
            ))
        }
        #[cfg(feature = "simplemdm")]
        Provider::SimpleMdm => {
            use mdmsync_simplemdm::{SimpleMdmClient, SimpleMdmConfig};
            let mut config = SimpleMdmConfig::from_credentials(credentials, base_url)
                .map_err(ConnectError::Config)?;
            config.http = http_for(&config.http, options);
            Ok(Arc::new(
                SimpleMdmClient::new(config).map_err(ConnectError::Config)?,
            ))
        }
        #[cfg(feature = "fleet")]
        Provider::Fleet => {
            use mdmsync_fleet::{FleetClient, FleetConfig};
            let mut config = FleetConfig::from_credentials(credentials, base_url)
                .map_err(ConnectError::Config)?;
            config.http = http_for(&config.http, options);
            Ok(Arc::new(
                FleetClient::new(config).map_err(ConnectError::Config)?,
            ))
        }
        #[cfg(feature = "jumpcloud")]
        Provider::JumpCloud => {
            use mdmsync_jumpcloud::{JumpCloudClient, JumpCloudConfig};
            let mut config = JumpCloudConfig::from_credentials(credentials, base_url)
                .map_err(ConnectError::Config)?;
            config.http = http_for(&config.http, options);
            Ok(Arc::new(
                JumpCloudClient::new(config).map_err(ConnectError::Config)?,
            ))
        }
        #[allow(unreachable_patterns)]
        other => Err(ConnectError::ProviderNotBuilt(other)),
    }
}

#[cfg(test)]
mod tests;
