//! The commands that work on the database alone: workspaces, devices, groups, status,
//! history, time travel, verify and export. The ones that talk to the MDM are in
//! [`crate::mdm_commands`].

use crate::app::{App, Paths, random_uuid};
use crate::args::{DevicesCmd, EventsCmd, GroupsCmd, HistoryArgs, StateArgs, VerifyArgs};
use crate::import::parse_devices;
use crate::output::{CliError, Output, or_dash, print_raw, print_stdout};
use crate::render;
use mdmsync_core::{Command, Context, DeviceId, GroupId, MdmGroupId, Plan, Position, WorkspaceId};
use mdmsync_sqlite::{AsOf, GroupWithMembers, HistorySubject};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Read;

/// History and export read the log in pages of this many events.
const PAGE: usize = 1000;

/// `workspace create`.
pub async fn workspace_create(paths: Paths, name: &str, plan: &str) -> Result<Output, CliError> {
    let plan: Plan = plan
        .parse()
        .map_err(|e: mdmsync_core::provider::UnknownPlan| CliError::Failed(e.to_string()))?;
    let app = App::open(paths, true)?;
    let id = WorkspaceId(random_uuid());
    app.service
        .execute(
            id,
            Command::CreateWorkspace {
                workspace_id: id,
                name: name.trim().to_owned(),
                plan,
            },
            app.actor.clone(),
        )
        .await?;
    Ok(Output::ok(
        json!({ "id": id, "name": name.trim(), "plan": plan }),
        format!(
            "Created workspace {:?} ({plan} plan): {id}\nNext: `mdmsync devices import --workspace {id} FILE`, then `mdmsync connect --workspace {id} --provider P …`.",
            name.trim()
        ),
    ))
}

/// `workspace list`. A missing database lists nothing (and is not created).
pub fn workspace_list(paths: Paths) -> Result<Output, CliError> {
    if !paths.db.exists() {
        return Ok(Output::ok(json!([]), render::workspaces_text(&[])));
    }
    let app = App::open(paths, false)?;
    let rows = app.store.workspaces()?;
    Ok(Output::ok(
        Value::Array(rows.iter().map(render::workspace_json).collect()),
        render::workspaces_text(&rows),
    ))
}

