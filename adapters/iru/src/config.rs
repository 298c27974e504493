//! How an [`IruClient`](crate::IruClient) is configured: the tenant's API URL (either brand),
//! the API token, the web console URL for links (M4), HTTP settings and the listing strategies.

use mdmsync_core::{Credentials, ErrorKind, MdmError, Provider};
use mdmsync_http::{HttpConfig, parse_base_url};
use secrecy::SecretString;
use std::time::Duration;
use url::{Host, Url};

const P: Provider = Provider::Iru;

/// How [`fetch_snapshot`](mdmsync_core::MdmClient::fetch_snapshot) collects tag members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotStrategy {
    /// List every tag, then sweep **all** devices once (`limit=300` + `offset`) and group them
    /// by their `tags` array, joined to the tag list **by name** (device tags are names, not
    /// ids). Costs `ceil(devices / 300) + tag pages` requests whatever the number of tags.
    /// When the join is not exact (a device carries a tag name the tag list does not have,
    /// e.g. a tag renamed during the sync, or devices without a `tags` field) the whole
    /// snapshot is redone per tag; tags whose name is not unique are always listed by id.
    #[default]
    DeviceSweep,
    /// List every tag, then each tag's devices with `tag_id` (`limit=300` + `offset`): at least
    /// one request per tag. Cheaper only for tenants with few tags and many untagged devices.
    PerTag,
}

/// How [`lookup_devices`](mdmsync_core::MdmClient::lookup_devices) finds devices by serial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LookupStrategy {
    /// Per serial while that is fewer requests than a sweep of all devices. The fleet size is
    /// learnt from the last full sweep (snapshot or look-up); before one, up to
    /// [`AUTO_PER_SERIAL_MAX`] serials are looked up one by one and more trigger a sweep.
    #[default]
    Auto,
    /// One `GET /api/v1/devices?serial_number=…` per serial.
    PerSerial,
    /// One sweep of all devices, matched in memory.
    Sweep,
}

/// [`LookupStrategy::Auto`] before the fleet size is known: at most this many serials are
/// looked up one by one; more trigger one sweep of all devices.
pub const AUTO_PER_SERIAL_MAX: usize = 25;

/// Default time budget of one operation (a snapshot, a look-up batch, a credential test):
/// every request and retry of it fits inside (E2), the P5 request budget included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Everything an [`IruClient`](crate::IruClient) needs. `Debug` never shows the token (C2).
///
/// ```
/// use mdmsync_iru::IruConfig;
/// use secrecy::SecretString;
///
/// let c = IruConfig::new("acme.api.kandji.io", SecretString::from("token")).unwrap();
/// assert_eq!(c.api_url.as_str(), "https://acme.api.kandji.io/");
/// assert_eq!(c.web_url.unwrap().as_str(), "https://acme.kandji.io/");
/// // The full URL as pasted from Settings › Access, post-rebrand host:
/// let c = IruConfig::new("https://acme.api.eu.iru.com/api/v1/", SecretString::from("t")).unwrap();
/// assert_eq!(c.api_url.as_str(), "https://acme.api.eu.iru.com/");
/// assert_eq!(c.web_url.unwrap().as_str(), "https://acme.eu.iru.com/");
/// // P5: the documented 10,000 requests per hour are the default budget.
/// assert_eq!(c.http.rate_limit.unwrap().requests, 10_000);
/// ```
#[derive(Clone, Debug)]
pub struct IruConfig {
    /// The tenant's API base: scheme, host, port (and any path prefix in front of `/api/v1`,
    /// for a proxy). `https://{sub}.api.kandji.io/`, `https://{sub}.api.eu.kandji.io/`, or
    /// after the rebrand `https://{sub}.api.iru.com/` / `https://{sub}.api.eu.iru.com/`.
    pub api_url: Url,
    /// The web console base for device links (M4): `{web_url}/devices/{device_id}`. Derived
    /// from a Kandji/Iru API host by dropping its `api` label (`acme.api.kandji.io` →
    /// `https://acme.kandji.io`); `None` for other hosts (a proxy, the simulator) unless set.
    pub web_url: Option<Url>,
    /// The API token (Settings › Access › API Token), sent as `Authorization: Bearer`.
    pub api_token: SecretString,
    /// HTTP settings. Default: [`HttpConfig::for_provider`]`(Iru)`, which carries the P5
    /// request budget (10,000 requests per hour per host); keep it when adjusting.
    pub http: HttpConfig,
    /// How snapshots collect tag members.
    pub snapshot: SnapshotStrategy,
    /// How device look-ups find serials.
    pub lookup: LookupStrategy,
    /// Time budget of one operation (see [`DEFAULT_OPERATION_TIMEOUT`]).
    pub operation_timeout: Duration,
}

