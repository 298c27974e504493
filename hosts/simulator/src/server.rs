//! The HTTP(S) server: accept loop, per-connection kill switch (for dropped-connection faults),
//! the `/_sim` control API and the provider entry point with fault injection and logging.

use crate::SimError;
use crate::control::{FaultKind, FaultRule, RequestRecord, SimControl};
use crate::providers::{self, Cx};
use crate::scenario::{Device, Group, Scenario};
use crate::state::Shared;
use crate::wire::{self, Req, Tweaks};
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsAcceptor;
use chrono::Utc;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Per-connection handle: notifying it closes the connection without a response.
#[derive(Clone)]
pub(crate) struct ConnKill(Arc<Notify>);

#[derive(Clone)]
pub(crate) struct App {
    pub shared: Arc<Shared>,
    pub scheme: &'static str,
    pub local: String,
}

const MAX_BODY: usize = 8 * 1024 * 1024;

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/_sim/scenario", get(get_scenario).put(put_scenario))
        .route("/_sim/groups", post(add_group))
        .route(
            "/_sim/groups/{id}",
            axum::routing::delete(del_group).patch(patch_group),
        )
        .route("/_sim/groups/{id}/members", put(set_members))
        .route("/_sim/devices", post(add_device))
        .route("/_sim/devices/{id}", axum::routing::delete(del_device))
        .route("/_sim/devices/{id}/move", post(move_device))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", axum::routing::delete(del_fault))
        .route("/_sim/tokens/expire", post(expire_tokens))
        .route("/_sim/requests", get(requests).delete(clear_requests))
        .route("/_sim/stats", get(stats))
        .route("/_sim/force-syncs", get(force_syncs))
        .route("/_sim/{*rest}", axum::routing::any(sim_unknown))
        .fallback(provider_entry)
        .with_state(app)
}

/// Serves connections until `shutdown` flips (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<RustlsAcceptor>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => {
                let Ok((tcp, _)) = r else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let router = router.clone();
                let shutdown = shutdown.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => drive(tcp, router, shutdown).await,
                        Some(acc) => {
                            if let Ok((stream, ())) = acc.accept(tcp, ()).await {
                                drive(stream, router, shutdown).await;
                            }
                        }
                    }
                });
            }
        }
    }
}

async fn drive<S>(io: S, router: Router, mut shutdown: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let svc = TowerToHyperService::new(router.layer(Extension(ConnKill(kill.clone()))));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    // Dropping `conn` closes the socket: that is how a dropped connection is simulated.
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = kill.notified() => {}
        _ = shutdown.changed() => {}
    }
}

/// Logs a request when dropped (served or not) and keeps the in-flight count.
struct LogGuard {
    shared: Arc<Shared>,
    rec: RequestRecord,
}

impl LogGuard {
    fn enter(shared: Arc<Shared>, rec: RequestRecord) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self { shared, rec }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let mut rec = self.rec.clone();
        rec.finished = Utc::now();
        self.shared.push_log(rec);
    }
}

async fn provider_entry(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let provider = app.shared.provider;
    let route = providers::route(provider, &method, &path);
    let now = Utc::now();
    let mut guard = LogGuard::enter(
        app.shared.clone(),
        RequestRecord {
            seq: app.shared.seq.fetch_add(1, Ordering::SeqCst) + 1,
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            route: route.as_ref().map(|(r, _)| (*r).to_owned()),
            status: None,
            started: now,
            finished: now,
            page_size: wire::asked_page_size(&query),
            fault: None,
        },
    );
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        guard.rec.status = Some(413);
        return providers::error(
            provider,
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        );
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| app.local.clone());
    let fault = app.shared.take_fault(
        method.as_str(),
        &path,
        route.as_ref().map(|(r, _)| *r),
        wire::is_continuation(&query),
    );
    guard.rec.fault = fault.as_ref().map(FaultKind::name);
    let mut tweaks = Tweaks::default();
    let mut truncate = false;
    if let Some(f) = &fault {
        let early = match f {
            FaultKind::Unauthorized => Some(providers::error(
                provider,
                StatusCode::UNAUTHORIZED,
                "injected: unauthorized",
            )),
            FaultKind::Forbidden => Some(providers::error(
                provider,
                StatusCode::FORBIDDEN,
                "injected: forbidden",
            )),
            FaultKind::NotFound => Some(providers::error(
                provider,
                StatusCode::NOT_FOUND,
                "injected: not found",
            )),
            FaultKind::TooManyRequests { retry_after_secs } => {
                Some(providers::too_many(provider, *retry_after_secs))
            }
            FaultKind::InternalServerError => Some(providers::error(
                provider,
                StatusCode::INTERNAL_SERVER_ERROR,
                "injected: internal server error",
            )),
            FaultKind::ServiceUnavailable { retry_after_secs } => {
                let r = providers::error(
                    provider,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "injected: service unavailable",
                );
                Some(match retry_after_secs {
                    Some(s) => wire::with_header(r, "retry-after", &s.to_string()),
                    None => r,
                })
            }
            FaultKind::Status {
                status,
                retry_after_secs,
            } => {
                let st = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let r = providers::error(provider, st, "injected fault");
                Some(match retry_after_secs {
                    Some(s) => wire::with_header(r, "retry-after", &s.to_string()),
                    None => r,
                })
            }
            FaultKind::Delay { millis } => {
                tokio::time::sleep(Duration::from_millis(*millis)).await;
                None
            }
            FaultKind::MalformedJson => Some(wire::raw(
                StatusCode::OK,
                "application/json; charset=utf-8",
                "{\"results\": [{\"id\": 1,, \"name\": }]",
            )),
            FaultKind::TruncatedJson => {
                truncate = true;
                None
            }
            FaultKind::PaginationLoop => {
                tweaks.reset_to_first = true;
                None
            }
            FaultKind::DuplicateItems => {
                tweaks.shift_back = true;
                None
            }
            FaultKind::ShortPage => {
                tweaks.drop_first = true;
                None
            }
            FaultKind::EmptyGroupList => {
                tweaks.empty_groups = true;
                None
            }
            FaultKind::ExpiredPageToken => Some(providers::expired_page_token(provider)),
            FaultKind::DropConnection => {
                if let Some(k) = kill {
                    k.0.notify_one();
                    // The connection task drops this future with the socket; nothing is sent.
                    std::future::pending::<()>().await;
                }
                Some(providers::error(
                    provider,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "connection could not be dropped",
                ))
            }
        };
        if let Some(r) = early {
            guard.rec.status = Some(r.status().as_u16());
            return r;
        }
    }
    let req = Req {
        method,
        path,
        query,
        headers: parts.headers,
        body,
        origin: format!("{}://{}", app.scheme, host),
        tweaks,
    };
    let cx = Cx {
        world: app.shared.world(),
        shared: app.shared.clone(),
    };
    let mut resp = match &route {
        Some((name, params)) => providers::handle(provider, name, params, &cx, &req),
        None => providers::unknown_route(provider, &req),
    };
    if truncate {
        let (mut parts, body) = resp.into_parts();
        let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
        let cut = bytes.slice(..bytes.len() / 2);
        parts.headers.remove(header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, Body::from(cut));
    }
    guard.rec.status = Some(resp.status().as_u16());
    resp
}

