//! OAuth2 client-credentials token cache (P4): one token shared by all requests of an adapter,
//! refreshed before it expires and dropped on a 401.

use crate::client::HttpClient;
use mdmsync_core::{ErrorKind, MdmError};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

/// What a client-credentials token request needs.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// Token endpoints, tried in order while they answer 404; the first that answers is
    /// remembered. Jamf: `…/api/oauth/token`, then `…/api/v1/oauth/token`.
    pub token_urls: Vec<Url>,
    /// The client id (not a secret).
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
    /// Optional `scope` (Intune: `https://graph.microsoft.com/.default`).
    pub scope: Option<String>,
}

impl ClientCredentials {
    /// Credentials for one token endpoint.
    pub fn new(token_url: Url, client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            token_urls: vec![token_url],
            client_id: client_id.into(),
            client_secret,
            scope: None,
        }
    }

    /// Adds a token endpoint tried when the previous ones answer 404.
    pub fn with_fallback(mut self, token_url: Url) -> Self {
        self.token_urls.push(token_url);
        self
    }

    /// Sets the `scope` form field.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// P4: the refresh margin for a token of the given lifetime: the smaller of 60 s and half the
/// lifetime. A token is refreshed once less than the margin is left.
///
/// ```
/// use std::time::Duration;
/// use mdmsync_http::refresh_margin;
/// assert_eq!(refresh_margin(Duration::from_secs(599)), Duration::from_secs(60));
/// assert_eq!(refresh_margin(Duration::from_secs(30)), Duration::from_secs(15));
/// ```
pub fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(60).min(lifetime / 2)
}

/// Caches one OAuth2 access token. Shared (in an `Arc`) through [`crate::Auth::OAuth`];
/// concurrent requests wait for a single fetch. Checked before every request, so a long
/// listing refreshes between pages (P4).
pub struct TokenCache {
    credentials: ClientCredentials,
    state: Mutex<State>,
    fetches: AtomicU64,
}

#[derive(Default)]
struct State {
    token: Option<Cached>,
    generation: u64,
    url_index: usize,
}

struct Cached {
    value: SecretString,
    /// `None`: the server gave no lifetime; used until it is refused.
    refresh_at: Option<Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("token_urls", &self.credentials.token_urls.len())
            .field("client_id", &self.credentials.client_id)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

/// A token and the generation it belongs to (to drop exactly that one on a 401).
pub(crate) struct IssuedToken {
    pub(crate) value: SecretString,
    pub(crate) generation: u64,
}

impl TokenCache {
    /// An empty cache; the first request fetches a token.
    pub fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            state: Mutex::new(State::default()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The credentials this cache uses.
    pub fn credentials(&self) -> &ClientCredentials {
        &self.credentials
    }

    /// How many tokens have been fetched so far (for logs and tests).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Drops the cached token, whatever its age; the next request fetches a new one.
    pub async fn clear(&self) {
        self.state.lock().await.token = None;
    }

    /// A valid token: the cached one unless it is within the margin of its expiry.
    pub(crate) async fn token(&self, http: &HttpClient) -> Result<IssuedToken, MdmError> {
        let mut state = self.state.lock().await;
        if let Some(t) = &state.token {
            if t.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(IssuedToken {
                    value: t.value.clone(),
                    generation: state.generation,
                });
            }
        }
        let (value, lifetime) = Box::pin(self.fetch(http, &mut state)).await?;
        let refresh_at = lifetime.map(|l| Instant::now() + l - refresh_margin(l));
        state.generation += 1;
        state.token = Some(Cached {
            value: value.clone(),
            refresh_at,
        });
        Ok(IssuedToken {
            value,
            generation: state.generation,
        })
    }

    /// Drops the token of `generation` if it is still the cached one (a 401 for an older
    /// token does not throw away a newer one).
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.token = None;
        }
    }

    async fn fetch(
        &self,
        http: &HttpClient,
        state: &mut State,
    ) -> Result<(SecretString, Option<Duration>), MdmError> {
        const OP: &str = "fetch an OAuth2 access token";
        let creds = &self.credentials;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "client_credentials"),
            ("client_id", &creds.client_id),
            ("client_secret", creds.client_secret.expose_secret()),
        ];
        if let Some(scope) = &creds.scope {
            form.push(("scope", scope));
        }
        let mut last_404 = None;
        for index in state.url_index..creds.token_urls.len() {
            let url = &creds.token_urls[index];
            let response = http
                .post(OP, url.clone())
                .form(&form)
                .scrub(&creds.client_secret)
                .retry_safe()
                .accept_status(StatusCode::BAD_REQUEST)
                .accept_status(StatusCode::UNAUTHORIZED)
                .accept_status(StatusCode::NOT_FOUND)
                .send()
                .await?;
            match response.status() {
                StatusCode::NOT_FOUND => {
                    last_404 = Some(response.fail(ErrorKind::NotFound, "token endpoint not found"));
                    continue;
                }
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
                    let code = serde_json::from_slice::<serde_json::Value>(response.body())
                        .ok()
                        .and_then(|v| v.get("error")?.as_str().map(str::to_owned));
                    let kind = match code.as_deref() {
                        Some("invalid_scope") => ErrorKind::Forbidden,
                        Some(
                            "invalid_client"
                            | "unauthorized_client"
                            | "invalid_grant"
                            | "invalid_request",
                        )
                        | None => ErrorKind::Unauthorized,
                        Some(_) if response.status() == StatusCode::UNAUTHORIZED => {
                            ErrorKind::Unauthorized
                        }
                        Some(_) => ErrorKind::ServerError,
                    };
                    return Err(response.fail(kind, "the token endpoint refused the client"));
                }
                _ => {}
            }
            state.url_index = index;
            let parsed: TokenResponse = serde_json::from_slice(response.body()).map_err(|_| {
                response.fail(
                    ErrorKind::ServerError,
                    "the token response is not JSON with an access_token",
                )
            })?;
            let lifetime = match parsed.expires_in {
                None => None,
                Some(v) => Some(parse_lifetime(&v).ok_or_else(|| {
                    response.fail(
                        ErrorKind::ServerError,
                        "the token response has an invalid expires_in",
                    )
                })?),
            };
            if parsed.access_token.expose_secret().is_empty() {
                return Err(response.fail(
                    ErrorKind::ServerError,
                    "the token response has an empty access_token",
                ));
            }
            self.fetches.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                provider = http.provider().slug(),
                lifetime_s = lifetime.map(|l| l.as_secs()),
                "fetched an OAuth2 access token"
            );
            return Ok((parsed.access_token, lifetime));
        }
        Err(last_404.unwrap_or_else(|| {
            http.error(ErrorKind::NotFound, OP, "no token endpoint is configured")
        }))
    }
}

/// `expires_in` as a number of seconds, or a string of digits (some Entra endpoints).
fn parse_lifetime(v: &serde_json::Value) -> Option<Duration> {
    let secs = match v {
        serde_json::Value::Number(n) => n.as_u64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p4_margin_is_min_of_60s_and_half_the_lifetime() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3599)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(100)),
            Duration::from_secs(50)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn expires_in_accepts_numbers_and_digit_strings() {
        assert_eq!(
            parse_lifetime(&serde_json::json!(599)),
            Some(Duration::from_secs(599))
        );
        assert_eq!(
            parse_lifetime(&serde_json::json!("3599")),
            Some(Duration::from_secs(3599))
        );
        assert_eq!(parse_lifetime(&serde_json::json!(-1)), None);
        assert_eq!(parse_lifetime(&serde_json::json!("soon")), None);
    }
}
