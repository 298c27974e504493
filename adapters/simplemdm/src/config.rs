//! How a [`SimpleMdmClient`](crate::SimpleMdmClient) is configured: API base URL (fixed public
//! endpoint, overridable, P1), the API key, the console URL for links (M4), HTTP settings with
//! a request budget, and the look-up strategy.

use mdmsync_core::{Credentials, ErrorKind, MdmError, Provider};
use mdmsync_http::{HttpConfig, RateLimit, parse_base_url};
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

const P: Provider = Provider::SimpleMdm;

/// The public API base (`Provider::SimpleMdm.endpoint()`).
pub const DEFAULT_BASE_URL: &str = "https://a.simplemdm.com/api/v1";

/// The default request budget: 30 requests per 30 s, i.e. bursts of up to 30, then one
/// request per second. A **guess**: SimpleMDM documents limits only for some endpoints (429
/// with `X-RateLimit-Reset`); public clients assume "1 request/second sustained, with bursts"
/// (`shared/providers.md` §3.8). Change [`SimpleMdmConfig::http`]`.rate_limit` if a tenant
/// allows more (or `None` to turn it off).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 30,
    per: Duration::from_secs(30),
};

/// Default time budget of one operation (a snapshot, a look-up batch, a credential test):
/// every request, retry and budget wait of it fits inside (E2, P5).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How [`lookup_devices`](mdmsync_core::MdmClient::lookup_devices) finds devices by serial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LookupStrategy {
    /// Per serial while that is fewer requests than a sweep of all devices. The fleet size is
    /// learnt from the last sweep; before one, up to [`AUTO_PER_SERIAL_MAX`] serials are looked
    /// up one by one and more trigger a sweep.
    #[default]
    Auto,
    /// One `GET /devices?search={serial}` per serial (exact matches kept).
    PerSerial,
    /// One sweep of all devices (`limit=100`), matched in memory.
    Sweep,
}

/// [`LookupStrategy::Auto`] before the fleet size is known: at most this many serials are
/// looked up one by one; more trigger one sweep of all devices.
pub const AUTO_PER_SERIAL_MAX: usize = 25;

/// Everything a [`SimpleMdmClient`](crate::SimpleMdmClient) needs. `Debug` never shows the
/// key (C2).
///
/// ```
/// use mdmsync_simplemdm::SimpleMdmConfig;
/// use secrecy::SecretString;
///
/// let c = SimpleMdmConfig::new(SecretString::from("key"));
/// assert_eq!(c.base_url.as_str(), "https://a.simplemdm.com/api/v1");
/// assert_eq!(c.console_url.as_ref().unwrap().as_str(), "https://a.simplemdm.com/");
/// assert!(c.http.rate_limit.is_some(), "about 1 request per second by default");
/// // P1: another base (a proxy, the simulator); `/api/v1` is added to a bare origin.
/// let c = c.with_base_url("http://127.0.0.1:8080").unwrap();
/// assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8080/api/v1");
/// ```
#[derive(Clone, Debug)]
pub struct SimpleMdmConfig {
    /// The API base, `https://a.simplemdm.com/api/v1` unless overridden (P1).
    pub base_url: Url,
    /// The web console for device links (M4): `{console_url}/admin/devices/{id}`. Defaults to
    /// the origin of [`Self::base_url`] (`https://a.simplemdm.com`).
    pub console_url: Option<Url>,
    /// The API secret access key, sent as the HTTP Basic user name with an empty password.
    pub api_key: SecretString,
    /// HTTP settings. Default: [`SimpleMdmConfig::default_http`] (the provider defaults plus
    /// [`DEFAULT_RATE_LIMIT`]).
    pub http: HttpConfig,
    /// How device look-ups find serials.
    pub lookup: LookupStrategy,
    /// Whether members of legacy device groups attached to an assignment group count as its
    /// members (`relationships.device_groups`; resolved with one device sweep, only when some
    /// group has such a relationship). Default true.
    pub include_device_group_members: bool,
    /// Time budget of one operation (see [`DEFAULT_OPERATION_TIMEOUT`]).
    pub operation_timeout: Duration,
}

