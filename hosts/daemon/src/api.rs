//! The admin API: JSON over HTTP (axum). Every route except `GET /healthz` requires
//! `Authorization: Bearer <token>`; the token is compared in constant time (SHA-256 digests
//! compared with `subtle`), and a missing or wrong one gets `401` with `WWW-Authenticate`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `{"status":"ok"}` (no token; `503` if the database cannot be read) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /workspaces` | `[{"id","name","plan","provider","next_scheduled_at","running"}]` |
//! | `GET /workspaces/{id}` | the status document ([`WorkspaceStatus`]) |
//! | `POST /workspaces/{id}/sync[?force=true\|?confirm=SYNC_ID][&wait=false]` | `200` outcome, `202` accepted, `429` cooldown, `409` running, `422` G1/not connected |
//! | `GET /workspaces/{id}/groups` | groups with members |
//! | `GET /workspaces/{id}/history[?group=ID\|?device=ID][&after=POS][&limit=N]` | history entries (G12) |

use crate::config::valid_caller;
use crate::metrics::Metrics;
use crate::scheduler::{JobEnd, Scheduler, TriggerError, WorkspaceStatus};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use mdmsync_core::{
    Actor, Clock, DeviceId, GroupId, Position, Refusal, SyncId, SyncOutcome, SyncRequest,
    SyncResult, SyncTrigger, WorkspaceId,
};
use mdmsync_sqlite::{HistorySubject, SqliteEventStore};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The header an API caller may name itself with (recorded as `api:<name>`, G12).
pub const CALLER_HEADER: &str = "x-mdmsync-caller";
/// Most history entries one request returns.
pub const MAX_HISTORY: usize = 10_000;

/// The admin token, kept only as its SHA-256 digest.
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// From the configured secret.
    pub fn new(token: &SecretString) -> Self {
        Self(Sha256::digest(token.expose_secret().as_bytes()).into())
    }

    /// Constant-time check of a presented token (the digests are compared, so neither the
    /// content nor the length of the token leaks through timing).
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The scheduler (workspace states, triggers).
    pub scheduler: Scheduler,
    /// The store (groups, history).
    pub store: SqliteEventStore,
    /// The admin token.
    pub token: Arc<AdminToken>,
    /// The caller name recorded when a request does not name itself.
    pub default_caller: String,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// How long a manual sync request waits for its outcome before answering 202.
    pub manual_wait: Duration,
    /// The clock (for `Retry-After`).
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("default_caller", &self.default_caller)
            .finish_non_exhaustive()
    }
}

/// The router: `/healthz` open, everything else behind the token.
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/workspaces", get(list_workspaces))
        .route("/workspaces/{id}", get(workspace_status))
        .route("/workspaces/{id}/sync", post(trigger_sync))
        .route("/workspaces/{id}/groups", get(groups))
        .route("/workspaces/{id}/history", get(history))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .with_state(state)
}

