//! The six provider APIs. Each module resolves a request to a route name, serves it from the
//! indexed scenario, and shapes errors as that provider does.
//!
//! Parameter parsers return a ready error `Response` as their `Err`: it is built once, on the
//! error path only, so its size does not matter.
#![allow(clippy::result_large_err)]

use crate::state::{Shared, World};
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use mdmsync_core::Provider;
use std::sync::Arc;

mod fleet;
mod intune;
mod iru;
mod jamf;
mod jumpcloud;
mod rsql;
mod simplemdm;

/// What a handler sees besides the request.
pub(crate) struct Cx {
    pub world: Arc<World>,
    pub shared: Arc<Shared>,
}

pub(crate) type Route = (&'static str, Vec<String>);

pub(crate) fn route(p: Provider, method: &Method, path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match p {
        Provider::Jamf => jamf::route(method, &segs),
        Provider::Iru => iru::route(method, &segs),
        Provider::SimpleMdm => simplemdm::route(method, &segs),
        Provider::Fleet => fleet::route(method, &segs),
        Provider::JumpCloud => jumpcloud::route(method, &segs),
        Provider::Intune => intune::route(method, &segs),
    }
}

pub(crate) fn handle(p: Provider, route: &str, params: &[String], cx: &Cx, req: &Req) -> Response {
    match p {
        Provider::Jamf => jamf::handle(route, params, cx, req),
        Provider::Iru => iru::handle(route, params, cx, req),
        Provider::SimpleMdm => simplemdm::handle(route, params, cx, req),
        Provider::Fleet => fleet::handle(route, params, cx, req),
        Provider::JumpCloud => jumpcloud::handle(route, params, cx, req),
        Provider::Intune => intune::handle(route, params, cx, req),
    }
}

/// The provider's error body for a status.
pub(crate) fn error(p: Provider, status: StatusCode, msg: &str) -> Response {
    match p {
        Provider::Jamf => jamf::error(status, msg),
        Provider::Iru => iru::error(status, msg),
        Provider::SimpleMdm => simplemdm::error(status, msg),
        Provider::Fleet => fleet::error(status, msg),
        Provider::JumpCloud => jumpcloud::error(status, msg),
        Provider::Intune => intune::error(status, msg),
    }
}

/// 429 with `Retry-After` in the provider's shape.
pub(crate) fn too_many(p: Provider, secs: u64) -> Response {
    let r = match p {
        Provider::Fleet => fleet::error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("limit exceeded, retry after: {secs}s"),
        ),
        Provider::Iru => iru::error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have reached the rate limit",
        ),
        _ => error(p, StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
    };
    let r = wire::with_header(r, "retry-after", &secs.to_string());
    match p {
        Provider::SimpleMdm => {
            let reset = chrono::Utc::now().timestamp() + secs as i64;
            wire::with_header(r, "x-ratelimit-reset", &reset.to_string())
        }
        _ => r,
    }
}

/// The expired-page-token response (Intune's `Directory_ExpiredPageToken`; a 400 elsewhere).
pub(crate) fn expired_page_token(p: Provider) -> Response {
    match p {
        Provider::Intune => intune::expired_page_token(),
        _ => error(p, StatusCode::BAD_REQUEST, "the page token has expired"),
    }
}

/// A path no route matches.
pub(crate) fn unknown_route(p: Provider, req: &Req) -> Response {
    match p {
        Provider::Iru => iru::html_404(),
        _ => error(
            p,
            StatusCode::NOT_FOUND,
            &format!("No route for {} {}", req.method, req.path),
        ),
    }
}
