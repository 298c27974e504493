//! Fleet: static bearer token, unpaginated labels (with builtin labels), page/per_page label
//! hosts (no total), host detail with `end_users`, lookup by identifier, refetch.

use super::{Cx, Route};
use crate::ids;
use crate::scenario::Device;
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// `per_page` when none is sent.
pub(crate) const DEFAULT_PER_PAGE: usize = 20;

/// Builtin labels: (id, name, matches every device).
const BUILTIN: [(u64, &str, bool); 6] = [
    (1, "All Hosts", true),
    (2, "macOS", true),
    (3, "Ubuntu Linux", false),
    (4, "CentOS Linux", false),
    (5, "MS Windows", false),
    (6, "chrome", false),
];

pub(crate) fn route(m: &Method, s: &[&str]) -> Option<Route> {
    let get = m == Method::GET;
    let r: Route = match s {
        ["api", "v1" | "latest", "fleet", "me"] if get => ("fleet.me", vec![]),
        ["api", "v1" | "latest", "fleet", "labels"] if get => ("fleet.labels", vec![]),
        ["api", "v1" | "latest", "fleet", "labels", id, "hosts"] if get => {
            ("fleet.label_hosts", vec![(*id).to_owned()])
        }
        ["api", "v1" | "latest", "fleet", "hosts"] if get => ("fleet.hosts", vec![]),
        [
            "api",
            "v1" | "latest",
            "fleet",
            "hosts",
            "identifier",
            ident,
        ] if get => ("fleet.host_identifier", vec![(*ident).to_owned()]),
        ["api", "v1" | "latest", "fleet", "hosts", id] if get => {
            ("fleet.host", vec![(*id).to_owned()])
        }
        ["api", "v1" | "latest", "fleet", "hosts", id, "refetch"] if m == Method::POST => {
            ("fleet.refetch", vec![(*id).to_owned()])
        }
        _ => return None,
    };
    Some(r)
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    let message = match status.as_u16() {
        401 => "Authentication required",
        404 => "Resource Not Found",
        422 => "Validation Failed",
        429 => "Too Many Requests",
        500 => "Unknown Error",
        _ => msg,
    };
    wire::json(
        status,
        &json!({
            "message": message,
            "errors": [{"name": "base", "reason": msg}],
            "uuid": crate::ids::random_uuid().to_string(),
        }),
    )
}

fn hostname(d: &Device) -> String {
    let slug: String = d
        .device_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{}-{}.local", slug.trim_matches('-'), d.id)
}

fn host_json(d: &Device) -> Value {
    json!({
        "id": d.id,
        "uuid": ids::fleet_host_uuid(d.id),
        "hostname": hostname(d),
        "computer_name": d.device_name,
        "display_name": d.device_name,
        "display_text": hostname(d),
        "hardware_serial": d.serial_number.clone().unwrap_or_default(),
        "hardware_model": "MacBookPro18,3",
        "platform": "darwin",
        "os_version": "macOS 14.5",
        "seen_time": wire::rfc3339(d.last_seen),
        "status": "online",
        "team_id": null,
        "team_name": null,
    })
}

fn label_json(id: u64, name: &str, builtin: bool, smart: bool, count: usize) -> Value {
    json!({
        "id": id,
        "name": name,
        "description": "",
        "query": if builtin || smart { "SELECT 1 FROM os_version;" } else { "" },
        "platform": "",
        "label_type": if builtin { "builtin" } else { "regular" },
        "label_membership_type": if builtin || smart { "dynamic" } else { "manual" },
        "host_count": count,
        "count": count,
        "display_text": name,
        "host_ids": null,
        "created_at": "2024-01-15T08:00:00Z",
        "updated_at": "2024-01-15T08:00:00Z",
    })
}

fn host_detail(cx: &Cx, i: usize) -> Value {
    let w = &cx.world;
    let d = &w.devices[i];
    let mut h = host_json(d);
    let mut labels: Vec<Value> = BUILTIN
        .iter()
        .filter(|b| b.2)
        .map(|b| json!({"id": b.0, "name": b.1, "label_type": "builtin"}))
        .collect();
    labels.extend(w.groups_of[i].iter().map(|&g| {
        let g = &w.groups[g];
        json!({"id": ids::fleet_label_id(g.id), "name": g.name, "label_type": "regular"})
    }));
    h["labels"] = Value::Array(labels);
    h["end_users"] = match &d.user {
        Some(u) => json!([{
            "idp_id": ids::fleet_idp_id(&u.id),
            "idp_username": u.email,
            "idp_full_name": u.name,
            "idp_groups": [],
            "other_emails": [],
            "idp_info_updated_at": "2025-01-01T00:00:00Z",
        }]),
        None => json!([]),
    };
    h["mdm"] =
        json!({"enrollment_status": "On (automatic)", "connected_to_fleet": true, "name": "Fleet"});
    json!({"host": h})
}

