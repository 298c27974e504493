//! P5: per-host concurrency limit and adaptive slow-down; response size limit; user agent.

use crate::common::{InFlight, client, client_with, config, serve};
use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::get;
use mdmsync_core::ErrorKind;
use mdmsync_http::{AdaptiveLatency, Auth, HttpConfig, RateLimit, Url};
use std::time::Duration;

async fn slow_server(delay: Duration) -> (Url, InFlight) {
    let inflight = InFlight::default();
    let i = inflight.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            let guard = i.enter();
            async move {
                tokio::time::sleep(delay).await;
                drop(guard);
                "{}"
            }
        }),
    ))
    .await;
    (base, inflight)
}

async fn burst(http: &mdmsync_http::HttpClient, url: &Url, n: usize) {
    let calls = (0..n).map(|_| http.get_json::<serde_json::Value>("read", url, &Auth::None));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
}

#[tokio::test]
async fn p5_concurrency_per_host_is_bounded() {
    let (base, inflight) = slow_server(Duration::from_millis(100)).await;
    let http = client_with(HttpConfig {
        max_concurrent_per_host: 2,
        ..config()
    });
    burst(&http, &base.join("x").unwrap(), 8).await;
    assert_eq!(
        inflight.max(),
        2,
        "never more than the limit, and the limit is used"
    );
}

#[tokio::test]
async fn p5_adaptive_mode_goes_one_at_a_time_while_latency_is_high() {
    let (base, inflight) = slow_server(Duration::from_millis(80)).await;
    let url = base.join("x").unwrap();
    let http = client_with(HttpConfig {
        max_concurrent_per_host: 4,
        adaptive: Some(AdaptiveLatency {
            threshold: Duration::from_millis(30),
            pause: Duration::from_millis(5),
            smoothing: 0.5,
        }),
        ..config()
    });
    // One request teaches the client the host's latency (~80 ms > 30 ms threshold).
    http.get_json::<serde_json::Value>("read", &url, &Auth::None)
        .await
        .unwrap();
    assert!(http.host_latency(&url).unwrap() >= Duration::from_millis(30));
    burst(&http, &url, 6).await;
    assert_eq!(inflight.max(), 1, "slow host: requests are serialised");

    // Same server, a threshold it stays under: the full limit is used.
    let (base, inflight) = slow_server(Duration::from_millis(80)).await;
    let url = base.join("x").unwrap();
    let http = client_with(HttpConfig {
        max_concurrent_per_host: 4,
        adaptive: Some(AdaptiveLatency {
            threshold: Duration::from_secs(10),
            ..AdaptiveLatency::default()
        }),
        ..config()
    });
    http.get_json::<serde_json::Value>("read", &url, &Auth::None)
        .await
        .unwrap();
    burst(&http, &url, 8).await;
    assert!(inflight.max() > 1, "fast enough: not serialised");
}

#[tokio::test]
async fn response_larger_than_the_limit_is_a_server_error() {
    let base = serve(
        Router::new()
            // Content-Length known up front.
            .route("/big", get(|| async { "x".repeat(4096) }))
            // Chunked, no Content-Length.
            .route(
                "/stream",
                get(|| async {
                    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1000]));
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route("/small", get(|| async { "\"ok\"" })),
    )
    .await;
    let http = client_with(HttpConfig {
        max_response_bytes: 1024,
        ..config()
    });
    for path in ["big", "stream"] {
        let err = http
            .get_json::<String>("read", base.join(path).unwrap(), &Auth::None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
        assert!(
            err.to_string().contains("response larger than 1024 bytes"),
            "{err}"
        );
    }
    let ok: String = http
        .get_json("read", base.join("small").unwrap(), &Auth::None)
        .await
        .unwrap();
    assert_eq!(ok, "ok");
}

#[tokio::test]
async fn requests_carry_the_mdmsync_user_agent_and_accept_json() {
    let base = serve(Router::new().route(
        "/ua",
        get(|headers: HeaderMap| async move {
            axum::Json(serde_json::json!({
                "ua": headers["user-agent"].to_str().unwrap(),
                "accept": headers["accept"].to_str().unwrap(),
            }))
        }),
    ))
    .await;
    let v: serde_json::Value = client()
        .get_json("read", base.join("ua").unwrap(), &Auth::None)
        .await
        .unwrap();
    assert_eq!(v["ua"], format!("mdmsync/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(v["accept"], "application/json");
}

#[tokio::test]
async fn p5_request_budget_spaces_requests_and_respects_the_deadline() {
    let hits = crate::common::Counter::default();
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            h.bump();
            async { "{}" }
        }),
    ))
    .await;
    let url = base.join("x").unwrap();
    // 1 request per 300 ms: the second waits for the bucket to refill.
    let http = client_with(HttpConfig {
        rate_limit: Some(RateLimit {
            requests: 1,
            per: Duration::from_millis(300),
        }),
        ..config()
    });
    let start = std::time::Instant::now();
    for _ in 0..2 {
        http.get_json::<serde_json::Value>("read", &url, &Auth::None)
            .await
            .unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(hits.get(), 2);

    // 2 per 20 s inside a 2 s deadline: the third is refused without being sent.
    let http = client_with(HttpConfig {
        rate_limit: Some(RateLimit {
            requests: 2,
            per: Duration::from_secs(20),
        }),
        ..config()
    })
    .with_deadline(mdmsync_http::Deadline::after(Duration::from_secs(2)));
    for _ in 0..2 {
        http.get_json::<serde_json::Value>("read", &url, &Auth::None)
            .await
            .unwrap();
    }
    let err = http
        .get_json::<serde_json::Value>("read", &url, &Auth::None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("request budget"), "{err}");
    assert_eq!(hits.get(), 4);
}
