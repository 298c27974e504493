//! E1 classification, E3 TLS, P3/C2 messages without credentials.

use crate::common::{Counter, client, client_with, config, pki, serve, serve_tls};
use axum::Router;
use axum::extract::{Path, Request};
use axum::http::StatusCode as AxStatus;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use mdmsync_core::{ErrorKind, Provider};
use mdmsync_http::{Auth, ConfigError, HttpClient, HttpConfig, SecretString};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Groups {
    groups: Vec<Group>,
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Group {
    id: u64,
    name: String,
}

fn status_router() -> Router {
    Router::new().route(
        "/status/{code}",
        get(|Path(code): Path<u16>| async move {
            (
                AxStatus::from_u16(code).unwrap(),
                [("content-type", "application/json")],
                r#"{"httpStatus":0,"errors":[{"code":"X","description":"the server explains"}]}"#,
            )
        }),
    )
}

#[tokio::test]
async fn e1_statuses_map_to_the_six_kinds_with_provider_op_and_status() {
    let base = serve(status_router()).await;
    let http = client();
    let cases = [
        (401, ErrorKind::Unauthorized),
        (403, ErrorKind::Forbidden),
        (404, ErrorKind::NotFound),
        (500, ErrorKind::ServerError),
        (422, ErrorKind::ServerError),
    ];
    for (code, kind) in cases {
        let err = http
            .get_json::<Groups>(
                "list computer groups",
                base.join(&format!("status/{code}")).unwrap(),
                &Auth::None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(kind), "{code}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("Jamf: list computer groups failed"), "{msg}");
        assert!(msg.contains(&format!("HTTP {code}")), "{msg}");
        assert!(msg.contains("the server explains"), "{msg}");
        assert!(msg.contains("/status/"), "{msg}");
    }
}

#[tokio::test]
async fn e1_429_and_503_after_retries_are_server_errors() {
    let hits = Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/busy",
        get(move || {
            let n = h.bump();
            async move {
                if n % 2 == 0 {
                    AxStatus::TOO_MANY_REQUESTS
                } else {
                    AxStatus::SERVICE_UNAVAILABLE
                }
            }
        }),
    ))
    .await;
    let err = client()
        .get_json::<Groups>("list tags", base.join("busy").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError));
    assert_eq!(hits.get(), 3, "max_attempts = 3");
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
}

