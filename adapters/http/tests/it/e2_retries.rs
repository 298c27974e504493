//! E2: retries with backoff, Retry-After, idempotency, the per-sync deadline.

use crate::common::{Counter, client, client_with, config, serve};
use axum::Router;
use axum::http::StatusCode as AxStatus;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use mdmsync_core::ErrorKind;
use mdmsync_http::{Auth, Deadline, HttpConfig, RetryPolicy};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Stamps = Arc<Mutex<Vec<Instant>>>;

/// A server whose first answer on `/x` is 429 with the given `Retry-After`, then 200; it
/// records when each request arrived.
async fn throttled_once(
    retry_after: impl Fn() -> String + Send + Sync + 'static,
) -> (mdmsync_http::Url, Stamps) {
    let stamps: Stamps = Arc::default();
    let s = stamps.clone();
    let retry_after = Arc::new(retry_after);
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            let s = s.clone();
            let retry_after = retry_after.clone();
            async move {
                let n = {
                    let mut v = s.lock().unwrap();
                    v.push(Instant::now());
                    v.len()
                };
                if n == 1 {
                    (
                        AxStatus::TOO_MANY_REQUESTS,
                        [("retry-after", retry_after())],
                        "slow down",
                    )
                        .into_response()
                } else {
                    r#"{"ok":true}"#.into_response()
                }
            }
        }),
    ))
    .await;
    (base, stamps)
}

fn gap(stamps: &Stamps) -> Duration {
    let v = stamps.lock().unwrap();
    assert_eq!(v.len(), 2, "one 429, one retry");
    v[1] - v[0]
}

#[tokio::test]
async fn e2_retry_after_seconds_is_honoured() {
    let (base, stamps) = throttled_once(|| "1".to_owned()).await;
    let v: serde_json::Value = client()
        .get_json("list devices", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    // Backoff alone is at most 20 ms in this config; the server saw the retry ≥ 1 s later.
    assert!(gap(&stamps) >= Duration::from_secs(1), "{:?}", gap(&stamps));
}

#[tokio::test]
async fn e2_retry_after_http_date_is_honoured() {
    let (base, stamps) = throttled_once(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 2;
        chrono::DateTime::from_timestamp(secs as i64, 0)
            .unwrap()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    })
    .await;
    let v: serde_json::Value = client()
        .get_json("list devices", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    // The date is whole seconds, at least 1 s ahead of the first request.
    assert!(gap(&stamps) >= Duration::from_secs(1), "{:?}", gap(&stamps));
}

#[tokio::test]
async fn e2_transient_statuses_are_retried_until_success() {
    let hits = Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            let n = h.bump();
            async move {
                match n {
                    1 => AxStatus::BAD_GATEWAY.into_response(),
                    2 => AxStatus::GATEWAY_TIMEOUT.into_response(),
                    _ => r#"{"ok":true}"#.into_response(),
                }
            }
        }),
    ))
    .await;
    let v: serde_json::Value = client()
        .get_json("list", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(hits.get(), 3);
}

#[tokio::test]
async fn e2_500_and_4xx_are_not_retried() {
    let hits = Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            h.bump();
            async { AxStatus::INTERNAL_SERVER_ERROR }
        }),
    ))
    .await;
    let err = client()
        .get_json::<serde_json::Value>("list", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError));
    assert_eq!(hits.get(), 1);
}

#[tokio::test]
async fn e2_post_is_retried_only_when_marked_safe() {
    let hits = Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/push",
        post(move || {
            h.bump();
            async { AxStatus::SERVICE_UNAVAILABLE }
        }),
    ))
    .await;
    let http = client();
    let url = base.join("push").unwrap();
    let err = http
        .post_empty("force sync", &url, &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError));
    assert_eq!(hits.get(), 1, "a POST is not idempotent");
    let err = http
        .post("search devices", &url)
        .retry_safe()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError));
    assert_eq!(hits.get(), 1 + 3, "marked retry-safe: 3 attempts");
}

#[tokio::test]
async fn e2_post_empty_accepts_empty_2xx_answers() {
    let base = serve(
        Router::new()
            .route("/200", post(|| async { AxStatus::OK }))
            .route("/202", post(|| async { AxStatus::ACCEPTED }))
            .route("/204", post(|| async { AxStatus::NO_CONTENT })),
    )
    .await;
    let http = client();
    for p in ["200", "202", "204"] {
        http.post_empty("force sync", base.join(p).unwrap(), &Auth::None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn e2_no_retry_wait_past_the_sync_deadline() {
    let (base, stamps) = throttled_once(|| "5".to_owned()).await;
    let http = client().with_deadline(Deadline::after(Duration::from_secs(2)));
    let err = http
        .get_json::<serde_json::Value>("list", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("sync deadline"), "{err}");
    assert!(err.to_string().contains("HTTP 429"), "{err}");
    assert_eq!(stamps.lock().unwrap().len(), 1, "gave up without waiting");
}

#[tokio::test]
async fn e2_retry_after_longer_than_the_cap_ends_the_request() {
    let (base, stamps) = throttled_once(|| "3600".to_owned()).await;
    let err = client()
        .get_json::<serde_json::Value>("list", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("retry after"), "{err}");
    assert_eq!(stamps.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn e2_an_expired_deadline_sends_nothing() {
    let hits = Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            h.bump();
            async { "{}" }
        }),
    ))
    .await;
    let http = client().with_deadline(Deadline::after(Duration::ZERO));
    let err = http
        .get_json::<serde_json::Value>("list", base.join("x").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert_eq!(hits.get(), 0);
}

#[tokio::test]
async fn e2_the_deadline_caps_each_attempt() {
    let base = serve(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            "{}"
        }),
    ))
    .await;
    let http = client_with(HttpConfig {
        request_timeout: Duration::from_secs(60),
        retry: RetryPolicy {
            max_attempts: 10,
            ..config().retry
        },
        ..config()
    })
    .with_deadline(Deadline::after(Duration::from_millis(300)));
    let err = http
        .get_json::<serde_json::Value>("list", base.join("slow").unwrap(), &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(
        err.to_string().contains("deadline") || err.to_string().contains("timeout"),
        "{err}"
    );
    assert!(http.deadline().is_expired());
}