impl IruConfig {
    /// A configuration for the API at `api_url` (see [`parse_api_url`] for what is accepted)
    /// with the production defaults. Fails with `NotFound` on a URL that cannot be this
    /// tenant's API (with what to enter instead), before any network call.
    pub fn new(api_url: &str, api_token: SecretString) -> Result<Self, MdmError> {
        let api_url = parse_api_url(api_url)?;
        Ok(Self {
            web_url: derive_web_url(&api_url),
            api_url,
            api_token,
            http: HttpConfig::for_provider(P),
            snapshot: SnapshotStrategy::default(),
            lookup: LookupStrategy::default(),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        })
    }

    /// From the core's credentials (fields `host`, `api_token`; table P). `base_url`, when
    /// given, replaces `host` (P1: a proxy, the simulator).
    pub fn from_credentials(
        credentials: &Credentials,
        base_url: Option<&str>,
    ) -> Result<Self, MdmError> {
        use secrecy::ExposeSecret;
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
        let host = match base_url.map(str::trim).filter(|s| !s.is_empty()) {
            Some(b) => b.to_owned(),
            None => credentials.require("host").expose_secret().to_owned(),
        };
        Self::new(&host, credentials.require("api_token").clone())
    }

    /// Replaces the HTTP settings (timeouts, retries, extra CA certificates). Start from
    /// `config.http` to keep the P5 request budget.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Sets the web console base for device links (M4), e.g. `https://acme.iru.com`.
    pub fn with_web_url(mut self, web_url: &str) -> Result<Self, MdmError> {
        self.web_url = Some(parse_base_url(web_url).map_err(|e| e.into_mdm_error(P))?);
        Ok(self)
    }

    /// Sets the snapshot strategy.
    pub fn with_snapshot_strategy(mut self, strategy: SnapshotStrategy) -> Self {
        self.snapshot = strategy;
        self
    }

    /// Sets the look-up strategy.
    pub fn with_lookup_strategy(mut self, strategy: LookupStrategy) -> Self {
        self.lookup = strategy;
        self
    }
}

fn refused(detail: String) -> MdmError {
    MdmError::new(
        ErrorKind::NotFound,
        format!("{}: configuration refused: {detail}", P.display_name()),
    )
}

/// The brand domains of Iru's API and web hosts (US and EU under each).
const BRAND_DOMAINS: [&str; 2] = ["kandji.io", "iru.com"];

fn brand_labels(host: &str) -> Option<Vec<&str>> {
    BRAND_DOMAINS
        .iter()
        .any(|d| host.ends_with(&format!(".{d}")))
        .then(|| host.split('.').collect())
}