#[tokio::test]
async fn e1_bodies_not_of_the_documented_shape_are_server_errors() {
    let base = serve(
        Router::new()
            .route(
                "/wrong",
                get(|| async { ([("content-type", "application/json")], r#"{"items":[]}"#) }),
            )
            .route(
                "/truncated",
                get(|| async {
                    (
                        [("content-type", "application/json")],
                        r#"{"groups":[{"id":1,"name":"Eng"},{"id":2,"na"#,
                    )
                }),
            )
            .route(
                "/type",
                get(|| async { r#"{"groups":[{"id":"one","name":"Eng"}]}"# }),
            )
            .route("/empty", get(|| async { AxStatus::NO_CONTENT })),
    )
    .await;
    let http = client();
    for path in ["wrong", "truncated", "type", "empty"] {
        let err = http
            .get_json::<Groups>("list groups", base.join(path).unwrap(), &Auth::None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{path}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("not of the documented shape"), "{msg}");
        assert!(msg.contains("HTTP 2"), "{msg}");
    }
    let err = http
        .get_json::<Groups>("list groups", base.join("wrong").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing field `groups`"), "{err}");
    let err = http
        .get_json::<Groups>("list groups", base.join("type").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains("one"),
        "values are not quoted: {err}"
    );
}

#[tokio::test]
async fn e1_an_html_page_is_not_found() {
    let base = serve(Router::new().route(
        "/",
        get(|| async { axum::response::Html("<html><body>Sign in</body></html>") }),
    ))
    .await;
    let err = client()
        .get_json::<Groups>("list groups", base.clone(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
}

#[tokio::test]
async fn e1_refused_connection_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = client()
        .get_json::<Groups>(
            "list groups",
            format!("http://127.0.0.1:{port}/x"),
            &Auth::None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[tokio::test]
async fn e1_timeout_is_connection_failed_after_retries() {
    let hits = Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/slow",
        get(move || {
            h.bump();
            async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }
        }),
    ))
    .await;
    let http = client_with(HttpConfig {
        request_timeout: Duration::from_millis(150),
        ..config()
    });
    let err = http
        .get_json::<Groups>("list groups", base.join("slow").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert_eq!(hits.get(), 3, "E2: timeouts of a GET are retried");
}

#[tokio::test]
async fn e1_reset_connection_is_connection_failed_after_retries() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Counter::default();
    let a = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            a.bump();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream); // close without an answer
        }
    });
    let err = client()
        .get_json::<Groups>(
            "list groups",
            format!("http://127.0.0.1:{port}/x"),
            &Auth::None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(err.to_string().contains("reset or closed"), "{err}");
    assert_eq!(accepted.get(), 3, "E2: resets of a GET are retried");
}

#[tokio::test]
async fn e1_untrusted_certificate_is_ssl_error_not_connection_failed() {
    let pki = pki();
    let base = serve_tls(
        Router::new().route("/ok", get(|| async { r#"{"groups":[]}"# })),
        &pki,
    )
    .await;
    let err = client()
        .get_json::<Groups>("list groups", base.join("ok").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("certificate"), "{msg}");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

#[tokio::test]
async fn e3_an_extra_ca_makes_the_private_certificate_trusted() {
    let pki = pki();
    let base = serve_tls(
        Router::new().route(
            "/ok",
            get(|| async { r#"{"groups":[{"id":1,"name":"A"}]}"# }),
        ),
        &pki,
    )
    .await;
    let http = client_with(HttpConfig {
        extra_ca_pem: vec![pki.ca_pem.clone()],
        ..config()
    });
    let groups: Groups = http
        .get_json("list groups", base.join("ok").unwrap(), &Auth::None)
        .await
        .unwrap();
    assert_eq!(groups.groups.len(), 1);
    // Another CA does not help: verification is still on.
    let other = client_with(HttpConfig {
        extra_ca_pem: vec![crate::common::pki().ca_pem],
        ..config()
    });
    let err = other
        .get_json::<Groups>("list groups", base.join("ok").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
}

#[test]
fn e3_an_invalid_ca_is_a_config_error() {
    let err = HttpClient::new(
        Provider::Jamf,
        HttpConfig {
            extra_ca_pem: vec!["not a certificate".into()],
            ..config()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::InvalidCa { index: 0, .. }),
        "{err}"
    );
    assert_eq!(
        err.into_mdm_error(Provider::Jamf).kind(),
        Some(ErrorKind::SslError)
    );
}

#[tokio::test]
async fn e3_plain_http_to_a_non_loopback_host_is_refused_before_any_call() {
    let err = mdmsync_http::parse_base_url("http://acme.jamfcloud.com").unwrap_err();
    assert!(matches!(err, ConfigError::InsecureHttp { .. }), "{err}");
    // The request path refuses it too, with no network call (the host does not exist).
    let err = client()
        .get_json::<Groups>(
            "list groups",
            "http://mdm.invalid/api",
            &Auth::bearer(SecretString::from("tok-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("use https://"), "{err}");
}

#[tokio::test]
async fn e1_redirect_to_another_origin_is_not_followed() {
    let other_hits = Counter::default();
    let o = other_hits.clone();
    let other = serve(Router::new().route(
        "/steal",
        any(move || {
            o.bump();
            async { "x" }
        }),
    ))
    .await;
    let target = format!("http://localhost:{}/steal", other.port().unwrap());
    let base = serve(Router::new().route(
        "/moved",
        get(move || {
            let t = target.clone();
            async move { axum::response::Redirect::temporary(&t) }
        }),
    ))
    .await;
    let err = client()
        .get_json::<Groups>(
            "list groups",
            base.join("moved").unwrap(),
            &Auth::x_api_key(SecretString::from("key-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("not followed"), "{err}");
    assert_eq!(
        other_hits.get(),
        0,
        "the API key never went to the other origin"
    );
}

/// An evil server that echoes every header and the query string back in its error bodies.
async fn echo(req: Request) -> Response {
    let mut text = format!("query={:?}", req.uri().query());
    for (k, v) in req.headers() {
        text.push_str(&format!(" {k}={}", v.to_str().unwrap_or("")));
    }
    let status = match req.uri().path() {
        "/401" => AxStatus::UNAUTHORIZED,
        "/404" => AxStatus::NOT_FOUND,
        "/500" => AxStatus::INTERNAL_SERVER_ERROR,
        _ => AxStatus::OK,
    };
    let body = serde_json::json!({ "message": text, "groups": text }).to_string();
    (status, [("content-type", "application/json")], body).into_response()
}

#[tokio::test]
async fn p3_c2_a_secret_in_a_query_or_header_never_appears_in_an_error() {
    const SECRET: &str = "S3cr3t-value-42";
    let base = serve(Router::new().fallback(echo)).await;
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        p
    };
    let http = client();
    let auths = [
        Auth::bearer(SecretString::from(SECRET)),
        Auth::basic_key(SecretString::from(SECRET)),
        Auth::x_api_key(SecretString::from(SECRET)),
        Auth::None,
    ];
    let mut errors = Vec::new();
    for auth in &auths {
        for path in ["401", "404", "500", "ok"] {
            // "ok" answers 200 with a body of the wrong shape that contains the secret.
            let url = base.join(&format!("{path}?api_key={SECRET}")).unwrap();
            errors.push(
                http.get(path, url)
                    .auth(auth)
                    .secret_header("x-extra-token", &SecretString::from(SECRET))
                    .scrub(&SecretString::from(SECRET))
                    .send_json::<Groups>()
                    .await
                    .unwrap_err(),
            );
        }
        errors.push(
            http.get_json::<Groups>(
                "refused",
                format!("http://127.0.0.1:{refused}/x?token={SECRET}"),
                auth,
            )
            .await
            .unwrap_err(),
        );
    }
    assert_eq!(errors.len(), 20);
    for err in &errors {
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SECRET), "secret leaked: {shown}");
        assert!(!shown.contains("S3cr3t"), "secret leaked: {shown}");
    }
    // The query is shown redacted, so the reader still sees where the call went.
    assert!(
        errors[0].to_string().contains("/401?[redacted]"),
        "{}",
        errors[0]
    );
    // Without `.scrub` and with no credential, a secret in the query is still never shown:
    // the URL is redacted and query values are scrubbed from the echoed body.
    for path in ["401", "ok"] {
        let err = http
            .get_json::<Groups>(
                "list",
                base.join(&format!("{path}?page=0&api_key={SECRET}"))
                    .unwrap(),
                &Auth::None,
            )
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(SECRET), "{err}");
    }
}
