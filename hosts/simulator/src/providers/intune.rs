//! Microsoft Intune: the Entra token endpoint and Microsoft Graph v1.0 (groups, device members,
//! managed devices, syncDevice).

use super::{Cx, Route};
use crate::ids;
use crate::scenario::Device;
use crate::wire::{self, Req};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

/// `$top` when none is sent, directory collections (groups, members).
pub(crate) const DIRECTORY_DEFAULT_TOP: usize = 100;
/// Largest `$top` for directory collections; more is a 400.
pub(crate) const DIRECTORY_MAX_TOP: usize = 999;
/// `$top` when none is sent, and the cap, for managed devices (larger `$top` is clamped).
pub(crate) const MANAGED_DEVICES_TOP: usize = 1000;

const SKIP_PREFIX: &str = "RFNwdAIAAQAAAB";

pub(crate) fn route(m: &Method, s: &[&str]) -> Option<Route> {
    let get = m == Method::GET;
    let post = m == Method::POST;
    let r: Route = match s {
        [tenant, "oauth2", "v2.0", "token"] if post => ("intune.token", vec![(*tenant).to_owned()]),
        ["v1.0", "groups"] if get => ("intune.groups", vec![]),
        ["v1.0", "groups", id] if get => ("intune.group", vec![(*id).to_owned()]),
        [
            "v1.0",
            "groups",
            id,
            rel @ ("members" | "transitiveMembers"),
        ] if get => (
            "intune.group_members",
            vec![(*id).to_owned(), (*rel).to_owned(), String::new()],
        ),
        [
            "v1.0",
            "groups",
            id,
            rel @ ("members" | "transitiveMembers"),
            "microsoft.graph.device",
        ] if get => (
            "intune.group_members",
            vec![(*id).to_owned(), (*rel).to_owned(), "cast".to_owned()],
        ),
        ["v1.0", "deviceManagement", "managedDevices"] if get => ("intune.managed_devices", vec![]),
        ["v1.0", "deviceManagement", "managedDevices", id] if get => {
            ("intune.managed_device", vec![(*id).to_owned()])
        }
        [
            "v1.0",
            "deviceManagement",
            "managedDevices",
            id,
            "syncDevice",
        ] if post => ("intune.sync_device", vec![(*id).to_owned()]),
        _ => return None,
    };
    Some(r)
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    wire::json(
        status,
        &json!({"error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now,
                "request-id": crate::ids::random_uuid().to_string(),
                "client-request-id": crate::ids::random_uuid().to_string(),
            }
        }}),
    )
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    let code = match status.as_u16() {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Authorization_RequestDenied",
        404 => "Request_ResourceNotFound",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    };
    graph_error(status, code, msg)
}

pub(crate) fn expired_page_token() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )
}

fn aad_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace = crate::ids::random_uuid().to_string();
    wire::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {trace} Timestamp: {now}"),
            "error_codes": [code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": trace,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn token(cx: &Cx, req: &Req, tenant: &str) -> Response {
    let c = &cx.world.scenario.credentials;
    if !tenant.eq_ignore_ascii_case(&c.tenant_id) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let form = req.form();
    let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !get("scope").is_some_and(|s| s.ends_with("/.default")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    if get("client_id") != Some(c.client_id.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if get("client_secret") != Some(c.client_secret.as_str()) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let lifetime = cx.world.scenario.token_lifetime(cx.shared.provider);
    let token = cx.shared.issue_token(lifetime);
    wire::ok(&json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }))
}

/// One `$filter` condition.
enum Cond {
    Eq(String, Value),
    Any(String, String),
}

fn parse_filter(f: &str) -> Result<Vec<Vec<Cond>>, String> {
    let mut ors = Vec::new();
    for o in f.split(" or ") {
        let mut ands = Vec::new();
        for a in o.split(" and ") {
            let a = a
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            if let Some((field, rest)) = a.split_once("/any(") {
                let v = rest
                    .split_once(" eq ")
                    .map(|(_, v)| v.trim_end_matches(')').trim().trim_matches('\'').to_owned())
                    .ok_or_else(|| format!("unsupported filter clause {a:?}"))?;
                ands.push(Cond::Any(field.to_owned(), v));
                continue;
            }
            let (field, val) = a
                .split_once(" eq ")
                .ok_or_else(|| format!("unsupported filter clause {a:?}"))?;
            let val = val.trim();
            let v = if val == "true" || val == "false" {
                Value::Bool(val == "true")
            } else if val.starts_with('\'') && val.ends_with('\'') && val.len() >= 2 {
                Value::String(val[1..val.len() - 1].replace("''", "'"))
            } else {
                return Err(format!("unsupported filter value {val:?}"));
            };
            ands.push(Cond::Eq(field.trim().to_owned(), v));
        }
        ors.push(ands);
    }
    Ok(ors)
}

