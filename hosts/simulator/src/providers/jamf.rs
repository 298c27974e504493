//! Jamf Pro: OAuth client credentials, Jamf Pro API (`/api/...`) and Classic (`/JSSResource`).

use super::{Cx, Route, rsql};
use crate::ids;
use crate::scenario::Device;
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// Largest `page-size` accepted (none is documented; clients use up to 2,000).
pub(crate) const MAX_PAGE_SIZE: usize = 2000;
/// `page-size` when none is sent.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;

pub(crate) fn route(m: &Method, s: &[&str]) -> Option<Route> {
    let get = m == Method::GET;
    let post = m == Method::POST;
    let r: (&'static str, Vec<String>) = match s {
        ["api", "oauth", "token"] | ["api", "v1", "oauth", "token"] if post => {
            ("jamf.token", vec![])
        }
        ["api", "v1", "auth", "invalidate-token"] if post => ("jamf.invalidate_token", vec![]),
        ["api", "v1", "jamf-pro-version"] if get => ("jamf.version", vec![]),
        ["api", "v1", "computer-groups"] if get => ("jamf.groups", vec![]),
        [
            "api",
            "v2" | "v3",
            "computer-groups",
            "smart-group-membership",
            id,
        ] if get => ("jamf.smart_membership", vec![(*id).to_owned()]),
        ["JSSResource", "computergroups"] if get => ("jamf.classic_groups", vec![]),
        ["JSSResource", "computergroups", "id", id] if get => {
            ("jamf.classic_group", vec![(*id).to_owned()])
        }
        ["api", v @ ("v3" | "v4"), "computers-inventory"] if get => {
            ("jamf.inventory", vec![(*v).to_owned()])
        }
        ["api", v @ ("v3" | "v4"), "computers-inventory", id] if get => (
            "jamf.inventory_item",
            vec![(*v).to_owned(), (*id).to_owned()],
        ),
        ["api", "v2", "mdm", "blank-push"] if post => ("jamf.blank_push", vec![]),
        _ => return None,
    };
    Some(r)
}

fn api_error(status: StatusCode, code: &str, field: Option<&str>, description: &str) -> Response {
    wire::json(
        status,
        &json!({
            "httpStatus": status.as_u16(),
            "errors": [{"code": code, "description": description, "id": "0", "field": field}]
        }),
    )
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    let code = match status.as_u16() {
        400 => "INVALID_FIELD",
        401 => "INVALID_TOKEN",
        403 => "INVALID_PRIVILEGE",
        404 => "NOT_FOUND",
        _ => "UNEXPECTED_ERROR",
    };
    let description = match status.as_u16() {
        401 => "Unauthorized",
        _ => msg,
    };
    api_error(status, code, None, description)
}

