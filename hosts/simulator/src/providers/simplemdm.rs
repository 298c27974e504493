//! SimpleMDM: HTTP Basic (API key as user, empty password), cursor pagination
//! (`limit` 1–100, default 10, `starting_after`, `has_more`), embedded group members.

use super::{Cx, Route};
use crate::ids;
use crate::scenario::Device;
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

/// `limit` when none is sent.
pub(crate) const DEFAULT_LIMIT: usize = 10;
/// Largest `limit`; outside 1–100 is a 400.
pub(crate) const MAX_LIMIT: usize = 100;

pub(crate) fn route(m: &Method, s: &[&str]) -> Option<Route> {
    let get = m == Method::GET;
    let r: Route = match s {
        ["api", "v1", "account"] if get => ("simplemdm.account", vec![]),
        ["api", "v1", "assignment_groups"] if get => ("simplemdm.assignment_groups", vec![]),
        ["api", "v1", "assignment_groups", id] if get => {
            ("simplemdm.assignment_group", vec![(*id).to_owned()])
        }
        ["api", "v1", "devices"] if get => ("simplemdm.devices", vec![]),
        ["api", "v1", "devices", id] if get => ("simplemdm.device", vec![(*id).to_owned()]),
        ["api", "v1", "devices", id, "refresh"] if m == Method::POST => {
            ("simplemdm.refresh", vec![(*id).to_owned()])
        }
        _ => return None,
    };
    Some(r)
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    wire::json(status, &json!({"errors": [{"title": msg}]}))
}

fn authed(cx: &Cx, req: &Req) -> bool {
    let Some(h) = req.header("authorization") else {
        return false;
    };
    let Some((scheme, b64)) = h.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let Ok(s) = String::from_utf8(raw) else {
        return false;
    };
    let user = s.split_once(':').map_or(s.as_str(), |(u, _)| u);
    user == cx.world.scenario.credentials.api_key
}

fn group_json(cx: &Cx, gi: usize) -> Value {
    let w = &cx.world;
    let g = &w.groups[gi];
    let devices: Vec<Value> = w.members[gi]
        .iter()
        .map(|&d| json!({"type": "device", "id": w.devices[d].id}))
        .collect();
    json!({
        "type": "assignment_group",
        "id": g.id,
        "attributes": {
            "name": g.name,
            "auto_deploy": true,
            "type": "standard",
            "install_type": "managed",
            "priority": 0,
            "app_track_location": true,
            "created_at": "2024-01-15T08:00:00.000-08:00",
            "updated_at": "2024-01-15T08:00:00.000-08:00",
            "device_count": devices.len(),
        },
        "relationships": {
            "apps": {"data": []},
            "device_groups": {"data": []},
            "devices": {"data": devices},
        }
    })
}

fn device_json(d: &Device) -> Value {
    json!({
        "type": "device",
        "id": d.id,
        "attributes": {
            "name": d.device_name,
            "last_seen_at": wire::rfc3339(d.last_seen),
            "last_seen_ip": "",
            "enrolled_at": "2024-01-10T10:00:00.000-08:00",
            "status": "enrolled",
            "device_name": d.device_name,
            "serial_number": d.serial_number,
            "unique_identifier": ids::fleet_host_uuid(d.id),
            "os_version": "14.5",
            "model_name": "MacBook Pro",
        },
        "relationships": {
            "device_group": {"data": {"type": "device_group", "id": 1}},
        }
    })
}

/// Cursor page over items identified by `ids` (ascending): `(positions, has_more)`.
fn cursor_page(req: &Req, ids: &[u64]) -> Result<(Vec<usize>, bool), Response> {
    let limit = wire::size_param(req.q("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("limit {e}")))?;
    let desc = req.q("direction") == Some("desc");
    let mut order: Vec<usize> = (0..ids.len()).collect();
    if desc {
        order.reverse();
    }
    let start = match req.q("starting_after").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => {
            let after: u64 = s.parse().map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "starting_after must be an object id",
                )
            })?;
            order
                .iter()
                .position(|&i| if desc { ids[i] < after } else { ids[i] > after })
                .unwrap_or(order.len())
        }
    };
    let pg = req.tweaks.page(order.len(), start, limit);
    Ok((order[pg.range].to_vec(), pg.next.is_some()))
}

pub(crate) fn handle(route: &str, p: &[String], cx: &Cx, req: &Req) -> Response {
    if !authed(cx, req) {
        return wire::with_header(
            error(StatusCode::UNAUTHORIZED, "Unauthorized"),
            "www-authenticate",
            "Basic realm=\"Application\"",
        );
    }
    let w = &cx.world;
    let not_found = || error(StatusCode::NOT_FOUND, "object not found");
    match route {
        "simplemdm.account" => wire::ok(&json!({"data": {
            "type": "account",
            "attributes": {
                "name": "mdmsim",
                "apple_store_country_code": "US",
                "subdomain": "mdmsim",
            }
        }})),
        "simplemdm.assignment_groups" => {
            let ids: Vec<u64> = if req.tweaks.empty_groups {
                vec![]
            } else {
                w.groups.iter().map(|g| g.id).collect()
            };
            match cursor_page(req, &ids) {
                Ok((rows, has_more)) => {
                    let data: Vec<Value> = rows.into_iter().map(|g| group_json(cx, g)).collect();
                    wire::ok(&json!({"data": data, "has_more": has_more}))
                }
                Err(r) => r,
            }
        }
        "simplemdm.assignment_group" => match w.group(&p[0]) {
            Some(gi) => wire::ok(&json!({"data": group_json(cx, gi)})),
            None => not_found(),
        },
        "simplemdm.devices" => {
            let search = req.q("search").unwrap_or("").to_lowercase();
            let rows: Vec<usize> = (0..w.devices.len())
                .filter(|&i| {
                    let d = &w.devices[i];
                    search.is_empty()
                        || d.device_name.to_lowercase().contains(&search)
                        || d.serial_number
                            .as_deref()
                            .is_some_and(|s| s.to_lowercase().contains(&search))
                })
                .collect();
            let ids: Vec<u64> = rows.iter().map(|&i| w.devices[i].id).collect();
            match cursor_page(req, &ids) {
                Ok((page, has_more)) => {
                    let data: Vec<Value> = page
                        .into_iter()
                        .map(|k| device_json(&w.devices[rows[k]]))
                        .collect();
                    wire::ok(&json!({"data": data, "has_more": has_more}))
                }
                Err(r) => r,
            }
        }
        "simplemdm.device" => match w.device(&p[0]) {
            Some(d) => wire::ok(&json!({"data": device_json(d)})),
            None => not_found(),
        },
        "simplemdm.refresh" => match w.device(&p[0]) {
            Some(d) => {
                cx.shared.record_action(d.id);
                wire::empty(StatusCode::ACCEPTED)
            }
            None => not_found(),
        },
        _ => not_found(),
    }
}
