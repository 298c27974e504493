//! # mdmsync-http
//!
//! The HTTP plumbing every mdmsync MDM adapter (Jamf, Intune, Iru, SimpleMDM, Fleet,
//! JumpCloud) is built on, so each adapter only describes its endpoints and JSON shapes.
//! It guarantees, for every request:
//!
//! - **TLS always verified** (E3): rustls with the web PKI roots, plus optional extra CA
//!   certificates ([`HttpConfig::extra_ca_pem`]); no switch turns verification off. `http://`
//!   is refused for any host that is not loopback ([`ConfigError::InsecureHttp`]).
//! - **E1 errors**: every failure is an [`mdmsync_core::MdmError`] of one of the six kinds,
//!   its message naming provider, operation and HTTP status ([`classify`] has the table), and
//!   never a credential: query strings are redacted, secrets scrubbed (P3, C2).
//! - **Retries** (E2): 429/502/503/504, resets and timeouts of idempotent requests, with
//!   exponential backoff and jitter, `Retry-After` honoured, bounded attempts, inside a
//!   per-sync [`Deadline`].
//! - **OAuth2 client credentials** (P4): [`Auth::client_credentials`] caches the token,
//!   refreshes it `min(60 s, lifetime/2)` before expiry, and on a 401 fetches a fresh one and
//!   retries once.
//! - **Good citizenship** (P5): a per-host concurrency limit, an adaptive slow-down when a
//!   host's latency climbs (Jamf), and a response size limit.
//! - **Complete listings** (P2): [`Pager`] helpers for each pagination style, each refusing
//!   loops, repeats, runaway page counts and counts that do not add up.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdmsync_core::MdmError> {
//! use mdmsync_core::Provider;
//! use mdmsync_http::*;
//! use secrecy::SecretString;
//! use std::time::Duration;
//!
//! let p = Provider::Jamf;
//! let base = parse_base_url("acme.jamfcloud.com").map_err(|e| e.into_mdm_error(p))?;
//! let http = HttpClient::new(p, HttpConfig::for_provider(p)).map_err(|e| e.into_mdm_error(p))?;
//! let auth = Auth::client_credentials(
//!     ClientCredentials::new(endpoint(&base, "api/oauth/token"), "client-id",
//!         SecretString::from("secret"))
//!     .with_fallback(endpoint(&base, "api/v1/oauth/token")),
//! );
//! // Per sync:
//! let http = http.with_deadline(Deadline::after(Duration::from_secs(900)));
//!
//! #[derive(serde::Deserialize)]
//! struct Page { #[serde(rename = "totalCount")] total: u64, results: Vec<Computer> }
//! #[derive(serde::Deserialize)]
//! struct Computer { id: String }
//!
//! let computers = http
//!     .pager("list computers")
//!     .numbered_with_total(200, |page| {
//!         let (http, auth, base) = (&http, &auth, &base);
//!         async move {
//!             let p: Page = http
//!                 .get("list computers", endpoint(base, "api/v3/computers-inventory"))
//!                 .query(&[("page", &page.to_string()), ("page-size", "200"), ("sort", "id:asc")])
//!                 .auth(auth)
//!                 .send_json()
//!                 .await?;
//!             Ok(TotalPage { total: p.total, items: p.results })
//!         }
//!     }, |c: &Computer| c.id.clone())
//!     .await?;
//! # let _ = computers; Ok(()) }
//! ```

mod auth;
pub mod classify;
mod client;
mod config;
mod deadline;
mod limit;
mod oauth;
pub mod paginate;
mod redact;
mod retry;

pub use auth::Auth;
pub use classify::status_kind;
pub use client::{HttpClient, RequestBuilder, Response, ToUrl, USER_AGENT};
pub use config::{
    AdaptiveLatency, ConfigError, HttpConfig, RateLimit, RetryPolicy, check_url, endpoint,
    is_loopback, parse_base_url,
};
pub use deadline::Deadline;
pub use oauth::{ClientCredentials, TokenCache, refresh_margin};
pub use paginate::{CursorPage, HasMorePage, LinkPage, PageEnd, Pager, TotalPage};
pub use redact::{REDACTED, Scrubber, describe_decode_error, redact_url, summarize_body};
pub use retry::{backoff, is_idempotent, is_retryable_status, parse_retry_after};

/// Re-exported so adapters need no direct reqwest/url dependency for common types.
pub use reqwest::{Method, StatusCode};
pub use secrecy::{ExposeSecret, SecretString};
pub use url::Url;
