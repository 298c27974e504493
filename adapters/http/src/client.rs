//! The HTTP client adapters use: one configured reqwest client per adapter, requests with an
//! operation name, E1 errors, E2 retries, P4 token handling and P5 host limits.

use crate::auth::{Auth, bearer_value};
use crate::classify::{Transport, classify_transport, status_kind};
use crate::config::{ConfigError, HttpConfig, check_url};
use crate::deadline::Deadline;
use crate::limit::{HostLimits, host_key};
use crate::paginate::Pager;
use crate::redact::{Scrubber, describe_decode_error, redact_url, summarize_body};
use crate::retry::{backoff, is_idempotent, is_retryable_status, retry_after};
use mdmsync_core::{ErrorKind, MdmError, Provider};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, redirect};
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The user agent every request sends: `mdmsync/<version>`.
pub const USER_AGENT: &str = concat!("mdmsync/", env!("CARGO_PKG_VERSION"));

/// Most same-origin redirects followed. Redirects to another origin are never followed (the
/// credential would go with them); they end the request as `NotFound`.
const MAX_REDIRECTS: usize = 5;

/// One MDM's HTTP client: verified TLS (E3), timeouts, retries (E2), token refresh (P4),
/// per-host limits (P5), size limit, and errors that name provider, operation and status and
/// never a credential (E1, P3, C2).
///
/// Cheap to clone; clones share the connection pool and host limits. Build one per adapter
/// with [`HttpClient::new`], and per sync scope it with [`HttpClient::with_deadline`].
///
/// ```no_run
/// # async fn demo() -> Result<(), mdmsync_core::MdmError> {
/// use mdmsync_core::Provider;
/// use mdmsync_http::{Auth, Deadline, HttpClient, HttpConfig, endpoint, parse_base_url};
/// use secrecy::SecretString;
/// use std::time::Duration;
///
/// let base = parse_base_url("acme.fleetdm.com").map_err(|e| e.into_mdm_error(Provider::Fleet))?;
/// let http = HttpClient::new(Provider::Fleet, HttpConfig::for_provider(Provider::Fleet))
///     .map_err(|e| e.into_mdm_error(Provider::Fleet))?;
/// let auth = Auth::bearer(SecretString::from("token"));
/// let http = http.with_deadline(Deadline::after(Duration::from_secs(600)));
/// let me: serde_json::Value = http
///     .get_json("check the API token", endpoint(&base, "api/v1/fleet/me"), &auth)
///     .await?;
/// # let _ = me; Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
    deadline: Deadline,
}

struct Inner {
    provider: Provider,
    config: HttpConfig,
    client: reqwest::Client,
    limits: HostLimits,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.inner.provider)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Something a request URL can be made from: [`Url`], `&Url`, `&str`, `String`.
pub trait ToUrl {
    /// The parsed URL, or why it does not parse.
    fn to_url(self) -> Result<Url, String>;
}

impl ToUrl for Url {
    fn to_url(self) -> Result<Url, String> {
        Ok(self)
    }
}
impl ToUrl for &Url {
    fn to_url(self) -> Result<Url, String> {
        Ok(self.clone())
    }
}
impl ToUrl for &str {
    fn to_url(self) -> Result<Url, String> {
        Url::parse(self).map_err(|e| e.to_string())
    }
}
impl ToUrl for String {
    fn to_url(self) -> Result<Url, String> {
        self.as_str().to_url()
    }
}
impl ToUrl for &String {
    fn to_url(self) -> Result<Url, String> {
        self.as_str().to_url()
    }
}