fn filter_matches(f: &[Vec<Cond>], obj: &Value, allowed: &[&str]) -> Result<bool, String> {
    for ands in f {
        let mut all = true;
        for c in ands {
            let ok = match c {
                Cond::Eq(field, v) => {
                    if !allowed.contains(&field.as_str()) {
                        return Err(format!("filtering on {field} is not supported"));
                    }
                    match (obj.get(field), v) {
                        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
                        (Some(a), b) => a == b,
                        (None, _) => false,
                    }
                }
                Cond::Any(field, v) => {
                    if !allowed.contains(&field.as_str()) {
                        return Err(format!("filtering on {field} is not supported"));
                    }
                    obj.get(field)
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(v)))
                }
            };
            if !ok {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

fn project(mut v: Value, select: Option<&str>) -> Value {
    let Some(sel) = select.filter(|s| !s.trim().is_empty()) else {
        return v;
    };
    let keep: Vec<&str> = sel.split(',').map(str::trim).collect();
    if let Value::Object(m) = &mut v {
        let kept: Map<String, Value> = std::mem::take(m)
            .into_iter()
            .filter(|(k, _)| k.starts_with("@odata") || keep.contains(&k.as_str()))
            .collect();
        *m = kept;
    }
    v
}

fn top(req: &Req, default: usize, max: usize, clamp: bool) -> Result<usize, Response> {
    match req.q("$top") {
        None | Some("") => Ok(default),
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n >= 1 && n <= max => Ok(n),
            Ok(n) if n > max && clamp => Ok(max),
            _ => Err(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                &format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and {max} inclusive."
                ),
            )),
        },
    }
}

fn skip(req: &Req) -> Result<usize, Response> {
    match req.q("$skiptoken") {
        None | Some("") => Ok(0),
        Some(t) => t
            .strip_prefix(SKIP_PREFIX)
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                graph_error(
                    StatusCode::BAD_REQUEST,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included in your request.",
                )
            }),
    }
}

/// A Graph collection page with `@odata.nextLink` (verbatim URL with an opaque `$skiptoken`).
fn collection(req: &Req, context: &str, items: Vec<Value>, size: usize) -> Response {
    let start = match skip(req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let total = items.len();
    let pg = req.tweaks.page(total, start, size);
    let select = req.q("$select");
    let value: Vec<Value> = items[pg.range]
        .iter()
        .cloned()
        .map(|v| project(v, select))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}/v1.0/$metadata#{context}", req.origin)),
    );
    if req.q("$count") == Some("true") {
        body.insert("@odata.count".into(), json!(total));
    }
    if let Some(n) = pg.next {
        body.insert(
            "@odata.nextLink".into(),
            json!(req.url_with(&[("$skiptoken", format!("{SKIP_PREFIX}{n:x}"))])),
        );
    }
    body.insert("value".into(), Value::Array(value));
    wire::ok(&Value::Object(body))
}

fn group_json(g: &crate::scenario::Group) -> Value {
    json!({
        "id": ids::intune_group_id(g.id),
        "displayName": g.name,
        "description": null,
        "groupTypes": if g.smart { json!(["DynamicMembership"]) } else { json!([]) },
        "membershipRule": if g.smart { json!("(device.deviceOSType -eq \"MacMDM\")") } else { Value::Null },
        "membershipRuleProcessingState": if g.smart { json!("On") } else { Value::Null },
        "securityEnabled": true,
        "mailEnabled": false,
        "mailNickname": format!("sim-group-{}", g.id),
        "createdDateTime": "2024-01-15T08:00:00Z",
    })
}

fn m365_group() -> Value {
    json!({
        "id": ids::intune_group_id(0),
        "displayName": "All Company",
        "description": "Microsoft 365 group (not a security group)",
        "groupTypes": ["Unified"],
        "membershipRule": null,
        "membershipRuleProcessingState": null,
        "securityEnabled": false,
        "mailEnabled": true,
        "mailNickname": "allcompany",
        "createdDateTime": "2024-01-01T08:00:00Z",
    })
}

fn managed_device(d: &Device) -> Value {
    let (uid, upn, uname, email) = match &d.user {
        Some(u) => (
            ids::intune_user_id(&u.id),
            u.email.clone(),
            u.name.clone(),
            u.email.clone(),
        ),
        None => Default::default(),
    };
    json!({
        "id": ids::intune_managed_device_id(d.id),
        "userId": uid,
        "deviceName": d.device_name,
        "managedDeviceOwnerType": "company",
        "operatingSystem": "macOS",
        "osVersion": "14.5 (23F79)",
        "complianceState": "compliant",
        "lastSyncDateTime": wire::rfc3339(d.last_seen),
        "azureADRegistered": !d.kiosk,
        "azureADDeviceId": if d.kiosk { ids::ZERO_GUID.to_owned() } else { ids::intune_entra_device_id(d.id) },
        "serialNumber": d.serial_number.clone().unwrap_or_default(),
        "userPrincipalName": upn,
        "userDisplayName": uname,
        "emailAddress": email,
        "model": "MacBook Pro",
        "manufacturer": "Apple",
    })
}