/// Parses the API URL an admin pastes: a full URL (`https://acme.api.kandji.io`, with or
/// without a trailing `/api/v1`) or a bare host (`acme.api.iru.com`, https assumed). Both
/// brands are accepted, US and EU. `http://` only for loopback (the simulator).
///
/// Refused, with what to enter instead: a single bare name (`acme`: which brand and region is
/// not knowable), and a web console host (`acme.kandji.io` → `acme.api.kandji.io`).
pub fn parse_api_url(input: &str) -> Result<Url, MdmError> {
    let mut url = parse_base_url(input).map_err(|e| e.into_mdm_error(P))?;
    if let Some(Host::Domain(host)) = url.host() {
        let host = host.to_owned();
        if !host.contains('.') && !host.eq_ignore_ascii_case("localhost") {
            return Err(refused(format!(
                "{host:?} is not an API host; enter the API URL shown in Iru under Settings › Access, e.g. https://{host}.api.iru.com or https://{host}.api.kandji.io"
            )));
        }
        if let Some(labels) = brand_labels(&host) {
            if labels.len() >= 3 && labels[0] != "api" && labels[1] != "api" {
                let api = format!("{}.api.{}", labels[0], labels[1..].join("."));
                return Err(refused(format!(
                    "{host} is the web console, not the API; use https://{api} (Settings › Access shows the API URL)"
                )));
            }
        }
    }
    // The API lives under /api/v1; admins often paste that part too.
    let path = url.path().trim_end_matches('/').to_owned();
    let prefix = path
        .strip_suffix("/api/v1")
        .or_else(|| path.strip_suffix("/api"))
        .unwrap_or(&path)
        .to_owned();
    url.set_path(&format!("{prefix}/"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The web console base belonging to a Kandji/Iru API host: the `api` label dropped,
/// `https://{sub}.api.kandji.io` → `https://{sub}.kandji.io`, `{sub}.api.eu.iru.com` →
/// `https://{sub}.eu.iru.com`. `None` for any other host. (The Kandji US form is documented;
/// the iru.com and EU forms follow the same pattern but are unconfirmed: set
/// [`IruConfig::web_url`] if a tenant's console lives elsewhere.)
pub fn derive_web_url(api_url: &Url) -> Option<Url> {
    let host = api_url.host_str()?;
    let labels = brand_labels(host)?;
    if labels.len() < 4 || labels[1] != "api" {
        return None;
    }
    let mut web: Vec<&str> = vec![labels[0]];
    web.extend(&labels[2..]);
    Url::parse(&format!("https://{}/", web.join("."))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(s: &str) -> Result<String, MdmError> {
        parse_api_url(s).map(|u| u.to_string())
    }

    #[test]
    fn p1_both_brands_and_regions_are_accepted_as_pasted() {
        for (input, want) in [
            ("acme.api.kandji.io", "https://acme.api.kandji.io/"),
            (
                "https://acme.api.kandji.io/api/v1",
                "https://acme.api.kandji.io/",
            ),
            (
                "https://acme.api.eu.kandji.io/api/v1/",
                "https://acme.api.eu.kandji.io/",
            ),
            (" https://ACME.api.iru.com ", "https://acme.api.iru.com/"),
            ("acme.api.eu.iru.com/api", "https://acme.api.eu.iru.com/"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/"),
            (
                "https://proxy.example/iru/api/v1?x=1",
                "https://proxy.example/iru/",
            ),
        ] {
            assert_eq!(api(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn p1_bare_names_web_hosts_and_plain_http_are_refused_with_advice() {
        let e = api("acme").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::NotFound));
        assert!(e.to_string().contains("acme.api.iru.com"), "{e}");
        let e = api("https://acme.kandji.io").unwrap_err();
        assert!(e.to_string().contains("https://acme.api.kandji.io"), "{e}");
        let e = api("acme.eu.iru.com").unwrap_err();
        assert!(e.to_string().contains("https://acme.api.eu.iru.com"), "{e}");
        let e = api("http://acme.api.kandji.io").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::NotFound));
        assert!(api("http://localhost:9/").is_ok());
    }

    #[test]
    fn m4_web_url_is_derived_from_the_api_host() {
        let web = |s: &str| derive_web_url(&parse_api_url(s).unwrap()).map(|u| u.to_string());
        assert_eq!(
            web("acme.api.kandji.io").as_deref(),
            Some("https://acme.kandji.io/")
        );
        assert_eq!(
            web("acme.api.eu.kandji.io").as_deref(),
            Some("https://acme.eu.kandji.io/")
        );
        assert_eq!(
            web("acme.api.iru.com").as_deref(),
            Some("https://acme.iru.com/")
        );
        assert_eq!(web("http://127.0.0.1:1"), None);
        assert_eq!(web("proxy.example"), None);
    }
}