/// An error answer (boxed: a `Response` is large).
#[derive(Debug)]
pub struct ApiError(Box<Response>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for ApiError {
    fn from(r: Response) -> Self {
        ApiError(Box::new(r))
    }
}

type ApiResult = Result<Response, ApiError>;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

async fn require_token(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let ok = presented.is_some_and(|t| state.token.matches(t));
    if !ok {
        state.metrics.record_unauthorized();
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>`",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mdmsyncd\""),
        );
        return r;
    }
    next.run(req).await
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see docs/daemon.md",
    )
}

async fn healthz(State(state): State<ApiState>) -> Response {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.last_position()).await {
        Ok(Ok(_)) => Json(json!({ "status": "ok" })).into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "message": "the database cannot be read" })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn parse_workspace(id: &str) -> Result<WorkspaceId, ApiError> {
    id.parse().map_err(|_| {
        ApiError::from(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{id:?} is not a workspace id (a UUID)"),
        ))
    })
}

fn unknown_workspace(id: WorkspaceId) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("workspace {id} does not exist"),
    )
}

/// Reads new events first, so a change made a moment ago (by the CLI, or by a sync through
/// this API) shows.
async fn catch_up(state: &ApiState) -> Result<(), ApiError> {
    state.scheduler.poll_log().await.map(|_| ()).map_err(|e| {
        ApiError::from(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ))
    })
}

async fn list_workspaces(State(state): State<ApiState>) -> ApiResult {
    catch_up(&state).await?;
    Ok(Json(state.scheduler.workspaces()).into_response())
}

async fn workspace_status(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_workspace(&id)?;
    catch_up(&state).await?;
    Ok(match state.scheduler.status(id) {
        Some(s) => Json::<WorkspaceStatus>(s).into_response(),
        None => unknown_workspace(id),
    })
}

/// Query of `POST /workspaces/{id}/sync`.
#[derive(Debug, Default, Deserialize)]
pub struct SyncQuery {
    /// An operator's bypass of the T2 cooldown, recorded as `forced_manual`.
    #[serde(default)]
    pub force: bool,
    /// Confirm this held sync (G11).
    pub confirm: Option<String>,
    /// Wait for the outcome (default true); `false` answers 202 at once.
    pub wait: Option<bool>,
}

fn caller(headers: &HeaderMap, default: &str) -> Result<String, ApiError> {
    match headers.get(CALLER_HEADER) {
        None => Ok(default.to_owned()),
        Some(v) => match v.to_str() {
            Ok(name) if valid_caller(name) => Ok(name.to_owned()),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{CALLER_HEADER} must be 1 to 64 letters, digits, '.', '_', '-' or '@'"),
            )
            .into()),
        },
    }
}

fn retry_after_secs(allowed_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let ms = (allowed_at - now).num_milliseconds().max(0);
    ((ms + 999) / 1000).max(1)
}

fn cooldown_response(allowed_at: DateTime<Utc>, now: DateTime<Utc>, refusal: &Refusal) -> Response {
    let secs = retry_after_secs(allowed_at, now);
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": "cooldown",
            "outcome": "refused",
            "message": refusal.to_string(),
            "retry_after": allowed_at,
            "retry_after_secs": secs,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn refusal_response(refusal: &Refusal, now: DateTime<Utc>) -> Response {
    match refusal {
        Refusal::Cooldown { allowed_at } => cooldown_response(*allowed_at, now, refusal),
        Refusal::PlanDoesNotSyncGroups { .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "plan_does_not_sync_groups",
            refusal.to_string(),
        ),
        Refusal::NotConnected => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_connected",
            refusal.to_string(),
        ),
    }
}

/// The CLI's `sync --json` document for an outcome.
pub fn outcome_json(outcome: &SyncOutcome) -> Value {
    let (name, error_kind, message, retry_after, report) = match &outcome.result {
        SyncResult::Succeeded { report } => ("succeeded", None, None, None, Some(report)),
        SyncResult::Failed {
            error_kind,
            message,
        } => (
            "failed",
            Some(error_kind.as_str()),
            Some(message.clone()),
            None,
            None,
        ),
        SyncResult::Held { reason, report } => {
            ("held", None, Some(reason.to_string()), None, Some(report))
        }
        SyncResult::Refused { refusal } => {
            let retry = match refusal {
                Refusal::Cooldown { allowed_at } => Some(*allowed_at),
                _ => None,
            };
            ("refused", None, Some(refusal.to_string()), retry, None)
        }
        SyncResult::Coalesced => ("coalesced", None, None, None, None),
    };
    json!({
        "status": "finished",
        "sync_id": outcome.sync_id,
        "outcome": name,
        "error_kind": error_kind,
        "message": message,
        "retry_after": retry_after,
        "report": report.map(|r| json!({
            "created": r.created,
            "renamed": r.renamed,
            "detached": r.detached,
            "members_added": r.members_added,
            "members_removed": r.members_removed,
            "unmatched_members": r.unmatched_members,
        })),
    })
}

async fn trigger_sync(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<SyncQuery>,
    headers: HeaderMap,
) -> ApiResult {
    let id = parse_workspace(&id)?;
    let name = caller(&headers, &state.default_caller)?;
    let confirm = match q.confirm.as_deref().map(str::parse::<SyncId>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "confirm must be the id (a UUID) of the held sync, as shown in the status",
            ));
        }
    };
    if confirm.is_some() && q.force {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "use either force or confirm, not both",
        ));
    }
    let trigger = if confirm.is_some() {
        SyncTrigger::Confirmation
    } else if q.force {
        SyncTrigger::ForcedManual
    } else {
        SyncTrigger::Manual
    };
    let mut request = SyncRequest::new(trigger, Actor::ApiCaller(name));
    request.confirm = confirm;
    let now = state.clock.now();
    let rx = match state.scheduler.trigger(id, request).await {
        Ok(rx) => rx,
        Err(TriggerError::UnknownWorkspace(id)) => return Ok(unknown_workspace(id)),
        Err(TriggerError::Running) => {
            return Ok(error(
                StatusCode::CONFLICT,
                "sync_running",
                TriggerError::Running.to_string(),
            ));
        }
        Err(TriggerError::Refused(r)) => return Ok(refusal_response(&r, now)),
        Err(e @ TriggerError::ShuttingDown) => {
            return Ok(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ));
        }
        Err(e @ TriggerError::Store(_)) => {
            return Ok(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            ));
        }
    };
    let accepted = || {
        (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "accepted",
                "workspace_id": id,
                "message": format!("the sync is queued or running; follow it with GET /workspaces/{id}"),
            })),
        )
            .into_response()
    };
    if q.wait == Some(false) {
        return Ok(accepted());
    }
    let end = match tokio::time::timeout(state.manual_wait, rx).await {
        Err(_) => return Ok(accepted()),
        Ok(Err(_)) => JobEnd::Abandoned,
        Ok(Ok(end)) => end,
    };
    Ok(match end {
        JobEnd::Synced(outcome) => match &outcome.result {
            SyncResult::Refused { refusal } => refusal_response(refusal, state.clock.now()),
            _ => (StatusCode::OK, Json(outcome_json(&outcome))).into_response(),
        },
        JobEnd::LeaseHeld => error(
            StatusCode::CONFLICT,
            "sync_running",
            "another mdmsyncd process is syncing this workspace right now (T4); this trigger is folded into it",
        ),
        JobEnd::NothingDue | JobEnd::MetadataOnly(_) => error(
            StatusCode::CONFLICT,
            "sync_running",
            "the workspace changed while the request waited; check its status and try again",
        ),
        JobEnd::Error(message) => error(StatusCode::INTERNAL_SERVER_ERROR, "daemon_error", message),
        JobEnd::TimedOut => error(
            StatusCode::GATEWAY_TIMEOUT,
            "timed_out",
            "the sync ran past sync_timeout_secs and was abandoned; nothing was recorded",
        ),
        JobEnd::Abandoned => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the daemon shut down before the sync ran; nothing was recorded",
        ),
    })
}

async fn groups(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_workspace(&id)?;
    catch_up(&state).await?;
    if !state.scheduler.exists(id) {
        return Ok(unknown_workspace(id));
    }
    let store = state.store.clone();
    let rows = match tokio::task::spawn_blocking(move || store.groups_with_members(id)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                e.to_string(),
            ));
        }
        Err(e) => {
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store",
                e.to_string(),
            ));
        }
    };
    let out: Vec<Value> = rows
        .into_iter()
        .map(|g| {
            json!({
                "id": g.group.group_id,
                "name": g.group.name,
                "source": g.group.source,
                "provider": g.group.provider,
                "mdm_group_id": g.group.mdm_group_id,
                "mdm_name": g.group.mdm_name,
                "managed_by": g.group.managed_by,
                "policies": g.group.policies,
                "members": g.members.iter().map(|m| json!({
                    "device_id": m.device_id,
                    "serial_number": m.serial_number,
                    "mdm_display_name": m.mdm_display_name,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(out).into_response())
}

/// Query of `GET /workspaces/{id}/history`.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    /// Only events naming this group.
    pub group: Option<String>,
    /// Only events naming this device.
    pub device: Option<String>,
    /// Only events after this position (paging).
    pub after: Option<u64>,
    /// At most this many (default and maximum 10,000).
    pub limit: Option<usize>,
}

async fn history(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let id = parse_workspace(&id)?;
    let subject = match (&q.group, &q.device) {
        (Some(_), Some(_)) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "use either group or device, not both",
            ));
        }
        (Some(g), None) => match g.parse::<GroupId>() {
            Ok(g) => HistorySubject::Group(g),
            Err(_) => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "group must be a group id (a UUID)",
                ));
            }
        },
        (None, Some(d)) => match d.parse::<DeviceId>() {
            Ok(d) => HistorySubject::Device(d),
            Err(_) => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "device must be a device id (a UUID)",
                ));
            }
        },
        (None, None) => HistorySubject::Workspace,
    };
    catch_up(&state).await?;
    if !state.scheduler.exists(id) {
        return Ok(unknown_workspace(id));
    }
    let after = Position(q.after.unwrap_or(0));
    let limit = q.limit.unwrap_or(MAX_HISTORY).clamp(1, MAX_HISTORY);
    let store = state.store.clone();
    Ok(
        match tokio::task::spawn_blocking(move || store.history(id, subject, after, limit)).await {
            Ok(Ok(entries)) => Json(entries).into_response(),
            Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_matches_only_itself() {
        let t = AdminToken::new(&SecretString::from("a-very-long-admin-token"));
        assert!(t.matches("a-very-long-admin-token"));
        assert!(!t.matches("a-very-long-admin-tokeN"));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("admin-token"));
    }

    #[test]
    fn t2_retry_after_rounds_up_and_is_at_least_one_second() {
        let now = mdmsync_core::testkit::t0();
        assert_eq!(
            retry_after_secs(now + chrono::TimeDelta::milliseconds(1500), now),
            2
        );
        assert_eq!(retry_after_secs(now, now), 1);
        assert_eq!(
            retry_after_secs(now + chrono::TimeDelta::minutes(15), now),
            900
        );
    }
}
