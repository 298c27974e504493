//! How to reach one Fleet server: its URL, the API token, HTTP settings.

use mdmsync_core::{Credentials, ErrorKind, MdmError, Provider};
use mdmsync_http::{HttpConfig, Url, parse_base_url};
use secrecy::SecretString;
use std::time::Duration;

/// Hosts per page when listing a label's hosts or searching hosts. Fleet documents no maximum;
/// 500 keeps a page well under a megabyte.
pub const DEFAULT_PER_PAGE: u32 = 500;

/// Time budget of one snapshot or one look-up batch, retries included (E2).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How to reach one Fleet server. `Debug` never shows the token (C2).
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// The Fleet server's URL (`https://fleet.example.com`); API paths go under it
    /// (`/api/v1/fleet/...`), and console links too (`/hosts/{id}`).
    pub base_url: Url,
    /// The API token (an API-only user's token is best: an interactive login rotates it).
    pub api_token: SecretString,
    /// Timeouts, retries, extra CA certificates, concurrency.
    pub http: HttpConfig,
    /// `per_page` sent on every paged request; at least 1.
    pub per_page: u32,
    /// Time budget of one snapshot or look-up batch.
    pub operation_timeout: Duration,
}

impl FleetConfig {
    /// A configuration for the Fleet server at `host`: a bare host (`fleet.example.com`, https
    /// is implied) or a full URL (`http://` only for loopback). Makes no network call.
    pub fn new(host: &str, api_token: SecretString) -> Result<Self, MdmError> {
        let base_url = parse_base_url(host).map_err(|e| e.into_mdm_error(Provider::Fleet))?;
        Ok(Self {
            base_url,
            api_token,
            http: HttpConfig::for_provider(Provider::Fleet),
            per_page: DEFAULT_PER_PAGE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        })
    }

    /// From the core's credentials (`host`, `api_token`); `base_url`, when given, overrides the
    /// `host` field (P1: a proxy in front of Fleet, tests).
    pub fn from_credentials(
        credentials: &Credentials,
        base_url: Option<&str>,
    ) -> Result<Self, MdmError> {
        if credentials.provider() != Provider::Fleet {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                format!(
                    "Fleet: configuration refused: the credentials are for {}, not Fleet; give Fleet credentials (host, api_token)",
                    credentials.provider().display_name()
                ),
            ));
        }
        let host = match base_url.map(str::trim).filter(|s| !s.is_empty()) {
            Some(url) => url.to_owned(),
            None => {
                use secrecy::ExposeSecret;
                credentials.require("host").expose_secret().to_owned()
            }
        };
        Self::new(&host, credentials.require("api_token").clone())
    }

    /// Replaces the HTTP settings.
    pub fn with_http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            Provider::Fleet,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))),
        )
        .unwrap()
    }

    #[test]
    fn p1_bare_host_gets_https_and_base_url_overrides_host() {
        let c = creds(&[("host", "fleet.example.com"), ("api_token", "t0k3n-value")]);
        let cfg = FleetConfig::from_credentials(&c, None).unwrap();
        assert_eq!(cfg.base_url.as_str(), "https://fleet.example.com/");
        assert_eq!(cfg.per_page, DEFAULT_PER_PAGE);
        let cfg = FleetConfig::from_credentials(&c, Some("http://127.0.0.1:9/fleet")).unwrap();
        assert_eq!(cfg.base_url.as_str(), "http://127.0.0.1:9/fleet");
        assert!(!format!("{cfg:?}").contains("t0k3n-value"));
    }

    #[test]
    fn e3_plain_http_to_a_remote_host_is_refused() {
        let c = creds(&[("host", "http://fleet.example.com"), ("api_token", "t")]);
        let err = FleetConfig::from_credentials(&c, None).unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[test]
    fn credentials_of_another_provider_are_refused() {
        let c = Credentials::new(
            Provider::Iru,
            [
                ("host".to_string(), SecretString::from("a.kandji.io")),
                ("api_token".to_string(), SecretString::from("t")),
            ],
        )
        .unwrap();
        let err = FleetConfig::from_credentials(&c, None).unwrap_err();
        assert!(err.to_string().contains("not Fleet"), "{err}");
    }
}
