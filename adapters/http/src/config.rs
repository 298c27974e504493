//! Client configuration, base-URL validation and the typed configuration error.
//!
//! Every knob has a production default ([`HttpConfig::default`], [`HttpConfig::for_provider`]);
//! tests shrink the delays. There is deliberately no knob that turns TLS verification off
//! (E3): a private CA is added with [`HttpConfig::extra_ca_pem`].

use crate::redact::redact_url;
use mdmsync_core::{ErrorKind, MdmError, Provider};
use std::net::IpAddr;
use std::time::Duration;
use url::{Host, Url};

/// How the client talks to one MDM. Build with `HttpConfig { field: …, ..HttpConfig::default() }`
/// or start from [`HttpConfig::for_provider`].
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Time allowed to open a TCP connection and finish the TLS handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request (headers and body) of one attempt. Default 60 s; large
    /// Jamf groups are slow (lessons: 504s on big groups), raise it rather than lower it.
    /// Each attempt is also capped by the remaining [`crate::Deadline`].
    pub request_timeout: Duration,
    /// Extra trusted CA certificates, each a PEM string that may hold several certificates
    /// (a private CA, a TLS-inspecting proxy). They are added to the public web PKI roots,
    /// never replace verification (E3).
    pub extra_ca_pem: Vec<String>,
    /// Largest response body accepted, in bytes. A larger one fails with `ServerError`
    /// ("response larger than N bytes"). Default 64 MiB.
    pub max_response_bytes: usize,
    /// Most requests in flight at once to one host (`host:port`), P5. Default 4; Jamf 5.
    pub max_concurrent_per_host: usize,
    /// Slow down when the host's latency climbs (P5, for Jamf which sends no 429). Off by default.
    pub adaptive: Option<AdaptiveLatency>,
    /// A documented request budget per host (P5: Iru 10,000 requests per hour). Kept per
    /// client, so keep one client for the adapter's lifetime. Off by default.
    pub rate_limit: Option<RateLimit>,
    /// Retries of transient failures (E2).
    pub retry: RetryPolicy,
    /// Most pages any one listing may take before it is refused as a loop (P2). Default 10,000.
    pub max_pages: u32,
    /// Whether to honour the `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment variables
    /// (corporate egress proxies). Default true. Tests turn it off.
    pub use_env_proxy: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            extra_ca_pem: Vec::new(),
            max_response_bytes: 64 * 1024 * 1024,
            max_concurrent_per_host: 4,
            adaptive: None,
            rate_limit: None,
            retry: RetryPolicy::default(),
            max_pages: 10_000,
            use_env_proxy: true,
        }
    }
}

impl HttpConfig {
    /// The recommended configuration for a provider (P5): Jamf gets 5 connections and adaptive
    /// latency (it sends no 429); Iru its documented 10,000 requests per hour; the others the
    /// defaults (4 connections).
    pub fn for_provider(provider: Provider) -> Self {
        match provider {
            Provider::Jamf => Self {
                max_concurrent_per_host: 5,
                adaptive: Some(AdaptiveLatency::default()),
                ..Self::default()
            },
            Provider::Iru => Self {
                rate_limit: Some(RateLimit {
                    requests: 10_000,
                    per: Duration::from_secs(3600),
                }),
                ..Self::default()
            },
            _ => Self::default(),
        }
    }
}

/// E2: how transient failures (429, 502, 503, 504, connection reset, timeout) are retried.
///
/// Attempt `n` (1-based) that fails transiently waits `Retry-After` if the server sent one,
/// else a random delay in `[d/2, d]` with `d = min(base_delay * 2^(n-1), max_delay)`
/// ("equal jitter"). Only idempotent requests are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first. 1 disables retries. Default 4.
    pub max_attempts: u32,
    /// First backoff step. Default 500 ms.
    pub base_delay: Duration,
    /// Largest backoff step. Default 30 s.
    pub max_delay: Duration,
    /// Largest `Retry-After` the client waits for; a longer one ends the request at once with
    /// `ServerError` (the next sync retries). Default 5 min.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// No retries at all: every failure is final.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_retry_after: Duration::ZERO,
    };
}

/// P5 adaptive mode: keeps an exponential moving average (EMA) of each host's response
/// latency (time to response headers). While the average is above `threshold` the host is
/// "slow": requests to it go one at a time and each waits `pause` before it is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveLatency {
    /// Latency above which the host counts as slow. Default 2 s.
    pub threshold: Duration,
    /// Pause before each request while slow. Default 250 ms.
    pub pause: Duration,
    /// Weight of the newest sample in the average, in (0, 1]. Default 0.3.
    pub smoothing: f64,
}

impl Default for AdaptiveLatency {
    fn default() -> Self {
        Self {
            threshold: Duration::from_secs(2),
            pause: Duration::from_millis(250),
            smoothing: 0.3,
        }
    }
}

/// P5: at most `requests` requests per `per` to one host, as a token bucket: a full bucket
/// allows a burst of `requests`, then requests are spaced at `per / requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