impl HttpClient {
    /// Builds the client: rustls with the web PKI roots plus `config.extra_ca_pem`, connect
    /// and request timeouts, user agent `mdmsync/<version>`, same-origin redirects only.
    /// Fails on an unusable CA or setting; makes no network call.
    pub fn new(provider: Provider, config: HttpConfig) -> Result<Self, ConfigError> {
        if config.retry.max_attempts == 0 {
            return Err(ConfigError::InvalidSetting {
                setting: "retry.max_attempts",
                reason: "must be at least 1".into(),
            });
        }
        if config.max_response_bytes == 0 {
            return Err(ConfigError::InvalidSetting {
                setting: "max_response_bytes",
                reason: "must be more than 0".into(),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .https_only(false) // loopback http is checked per request by `check_url`
            .redirect(redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }));
        if !config.use_env_proxy {
            builder = builder.no_proxy();
        }
        for (index, pem) in config.extra_ca_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                ConfigError::InvalidCa {
                    index,
                    reason: e.to_string(),
                }
            })?;
            if certs.is_empty() {
                return Err(ConfigError::InvalidCa {
                    index,
                    reason: "no CERTIFICATE block found".into(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::Build(e.without_url().to_string()))?;
        let limits = HostLimits::new(
            config.max_concurrent_per_host,
            config.adaptive,
            config.rate_limit,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                provider,
                config,
                client,
                limits,
            }),
            deadline: Deadline::NONE,
        })
    }

    /// The provider named in every error.
    pub fn provider(&self) -> Provider {
        self.inner.provider
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// The deadline requests through this handle respect.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// A handle sharing this client whose requests all fit inside `deadline` (E2): each attempt's
    /// timeout is capped at the time left and no retry waits past it. Use one per sync.
    pub fn with_deadline(&self, deadline: Deadline) -> Self {
        Self {
            inner: self.inner.clone(),
            deadline,
        }
    }

    /// The host's average response latency (P5 adaptive mode), once a request has completed.
    pub fn host_latency(&self, url: &Url) -> Option<Duration> {
        self.inner.limits.latency(&host_key(url))
    }

    /// An error in this client's style, for failures an adapter detects itself (a missing
    /// field, a permission-limited answer): `"<provider>: <op> failed: <detail>"`.
    pub fn error(&self, kind: ErrorKind, op: &str, detail: impl fmt::Display) -> MdmError {
        MdmError::new(
            kind,
            format!(
                "{}: {op} failed: {detail}",
                self.inner.provider.display_name()
            ),
        )
    }

    /// Pagination helpers for the listing `op` (P2), bounded by `config.max_pages`.
    pub fn pager(&self, op: &str) -> Pager {
        Pager::new(self.inner.provider, op, self.inner.config.max_pages)
    }

    /// Starts a request. `op` says what it is for, in words ("list computer groups"); it
    /// appears in errors and logs.
    pub fn request(&self, method: Method, op: &str, url: impl ToUrl) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method,
            op: op.to_owned(),
            url: url.to_url(),
            auth: Auth::None,
            headers: Vec::new(),
            body: None,
            retry_safe: false,
            accept: Vec::new(),
            scrub: Scrubber::default(),
            error: None,
        }
    }

    /// A GET request.
    pub fn get(&self, op: &str, url: impl ToUrl) -> RequestBuilder<'_> {
        self.request(Method::GET, op, url)
    }

    /// A POST request (not retried unless marked [`RequestBuilder::retry_safe`]).
    pub fn post(&self, op: &str, url: impl ToUrl) -> RequestBuilder<'_> {
        self.request(Method::POST, op, url)
    }

    /// A PUT request.
    pub fn put(&self, op: &str, url: impl ToUrl) -> RequestBuilder<'_> {
        self.request(Method::PUT, op, url)
    }

    /// A PATCH request (not retried unless marked).
    pub fn patch(&self, op: &str, url: impl ToUrl) -> RequestBuilder<'_> {
        self.request(Method::PATCH, op, url)
    }

    /// A DELETE request.
    pub fn delete(&self, op: &str, url: impl ToUrl) -> RequestBuilder<'_> {
        self.request(Method::DELETE, op, url)
    }

    /// GET `url` and decode the JSON body as `T`. A body of another shape is `ServerError`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        op: &str,
        url: impl ToUrl,
        auth: &Auth,
    ) -> Result<T, MdmError> {
        self.get(op, url).auth(auth).send_json().await
    }

    /// POST `body` as JSON and decode the JSON answer. Not retried.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        op: &str,
        url: impl ToUrl,
        auth: &Auth,
        body: &B,
    ) -> Result<T, MdmError> {
        self.post(op, url).auth(auth).json(body).send_json().await
    }

    /// POST a form (`application/x-www-form-urlencoded`) and decode the JSON answer. Not retried.
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        op: &str,
        url: impl ToUrl,
        auth: &Auth,
        form: &[(&str, &str)],
    ) -> Result<T, MdmError> {
        self.post(op, url).auth(auth).form(form).send_json().await
    }

    /// POST with no body, success being any 2xx whatever the body (force-sync endpoints answer
    /// 200, 202 or 204, often empty, A1). Not retried.
    pub async fn post_empty(&self, op: &str, url: impl ToUrl, auth: &Auth) -> Result<(), MdmError> {
        self.post(op, url).auth(auth).send().await.map(|_| ())
    }

    async fn execute(&self, req: RequestBuilder<'_>) -> Result<Response, MdmError> {
        let provider = self.inner.provider;
        let RequestBuilder {
            method,
            op,
            url,
            auth,
            headers,
            body,
            retry_safe,
            accept,
            mut scrub,
            error,
            ..
        } = req;
        if let Some(s) = auth.static_secret() {
            scrub.add(s);
        }
        if let Some(cache) = auth.token_cache() {
            scrub.add(&cache.credentials().client_secret);
        }
        let url = match url {
            Ok(u) => u,
            Err(reason) => {
                return Err(self.error(
                    ErrorKind::ServerError,
                    &op,
                    scrub.scrub(&format!("invalid request URL ({reason})")),
                ));
            }
        };
        // Query values may be credentials (`?api_key=`); a server echoing them in an error body
        // must not put them into a message. Short values (`page=0`) are left alone.
        for (_, v) in url.query_pairs() {
            if v.len() >= 8 {
                scrub.add(&SecretString::from(v.into_owned()));
            }
        }
        let mut ctx = Ctx {
            provider,
            op,
            method: method.clone(),
            url: redact_url(&url),
            scrub,
        };
        if let Some(e) = error {
            return Err(ctx.fail(ErrorKind::ServerError, e));
        }
        if let Err(e) = check_url(&url) {
            return Err(ctx.fail(e.kind(), e.to_string()));
        }
        let config = &self.inner.config;
        let policy = config.retry;
        let may_retry = retry_safe || is_idempotent(&method);
        let key = host_key(&url);
        let mut attempt: u32 = 0;
        let mut auth_retried = false;
        let mut last: Option<(ErrorKind, String)> = None;

        loop {
            attempt += 1;
            let timeout = self.deadline.cap(config.request_timeout);
            if timeout.is_zero() {
                let tried = attempt - 1;
                let (kind, detail) = match last {
                    Some((k, d)) => (
                        k,
                        format!("{d}; gave up after {tried} attempt(s): the sync deadline passed"),
                    ),
                    None => (
                        ErrorKind::ConnectionFailed,
                        "the sync deadline passed before the request was sent (timeout); \
                         no HTTP status"
                            .to_owned(),
                    ),
                };
                return Err(ctx.fail(kind, detail));
            }

            // Credential first (a token fetch takes its own host slot), then the host slot.
            let mut token_generation = None;
            let mut builder = self
                .inner
                .client
                .request(method.clone(), url.clone())
                .timeout(timeout);
            match &auth {
                Auth::OAuth(cache) => {
                    let token = cache.token(self).await?;
                    ctx.scrub.add(&token.value);
                    let value = bearer_value(&token.value)
                        .map_err(|m| ctx.fail(ErrorKind::ServerError, m))?;
                    builder = builder.header(reqwest::header::AUTHORIZATION, value);
                    token_generation = Some(token.generation);
                }
                other => match other.static_header() {
                    Ok(Some((name, value))) => builder = builder.header(name, value),
                    Ok(None) => {}
                    Err(m) => return Err(ctx.fail(ErrorKind::Unauthorized, m)),
                },
            }
            for (name, value) in &headers {
                builder = builder.header(name.clone(), value.clone());
            }
            match &body {
                Some((bytes, content_type)) => {
                    builder = builder
                        .header(CONTENT_TYPE, *content_type)
                        .body(bytes.clone());
                }
                // An explicit empty body sends `Content-Length: 0`, which Graph requires on
                // body-less POSTs (411 otherwise).
                None if matches!(method, Method::POST | Method::PUT | Method::PATCH) => {
                    builder = builder.body(Vec::new());
                }
                None => {}
            }

            // P5 request budget: wait outside the host slot, within the deadline.
            match self.inner.limits.reserve(&key, self.deadline.remaining()) {
                Ok(wait) if wait.is_zero() => {}
                Ok(wait) => {
                    tracing::debug!(
                        provider = provider.slug(),
                        op = %ctx.op,
                        wait_ms = wait.as_millis() as u64,
                        "request budget used up; waiting (P5)"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(wait) => {
                    let limit = config.rate_limit.expect("a wait implies a rate limit");
                    return Err(ctx.fail(
                        ErrorKind::ServerError,
                        format!(
                            "not sent: the request budget of {} per {:?} is used up and the next slot (in {wait:?}) is past the sync deadline",
                            limit.requests, limit.per
                        ),
                    ));
                }
            }
            let permit = self.inner.limits.acquire(&key).await;
            let started = Instant::now();
            let sent = builder.send().await;
            let outcome = match sent {
                Ok(resp) => {
                    permit.record(started.elapsed());
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    match read_body(resp, config.max_response_bytes, method == Method::HEAD).await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(BodyError::TooLarge) => {
                            return Err(ctx.fail(
                                ErrorKind::ServerError,
                                format!(
                                    "HTTP {}: response larger than {} bytes",
                                    status.as_u16(),
                                    config.max_response_bytes
                                ),
                            ));
                        }
                        Err(BodyError::Transport(t)) => Err(t),
                    }
                }
                Err(e) => Err(classify_transport(&e)),
            };
            drop(permit);
            tracing::debug!(
                provider = provider.slug(),
                op = %ctx.op,
                method = %method,
                url = %ctx.url,
                attempt,
                status = outcome.as_ref().ok().map(|o| o.0.as_u16()),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "http request"
            );

            match outcome {
                Ok((status, headers, body)) => {
                    if status.is_success() || accept.contains(&status) {
                        return Ok(Response {
                            status,
                            headers,
                            body,
                            ctx,
                        });
                    }
                    if status == StatusCode::UNAUTHORIZED && !auth_retried {
                        if let (Auth::OAuth(cache), Some(generation)) = (&auth, token_generation) {
                            // P4: one fresh token and one retry; not counted as an attempt.
                            tracing::info!(
                                provider = provider.slug(),
                                op = %ctx.op,
                                "401 with a cached token; fetching a fresh token and retrying once"
                            );
                            cache.invalidate(generation).await;
                            auth_retried = true;
                            attempt -= 1;
                            continue;
                        }
                    }
                    let detail = status_detail(status, &body, &ctx.scrub, attempt);
                    if may_retry && is_retryable_status(status) {
                        let wait = match retry_after(&headers) {
                            Some(wait) if wait > policy.max_retry_after => {
                                return Err(ctx.fail(
                                    ErrorKind::ServerError,
                                    format!(
                                        "{detail}; the server asks to retry after {wait:?}, longer than the {:?} this client waits",
                                        policy.max_retry_after
                                    ),
                                ));
                            }
                            Some(wait) => wait,
                            None => backoff(&policy, attempt),
                        };
                        if attempt < policy.max_attempts {
                            if !self.deadline.allows(wait) {
                                return Err(ctx.fail(
                                    ErrorKind::ServerError,
                                    format!(
                                        "{detail}; not retried: waiting {wait:?} would pass the sync deadline"
                                    ),
                                ));
                            }
                            tracing::warn!(
                                provider = provider.slug(),
                                op = %ctx.op,
                                status = status.as_u16(),
                                attempt,
                                wait_ms = wait.as_millis() as u64,
                                "transient HTTP status; retrying (E2)"
                            );
                            last = Some((ErrorKind::ServerError, detail));
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    let kind = status_kind(status);
                    let detail = if status.is_redirection() {
                        let to = headers
                            .get(reqwest::header::LOCATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|l| url.join(l).ok())
                            .map(|u| redact_url(&u))
                            .unwrap_or_else(|| "elsewhere".into());
                        format!(
                            "{detail}: redirected to {to}, which is not followed (another origin); check the base URL"
                        )
                    } else {
                        detail
                    };
                    return Err(ctx.fail(kind, detail));
                }
                Err(transport) => {
                    let detail = transport.describe(timeout);
                    let detail = if attempt > 1 {
                        format!("{detail} (after {attempt} attempts)")
                    } else {
                        detail
                    };
                    if may_retry && transport.retryable() && attempt < policy.max_attempts {
                        let wait = backoff(&policy, attempt);
                        if self.deadline.allows(wait) {
                            tracing::warn!(
                                provider = provider.slug(),
                                op = %ctx.op,
                                attempt,
                                wait_ms = wait.as_millis() as u64,
                                "transient connection failure; retrying (E2)"
                            );
                            last = Some((transport.kind(), detail));
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    return Err(ctx.fail(transport.kind(), detail));
                }
            }
        }
    }
}

fn status_detail(status: StatusCode, body: &[u8], scrub: &Scrubber, attempt: u32) -> String {
    let mut detail = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    if attempt > 1 {
        detail.push_str(&format!(" after {attempt} attempts"));
    }
    if let Some(said) = summarize_body(body) {
        detail.push_str(&format!("; server said: {:?}", scrub.scrub(&said)));
    }
    detail
}

enum BodyError {
    TooLarge,
    Transport(Transport),
}

async fn read_body(
    mut resp: reqwest::Response,
    max: usize,
    head: bool,
) -> Result<Vec<u8>, BodyError> {
    // A HEAD answer announces the resource's length but carries no body.
    if !head && resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Transport(classify_transport(&e))),
        }
    }
}

/// Request context carried into errors.
#[derive(Clone, Debug)]
struct Ctx {
    provider: Provider,
    op: String,
    method: Method,
    url: String,
    scrub: Scrubber,
}

impl Ctx {
    fn fail(&self, kind: ErrorKind, detail: impl fmt::Display) -> MdmError {
        let message = format!(
            "{}: {} failed: {detail} ({} {})",
            self.provider.display_name(),
            self.op,
            self.method,
            self.url
        );
        let message = self.scrub.scrub(&message);
        tracing::debug!(kind = %kind, %message, "http request failed");
        MdmError::new(kind, message)
    }
}

/// A request being built: add auth, headers, a query, a body, then send.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    client: &'a HttpClient,
    method: Method,
    op: String,
    url: Result<Url, String>,
    auth: Auth,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<(Vec<u8>, &'static str)>,
    retry_safe: bool,
    accept: Vec<StatusCode>,
    scrub: Scrubber,
    error: Option<String>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("op", &self.op)
            .field("url", &self.url.as_ref().map(redact_url))
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestBuilder<'a> {
    /// Sets the credential.
    pub fn auth(mut self, auth: &Auth) -> Self {
        self.auth = auth.clone();
        self
    }

    /// Adds a plain header (`x-org-id`, `ConsistencyLevel`). Use [`Self::secret_header`] for
    /// anything secret.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => self.headers.push((n, v)),
            _ => self.error = Some(format!("invalid header {name:?}")),
        }
        self
    }

    /// Adds a header whose value is secret: marked sensitive and scrubbed from every message.
    pub fn secret_header(mut self, name: &str, value: &SecretString) -> Self {
        use secrecy::ExposeSecret;
        self.scrub.add(value);
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.expose_secret()),
        ) {
            (Ok(n), Ok(mut v)) => {
                v.set_sensitive(true);
                self.headers.push((n, v));
            }
            _ => self.error = Some(format!("invalid header {name:?} (value not shown)")),
        }
        self
    }

    /// Appends query parameters (percent-encoded).
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        if let (Ok(url), false) = (&mut self.url, pairs.is_empty()) {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        self
    }

    /// Sends `body` as JSON.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some((bytes, "application/json")),
            Err(e) => self.error = Some(format!("could not encode the JSON body: {e}")),
        }
        self
    }

    /// Sends a URL-encoded form.
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        self.body = Some((
            ser.finish().into_bytes(),
            "application/x-www-form-urlencoded",
        ));
        self
    }

    /// Sends raw bytes with a content type.
    pub fn body(mut self, bytes: Vec<u8>, content_type: &'static str) -> Self {
        self.body = Some((bytes, content_type));
        self
    }

    /// Marks a non-idempotent request (POST, PATCH) as safe to send again, so it is retried
    /// like a GET (E2). Token requests and read-only POST searches qualify.
    pub fn retry_safe(mut self) -> Self {
        self.retry_safe = true;
        self
    }

    /// Returns a response with this status as `Ok` instead of an error (to read an error body,
    /// e.g. Graph's `Directory_ExpiredPageToken` 400, or a 404 meaning "absent").
    pub fn accept_status(mut self, status: StatusCode) -> Self {
        self.accept.push(status);
        self
    }

    /// Adds a value to scrub from every message of this request (a secret in a form field or
    /// in the URL).
    pub fn scrub(mut self, secret: &SecretString) -> Self {
        self.scrub.add(secret);
        self
    }

    /// Sends the request (with retries) and returns the 2xx (or accepted) response, body read.
    pub async fn send(self) -> Result<Response, MdmError> {
        let client = self.client;
        client.execute(self).await
    }

    /// Sends and decodes the JSON body as `T`.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, MdmError> {
        self.send().await?.json()
    }
}

