//! P4: OAuth2 client credentials, refresh before expiry, one fresh token on a 401.

use crate::common::{client, serve};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mdmsync_core::ErrorKind;
use mdmsync_http::{Auth, ClientCredentials, SecretString, Url};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "client-secret-XYZ";

#[derive(Default)]
struct Server {
    /// Token lifetime sent as `expires_in`.
    lifetime: u64,
    /// Answer the primary token path with 404 (Jamf before 10.49-style path).
    primary_404: bool,
    /// Answer the token endpoint with this status and body.
    token_error: Option<(u16, &'static str)>,
    /// Refuse every API call with 401.
    always_401: bool,
    /// Revoke token 1 after this many API calls (server-side invalidation mid-run).
    revoke_first_after: Option<usize>,
    issued: Vec<(String, Instant)>,
    primary_hits: usize,
    api_hits: usize,
    api_401: usize,
    expired_uses: usize,
    forms: Vec<HashMap<String, String>>,
}

type Shared = Arc<Mutex<Server>>;

async fn token(
    State(s): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = s.lock().unwrap();
    assert_eq!(
        headers["content-type"], "application/x-www-form-urlencoded",
        "token requests are forms"
    );
    s.forms.push(form.clone());
    if let Some((code, body)) = s.token_error {
        return (AxStatus::from_u16(code).unwrap(), body).into_response();
    }
    if form.get("client_secret").map(String::as_str) != Some(SECRET) {
        return (AxStatus::UNAUTHORIZED, r#"{"error":"invalid_client"}"#).into_response();
    }
    let tok = format!("tok-{}", s.issued.len() + 1);
    s.issued.push((tok.clone(), Instant::now()));
    let body = serde_json::json!({
        "access_token": tok, "token_type": "Bearer", "scope": "api-role:2", "expires_in": s.lifetime
    });
    axum::Json(body).into_response()
}

async fn primary(
    state: State<Shared>,
    headers: HeaderMap,
    form: Form<HashMap<String, String>>,
) -> Response {
    let missing = {
        let mut s = state.0.lock().unwrap();
        s.primary_hits += 1;
        s.primary_404
    };
    if missing {
        return (AxStatus::NOT_FOUND, "<html>not here</html>").into_response();
    }
    token(state, headers, form).await
}

async fn api(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = s.lock().unwrap();
    s.api_hits += 1;
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let Some((tok, at)) = s.issued.iter().find(|(t, _)| *t == given).cloned() else {
        s.api_401 += 1;
        return (AxStatus::UNAUTHORIZED, "{}").into_response();
    };
    if at.elapsed() >= Duration::from_secs(s.lifetime.max(1)) {
        s.expired_uses += 1;
        s.api_401 += 1;
        return (
            AxStatus::UNAUTHORIZED,
            r#"{"errors":[{"code":"INVALID_TOKEN"}]}"#,
        )
            .into_response();
    }
    let revoked = s
        .revoke_first_after
        .is_some_and(|n| tok == "tok-1" && s.api_hits > n);
    if s.always_401 || revoked {
        s.api_401 += 1;
        return (AxStatus::UNAUTHORIZED, r#"{"httpStatus":401,"errors":[{"code":"INVALID_TOKEN","description":"Unauthorized"}]}"#).into_response();
    }
    axum::Json(serde_json::json!({"token": tok})).into_response()
}

async fn start(server: Server) -> (Url, Shared, Auth) {
    let shared: Shared = Arc::new(Mutex::new(server));
    let base = serve(
        Router::new()
            .route("/api/oauth/token", post(primary))
            .route("/api/v1/oauth/token", post(token))
            .route("/api/x", get(api))
            .with_state(shared.clone()),
    )
    .await;
    let auth = Auth::client_credentials(
        ClientCredentials::new(
            base.join("api/oauth/token").unwrap(),
            "client-1",
            SecretString::from(SECRET),
        )
        .with_fallback(base.join("api/v1/oauth/token").unwrap())
        .with_scope("api-role:2"),
    );
    (base, shared, auth)
}

async fn call(base: &Url, auth: &Auth) -> Result<String, mdmsync_core::MdmError> {
    let v: serde_json::Value = client()
        .get_json("read inventory", base.join("api/x").unwrap(), auth)
        .await?;
    Ok(v["token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn p4_token_is_fetched_once_and_reused() {
    let (base, s, auth) = start(Server {
        lifetime: 599,
        ..Server::default()
    })
    .await;
    for _ in 0..5 {
        assert_eq!(call(&base, &auth).await.unwrap(), "tok-1");
    }
    let s = s.lock().unwrap();
    assert_eq!(s.issued.len(), 1);
    assert_eq!(auth.token_cache().unwrap().fetch_count(), 1);
    let form = &s.forms[0];
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "client-1");
    assert_eq!(form["client_secret"], SECRET);
    assert_eq!(form["scope"], "api-role:2");
}

#[tokio::test]
async fn p4_concurrent_requests_share_one_token_fetch() {
    let (base, s, auth) = start(Server {
        lifetime: 599,
        ..Server::default()
    })
    .await;
    let calls = (0..10).map(|_| call(&base, &auth));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap(), "tok-1");
    }
    assert_eq!(s.lock().unwrap().issued.len(), 1);
}

#[tokio::test]
async fn p4_a_short_lived_token_is_refreshed_before_it_expires() {
    // 1-second tokens: margin = min(60 s, 0.5 s) = 0.5 s.
    let (base, s, auth) = start(Server {
        lifetime: 1,
        ..Server::default()
    })
    .await;
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-1");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Inside the margin: refreshed before the request, never sent expired.
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-2");
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-2");
    let s = s.lock().unwrap();
    assert_eq!(s.issued.len(), 2);
    assert_eq!(s.api_401, 0, "no request was refused");
    assert_eq!(s.expired_uses, 0);
}

#[tokio::test]
async fn p4_a_401_mid_run_gets_one_fresh_token_and_one_retry() {
    let (base, s, auth) = start(Server {
        lifetime: 599,
        revoke_first_after: Some(2),
        ..Server::default()
    })
    .await;
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-1");
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-1");
    // Third call: tok-1 is refused, the client fetches tok-2 and retries.
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-2");
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-2");
    let s = s.lock().unwrap();
    assert_eq!(s.issued.len(), 2);
    assert_eq!(s.api_401, 1);
    assert_eq!(s.api_hits, 5);
}

#[tokio::test]
async fn p4_a_second_401_is_unauthorized() {
    let (base, s, auth) = start(Server {
        lifetime: 599,
        always_401: true,
        ..Server::default()
    })
    .await;
    let err = call(&base, &auth).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    assert!(err.to_string().contains("read inventory"), "{err}");
    let s = s.lock().unwrap();
    assert_eq!(s.api_hits, 2, "exactly one retry");
    assert_eq!(s.issued.len(), 2, "exactly one fresh token");
}

#[tokio::test]
async fn p4_token_endpoint_refusals_are_unauthorized_without_the_secret() {
    for (code, body, kind) in [
        (
            400,
            r#"{"error":"invalid_client","error_description":"bad secret client-secret-XYZ"}"#,
            ErrorKind::Unauthorized,
        ),
        (
            401,
            r#"{"error":"invalid_client"}"#,
            ErrorKind::Unauthorized,
        ),
        (400, r#"{"error":"invalid_scope"}"#, ErrorKind::Forbidden),
        (500, r#"{"error":"server_error"}"#, ErrorKind::ServerError),
    ] {
        let (base, s, auth) = start(Server {
            lifetime: 599,
            token_error: Some((code, body)),
            ..Server::default()
        })
        .await;
        let err = call(&base, &auth).await.unwrap_err();
        assert_eq!(err.kind(), Some(kind), "{code} {body}: {err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("OAuth2"), "{shown}");
        assert!(shown.contains(&format!("HTTP {code}")), "{shown}");
        assert_eq!(s.lock().unwrap().api_hits, 0, "no API call without a token");
    }
}

#[tokio::test]
async fn p4_jamf_token_path_falls_back_on_404_and_remembers_it() {
    let (base, s, auth) = start(Server {
        lifetime: 0, // every request needs a new token
        primary_404: true,
        ..Server::default()
    })
    .await;
    // lifetime 0: the server treats tokens as valid for 1 s; the client refetches each time.
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-1");
    assert_eq!(call(&base, &auth).await.unwrap(), "tok-2");
    let s = s.lock().unwrap();
    assert_eq!(s.primary_hits, 1, "the 404 path is not tried again");
    assert_eq!(s.issued.len(), 2);
}

#[tokio::test]
async fn p4_no_token_endpoint_at_all_is_not_found() {
    let (base, _s, _auth) = start(Server::default()).await;
    let auth = Auth::client_credentials(ClientCredentials::new(
        base.join("nope/token").unwrap(),
        "client-1",
        SecretString::from(SECRET),
    ));
    let err = call(&base, &auth).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
}
