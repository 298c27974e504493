//! The JSON documents of the contract (docs/cli.md) and their human-readable tables.

use crate::output::{or_dash, table};
use chrono::{DateTime, SecondsFormat, Utc};
use mdmsync_core::workspace::Workspace;
use mdmsync_core::{EventEnvelope, GroupSource, Provider, SyncReport, WorkspaceId};
use mdmsync_sqlite::query::SourceKind;
use mdmsync_sqlite::{DeviceRow, GroupWithMembers, HistoryEntry, WorkspaceRow};
use serde_json::{Value, json};

/// A time as printed: RFC 3339, seconds, `Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time as JSON (RFC 3339 with the precision stored).
pub fn time_json(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    })
}

/// `workspace list` rows.
pub fn workspace_json(w: &WorkspaceRow) -> Value {
    json!({
        "id": w.workspace_id,
        "name": w.name,
        "plan": w.plan,
        "provider": w.provider,
    })
}

/// `workspace list` as a table.
pub fn workspaces_text(rows: &[WorkspaceRow]) -> String {
    if rows.is_empty() {
        return "No workspaces yet; create one with `mdmsync workspace create --name N --plan pro`."
            .into();
    }
    table(
        &["NAME", "PLAN", "PROVIDER", "ID"],
        &rows
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    w.plan.to_string(),
                    or_dash(w.provider.map(|p| p.display_name())),
                    w.workspace_id.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

/// One member in a group document.
fn member_json(device_id: impl serde::Serialize, serial: Option<&str>) -> Value {
    json!({ "device_id": device_id, "serial_number": serial })
}

/// One group of `groups list` (and of every group command).
pub fn group_json(g: &GroupWithMembers) -> Value {
    json!({
        "id": g.group.group_id,
        "name": g.group.name,
        "source": match g.group.source { SourceKind::Manual => "manual", SourceKind::Synced => "synced" },
        "provider": g.group.provider,
        "mdm_group_id": g.group.mdm_group_id,
        "managed_by": g.group.managed_by,
        "members": g.members.iter().map(|m| member_json(m.device_id, m.serial_number.as_deref())).collect::<Vec<_>>(),
    })
}

/// A short source column: `manual`, `Jamf #3`, `Microsoft Intune #c6a630ca…` (long MDM ids
/// are cut in tables; the JSON has them whole).
fn source_text(provider: Option<Provider>, mdm_group_id: Option<&str>) -> String {
    match provider {
        None => "manual".into(),
        Some(p) => {
            let id = mdm_group_id.unwrap_or("?");
            let id = if id.chars().count() > 12 {
                format!("{}…", id.chars().take(8).collect::<String>())
            } else {
                id.to_owned()
            };
            format!("{} #{id}", p.display_name())
        }
    }
}

/// Members as serials (or short ids), at most `max` then `…`.
fn members_text<'a>(members: impl Iterator<Item = (String, Option<&'a str>)>) -> String {
    let all: Vec<String> = members
        .map(|(id, serial)| serial.map_or_else(|| id.chars().take(8).collect(), str::to_owned))
        .collect();
    if all.is_empty() {
        return "-".into();
    }
    const MAX: usize = 6;
    let mut s = all.iter().take(MAX).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > MAX {
        s.push_str(&format!(", … ({} in all)", all.len()));
    }
    s
}