impl SimpleMdmConfig {
    /// The public endpoint with the production defaults.
    pub fn new(api_key: SecretString) -> Self {
        let base_url = Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL");
        Self {
            console_url: console_for(&base_url),
            base_url,
            api_key,
            http: Self::default_http(),
            lookup: LookupStrategy::default(),
            include_device_group_members: true,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// From the core's credentials (field `api_key`; table P), with an optional base-URL
    /// override (P1). Fails with `NotFound` on an unusable URL, before any network call.
    pub fn from_credentials(
        credentials: &Credentials,
        base_url: Option<&str>,
    ) -> Result<Self, MdmError> {
        if credentials.provider() != P {
            return Err(MdmError::new(
                ErrorKind::ServerError,
                format!(
                    "{}: configuration refused: the credentials are for {}, not {}",
                    P.display_name(),
                    credentials.provider().display_name(),
                    P.display_name()
                ),
            ));
        }
        let config = Self::new(credentials.require("api_key").clone());
        match base_url.map(str::trim).filter(|s| !s.is_empty()) {
            Some(b) => config.with_base_url(b),
            None => Ok(config),
        }
    }

    /// The default HTTP settings: [`HttpConfig::for_provider`]`(SimpleMdm)` with
    /// [`DEFAULT_RATE_LIMIT`]. Start from these (or from `config.http`) when adjusting.
    pub fn default_http() -> HttpConfig {
        HttpConfig {
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            ..HttpConfig::for_provider(P)
        }
    }

    /// Replaces the API base (P1). A bare origin gets `/api/v1`; the console URL follows the
    /// new origin unless set afterwards.
    pub fn with_base_url(mut self, base_url: &str) -> Result<Self, MdmError> {
        let mut url = parse_base_url(base_url).map_err(|e| e.into_mdm_error(P))?;
        url.set_query(None);
        url.set_fragment(None);
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(if path.is_empty() { "/api/v1" } else { &path });
        self.console_url = console_for(&url);
        self.base_url = url;
        Ok(self)
    }

    /// Sets the web console base for device links, e.g. `https://a.simplemdm.com`.
    pub fn with_console_url(mut self, console_url: &str) -> Result<Self, MdmError> {
        self.console_url = Some(parse_base_url(console_url).map_err(|e| e.into_mdm_error(P))?);
        Ok(self)
    }

    /// Replaces the HTTP settings (timeouts, retries, extra CA certificates, request budget).
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets the look-up strategy.
    pub fn with_lookup_strategy(mut self, strategy: LookupStrategy) -> Self {
        self.lookup = strategy;
        self
    }
}

/// The console belonging to an API base: its origin.
fn console_for(base: &Url) -> Option<Url> {
    Url::parse(&base.origin().ascii_serialization()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1_overrides_keep_paths_and_complete_bare_origins() {
        let c = |s: &str| {
            SimpleMdmConfig::new(SecretString::from("k"))
                .with_base_url(s)
                .map(|c| (c.base_url.to_string(), c.console_url.unwrap().to_string()))
        };
        assert_eq!(
            c("https://a.simplemdm.com/api/v1/").unwrap(),
            (
                "https://a.simplemdm.com/api/v1".to_owned(),
                "https://a.simplemdm.com/".to_owned()
            )
        );
        assert_eq!(
            c("proxy.example/simplemdm/api/v1?x=1").unwrap().0,
            "https://proxy.example/simplemdm/api/v1"
        );
        assert_eq!(
            c("a.simplemdm.com").unwrap().0,
            "https://a.simplemdm.com/api/v1"
        );
        let e = c("http://a.simplemdm.com/api/v1").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    }
}
