//! Iru (formerly Kandji): static bearer token, DRF-paged tags, limit/offset devices (bare
//! array), blank push, heterogeneous error bodies.

use super::{Cx, Route};
use crate::ids;
use crate::scenario::Device;
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// Hard upper limit of `limit` on `/api/v1/devices`; more is a 400.
pub(crate) const MAX_LIMIT: usize = 300;
/// `limit` when none is sent (documented as required; unconfirmed what the server does).
pub(crate) const DEFAULT_LIMIT: usize = 300;

const CURSOR_PREFIX: &str = "cD0";

pub(crate) fn route(m: &Method, s: &[&str]) -> Option<Route> {
    let get = m == Method::GET;
    let r: Route = match s {
        ["api", "v1", "tags"] if get => ("iru.tags", vec![]),
        ["api", "v1", "devices"] if get => ("iru.devices", vec![]),
        ["api", "v1", "devices", id] if get => ("iru.device", vec![(*id).to_owned()]),
        ["api", "v1", "devices", id, "action", "blankpush"] if m == Method::POST => {
            ("iru.blankpush", vec![(*id).to_owned()])
        }
        ["api", "v1", "users", id] if get => ("iru.user", vec![(*id).to_owned()]),
        _ => return None,
    };
    Some(r)
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    match status.as_u16() {
        // Some Iru errors are a bare JSON string.
        500 | 503 => wire::json(status, &json!(msg)),
        _ => wire::json(status, &json!({"detail": msg})),
    }
}

pub(crate) fn html_404() -> Response {
    wire::raw(
        StatusCode::NOT_FOUND,
        "text/html; charset=utf-8",
        "<!doctype html>\n<html lang=\"en\">\n<head><title>Not Found</title></head>\n<body><h1>Not Found</h1><p>The requested resource was not found on this server.</p></body>\n</html>\n",
    )
}

fn user_json(d: &Device) -> Value {
    match &d.user {
        Some(u) => json!({
            "id": ids::iru_user_id(&u.id),
            "name": u.name,
            "email": u.email,
            "is_archived": false,
        }),
        // Unassigned: the empty string, not null.
        None => json!(""),
    }
}

fn device_json(cx: &Cx, i: usize, empty_groups: bool) -> Value {
    let w = &cx.world;
    let d = &w.devices[i];
    let tags: Vec<&str> = if empty_groups {
        vec![]
    } else {
        w.groups_of[i]
            .iter()
            .map(|&g| w.groups[g].name.as_str())
            .collect()
    };
    json!({
        "device_id": ids::iru_device_id(d.id),
        "device_name": d.device_name,
        "model": "MacBook Pro (14-inch, 2023)",
        "serial_number": d.serial_number.clone().unwrap_or_default(),
        "platform": "Mac",
        "os_version": "14.5",
        "last_check_in": wire::rfc3339(d.last_seen),
        "user": user_json(d),
        "asset_tag": "",
        "blueprint_id": uuid::Uuid::new_v5(&ids::NAMESPACE, b"iru-blueprint").to_string(),
        "blueprint_name": "Default Blueprint",
        "mdm_enabled": true,
        "agent_installed": true,
        "is_missing": false,
        "is_removed": false,
        "agent_version": "5.1.0",
        "first_enrollment": "2024-01-10T10:00:00Z",
        "last_enrollment": "2024-01-10T10:00:00Z",
        "tags": tags,
    })
}