/// A configuration the client refuses. Convert with [`ConfigError::into_mdm_error`] when it
/// must be reported as an E1 kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not parse.
    #[error(
        "{url:?} is not a valid URL ({reason}); give a full URL such as https://mdm.example.com"
    )]
    InvalidUrl {
        /// The URL, query removed.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// `http://` to a host that is not loopback.
    #[error(
        "refusing plain http:// to {host}: http is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost); use https://"
    )]
    InsecureHttp {
        /// The host.
        host: String,
    },
    /// A scheme other than https/http.
    #[error("unsupported URL scheme {scheme:?} in {url}; use https://")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
        /// The URL, query removed.
        url: String,
    },
    /// `user:password@` in the URL: credentials belong in the credential fields.
    #[error(
        "the URL {url} carries a user name or password; remove it and pass credentials as credential fields"
    )]
    CredentialsInUrl {
        /// The URL, credentials and query removed.
        url: String,
    },
    /// An extra CA certificate that is not usable PEM.
    #[error(
        "extra CA certificate #{index} is not a PEM certificate ({reason}); pass the CA as PEM text starting with -----BEGIN CERTIFICATE-----"
    )]
    InvalidCa {
        /// Position in [`HttpConfig::extra_ca_pem`], from 0.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// A numeric setting out of range.
    #[error("invalid HTTP setting {setting}: {reason}")]
    InvalidSetting {
        /// The field name.
        setting: &'static str,
        /// Why.
        reason: String,
    },
    /// The TLS stack could not be initialised.
    #[error("could not build the HTTP client: {0}")]
    Build(String),
}

impl ConfigError {
    /// The E1 kind this refusal is reported as: a bad CA is `SslError`, a bad or insecure URL
    /// is `NotFound` ("check the host or base URL"), anything else `ServerError`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::InvalidCa { .. } => ErrorKind::SslError,
            ConfigError::InvalidUrl { .. }
            | ConfigError::InsecureHttp { .. }
            | ConfigError::UnsupportedScheme { .. }
            | ConfigError::CredentialsInUrl { .. } => ErrorKind::NotFound,
            ConfigError::InvalidSetting { .. } | ConfigError::Build(_) => ErrorKind::ServerError,
        }
    }

    /// This refusal as an [`MdmError`] naming the provider.
    pub fn into_mdm_error(self, provider: Provider) -> MdmError {
        MdmError::new(
            self.kind(),
            format!("{}: configuration refused: {self}", provider.display_name()),
        )
    }
}

/// Whether `url`'s host is loopback: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Checks a URL the client is about to use: `https`, or `http` to a loopback host only; no
/// `user:password@`.
pub fn check_url(url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => {
            return Err(ConfigError::InsecureHttp {
                host: url.host_str().unwrap_or("").to_owned(),
            });
        }
        other => {
            return Err(ConfigError::UnsupportedScheme {
                scheme: other.to_owned(),
                url: redact_url(url),
            });
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::CredentialsInUrl {
            url: redact_url(url),
        });
    }
    Ok(())
}

/// Parses and checks a base URL an operator gave (P1 override, tenant host): trims blanks,
/// adds `https://` when no scheme is given (`acme.jamfcloud.com`), refuses `http://` to a
/// non-loopback host and embedded credentials. Makes no network call.
///
/// ```
/// let url = mdmsync_http::parse_base_url("acme.jamfcloud.com").unwrap();
/// assert_eq!(url.as_str(), "https://acme.jamfcloud.com/");
/// assert!(mdmsync_http::parse_base_url("http://acme.jamfcloud.com").is_err());
/// assert!(mdmsync_http::parse_base_url("http://127.0.0.1:8080/api").is_ok());
/// ```
pub fn parse_base_url(input: &str) -> Result<Url, ConfigError> {
    let trimmed = input.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| ConfigError::InvalidUrl {
        url: with_scheme.split('?').next().unwrap_or("").to_owned(),
        reason: e.to_string(),
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::InvalidUrl {
            url: redact_url(&url),
            reason: "no host".into(),
        });
    }
    check_url(&url)?;
    Ok(url)
}

/// Appends `path` to `base`'s path, whatever slashes either has: `endpoint(base, "api/v1/x")`
/// on `https://h/tenant` gives `https://h/tenant/api/v1/x` (where `Url::join` would drop
/// `tenant`). The base's query is dropped.
///
/// ```
/// let base = url::Url::parse("https://a.simplemdm.com/api/v1").unwrap();
/// let u = mdmsync_http::endpoint(&base, "/assignment_groups");
/// assert_eq!(u.as_str(), "https://a.simplemdm.com/api/v1/assignment_groups");
/// ```
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for s in [
            "http://localhost:1/",
            "http://LOCALHOST/",
            "http://127.0.0.1/",
            "http://127.9.8.7/",
            "http://[::1]:8/",
        ] {
            assert!(is_loopback(&u(s)), "{s}");
            assert!(check_url(&u(s)).is_ok(), "{s}");
        }
        for s in [
            "http://10.0.0.1/",
            "http://localhost.example.com/",
            "http://[::2]/",
            "http://128.0.0.1/",
        ] {
            assert!(!is_loopback(&u(s)), "{s}");
            assert!(
                matches!(check_url(&u(s)), Err(ConfigError::InsecureHttp { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn e3_only_https_or_loopback_http() {
        assert!(check_url(&u("https://acme.jamfcloud.com/")).is_ok());
        assert!(matches!(
            check_url(&u("ftp://acme.example/")),
            Err(ConfigError::UnsupportedScheme { .. })
        ));
        let err = check_url(&u("https://user:hunter2@acme.example/")).unwrap_err();
        assert!(matches!(err, ConfigError::CredentialsInUrl { .. }));
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn base_urls_get_https_and_keep_paths() {
        assert_eq!(
            parse_base_url(" acme.jamfcloud.com ").unwrap().as_str(),
            "https://acme.jamfcloud.com/"
        );
        assert!(parse_base_url("http://acme.example").is_err());
        assert!(parse_base_url("https://").is_err());
        let base = parse_base_url("https://h.example/tenant/").unwrap();
        assert_eq!(
            endpoint(&base, "/api/v1/tags").as_str(),
            "https://h.example/tenant/api/v1/tags"
        );
    }

    #[test]
    fn invalid_url_error_hides_the_query() {
        let err = parse_base_url("https://exa mple.com/?token=s3cret").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