fn classic_error(status: StatusCode, text: &str) -> Response {
    wire::raw(
        status,
        "text/html;charset=UTF-8",
        format!(
            "<html><head><title>Status page</title></head><body><p>{text}</p><p>You can get technical details <a href=\"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html\">here</a>.</p></body></html>"
        ),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    wire::json(
        status,
        &json!({"error": error, "error_description": description, "error_uri": null}),
    )
}

pub(crate) fn handle(route: &str, p: &[String], cx: &Cx, req: &Req) -> Response {
    if route == "jamf.token" {
        return token(cx, req);
    }
    let authed = req.bearer().is_some_and(|t| cx.shared.token_valid(t));
    if !authed {
        return if route.starts_with("jamf.classic") {
            classic_error(StatusCode::UNAUTHORIZED, "Unauthorized")
        } else {
            error(StatusCode::UNAUTHORIZED, "Unauthorized")
        };
    }
    let w = &cx.world;
    let opts = &w.scenario.options;
    match route {
        "jamf.invalidate_token" => {
            if let Some(t) = req.bearer() {
                cx.shared
                    .tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(t);
            }
            wire::empty(StatusCode::NO_CONTENT)
        }
        "jamf.version" => wire::ok(&json!({
            "version": if opts.jamf_inventory_v4 { "11.30.1-t1784555528405" } else { "11.20.0-t1758133612" }
        })),
        "jamf.groups" => {
            let list: Vec<Value> = if req.tweaks.empty_groups {
                vec![]
            } else {
                w.groups
                    .iter()
                    .map(|g| json!({"id": g.id.to_string(), "name": g.name, "smartGroup": g.smart}))
                    .collect()
            };
            wire::ok(&Value::Array(list))
        }
        "jamf.smart_membership" => match w.group(&p[0]) {
            Some(gi) if w.groups[gi].smart => {
                let members: Vec<u64> = w.members[gi].iter().map(|&d| w.devices[d].id).collect();
                wire::ok(&json!({"members": members}))
            }
            _ => api_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                Some("id"),
                &format!("Smart computer group with id {} not found", p[0]),
            ),
        },
        "jamf.classic_groups" => {
            let list: Vec<Value> = if req.tweaks.empty_groups {
                vec![]
            } else {
                w.groups
                    .iter()
                    .map(|g| json!({"id": g.id, "name": g.name, "is_smart": g.smart}))
                    .collect()
            };
            wire::ok(&json!({"computer_groups": list}))
        }
        "jamf.classic_group" => match w.group(&p[0]) {
            Some(gi) => {
                let g = &w.groups[gi];
                let computers: Vec<Value> = w.members[gi]
                    .iter()
                    .map(|&d| {
                        let d = &w.devices[d];
                        json!({
                            "id": d.id,
                            "name": d.device_name,
                            "mac_address": mac(d.id, 0),
                            "alt_mac_address": mac(d.id, 1),
                            "serial_number": d.serial_number.clone().unwrap_or_default(),
                        })
                    })
                    .collect();
                wire::ok(&json!({"computer_group": {
                    "id": g.id,
                    "name": g.name,
                    "is_smart": g.smart,
                    "site": {"id": -1, "name": "None"},
                    "criteria": [],
                    "computers": computers,
                }}))
            }
            None => classic_error(StatusCode::NOT_FOUND, "Not Found"),
        },
        "jamf.inventory" => inventory(cx, req, &p[0]),
        "jamf.inventory_item" => {
            if p[0] == "v4" && !opts.jamf_inventory_v4 {
                return error(StatusCode::NOT_FOUND, "No such endpoint");
            }
            let sections = match sections(req) {
                Ok(s) => s,
                Err(e) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_FIELD",
                        Some("section"),
                        &e,
                    );
                }
            };
            match w
                .device_by_key
                .get(&p[1])
                .filter(|&&i| w.devices[i].id.to_string() == p[1])
            {
                Some(&i) => wire::ok(&computer(
                    cx,
                    i,
                    &sections,
                    p[0] == "v4",
                    req.tweaks.empty_groups,
                )),
                None => api_error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    Some("id"),
                    &format!("Computer with id {} not found", p[1]),
                ),
            }
        }
        "jamf.blank_push" => {
            let ids = req
                .json_body()
                .and_then(|b| b.get("clientManagementIds").cloned())
                .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
            let Some(ids) = ids else {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    Some("clientManagementIds"),
                    "Body must be {\"clientManagementIds\": [..]}",
                );
            };
            let mut failed = Vec::new();
            for id in ids {
                match w
                    .device(&id)
                    .filter(|d| ids::jamf_management_id(d.id) == id)
                {
                    Some(d) => cx.shared.record_action(d.id),
                    None => failed.push(id),
                }
            }
            wire::ok(&json!({"errorUuids": failed}))
        }
        _ => error(StatusCode::NOT_FOUND, "No such endpoint"),
    }
}

fn mac(id: u64, alt: u8) -> String {
    let b = id.to_be_bytes();
    format!(
        "AC:DE:{:02X}:{:02X}:{:02X}:{:02X}",
        b[4],
        b[5] ^ alt,
        b[6],
        b[7]
    )
}

fn token(cx: &Cx, req: &Req) -> Response {
    let form = req.form();
    let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let (Some(id), Some(secret)) = (get("client_id"), get("client_secret")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required",
        );
    };
    let c = &cx.world.scenario.credentials;
    if id != c.client_id || secret != c.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let lifetime = cx.world.scenario.token_lifetime(cx.shared.provider);
    let token = cx.shared.issue_token(lifetime);
    wire::ok(&json!({
        "access_token": token,
        "scope": "api-role:1",
        "token_type": "Bearer",
        "expires_in": lifetime,
    }))
}

#[derive(Default)]
struct Sections {
    general: bool,
    hardware: bool,
    user: bool,
    groups: bool,
}

fn sections(req: &Req) -> Result<Sections, String> {
    let mut s = Sections::default();
    let all: Vec<&str> = req
        .q_all("section")
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if all.is_empty() {
        s.general = true;
    }
    for v in all {
        match v {
            "GENERAL" => s.general = true,
            "HARDWARE" => s.hardware = true,
            "USER_AND_LOCATION" => s.user = true,
            "GROUP_MEMBERSHIPS" => s.groups = true,
            "ALL" => {
                s = Sections {
                    general: true,
                    hardware: true,
                    user: true,
                    groups: true,
                }
            }
            "DISK_ENCRYPTION"
            | "PURCHASING"
            | "APPLICATIONS"
            | "STORAGE"
            | "CONFIGURATION_PROFILES"
            | "PRINTERS"
            | "SERVICES"
            | "SECURITY"
            | "OPERATING_SYSTEM"
            | "LOCAL_USER_ACCOUNTS"
            | "CERTIFICATES"
            | "ATTACHMENTS"
            | "PLUGINS"
            | "PACKAGE_RECEIPTS"
            | "FONTS"
            | "LICENSED_SOFTWARE"
            | "IBEACONS"
            | "SOFTWARE_UPDATES"
            | "EXTENSION_ATTRIBUTES"
            | "CONTENT_CACHING" => {}
            other => return Err(format!("Invalid section {other}")),
        }
    }
    Ok(s)
}

