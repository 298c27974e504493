//! JumpCloud: `x-api-key` (+ `x-org-id`), v2 system groups and membership (bare arrays,
//! `limit` default 10, max 100, `skip`), v1 systems (`{totalCount, results}`) and system users.

use super::{Cx, Route};
use crate::ids;
use crate::scenario::Device;
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// `limit` when none is sent.
pub(crate) const DEFAULT_LIMIT: usize = 10;
/// Largest `limit`; more is a 400.
pub(crate) const MAX_LIMIT: usize = 100;

pub(crate) fn route(m: &Method, s: &[&str]) -> Option<Route> {
    if m != Method::GET {
        return None;
    }
    let r: Route = match s {
        ["api", "v2", "systemgroups"] => ("jumpcloud.systemgroups", vec![]),
        ["api", "v2", "systemgroups", id] => ("jumpcloud.systemgroup", vec![(*id).to_owned()]),
        ["api", "v2", "systemgroups", id, "membership"] => {
            ("jumpcloud.membership", vec![(*id).to_owned()])
        }
        ["api", "v2", "systemgroups", id, "members"] => {
            ("jumpcloud.members", vec![(*id).to_owned()])
        }
        ["api", "systems"] => ("jumpcloud.systems", vec![]),
        ["api", "systems", id] => ("jumpcloud.system", vec![(*id).to_owned()]),
        ["api", "systemusers", id] => ("jumpcloud.systemuser", vec![(*id).to_owned()]),
        _ => return None,
    };
    Some(r)
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    wire::json(
        status,
        &json!({
            "code": status.as_u16(),
            "message": msg,
            "status": status.canonical_reason().unwrap_or("Error"),
        }),
    )
}

fn paging(req: &Req) -> Result<(usize, usize), Response> {
    let limit = wire::size_param(req.q("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("limit {e}")))?;
    let skip = wire::num_param(req.q("skip"))
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("skip {e}")))?;
    Ok((limit, skip))
}

/// `field:op:value` filters (`eq`/`$eq`), all must hold.
fn filters(req: &Req) -> Result<Vec<(String, String)>, Response> {
    req.q_all("filter")
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(|f| {
            let mut parts = f.splitn(3, ':');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(field), Some("eq" | "$eq"), Some(v)) => Ok((field.to_owned(), v.to_owned())),
                _ => Err(error(
                    StatusCode::BAD_REQUEST,
                    &format!("unsupported filter {f:?}; use field:$eq:value"),
                )),
            }
        })
        .collect()
}

fn group_json(g: &crate::scenario::Group) -> Value {
    json!({
        "id": ids::jumpcloud_group_id(g.id),
        "name": g.name,
        "type": "system_group",
        "description": "",
        "membershipMethod": if g.smart { "DYNAMIC_AUTOMATED" } else { "STATIC" },
        "memberQuery": if g.smart { json!({"queryType": "FilterQuery", "filters": [{"field": "os", "operator": "eq", "value": "Mac OS X"}]}) } else { Value::Null },
        "memberQueryExemptions": [],
        "email": "",
        "attributes": null,
    })
}

fn system_json(d: &Device) -> Value {
    let mut s = json!({
        "_id": ids::jumpcloud_system_id(d.id),
        "displayName": d.device_name,
        "hostname": format!("{}.local", d.device_name.replace([' ', '\''], "-")),
        "serialNumber": d.serial_number.clone().unwrap_or_default(),
        "os": "Mac OS X",
        "osFamily": "darwin",
        "version": "14.5",
        "arch": "arm64",
        "lastContact": wire::rfc3339(d.last_seen),
        "active": true,
        "created": "2024-01-10T10:00:00.000Z",
        "organization": "5f3a1c0f0000000000000001",
        "mdm": {"dep": true, "vendor": "internal", "userApproved": true},
    });
    if let Some(u) = &d.user {
        s["primarySystemUser"] = json!({"id": ids::jumpcloud_user_id(&u.id)});
    }
    s
}

