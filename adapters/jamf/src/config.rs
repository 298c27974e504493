//! How to reach one Jamf Pro server: host, API client, HTTP settings and paging.

use mdmsync_core::{Credentials, ErrorKind, MdmError, Provider};
use mdmsync_http::{ExposeSecret, HttpConfig, SecretString, Url, parse_base_url};
use std::time::Duration;

/// Largest `page-size` this adapter asks for. Jamf documents no maximum for the inventory;
/// community tools page with 2,000 (lessons: "page `computers-inventory` with page-size up to
/// 2,000"), and the simulator refuses more. One page of 2,000 computers with four sections is
/// about 2 MB.
pub const MAX_PAGE_SIZE: u32 = 2000;

/// Most serial numbers in one RSQL `=in=` look-up.
pub const LOOKUP_BATCH: usize = 50;

/// Jamf's recommendation: at most 5 concurrent connections (P5).
pub const MAX_CONNECTIONS: usize = 5;

/// Settings of a [`crate::JamfClient`]. `Debug` never shows the client secret.
#[derive(Clone, Debug)]
pub struct JamfConfig {
    /// The Jamf Pro server, e.g. `https://acme.jamfcloud.com/` (a context path such as
    /// `https://jamf.example.com:8443/jss/` is kept).
    pub base_url: Url,
    /// The API client id (Jamf Pro → Settings → API roles and clients).
    pub client_id: String,
    /// The API client secret.
    pub client_secret: SecretString,
    /// Timeouts, retries, extra CA certificates. At most [`MAX_CONNECTIONS`] connections are
    /// used and adaptive slow-down is always on, whatever this says (P5).
    pub http: HttpConfig,
    /// Inventory `page-size`, 1 to [`MAX_PAGE_SIZE`] (default: the maximum).
    pub page_size: u32,
    /// Time budget of one snapshot, credential test or look-up (E2 deadline). Default 15 min.
    pub budget: Duration,
    /// How long the device metadata seen by the last snapshot's inventory sweep answers
    /// look-ups without asking Jamf again. Default 10 min; zero turns it off.
    pub index_ttl: Duration,
}

impl JamfConfig {
    /// A configuration for `host` (a bare host such as `acme.jamfcloud.com` gets `https://`;
    /// `http://` is accepted for loopback only) with production defaults.
    pub fn new(
        host: &str,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Result<Self, MdmError> {
        let base_url = parse_base_url(host).map_err(|e| e.into_mdm_error(Provider::Jamf))?;
        Ok(Self {
            base_url,
            client_id: client_id.into().trim().to_owned(),
            client_secret,
            http: HttpConfig::for_provider(Provider::Jamf),
            page_size: MAX_PAGE_SIZE,
            budget: Duration::from_secs(15 * 60),
            index_ttl: Duration::from_secs(10 * 60),
        })
    }

    /// From the core's credentials (`host`, `client_id`, `client_secret`). `base_url`, when
    /// given, replaces `host` (P1).
    pub fn from_credentials(
        credentials: &Credentials,
        base_url: Option<&str>,
    ) -> Result<Self, MdmError> {
        if credentials.provider() != Provider::Jamf {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                format!(
                    "Jamf: the credentials are for {}, not Jamf; connect with Jamf credentials (host, client_id, client_secret)",
                    credentials.provider()
                ),
            ));
        }
        let field = |key: &str| {
            credentials.get(key).ok_or_else(|| {
                MdmError::new(
                    ErrorKind::Unauthorized,
                    format!("Jamf: the credential field `{key}` is missing; pass it with the credentials"),
                )
            })
        };
        let host = match base_url.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => b.to_owned(),
            None => field("host")?.expose_secret().to_owned(),
        };
        Self::new(
            &host,
            field("client_id")?.expose_secret(),
            field("client_secret")?.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pairs: &[(&str, &str)]) -> Credentials {
        Credentials::new(
            Provider::Jamf,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))),
        )
        .unwrap()
    }

    #[test]
    fn p1_host_or_override_becomes_the_base_url() {
        let c = creds(&[
            ("host", "acme.jamfcloud.com"),
            ("client_id", "id"),
            ("client_secret", "s3cr3t-value"),
        ]);
        let cfg = JamfConfig::from_credentials(&c, None).unwrap();
        assert_eq!(cfg.base_url.as_str(), "https://acme.jamfcloud.com/");
        assert_eq!(cfg.page_size, MAX_PAGE_SIZE);
        assert_eq!(cfg.http.max_concurrent_per_host, MAX_CONNECTIONS);
        assert!(cfg.http.adaptive.is_some());
        let cfg = JamfConfig::from_credentials(&c, Some("http://127.0.0.1:9")).unwrap();
        assert_eq!(cfg.base_url.as_str(), "http://127.0.0.1:9/");
        assert!(!format!("{cfg:?}").contains("s3cr3t-value"));
    }

    #[test]
    fn e3_plain_http_to_a_real_host_is_refused() {
        let c = creds(&[
            ("host", "http://acme.jamfcloud.com"),
            ("client_id", "id"),
            ("client_secret", "s"),
        ]);
        let err = JamfConfig::from_credentials(&c, None).unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    }
}