fn computer(cx: &Cx, i: usize, s: &Sections, v4: bool, empty_groups: bool) -> Value {
    let w = &cx.world;
    let d: &Device = &w.devices[i];
    let general = s.general.then(|| {
        let seen = wire::rfc3339(d.last_seen);
        let mut g = json!({
            "name": d.device_name,
            "platform": "Mac",
            "managementId": ids::jamf_management_id(d.id),
            "site": {"id": "-1", "name": "None"},
            "supervised": true,
        });
        if v4 {
            g["lastContact"] = seen.clone();
            g["lastCheckIn"] = seen;
        } else {
            g["lastContactTime"] = seen;
            g["lastReportedIp"] = json!("10.0.0.1");
        }
        g
    });
    let hardware = s.hardware.then(|| {
        json!({
            "serialNumber": d.serial_number.clone().unwrap_or_default(),
            "model": "MacBook Pro (14-inch, 2023)",
            "macAddress": mac(d.id, 0),
        })
    });
    let user = s.user.then(|| match &d.user {
        Some(u) => json!({
            "username": u.id, "realname": u.name, "email": u.email,
            "position": "", "phone": "", "departmentId": "-1", "buildingId": "-1", "room": ""
        }),
        None => json!({
            "username": "", "realname": "", "email": "",
            "position": "", "phone": "", "departmentId": "-1", "buildingId": "-1", "room": ""
        }),
    });
    let groups = s.groups.then(|| {
        if empty_groups {
            return json!([]);
        }
        Value::Array(
            w.groups_of[i]
                .iter()
                .map(|&g| {
                    let g = &w.groups[g];
                    json!({"groupId": g.id.to_string(), "groupName": g.name, "groupDescription": "", "smartGroup": g.smart})
                })
                .collect(),
        )
    });
    json!({
        "id": d.id.to_string(),
        "udid": ids::fleet_host_uuid(d.id),
        "general": general,
        "hardware": hardware,
        "userAndLocation": user,
        "groupMemberships": groups,
    })
}

fn field_of(d: &Device, f: &str) -> Option<String> {
    Some(match f {
        "id" => d.id.to_string(),
        "general.name" => d.device_name.clone(),
        "hardware.serialNumber" => d.serial_number.clone().unwrap_or_default(),
        "general.managementId" => ids::jamf_management_id(d.id),
        "userAndLocation.username" => d.user.as_ref().map(|u| u.id.clone()).unwrap_or_default(),
        "userAndLocation.email" => d.user.as_ref().map(|u| u.email.clone()).unwrap_or_default(),
        _ => return None,
    })
}

fn inventory(cx: &Cx, req: &Req, version: &str) -> Response {
    let w = &cx.world;
    if version == "v4" && !w.scenario.options.jamf_inventory_v4 {
        return error(StatusCode::NOT_FOUND, "No such endpoint");
    }
    let size_raw = req
        .q("page-size")
        .or_else(|| req.q("size"))
        .or_else(|| req.q("pagesize"));
    let size = match wire::size_param(size_raw, DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE) {
        Ok(s) => s,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                Some("page-size"),
                &format!("page-size {e}"),
            );
        }
    };
    let page = match wire::num_param(req.q("page")) {
        Ok(p) => p,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                Some("page"),
                &format!("page {e}"),
            );
        }
    };
    let sections = match sections(req) {
        Ok(s) => s,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                Some("section"),
                &e,
            );
        }
    };
    let mut rows: Vec<usize> = (0..w.devices.len()).collect();
    if let Some(f) = req.q("filter").filter(|f| !f.trim().is_empty()) {
        let expr = match rsql::parse(f) {
            Ok(e) => e,
            Err(e) => {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_RSQL_FILTER",
                    Some("filter"),
                    &e,
                );
            }
        };
        let mut kept = Vec::new();
        for i in rows {
            let d = &w.devices[i];
            match expr.eval(&|f| field_of(d, f)) {
                Ok(true) => kept.push(i),
                Ok(false) => {}
                Err(e) => {
                    return api_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_RSQL_FILTER",
                        Some("filter"),
                        &e,
                    );
                }
            }
        }
        rows = kept;
    }
    if let Some(sort) = req.q("sort").filter(|s| !s.is_empty()) {
        let first = sort.split(',').next().unwrap_or("id:asc");
        let (field, dir) = first.split_once(':').unwrap_or((first, "asc"));
        if field_of(&w.devices.first().cloned().unwrap_or_else(dummy), field).is_none() {
            return api_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                Some("sort"),
                &format!("Sorting by {field} is not supported"),
            );
        }
        if field == "id" {
            // already ascending
        } else {
            rows.sort_by_key(|&i| field_of(&w.devices[i], field).unwrap_or_default());
        }
        if dir.eq_ignore_ascii_case("desc") {
            rows.reverse();
        }
    }
    let pg = req.tweaks.page(rows.len(), page.saturating_mul(size), size);
    let results: Vec<Value> = rows[pg.range]
        .iter()
        .map(|&i| computer(cx, i, &sections, version == "v4", req.tweaks.empty_groups))
        .collect();
    wire::ok(&json!({"totalCount": rows.len(), "results": results}))
}

fn dummy() -> Device {
    Device {
        id: 1,
        serial_number: None,
        device_name: String::new(),
        user: None,
        last_seen: None,
        kiosk: false,
    }
}