pub(crate) fn handle(route: &str, p: &[String], cx: &Cx, req: &Req) -> Response {
    if route == "intune.token" {
        return token(cx, req, &p[0]);
    }
    match req.bearer() {
        None => return error(StatusCode::UNAUTHORIZED, "Access token is empty."),
        Some(t) if !cx.shared.token_valid(t) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "Access token has expired or is not yet valid.",
            );
        }
        _ => {}
    }
    let w = &cx.world;
    match route {
        "intune.groups" => {
            let size = match top(req, DIRECTORY_DEFAULT_TOP, DIRECTORY_MAX_TOP, false) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let mut all: Vec<Value> = Vec::new();
            if !req.tweaks.empty_groups {
                all.push(m365_group());
                all.extend(w.groups.iter().map(group_json));
            }
            if let Some(f) = req.q("$filter").filter(|f| !f.trim().is_empty()) {
                let parsed = match parse_filter(f) {
                    Ok(p) => p,
                    Err(e) => {
                        return graph_error(
                            StatusCode::BAD_REQUEST,
                            "Request_UnsupportedQuery",
                            &e,
                        );
                    }
                };
                let allowed = [
                    "securityEnabled",
                    "mailEnabled",
                    "displayName",
                    "id",
                    "groupTypes",
                ];
                let mut kept = Vec::new();
                for g in all {
                    match filter_matches(&parsed, &g, &allowed) {
                        Ok(true) => kept.push(g),
                        Ok(false) => {}
                        Err(e) => {
                            return graph_error(
                                StatusCode::BAD_REQUEST,
                                "Request_UnsupportedQuery",
                                &e,
                            );
                        }
                    }
                }
                all = kept;
            }
            collection(req, "groups", all, size)
        }
        "intune.group" => match w.group(&p[0]) {
            Some(gi) => wire::ok(&project(group_json(&w.groups[gi]), req.q("$select"))),
            None => not_found(&p[0]),
        },
        "intune.group_members" => {
            let Some(gi) = w.group(&p[0]) else {
                return not_found(&p[0]);
            };
            let cast = p[2] == "cast";
            if cast
                && w.scenario.options.intune_require_consistency_level
                && (!req
                    .header("consistencylevel")
                    .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
                    || req.q("$count") != Some("true"))
            {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "The requested OData cast requires the 'ConsistencyLevel: eventual' header and '$count=true'.",
                );
            }
            let size = match top(req, DIRECTORY_DEFAULT_TOP, DIRECTORY_MAX_TOP, false) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let full = w.scenario.options.intune_device_read_all;
            let items: Vec<Value> = w.members[gi]
                .iter()
                .map(|&d| &w.devices[d])
                .filter(|d| !d.kiosk)
                .map(|d| {
                    if full {
                        json!({
                            "@odata.type": "#microsoft.graph.device",
                            "id": ids::intune_entra_object_id(d.id),
                            "deviceId": ids::intune_entra_device_id(d.id),
                            "displayName": d.device_name,
                            "operatingSystem": "MacMDM",
                            "accountEnabled": true,
                        })
                    } else {
                        json!({
                            "@odata.type": "#microsoft.graph.device",
                            "id": ids::intune_entra_object_id(d.id),
                            "deviceId": null,
                            "displayName": null,
                            "operatingSystem": null,
                            "accountEnabled": null,
                        })
                    }
                })
                .collect();
            collection(req, "devices", items, size)
        }
        "intune.managed_devices" => {
            let size = match top(req, MANAGED_DEVICES_TOP, MANAGED_DEVICES_TOP, true) {
                Ok(s) => s,
                Err(r) => return r,
            };
            let mut items: Vec<Value> = w.devices.iter().map(managed_device).collect();
            if let Some(f) = req.q("$filter").filter(|f| !f.trim().is_empty()) {
                let parsed = match parse_filter(f) {
                    Ok(p) => p,
                    Err(e) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &e),
                };
                let allowed = [
                    "serialNumber",
                    "azureADDeviceId",
                    "deviceName",
                    "id",
                    "userId",
                ];
                let mut kept = Vec::new();
                for d in items {
                    match filter_matches(&parsed, &d, &allowed) {
                        Ok(true) => kept.push(d),
                        Ok(false) => {}
                        Err(e) => return graph_error(StatusCode::BAD_REQUEST, "BadRequest", &e),
                    }
                }
                items = kept;
            }
            collection(req, "deviceManagement/managedDevices", items, size)
        }
        "intune.managed_device" => match w.device(&p[0]) {
            Some(d) => wire::ok(&project(managed_device(d), req.q("$select"))),
            None => not_found(&p[0]),
        },
        "intune.sync_device" => match w.device(&p[0]) {
            Some(d) => {
                cx.shared.record_action(d.id);
                wire::empty(StatusCode::NO_CONTENT)
            }
            None => not_found(&p[0]),
        },
        _ => error(StatusCode::NOT_FOUND, "Resource not found for the segment."),
    }
}

fn not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}