pub(crate) fn handle(route: &str, p: &[String], cx: &Cx, req: &Req) -> Response {
    match req.bearer() {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "Authentication credentials were not provided.",
            );
        }
        Some(t) if t != cx.world.scenario.credentials.api_token => {
            return error(
                StatusCode::UNAUTHORIZED,
                "Incorrect authentication credentials.",
            );
        }
        _ => {}
    }
    let w = &cx.world;
    match route {
        "iru.tags" => {
            let search = req.q("search").unwrap_or("").to_lowercase();
            let tags: Vec<Value> = if req.tweaks.empty_groups {
                vec![]
            } else {
                w.groups
                    .iter()
                    .filter(|g| g.name.to_lowercase().contains(&search))
                    .map(|g| json!({"id": ids::iru_tag_id(g.id), "name": g.name}))
                    .collect()
            };
            let start = match req.q("cursor") {
                None | Some("") => 0,
                Some(c) => match c
                    .strip_prefix(CURSOR_PREFIX)
                    .and_then(|h| usize::from_str_radix(h, 16).ok())
                {
                    Some(n) => n,
                    None => return error(StatusCode::NOT_FOUND, "Invalid cursor"),
                },
            };
            let size = w.scenario.options.iru_tag_page_size;
            let pg = req.tweaks.page(tags.len(), start, size);
            let link = |n: usize| req.url_with(&[("cursor", format!("{CURSOR_PREFIX}{n:x}"))]);
            let next = pg.next.map(link);
            let previous = (start > 0).then(|| {
                if start <= size {
                    req.url_with(&[("cursor", String::new())])
                } else {
                    link(start - size)
                }
            });
            wire::ok(&json!({
                "count": tags.len(),
                "next": next,
                "previous": previous,
                "results": tags[pg.range].to_vec(),
            }))
        }
        "iru.devices" => {
            let limit = match wire::size_param(req.q("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT) {
                Ok(l) => l,
                Err(_) => {
                    return wire::json(
                        StatusCode::BAD_REQUEST,
                        &json!({"limit": [format!("Ensure this value is less than or equal to {MAX_LIMIT}.")]}),
                    );
                }
            };
            let offset = match wire::num_param(req.q("offset")) {
                Ok(o) => o,
                Err(_) => {
                    return wire::json(
                        StatusCode::BAD_REQUEST,
                        &json!({"offset": ["A valid integer is required."]}),
                    );
                }
            };
            let mut rows: Vec<usize> = (0..w.devices.len()).collect();
            let list = |v: Option<&str>| -> Option<Vec<String>> {
                v.map(|s| s.split(',').map(|x| x.trim().to_owned()).collect())
            };
            let tag_ids = list(req.q("tag_id")).or_else(|| list(req.q("tag_id_in")));
            let tag_names = list(req.q("tag_name")).or_else(|| list(req.q("tag_name_in")));
            if let Some(ids) = tag_ids {
                let gs: Vec<usize> = ids.iter().filter_map(|i| w.group(i)).collect();
                rows.retain(|d| w.groups_of[*d].iter().any(|g| gs.contains(g)));
            }
            if let Some(names) = tag_names {
                rows.retain(|d| {
                    w.groups_of[*d]
                        .iter()
                        .any(|g| names.iter().any(|n| *n == w.groups[*g].name))
                });
            }
            if let Some(serial) = req.q("serial_number") {
                rows.retain(|d| {
                    w.devices[*d]
                        .serial_number
                        .as_deref()
                        .is_some_and(|s| s.eq_ignore_ascii_case(serial))
                });
            }
            let pg = req.tweaks.page(rows.len(), offset, limit);
            let items: Vec<Value> = rows[pg.range]
                .iter()
                .map(|&i| device_json(cx, i, req.tweaks.empty_groups))
                .collect();
            wire::ok(&Value::Array(items))
        }
        "iru.device" => match w.device_by_key.get(&p[0]) {
            Some(&i) => wire::ok(&device_json(cx, i, req.tweaks.empty_groups)),
            None => error(StatusCode::NOT_FOUND, "Not found."),
        },
        "iru.blankpush" => match w.device(&p[0]) {
            Some(d) => {
                cx.shared.record_action(d.id);
                wire::raw(StatusCode::OK, "text/plain", "")
            }
            None => html_404(),
        },
        "iru.user" => match w.users.get(&p[0]) {
            Some(&i) => {
                let u = w.devices[i].user.clone().unwrap_or_else(|| crate::User {
                    id: String::new(),
                    name: String::new(),
                    email: String::new(),
                });
                let count = w
                    .devices
                    .iter()
                    .filter(|d| d.user.as_ref().is_some_and(|x| x.id == u.id))
                    .count();
                wire::ok(&json!({
                    "id": p[0], "name": u.name, "email": u.email, "active": true,
                    "archived": false, "department": "", "job_title": "",
                    "device_count": count,
                }))
            }
            None => error(StatusCode::NOT_FOUND, "Not found."),
        },
        _ => html_404(),
    }
}