/// Page/per_page over `rows`, ordered per `order_key`/`order_direction`.
fn paged_hosts(cx: &Cx, req: &Req, mut rows: Vec<usize>) -> Response {
    let w = &cx.world;
    let per_page = match wire::size_param(req.q("per_page"), DEFAULT_PER_PAGE, 1, usize::MAX) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("per_page {e}")),
    };
    let page = match wire::num_param(req.q("page")) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("page {e}")),
    };
    match req.q("order_key").unwrap_or("id") {
        "id" => {}
        "hostname" => rows.sort_by_key(|&i| hostname(&w.devices[i])),
        "display_name" | "computer_name" => rows.sort_by_key(|&i| w.devices[i].device_name.clone()),
        "hardware_serial" => rows.sort_by_key(|&i| w.devices[i].serial_number.clone()),
        other => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("invalid order_key {other}"),
            );
        }
    }
    if req.q("order_direction") == Some("desc") {
        rows.reverse();
    }
    let pg = req
        .tweaks
        .page(rows.len(), page.saturating_mul(per_page), per_page);
    let hosts: Vec<Value> = rows[pg.range]
        .iter()
        .map(|&i| host_json(&w.devices[i]))
        .collect();
    wire::ok(&json!({"hosts": hosts}))
}

pub(crate) fn handle(route: &str, p: &[String], cx: &Cx, req: &Req) -> Response {
    match req.bearer() {
        None => {
            return wire::json(
                StatusCode::UNAUTHORIZED,
                &json!({"message": "Authorization header required",
                        "errors": [{"name": "base", "reason": "Authorization header required"}]}),
            );
        }
        Some(t) if t != cx.world.scenario.credentials.api_token => {
            return error(StatusCode::UNAUTHORIZED, "Authentication required");
        }
        _ => {}
    }
    let w = &cx.world;
    let all = w.devices.len();
    match route {
        "fleet.me" => wire::ok(&json!({"user": {
            "id": 1,
            "name": "mdmsim API user",
            "email": "api@example.com",
            "global_role": "observer",
            "api_only": true,
            "sso_enabled": false,
            "teams": [],
        }, "available_teams": []})),
        "fleet.labels" => {
            let mut labels: Vec<Value> = BUILTIN
                .iter()
                .map(|b| label_json(b.0, b.1, true, true, if b.2 { all } else { 0 }))
                .collect();
            if !req.tweaks.empty_groups {
                labels.extend(w.groups.iter().enumerate().map(|(gi, g)| {
                    label_json(
                        ids::fleet_label_id(g.id),
                        &g.name,
                        false,
                        g.smart,
                        w.members[gi].len(),
                    )
                }));
            }
            wire::ok(&json!({"labels": labels}))
        }
        "fleet.label_hosts" => {
            let Ok(id) = p[0].parse::<u64>() else {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("label {} was not found in the datastore", p[0]),
                );
            };
            if let Some(b) = BUILTIN.iter().find(|b| b.0 == id) {
                let rows = if b.2 { (0..all).collect() } else { vec![] };
                return paged_hosts(cx, req, rows);
            }
            match w.group(&p[0]) {
                Some(gi) => paged_hosts(cx, req, w.members[gi].clone()),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("label {id} was not found in the datastore"),
                ),
            }
        }
        "fleet.hosts" => {
            let q = req.q("query").unwrap_or("").to_lowercase();
            let rows: Vec<usize> = (0..all)
                .filter(|&i| {
                    let d = &w.devices[i];
                    q.is_empty()
                        || hostname(d).contains(&q)
                        || d.device_name.to_lowercase().contains(&q)
                        || d.serial_number
                            .as_deref()
                            .is_some_and(|s| s.to_lowercase().contains(&q))
                        || ids::fleet_host_uuid(d.id).to_lowercase().contains(&q)
                })
                .collect();
            paged_hosts(cx, req, rows)
        }
        "fleet.host" => match w
            .device_by_key
            .get(&p[0])
            .filter(|&&i| w.devices[i].id.to_string() == p[0])
        {
            Some(&i) => wire::ok(&host_detail(cx, i)),
            None => error(
                StatusCode::NOT_FOUND,
                &format!("host {} was not found in the datastore", p[0]),
            ),
        },
        "fleet.host_identifier" => {
            let ident = &p[0];
            let found = (0..all).find(|&i| {
                let d = &w.devices[i];
                d.serial_number
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(ident))
                    || hostname(d).eq_ignore_ascii_case(ident)
                    || ids::fleet_host_uuid(d.id).eq_ignore_ascii_case(ident)
            });
            match found {
                Some(i) => wire::ok(&host_detail(cx, i)),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("host {ident} was not found in the datastore"),
                ),
            }
        }
        "fleet.refetch" => match w
            .device_by_key
            .get(&p[0])
            .filter(|&&i| w.devices[i].id.to_string() == p[0])
        {
            Some(&i) => {
                cx.shared.record_action(w.devices[i].id);
                wire::ok(&json!({}))
            }
            None => error(
                StatusCode::NOT_FOUND,
                &format!("host {} was not found in the datastore", p[0]),
            ),
        },
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}