/// A response whose body has been read (within the size limit).
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    ctx: Ctx,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &self.ctx.url)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text, if present and valid (`x-total-count`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, owned.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Decodes the JSON body. An HTML page (a login or portal page: wrong host or path) is
    /// `NotFound`; any other body that does not decode as `T` (wrong shape, truncated JSON,
    /// empty) is `ServerError` naming where the decoding failed, without quoting values.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, MdmError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let html = self
                .header(CONTENT_TYPE.as_str())
                .is_some_and(|c| c.contains("text/html"))
                || self.body.trim_ascii_start().starts_with(b"<");
            if html {
                self.fail(
                    ErrorKind::NotFound,
                    "answered with an HTML page, not the API; check the base URL",
                )
            } else {
                self.fail(
                    ErrorKind::ServerError,
                    format!(
                        "the response is not of the documented shape: {}",
                        describe_decode_error(&e)
                    ),
                )
            }
        })
    }

    /// An error about this response, in the client's style: names provider, operation, HTTP
    /// status and the server's error message (scrubbed); for adapter-side checks.
    pub fn fail(&self, kind: ErrorKind, detail: impl fmt::Display) -> MdmError {
        let status = status_detail(self.status, &self.body, &self.ctx.scrub, 1);
        let status = if self.status.is_success() {
            format!("HTTP {}", self.status.as_u16())
        } else {
            status
        };
        self.ctx.fail(kind, format!("{detail} ({status})"))
    }
}