fn sim_err(e: SimError) -> Response {
    let status = match e {
        SimError::NoSuchGroup(_) | SimError::NoSuchDevice(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

fn done(r: Result<(), SimError>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim_err(e),
    }
}

fn control(app: &App) -> SimControl {
    SimControl {
        shared: app.shared.clone(),
    }
}

async fn get_scenario(State(app): State<App>) -> Response {
    Json(control(&app).scenario()).into_response()
}

async fn put_scenario(State(app): State<App>, Json(s): Json<Scenario>) -> Response {
    done(control(&app).replace_scenario(s))
}

async fn add_group(State(app): State<App>, Json(g): Json<Group>) -> Response {
    done(control(&app).add_group(g))
}

async fn del_group(State(app): State<App>, Path(id): Path<u64>) -> Response {
    done(control(&app).remove_group(id))
}

#[derive(Deserialize)]
struct GroupPatch {
    name: Option<String>,
    smart: Option<bool>,
    members: Option<Vec<u64>>,
}

async fn patch_group(
    State(app): State<App>,
    Path(id): Path<u64>,
    Json(p): Json<GroupPatch>,
) -> Response {
    done(app.shared.update(|s| {
        let g = s
            .groups
            .iter_mut()
            .find(|g| g.id == id)
            .ok_or(SimError::NoSuchGroup(id))?;
        if let Some(n) = p.name {
            g.name = n;
        }
        if let Some(sm) = p.smart {
            g.smart = sm;
        }
        if let Some(m) = p.members {
            g.members = m;
        }
        Ok(())
    }))
}

async fn set_members(
    State(app): State<App>,
    Path(id): Path<u64>,
    Json(m): Json<Vec<u64>>,
) -> Response {
    done(control(&app).set_members(id, m))
}

async fn add_device(State(app): State<App>, Json(d): Json<Device>) -> Response {
    done(control(&app).add_device(d))
}

async fn del_device(State(app): State<App>, Path(id): Path<u64>) -> Response {
    done(control(&app).remove_device(id))
}

#[derive(Deserialize)]
struct Move {
    from: Option<u64>,
    to: u64,
}

async fn move_device(State(app): State<App>, Path(id): Path<u64>, Json(m): Json<Move>) -> Response {
    done(control(&app).move_device(id, m.from, m.to))
}

async fn list_faults(State(app): State<App>) -> Response {
    Json(control(&app).faults()).into_response()
}

async fn add_fault(State(app): State<App>, Json(rule): Json<FaultRule>) -> Response {
    let id = control(&app).add_fault(rule);
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn clear_faults(State(app): State<App>) -> Response {
    control(&app).clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn del_fault(State(app): State<App>, Path(id): Path<u64>) -> Response {
    if control(&app).remove_fault(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no fault {id}")})),
        )
            .into_response()
    }
}

async fn expire_tokens(State(app): State<App>) -> Response {
    control(&app).expire_tokens();
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(State(app): State<App>) -> Response {
    Json(control(&app).requests()).into_response()
}

async fn clear_requests(State(app): State<App>) -> Response {
    control(&app).clear_requests();
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(app): State<App>) -> Response {
    Json(control(&app).stats()).into_response()
}

async fn force_syncs(State(app): State<App>) -> Response {
    Json(control(&app).force_syncs()).into_response()
}

async fn sim_unknown() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "unknown control endpoint; see docs/simulator.md"})),
    )
        .into_response()
}
