//! How to reach JumpCloud: the API base (region), the API key, the optional organisation id,
//! HTTP settings.

use mdmsync_core::{Credentials, Endpoint, ErrorKind, MdmError, Provider};
use mdmsync_http::{HttpConfig, Url, parse_base_url};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Time budget of one snapshot or one look-up batch, retries included (E2).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How to reach JumpCloud. `Debug` never shows the API key (C2).
#[derive(Clone, Debug)]
pub struct JumpCloudConfig {
    /// The v1 API base, ending in `/api` (`https://console.jumpcloud.com/api`); v2 is under
    /// `{base_url}/v2`.
    pub base_url: Url,
    /// The admin console, for device links (`https://console.jumpcloud.com/`).
    pub console_url: Url,
    /// The administrator's API key (`x-api-key`).
    pub api_key: SecretString,
    /// The organisation id (`x-org-id`), required for multi-tenant (MTP) administrators.
    pub org_id: Option<String>,
    /// Timeouts, retries, extra CA certificates, concurrency.
    pub http: HttpConfig,
    /// Time budget of one snapshot or look-up batch.
    pub operation_timeout: Duration,
}

fn regions() -> (&'static str, &'static [(&'static str, &'static str)]) {
    match Provider::JumpCloud.endpoint() {
        Endpoint::Fixed {
            default_base_url,
            regions,
        } => (default_base_url, regions),
        // The catalogue lists JumpCloud as a fixed endpoint; this arm keeps the public default.
        Endpoint::TenantHost => ("https://console.jumpcloud.com/api", &[]),
    }
}

/// The API base for `input`: a region name from the provider catalogue (`eu`), or a URL. A URL
/// whose path does not end in `/api` gets `/api` appended (`https://console.eu.jumpcloud.com`
/// → `…/api`). The console is the base without its `/api`.
fn resolve(input: &str) -> Result<(Url, Url), MdmError> {
    let (_, regions) = regions();
    let input = input.trim();
    let url = regions
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(input))
        .map_or(input, |(_, url)| *url);
    let mut base = parse_base_url(url).map_err(|e| e.into_mdm_error(Provider::JumpCloud))?;
    base.set_query(None);
    base.set_fragment(None);
    let path = base.path().trim_end_matches('/').to_owned();
    let api_path = if path.ends_with("/api") {
        path
    } else {
        format!("{path}/api")
    };
    base.set_path(&api_path);
    let mut console = base.clone();
    console.set_path(&format!("{}/", api_path.trim_end_matches("/api")));
    Ok((base, console))
}

impl JumpCloudConfig {
    /// The public (US) endpoint with `api_key`. Makes no network call.
    pub fn new(api_key: SecretString) -> Self {
        let (default, _) = regions();
        let (base_url, console_url) =
            resolve(default).expect("the catalogue's default JumpCloud URL is a valid https URL");
        Self {
            base_url,
            console_url,
            api_key,
            org_id: None,
            http: HttpConfig::for_provider(Provider::JumpCloud),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// P1: another region or base URL: a region name of the provider catalogue (`eu`), or a URL
    /// (`https://console.eu.jumpcloud.com/api`; `/api` is added when missing; `http://` only
    /// for loopback). The console link follows the base.
    pub fn with_base_url(mut self, base_url: &str) -> Result<Self, MdmError> {
        let (base, console) = resolve(base_url)?;
        self.base_url = base;
        self.console_url = console;
        Ok(self)
    }

    /// Sets the organisation id sent as `x-org-id` (multi-tenant administrators).
    pub fn with_org_id(mut self, org_id: Option<String>) -> Self {
        self.org_id = org_id
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty());
        self
    }

    /// Replaces the HTTP settings.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// From the core's credentials (`api_key`, optional `org_id`); `base_url`, when given,
    /// chooses a region or base URL (see [`Self::with_base_url`]).
    pub fn from_credentials(
        credentials: &Credentials,
        base_url: Option<&str>,
    ) -> Result<Self, MdmError> {
        if credentials.provider() != Provider::JumpCloud {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                format!(
                    "JumpCloud: configuration refused: the credentials are for {}, not JumpCloud; give JumpCloud credentials (api_key, optional org_id)",
                    credentials.provider().display_name()
                ),
            ));
        }
        let config = Self::new(credentials.require("api_key").clone()).with_org_id(
            credentials
                .get("org_id")
                .map(|o| o.expose_secret().to_owned()),
        );
        match base_url.map(str::trim).filter(|s| !s.is_empty()) {
            Some(url) => config.with_base_url(url),
            None => Ok(config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            Provider::JumpCloud,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))),
        )
        .unwrap()
    }

    #[test]
    fn p1_default_is_the_public_endpoint_and_eu_is_selectable() {
        let c = creds(&[("api_key", "k3y-value-123")]);
        let cfg = JumpCloudConfig::from_credentials(&c, None).unwrap();
        assert_eq!(cfg.base_url.as_str(), "https://console.jumpcloud.com/api");
        assert_eq!(cfg.console_url.as_str(), "https://console.jumpcloud.com/");
        assert_eq!(cfg.org_id, None);
        assert!(!format!("{cfg:?}").contains("k3y-value-123"));

        let eu = JumpCloudConfig::from_credentials(&c, Some("EU")).unwrap();
        assert_eq!(eu.base_url.as_str(), "https://console.eu.jumpcloud.com/api");
        assert_eq!(eu.console_url.as_str(), "https://console.eu.jumpcloud.com/");
    }

    #[test]
    fn p1_base_urls_get_api_appended_once() {
        let c = JumpCloudConfig::new(SecretString::from("k"));
        for (input, base, console) in [
            (
                "console.eu.jumpcloud.com",
                "https://console.eu.jumpcloud.com/api",
                "https://console.eu.jumpcloud.com/",
            ),
            (
                "https://console.eu.jumpcloud.com/api/",
                "https://console.eu.jumpcloud.com/api",
                "https://console.eu.jumpcloud.com/",
            ),
            (
                "http://127.0.0.1:8080/api",
                "http://127.0.0.1:8080/api",
                "http://127.0.0.1:8080/",
            ),
            (
                "https://proxy.example/jc",
                "https://proxy.example/jc/api",
                "https://proxy.example/jc/",
            ),
        ] {
            let cfg = c.clone().with_base_url(input).unwrap();
            assert_eq!(cfg.base_url.as_str(), base, "{input}");
            assert_eq!(cfg.console_url.as_str(), console, "{input}");
        }
        let err = c.with_base_url("http://console.jumpcloud.com").unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    }

    #[test]
    fn org_id_is_optional_and_trimmed() {
        let c = creds(&[("api_key", "k"), ("org_id", " 5f00aa ")]);
        let cfg = JumpCloudConfig::from_credentials(&c, None).unwrap();
        assert_eq!(cfg.org_id.as_deref(), Some("5f00aa"));
    }
}