pub(crate) fn handle(route: &str, p: &[String], cx: &Cx, req: &Req) -> Response {
    let c = &cx.world.scenario.credentials;
    if req.header("x-api-key") != Some(c.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    if let Some(org) = &c.org_id {
        match req.header("x-org-id") {
            None => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "ID not included for multi-tenant admin",
                );
            }
            Some(o) if o != org => return error(StatusCode::NOT_FOUND, "Organization not found"),
            _ => {}
        }
    }
    let w = &cx.world;
    let not_found = |what: &str| error(StatusCode::NOT_FOUND, &format!("{what} not found"));
    match route {
        "jumpcloud.systemgroups" => {
            let (limit, skip) = match paging(req) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let fs = match filters(req) {
                Ok(f) => f,
                Err(r) => return r,
            };
            let mut groups: Vec<Value> = if req.tweaks.empty_groups {
                vec![]
            } else {
                w.groups.iter().map(group_json).collect()
            };
            groups.retain(|g| {
                fs.iter().all(|(f, v)| match g.get(f) {
                    Some(Value::String(s)) => s == v,
                    _ => false,
                })
            });
            let pg = req.tweaks.page(groups.len(), skip, limit);
            wire::ok(&Value::Array(groups[pg.range].to_vec()))
        }
        "jumpcloud.systemgroup" => match w.group(&p[0]) {
            Some(gi) => wire::ok(&group_json(&w.groups[gi])),
            None => not_found("System group"),
        },
        "jumpcloud.membership" | "jumpcloud.members" => {
            let Some(gi) = w.group(&p[0]) else {
                return not_found("System group");
            };
            let (limit, skip) = match paging(req) {
                Ok(x) => x,
                Err(r) => return r,
            };
            // The association list as stored: with null associations, a dangling entry after
            // the first member, filtered out after paging (so that page comes back short).
            let mut assoc: Vec<Option<usize>> = w.members[gi].iter().map(|&d| Some(d)).collect();
            if w.scenario.options.jumpcloud_null_associations && !assoc.is_empty() {
                assoc.insert(1, None);
            }
            let pg = req.tweaks.page(assoc.len(), skip, limit);
            let gid = ids::jumpcloud_group_id(w.groups[gi].id);
            let items: Vec<Value> = assoc[pg.range]
                .iter()
                .flatten()
                .map(|&d| {
                    let sid = ids::jumpcloud_system_id(w.devices[d].id);
                    if route == "jumpcloud.membership" {
                        json!({
                            "id": sid,
                            "type": "system",
                            "paths": [[{"attributes": null, "to": {"attributes": null, "id": gid, "type": "system_group"}}]],
                            "compiledAttributes": null,
                        })
                    } else {
                        json!({"to": {"id": sid, "type": "system", "attributes": null}, "attributes": null})
                    }
                })
                .collect();
            wire::ok(&Value::Array(items))
        }
        "jumpcloud.systems" => {
            let (limit, skip) = match paging(req) {
                Ok(x) => x,
                Err(r) => return r,
            };
            let fs = match filters(req) {
                Ok(f) => f,
                Err(r) => return r,
            };
            let rows: Vec<Value> = w
                .devices
                .iter()
                .map(system_json)
                .filter(|s| {
                    fs.iter().all(|(f, v)| match s.get(f) {
                        Some(Value::String(x)) => x.eq_ignore_ascii_case(v),
                        _ => false,
                    })
                })
                .collect();
            let pg = req.tweaks.page(rows.len(), skip, limit);
            wire::ok(&json!({"totalCount": rows.len(), "results": rows[pg.range].to_vec()}))
        }
        "jumpcloud.system" => match w.device(&p[0]) {
            Some(d) => wire::ok(&system_json(d)),
            None => not_found("System"),
        },
        "jumpcloud.systemuser" => match w.users.get(&p[0]) {
            Some(&i) => {
                let Some(u) = &w.devices[i].user else {
                    return not_found("User");
                };
                let (first, last) = u.name.split_once(' ').unwrap_or((u.name.as_str(), ""));
                wire::ok(&json!({
                    "_id": p[0],
                    "username": u.id,
                    "displayname": u.name,
                    "firstname": first,
                    "lastname": last,
                    "email": u.email,
                    "employeeIdentifier": null,
                    "activated": true,
                    "state": "ACTIVATED",
                }))
            }
            None => not_found("User"),
        },
        _ => not_found("Resource"),
    }
}