/// Groups as a table.
pub fn groups_text(groups: &[GroupWithMembers]) -> String {
    if groups.is_empty() {
        return "No groups.".into();
    }
    table(
        &["NAME", "SOURCE", "MEMBERS", "ID"],
        &groups
            .iter()
            .map(|g| {
                vec![
                    g.group.name.clone(),
                    source_text(
                        g.group.provider,
                        g.group.mdm_group_id.as_ref().map(|m| m.as_str()),
                    ),
                    members_text(
                        g.members
                            .iter()
                            .map(|m| (m.device_id.to_string(), m.serial_number.as_deref())),
                    ),
                    g.group.group_id.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    )
}

/// One group as text (after a group command), with its policies.
pub fn group_text(g: &GroupWithMembers) -> String {
    let mut s = format!(
        "{} ({}) — {} member{}\n  id: {}",
        g.group.name,
        source_text(
            g.group.provider,
            g.group.mdm_group_id.as_ref().map(|m| m.as_str())
        ),
        g.members.len(),
        if g.members.len() == 1 { "" } else { "s" },
        g.group.group_id
    );
    if let Some(by) = &g.group.managed_by {
        s.push_str(&format!(
            "\n  name and members managed by {by}; policies editable"
        ));
    }
    if !g.members.is_empty() {
        s.push_str("\n  members: ");
        s.push_str(&members_text(
            g.members
                .iter()
                .map(|m| (m.device_id.to_string(), m.serial_number.as_deref())),
        ));
    }
    if let Some(obj) = g.group.policies.as_object() {
        for (k, v) in obj {
            s.push_str(&format!("\n  policy {k} = {v}"));
        }
    }
    s
}

/// The `groups list` document of a state folded from the log (`state --as-of`), ordered as
/// `groups list` orders (name, case-insensitively, then id).
pub fn state_groups_json(ws: &Workspace) -> (Value, String) {
    let mut groups: Vec<_> = ws.groups().iter().collect();
    groups.sort_by(|a, b| {
        a.1.name
            .to_ascii_lowercase()
            .cmp(&b.1.name.to_ascii_lowercase())
            .then(a.0.cmp(b.0))
    });
    let serial = |d: &mdmsync_core::DeviceId| {
        ws.devices()
            .get(d)
            .and_then(|dev| dev.serial_number.clone())
    };
    let json: Vec<Value> = groups
        .iter()
        .map(|(id, g)| {
            let (provider, mdm) = match &g.source {
                GroupSource::Manual => (None, None),
                GroupSource::Synced {
                    provider,
                    mdm_group_id,
                } => (Some(*provider), Some(mdm_group_id.clone())),
            };
            json!({
                "id": id,
                "name": g.name,
                "source": if provider.is_some() { "synced" } else { "manual" },
                "provider": provider,
                "mdm_group_id": mdm,
                "managed_by": provider.map(|p| p.display_name()),
                "members": g.members.iter().map(|d| member_json(d, serial(d).as_deref())).collect::<Vec<_>>(),
            })
        })
        .collect();
    let text = if groups.is_empty() {
        "No groups.".to_owned()
    } else {
        table(
            &["NAME", "SOURCE", "MEMBERS", "ID"],
            &groups
                .iter()
                .map(|(id, g)| {
                    let (p, m) = match &g.source {
                        GroupSource::Manual => (None, None),
                        GroupSource::Synced {
                            provider,
                            mdm_group_id,
                        } => (Some(*provider), Some(mdm_group_id.as_str())),
                    };
                    let serials: Vec<(String, Option<String>)> = g
                        .members
                        .iter()
                        .map(|d| (d.to_string(), serial(d)))
                        .collect();
                    vec![
                        g.name.clone(),
                        source_text(p, m),
                        members_text(serials.iter().map(|(i, s)| (i.clone(), s.as_deref()))),
                        id.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        )
    };
    (Value::Array(json), text)
}

/// One device of `devices list`.
pub fn device_json(d: &DeviceRow) -> Value {
    json!({
        "id": d.device_id,
        "serial_number": d.serial_number,
        "name": d.name,
        "mdm_device_id": d.mdm_device_id,
        "mdm_user_id": d.mdm_user_id,
        "mdm_display_name": d.mdm_display_name,
        "console_url": d.console_url,
    })
}

/// Devices as a table.
pub fn devices_text(devices: &[DeviceRow], provider: Option<Provider>) -> String {
    if devices.is_empty() {
        return "No devices.".into();
    }
    let link = provider.map_or_else(|| "CONSOLE".to_owned(), |p| p.console_link_text());
    let mut s = table(
        &["SERIAL", "NAME", "MDM ID", "MDM DISPLAY NAME", "ID"],
        &devices
            .iter()
            .map(|d| {
                vec![
                    or_dash(d.serial_number.as_deref()),
                    or_dash(d.name.as_deref()),
                    or_dash(d.mdm_device_id.as_deref()),
                    or_dash(d.mdm_display_name.as_deref()),
                    d.device_id.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let links: Vec<_> = devices
        .iter()
        .filter_map(|d| {
            d.console_url
                .as_ref()
                .map(|u| format!("  {} — {link}: {u}", or_dash(d.serial_number.as_deref())))
        })
        .collect();
    if !links.is_empty() {
        s.push_str("\n\nConsole links:\n");
        s.push_str(&links.join("\n"));
    }
    s
}

/// The report object of the `sync` document.
pub fn report_json(r: &SyncReport) -> Value {
    json!({
        "created": r.created,
        "renamed": r.renamed,
        "detached": r.detached,
        "members_added": r.members_added,
        "members_removed": r.members_removed,
        "unmatched_members": r.unmatched_members,
    })
}

/// A report in words.
pub fn report_text(r: &SyncReport) -> String {
    let mut s = format!(
        "{} created, {} renamed, {} detached, {} members added, {} removed",
        r.created, r.renamed, r.detached, r.members_added, r.members_removed
    );
    if r.unmatched_members > 0 {
        s.push_str(&format!(
            "; {} MDM members match no device here (import them, then refresh metadata)",
            r.unmatched_members
        ));
    }
    if r.excluded > 0 {
        s.push_str(&format!(
            "; {} MDM groups excluded (deleted here; `groups include` brings them back)",
            r.excluded
        ));
    }
    s
}

/// An event as listed by `history` and by `sync --dry-run` (`position` null when not stored).
pub fn envelope_json(e: &EventEnvelope) -> Value {
    let ev = serde_json::to_value(&e.event).unwrap_or(Value::Null);
    json!({
        "position": null,
        "recorded_at": time_json(Some(e.meta.recorded_at)),
        "type": e.event.event_type(),
        "actor": e.meta.actor.to_string(),
        "sync_id": e.meta.sync_id,
        "data": ev.get("data").cloned().unwrap_or(Value::Null),
    })
}

/// One `history` entry.
pub fn history_json(h: &HistoryEntry) -> Value {
    json!({
        "position": h.position,
        "recorded_at": time_json(Some(h.recorded_at)),
        "type": h.event_type,
        "actor": h.actor,
        "sync_id": h.sync_id,
        "data": h.data,
    })
}

/// What an event did, in a few words (for history tables).
pub fn summary(event_type: &str, data: &Value, names: &dyn Fn(&str) -> Option<String>) -> String {
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let group = |k: &str| {
        let id = s(k);
        names(&id).unwrap_or_else(|| id.chars().take(8).collect())
    };
    match event_type {
        "WorkspaceCreated" => format!("workspace {:?}, plan {}", s("name"), s("plan")),
        "PlanChanged" => format!("plan {} → {}", s("from"), s("to")),
        "ProviderConnected" => format!("connected to {}", s("provider")),
        "CredentialsChanged" => format!("new credentials for {}", s("provider")),
        "ProviderDisconnected" => format!("disconnected from {}", s("provider")),
        "DeviceRegistered" => match (s("serial_number").as_str(), s("name").as_str()) {
            ("", name) => format!("device {name:?} (no serial number)"),
            (serial, "") => format!("device {serial}"),
            (serial, name) => format!("device {serial} ({name})"),
        },
        "DeviceMetadataRecorded" => {
            let m = data.get("metadata").cloned().unwrap_or(Value::Null);
            format!(
                "{} → MDM id {}, {}",
                names(&s("device_id")).unwrap_or_default(),
                m.get("mdm_device_id")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                m.get("mdm_display_name")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
            )
        }
        "DeviceMetadataCleared" => format!(
            "{} metadata cleared ({})",
            names(&s("device_id")).unwrap_or_default(),
            s("reason")
        ),
        "GroupCreated" => format!("{:?}", s("name")),
        "GroupRenamed" => format!("{:?} → {:?}", s("from"), s("to")),
        "GroupDetached" => format!("{} ({}, now manual)", group("group_id"), s("reason")),
        "GroupDeleted" => format!("{:?}", s("name")),
        "GroupExcluded" | "GroupIncluded" => {
            format!("{} group {}", s("provider"), s("mdm_group_id"))
        }
        "MemberAdded" => format!(
            "{} → {}",
            names(&s("device_id")).unwrap_or_default(),
            group("group_id")
        ),
        "MemberRemoved" => format!(
            "{} ✕ {}",
            names(&s("device_id")).unwrap_or_default(),
            group("group_id")
        ),
        "GroupPolicySet" => format!(
            "{}: {} = {}",
            group("group_id"),
            s("key"),
            data.get("value").cloned().unwrap_or(Value::Null)
        ),
        "SyncSucceeded" => {
            let r: SyncReport = data
                .get("report")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default();
            format!("{} ({})", report_text(&r), s("trigger"))
        }
        "SyncFailed" => format!("{}: {} ({})", s("kind"), s("message"), s("trigger")),
        "SyncHeld" => {
            let reason: Option<mdmsync_core::HoldReason> = data
                .get("reason")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok());
            format!("{} ({})", or_dash(reason), s("trigger"))
        }
        "SyncConfirmed" => format!("held sync {} confirmed", s("held_sync_id")),
        _ => String::new(),
    }
}

/// History as a table.
pub fn history_text(
    entries: &[HistoryEntry],
    names: &dyn Fn(&str) -> Option<String>,
    ws: WorkspaceId,
) -> String {
    if entries.is_empty() {
        return format!("No history for workspace {ws}.");
    }
    // Group names as they were at each event (created, then renamed), else as they are now.
    let mut then: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    table(
        &["POS", "RECORDED", "ACTOR", "SYNC", "EVENT", "WHAT"],
        &entries
            .iter()
            .map(|h| {
                let id = h.data.get("group_id").and_then(Value::as_str).unwrap_or("");
                let name = match h.event_type.as_str() {
                    "GroupCreated" => h.data.get("name"),
                    "GroupRenamed" => h.data.get("to"),
                    _ => None,
                };
                let summary_text = summary(&h.event_type, &h.data, &|key: &str| {
                    then.get(key).cloned().or_else(|| names(key))
                });
                if let Some(n) = name.and_then(Value::as_str) {
                    then.insert(id.to_owned(), format!("{n:?}"));
                }
                vec![
                    h.position.to_string(),
                    time(h.recorded_at),
                    h.actor.clone(),
                    h.sync_id
                        .map_or_else(|| "-".into(), |s| s.to_string()[..8].to_owned()),
                    h.event_type.clone(),
                    summary_text,
                ]
            })
            .collect::<Vec<_>>(),
    )
}