/// `devices import` and `devices list`.
pub async fn devices(app: &App, cmd: DevicesCmd) -> Result<Output, CliError> {
    match cmd {
        DevicesCmd::Import { workspace, file } => {
            let ws = app.workspace(&workspace)?;
            let text = read_input(&file)?;
            let rows = parse_devices(&text)?;
            let total = rows.len();
            let ctx = Context::command(app.now(), app.actor.clone(), "register_device");
            let appended = app
                .append_batch(ws.workspace_id, &ctx, |state| {
                    let mut state = state.clone();
                    // A device is known by its serial number; one without a serial by its
                    // name (M6). Known devices are skipped, so a re-import adds nothing.
                    let key = |serial: &Option<String>, name: &Option<String>| match (serial, name)
                    {
                        (Some(s), _) => Some(format!("serial:{s}")),
                        (None, Some(n)) => Some(format!("name:{}", n.to_lowercase())),
                        (None, None) => None,
                    };
                    let mut seen: BTreeSet<String> = state
                        .devices()
                        .values()
                        .filter_map(|d| key(&d.serial_number, &d.name))
                        .collect();
                    let mut events = Vec::new();
                    for row in &rows {
                        if let Some(k) = key(&row.serial_number, &row.name) {
                            if !seen.insert(k) {
                                continue;
                            }
                        }
                        let new = state
                            .decide(
                                Command::RegisterDevice {
                                    device_id: DeviceId(random_uuid()),
                                    serial_number: row.serial_number.clone(),
                                    name: row.name.clone(),
                                },
                                &ctx,
                            )
                            .map_err(|e| CliError::Rule(e.to_string()))?;
                        for e in &new {
                            state.apply(e);
                        }
                        events.extend(new);
                    }
                    Ok(events)
                })
                .await?;
            let imported = appended.len();
            let skipped = total - imported;
            let mut text = format!(
                "Imported {imported} device{} into {:?}",
                if imported == 1 { "" } else { "s" },
                ws.name
            );
            if skipped > 0 {
                text.push_str(&format!(" ({skipped} skipped: already registered)"));
            }
            text.push('.');
            if ws.provider.is_some() && imported > 0 {
                text.push_str(&format!(
                    "\nNext: `mdmsync metadata refresh --workspace {}` matches them with the MDM.",
                    ws.workspace_id
                ));
            }
            Ok(Output::ok(json!({ "imported": imported }), text))
        }
        DevicesCmd::List { workspace, search } => {
            let ws = app.workspace(&workspace)?;
            let rows = app.store.devices(ws.workspace_id, search.as_deref())?;
            Ok(Output::ok(
                Value::Array(rows.iter().map(render::device_json).collect()),
                render::devices_text(&rows, ws.provider),
            ))
        }
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &std::path::Path) -> Result<String, CliError> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Failed(format!("cannot read standard input: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))
}

/// `status`.
pub fn status(app: &App, workspace: &str) -> Result<Output, CliError> {
    let ws = app.workspace(workspace)?;
    let now = app.now();
    let next = ws.next_due(now);
    let manual = ws.manual_allowed(now);
    let json = json!({
        "plan": ws.plan,
        "provider": ws.provider,
        "last_sync": ws.last_sync.as_ref().map(|s| json!({
            "sync_id": s.sync_id,
            "started_at": render::time_json(Some(s.started_at)),
            "finished_at": render::time_json(Some(s.finished_at)),
            "outcome": s.outcome.as_str(),
        })),
        "last_error": ws.last_failure.as_ref().map(|f| json!({
            "kind": f.kind.as_str(),
            "message": f.message,
            "at": render::time_json(Some(f.at)),
        })),
        "next_scheduled_at": render::time_json(next),
        "manual_allowed_at": render::time_json(manual),
        "held": ws.held.as_ref().map(|h| json!({ "sync_id": h.sync_id, "reason": h.reason })),
    });
    let mut lines = vec![
        format!("Workspace {:?} ({})", ws.name, ws.workspace_id),
        format!("  plan:        {}", ws.plan),
        format!(
            "  provider:    {}",
            or_dash(ws.provider.map(|p| p.display_name()))
        ),
    ];
    lines.push(match &ws.last_sync {
        Some(s) => format!(
            "  last sync:   {} at {} ({}, {})",
            s.outcome.as_str(),
            render::time(s.finished_at),
            serde_json::to_value(s.trigger)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            s.sync_id
        ),
        None => "  last sync:   never".into(),
    });
    if let Some(f) = &ws.last_failure {
        lines.push(format!(
            "  last error:  {} at {}: {}\n               {}",
            f.kind.as_str(),
            render::time(f.at),
            f.message,
            f.kind.advice()
        ));
    }
    if let Some(h) = &ws.held {
        lines.push(format!(
            "  HELD:        sync {} — {}\n               review it, then `mdmsync sync --workspace {} --confirm {}`",
            h.sync_id, h.reason, ws.workspace_id, h.sync_id
        ));
    }
    lines.push(format!(
        "  next sync:   {}",
        match next {
            Some(t) if t <= now => "due now".to_owned(),
            Some(t) => render::time(t),
            None if !ws.plan.syncs_groups() =>
                format!("never: the {} plan does not sync groups", ws.plan),
            None => "never: no MDM connected".to_owned(),
        }
    ));
    lines.push(format!(
        "  manual sync: {}",
        match manual {
            Some(t) => format!("allowed from {} (or `sync --force`)", render::time(t)),
            None => "allowed now".to_owned(),
        }
    ));
    Ok(Output::ok(json, lines.join("\n")))
}

/// The group row with members, as printed by every group command.
fn group_doc(
    app: &App,
    ws: WorkspaceId,
    id: GroupId,
) -> Result<Option<GroupWithMembers>, CliError> {
    Ok(match app.store.group(ws, id)? {
        Some(group) => Some(GroupWithMembers {
            members: app.store.group_members(ws, id)?,
            group,
        }),
        None => None,
    })
}

fn group_output(g: &GroupWithMembers, verb: &str) -> Output {
    Output::ok(
        render::group_json(g),
        format!("{verb}: {}", render::group_text(g)),
    )
}

/// `groups …`.
pub async fn groups(app: &App, cmd: GroupsCmd) -> Result<Output, CliError> {
    let actor = app.actor.clone();
    match cmd {
        GroupsCmd::List(w) => {
            let ws = app.workspace(&w.workspace)?;
            let groups = app.store.groups_with_members(ws.workspace_id)?;
            Ok(Output::ok(
                Value::Array(groups.iter().map(render::group_json).collect()),
                render::groups_text(&groups),
            ))
        }
        GroupsCmd::Create { workspace, name } => {
            let ws = app.workspace(&workspace)?.workspace_id;
            let id = GroupId(random_uuid());
            app.service
                .execute(
                    ws,
                    Command::CreateGroup {
                        group_id: id,
                        name: name.trim().to_owned(),
                    },
                    actor,
                )
                .await?;
            let g = group_doc(app, ws, id)?.ok_or_else(vanished)?;
            Ok(group_output(&g, "Created"))
        }
        GroupsCmd::Rename {
            workspace,
            group,
            name,
        } => {
            let ws = app.workspace(&workspace)?.workspace_id;
            let id = app.group(ws, &group)?.group_id;
            app.service
                .execute(
                    ws,
                    Command::RenameGroup {
                        group_id: id,
                        name: name.trim().to_owned(),
                    },
                    actor,
                )
                .await?;
            let g = group_doc(app, ws, id)?.ok_or_else(vanished)?;
            Ok(group_output(&g, "Renamed"))
        }
        GroupsCmd::Add(m) => members(app, m, true).await,
        GroupsCmd::Remove(m) => members(app, m, false).await,
        GroupsCmd::Delete { workspace, group } => {
            let ws = app.workspace(&workspace)?.workspace_id;
            let id = app.group(ws, &group)?.group_id;
            let before = group_doc(app, ws, id)?.ok_or_else(vanished)?;
            app.service
                .execute(ws, Command::DeleteGroup { group_id: id }, actor)
                .await?;
            let mut out = group_output(&before, "Deleted");
            if before.group.provider.is_some() {
                out.human.push_str(&format!(
                    "\nIts MDM group is excluded from later syncs; `mdmsync groups include --workspace {ws} --mdm-group-id {}` brings it back.",
                    before.group.mdm_group_id.as_ref().map_or("?", |m| m.as_str())
                ));
            }
            Ok(out)
        }
        GroupsCmd::Include {
            workspace,
            mdm_group_id,
        } => {
            let row = app.workspace(&workspace)?;
            let ws = row.workspace_id;
            let mdm = MdmGroupId::new(mdm_group_id);
            app.service
                .execute(
                    ws,
                    Command::IncludeGroup {
                        mdm_group_id: mdm.clone(),
                    },
                    actor,
                )
                .await?;
            Ok(Output::ok(
                json!({ "provider": row.provider, "mdm_group_id": mdm, "included": true }),
                format!(
                    "MDM group {mdm} is included again; the next sync creates its group (`mdmsync sync --workspace {ws}`)."
                ),
            ))
        }
        GroupsCmd::SetPolicy {
            workspace,
            group,
            key,
            value,
        } => {
            let ws = app.workspace(&workspace)?.workspace_id;
            let id = app.group(ws, &group)?.group_id;
            let value: Value = serde_json::from_str(&value).map_err(|e| {
                CliError::Failed(format!(
                    "--value must be JSON ({e}); quote text as '\"text\"', or pass true, 3, {{\"a\":1}}, or null to remove the key"
                ))
            })?;
            app.service
                .execute(
                    ws,
                    Command::SetPolicy {
                        group_id: id,
                        key,
                        value: (!value.is_null()).then_some(value),
                    },
                    actor,
                )
                .await?;
            let g = group_doc(app, ws, id)?.ok_or_else(vanished)?;
            Ok(group_output(&g, "Policy set"))
        }
    }
}

fn vanished() -> CliError {
    CliError::Failed(
        "the group changed underneath (another process deleted it); list groups and try again"
            .into(),
    )
}

async fn members(app: &App, m: crate::args::MembersArgs, add: bool) -> Result<Output, CliError> {
    let ws = app.workspace(&m.workspace)?.workspace_id;
    let id = app.group(ws, &m.group)?.group_id;
    let mut devices = Vec::new();
    for d in &m.devices {
        devices.push(app.device(ws, d)?.device_id);
    }
    let command = if add {
        Command::AddMembers {
            group_id: id,
            device_ids: devices,
        }
    } else {
        Command::RemoveMembers {
            group_id: id,
            device_ids: devices,
        }
    };
    app.service.execute(ws, command, app.actor.clone()).await?;
    let g = group_doc(app, ws, id)?.ok_or_else(vanished)?;
    Ok(group_output(
        &g,
        if add {
            "Members added"
        } else {
            "Members removed"
        },
    ))
}

/// Names for ids in history summaries: group names and device serials, now.
fn namer(app: &App, ws: WorkspaceId) -> Result<impl Fn(&str) -> Option<String>, CliError> {
    let mut names = std::collections::HashMap::new();
    for g in app.store.groups(ws)? {
        names.insert(g.group_id.to_string(), format!("{:?}", g.name));
    }
    for d in app.store.devices(ws, None)? {
        if let Some(s) = d.serial_number {
            names.insert(d.device_id.to_string(), s);
        }
    }
    Ok(move |id: &str| names.get(id).cloned())
}

/// `history`.
///
/// With `json`, the array is streamed to stdout page by page (a long history is never held
/// in memory whole); the text table is built in full.
pub fn history(app: &App, args: HistoryArgs, json: bool) -> Result<Output, CliError> {
    let ws = app.workspace(&args.workspace)?.workspace_id;
    let subject = match (&args.group, &args.device) {
        (Some(g), _) => HistorySubject::Group(match g.parse::<GroupId>() {
            Ok(id) => id,
            Err(_) => app.group(ws, g)?.group_id,
        }),
        (None, Some(d)) => HistorySubject::Device(match d.parse::<DeviceId>() {
            Ok(id) => id,
            Err(_) => app.device(ws, d)?.device_id,
        }),
        (None, None) => HistorySubject::Workspace,
    };
    let mut entries = Vec::new();
    let mut after = Position(0);
    if json {
        // Read the first page before printing anything, so an error is still one document.
        let mut page = app.store.history(ws, subject, after, PAGE)?;
        let mut out = String::from("[");
        let mut first = true;
        loop {
            let n = page.len();
            for e in &page {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&render::history_json(e).to_string());
                after = Position(e.position);
            }
            if n < PAGE {
                break;
            }
            print_raw(&out);
            out.clear();
            page = app.store.history(ws, subject, after, PAGE)?;
        }
        out.push(']');
        print_stdout(&out);
        return Ok(Output::streamed());
    }
    loop {
        let page = app.store.history(ws, subject, after, PAGE)?;
        let n = page.len();
        if let Some(last) = page.last() {
            after = Position(last.position);
        }
        entries.extend(page);
        if n < PAGE {
            break;
        }
    }
    let names = namer(app, ws)?;
    Ok(Output::ok(
        Value::Array(entries.iter().map(render::history_json).collect()),
        render::history_text(&entries, &names, ws),
    ))
}

/// `state --as-of`.
pub fn state(app: &App, args: StateArgs) -> Result<Output, CliError> {
    let ws = app.workspace(&args.workspace)?.workspace_id;
    let as_of: AsOf = args.as_of.parse()?;
    let tt = app.store.state_at(ws, as_of)?;
    let (json, text) = render::state_groups_json(&tt.workspace);
    let header = match (tt.position, tt.recorded_at) {
        (Some(p), Some(at)) => format!("Groups as of position {} ({}):\n", p.0, render::time(at)),
        _ => "Before the workspace's first event there were no groups.\n".to_owned(),
    };
    Ok(Output::ok(json, format!("{header}{text}")))
}

/// `verify`.
pub fn verify(app: &App, args: VerifyArgs) -> Result<Output, CliError> {
    let ws = args
        .workspace
        .as_deref()
        .map(|w| app.workspace(w).map(|r| r.workspace_id))
        .transpose()?;
    let report = app.store.verify()?;
    let differences: Vec<_> = report
        .differences
        .iter()
        .filter(|d| ws.is_none_or(|w| d.key.starts_with(&w.to_string())))
        .collect();
    let ok = differences.is_empty() && report.lag == 0;
    let mut text = if ok {
        format!(
            "ok: the read models equal a rebuild from the log ({} events replayed).",
            report.events_replayed
        )
    } else {
        format!(
            "NOT ok: {} difference{} between the live read models and a rebuild from the log",
            differences.len(),
            if differences.len() == 1 { "" } else { "s" }
        )
    };
    if report.lag > 0 {
        text.push_str(&format!(
            "\n{} events are not projected yet; run any command that writes, or report a bug if this persists",
            report.lag
        ));
    }
    for d in &differences {
        text.push_str(&format!(
            "\n  {} {}: live {} / rebuilt {}",
            d.table,
            d.key,
            or_dash(d.live.as_ref()),
            or_dash(d.rebuilt.as_ref())
        ));
    }
    Ok(
        Output::ok(json!({ "ok": ok, "differences": differences }), text).with_code(if ok {
            0
        } else {
            crate::output::EXIT_FAILED
        }),
    )
}

/// `events export`: JSON lines on stdout, streamed page by page.
pub fn events(app: &App, cmd: EventsCmd) -> Result<Output, CliError> {
    let EventsCmd::Export { after } = cmd;
    let mut after = Position(after);
    loop {
        let page = app.store.export(after, PAGE)?;
        let n = page.len();
        let mut chunk = String::new();
        for e in &page {
            chunk.push_str(&serde_json::to_string(e).map_err(|e| CliError::Failed(e.to_string()))?);
            chunk.push('\n');
            after = Position(e.position);
        }
        if !chunk.is_empty() {
            print_stdout(&chunk);
        }
        if n < PAGE {
            break;
        }
    }
    Ok(Output::streamed())
}
