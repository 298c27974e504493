//! The commands that talk to the MDM: `connect`, `metadata refresh`, `sync`, `force-sync`.

use crate::app::{App, Lease};
use crate::args::{ConnectArgs, ForceSyncArgs, SyncArgs};
use crate::commands::read_input;
use crate::import::{parse_credentials_file, parse_pair};
use crate::mdm::{ClientError, check_url, client, parse_credentials};
use crate::output::{
    CliError, EXIT_FAILED, EXIT_HELD, EXIT_OK, EXIT_REFUSED, Output, or_dash, progress,
};
use crate::render;
use chrono::{DateTime, Utc};
use mdmsync_core::policy::{Admission, Refusal};
use mdmsync_core::{
    Capability, ConnectionSettings, ErrorKind, MdmError, Provider, ServiceError, SyncId,
    SyncOutcome, SyncRequest, SyncResult, SyncTrigger, WorkspaceId,
};
use serde_json::{Value, json};

/// The `{"ok":false,"error_kind","message"}` result of a failed MDM call (exit 2).
fn mdm_failed(e: &MdmError, what: &str, nothing_saved: bool) -> Output {
    let kind = e.kind();
    let mut text = format!(
        "{what} failed{}: {}",
        kind.map_or_else(String::new, |k| format!(" ({})", k.as_str())),
        e.message()
    );
    if let Some(k) = kind {
        text.push_str(&format!("\nWhat to do: {}.", k.advice()));
    }
    if nothing_saved {
        text.push_str("\nNothing was saved.");
    }
    Output {
        json: json!({ "ok": false, "error_kind": kind.map(ErrorKind::as_str), "message": e.message() }),
        human: text,
        code: EXIT_FAILED,
        streamed: false,
    }
}

fn capability(c: Capability) -> &'static str {
    match c {
        Capability::Yes => "yes",
        Capability::No => "NO",
        Capability::Unknown => "not checked",
        Capability::Unsupported => "not supported by the provider",
    }
}

/// `connect`.
pub async fn connect(app: &App, args: ConnectArgs) -> Result<Output, CliError> {
    let provider: Provider = args
        .provider
        .parse()
        .map_err(|e: mdmsync_core::provider::UnknownProvider| CliError::Failed(e.to_string()))?;
    let row = app.workspace(&args.workspace)?;
    let ws = row.workspace_id;
    let pairs = match &args.credentials_file {
        Some(f) => parse_credentials_file(&read_input(f)?)?,
        None => args
            .credentials
            .iter()
            .map(|c| parse_pair(c).map_err(|e| CliError::Failed(format!("--credential: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if pairs.is_empty() {
        return Err(CliError::Failed(format!(
            "no credentials given; pass --credential KEY=VALUE for each of {} (or --credentials-file FILE)",
            provider
                .credential_fields()
                .iter()
                .map(|f| f.key)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let credentials = parse_credentials(provider, pairs)?;
    for (flag, url) in [
        ("--base-url", &args.base_url),
        ("--login-url", &args.login_url),
    ] {
        if let Some(u) = url {
            check_url(flag, u)?;
        }
    }
    if let Some(host) = credentials.get("host") {
        check_url(
            "credential host",
            secrecy::ExposeSecret::expose_secret(host),
        )?;
    }
    let options = app.mdm_options(provider, args.base_url.clone(), args.login_url.clone())?;
    let vault = app.vault()?;
    let mdm = match client(provider, &credentials, &options) {
        Ok(c) => c,
        Err(ClientError::Config(m)) => return Err(CliError::Failed(m)),
        Err(ClientError::Mdm(e)) => return Ok(mdm_failed(&e, "The credential test", true)),
    };
    let _lease = match app.take_lease(ws)? {
        Lease::Acquired(g) => g,
        Lease::Busy { holder, since } => {
            return Err(CliError::Failed(format!(
                "a sync of this workspace is running in another process ({holder}, since {}); connect when it has finished",
                render::time(since)
            )));
        }
    };
    progress(&format!(
        "Testing the credentials with {}…",
        provider.display_name()
    ));
    let settings = ConnectionSettings {
        base_url: args.base_url,
        login_url: args.login_url,
    };
    let outcome = match app
        .service
        .connect(ws, &*mdm, vault, &credentials, settings, app.actor.clone())
        .await
    {
        Ok(o) => o,
        Err(ServiceError::CredentialTest(e)) => {
            return Ok(mdm_failed(&e, "The credential test", true));
        }
        Err(ServiceError::Mdm(e)) => {
            // Saved and recorded; only the follow-up metadata refresh failed.
            let text = format!(
                "Connected {:?} to {} (credentials saved, encrypted), but the metadata refresh failed: {e}\nRun `mdmsync metadata refresh --workspace {ws}` when the MDM answers again.",
                row.name,
                provider.display_name()
            );
            eprintln!("warning: the metadata refresh after connecting failed: {e}");
            return Ok(Output::ok(
                json!({ "ok": true, "provider": provider.slug() }),
                text,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let c = &outcome.check;
    let mut text = format!(
        "Connected {:?} to {}: the test call passed; credentials saved, encrypted.\n  can sync groups: {} · read device metadata: {} · force sync: {}{}",
        row.name,
        provider.display_name(),
        capability(c.group_sync),
        capability(c.metadata),
        capability(c.force_sync),
        c.server_version
            .as_ref()
            .map_or_else(String::new, |v| format!(" · server version {v}"))
    );
    if let Some(m) = &outcome.metadata {
        text.push_str(&format!(
            "\n  metadata: {} devices matched, {} not in the MDM, {} without serial, {} ambiguous",
            m.refreshed, m.not_found, m.skipped, m.ambiguous
        ));
    }
    match &outcome.sync {
        Some(s) => {
            text.push_str("\n  first sync (provider set, T3): ");
            text.push_str(&sync_line(s));
        }
        None if !row.plan.syncs_groups() => text.push_str(&format!(
            "\n  groups are not synced on the {} plan (metadata is)",
            row.plan
        )),
        None => {}
    }
    Ok(Output::ok(
        json!({ "ok": true, "provider": provider.slug() }),
        text,
    ))
}

/// `metadata refresh`.
pub async fn metadata_refresh(app: &App, workspace: &str, force: bool) -> Result<Output, CliError> {
    let row = app.workspace(workspace)?;
    let ws = row.workspace_id;
    let (state, _) = app.state(ws).await?;
    let mdm = app.client_for(ws, &state).await?;
    let due = if force {
        state.devices().len()
    } else {
        let now = app.now();
        state
            .devices()
            .values()
            .filter(|d| app.service.policy().metadata_due(d, now))
            .count()
    };
    progress(&format!(
        "Looking up {due} device{} in {}…",
        if due == 1 { "" } else { "s" },
        mdm.provider().display_name()
    ));
    let r = app
        .service
        .refresh_metadata(ws, &*mdm, force, app.actor.clone())
        .await?;
    let mut text = format!(
        "Metadata of {:?}: {} refreshed, {} not found in {}, {} skipped (no serial number), {} ambiguous (several MDM records; the most recently seen one was taken)",
        row.name,
        r.refreshed,
        r.not_found,
        mdm.provider().display_name(),
        r.skipped,
        r.ambiguous
    );
    if r.not_due > 0 {
        text.push_str(&format!(
            "\n{} devices were refreshed less than a day ago and left alone; --force refreshes them too",
            r.not_due
        ));
    }
    Ok(Output::ok(
        json!({
            "refreshed": r.refreshed,
            "not_found": r.not_found,
            "skipped": r.skipped,
            "ambiguous": r.ambiguous,
        }),
        text,
    ))
}

/// The `sync` document for a sync that did not start.
fn refused(message: String, retry_after: Option<DateTime<Utc>>, hint: &str) -> Output {
    Output {
        json: json!({
            "sync_id": null,
            "outcome": "refused",
            "error_kind": null,
            "message": message,
            "retry_after": render::time_json(retry_after),
            "report": null,
        }),
        human: format!("Sync refused: {message}{hint}"),
        code: EXIT_REFUSED,
        streamed: false,
    }
}

fn refusal_output(ws: WorkspaceId, r: &Refusal) -> Output {
    match r {
        Refusal::Cooldown { allowed_at } => refused(
            format!(
                "a sync started less than 15 minutes ago; the next manual sync is allowed at {}",
                render::time(*allowed_at)
            ),
            Some(*allowed_at),
            &format!(
                "\nTo sync now anyway: `mdmsync sync --workspace {ws} --force` (recorded as a forced manual sync)."
            ),
        ),
        Refusal::NotConnected => refused(
            r.to_string(),
            None,
            &format!("\n`mdmsync connect --workspace {ws} --provider P …` connects one."),
        ),
        Refusal::PlanDoesNotSyncGroups { .. } => refused(
            r.to_string(),
            None,
            "\nDevice metadata still works on this plan (`mdmsync metadata refresh`).",
        ),
    }
}

/// One line about a sync's outcome.
fn sync_line(s: &SyncOutcome) -> String {
    let id = s.sync_id.map_or_else(String::new, |i| format!(" {i}"));
    match &s.result {
        SyncResult::Succeeded { report } => {
            format!("succeeded{id}: {}", render::report_text(report))
        }
        SyncResult::Failed {
            error_kind,
            message,
        } => format!(
            "FAILED{id} ({}): {message}; no group changed",
            error_kind.as_str()
        ),
        SyncResult::Held { reason, .. } => format!("HELD{id}: {reason}; nothing changed"),
        SyncResult::Refused { refusal } => format!("refused: {refusal}"),
        SyncResult::Coalesced => "coalesced into the sync already running".into(),
    }
}

/// The `sync` document and text for a sync that ran.
pub fn sync_output(ws: WorkspaceId, out: &SyncOutcome) -> Output {
    let (outcome, kind, message, report, code) = match &out.result {
        SyncResult::Succeeded { report } => ("succeeded", None, None, Some(report), EXIT_OK),
        SyncResult::Failed {
            error_kind,
            message,
        } => (
            "failed",
            Some(*error_kind),
            Some(message.clone()),
            None,
            EXIT_FAILED,
        ),
        SyncResult::Held { reason, report } => (
            "held",
            None,
            Some(format!(
                "held: {reason}; nothing was changed. Review it, then confirm with --confirm {}",
                out.sync_id.map_or_else(String::new, |s| s.to_string())
            )),
            Some(report),
            EXIT_HELD,
        ),
        SyncResult::Refused { refusal } => return refusal_output(ws, refusal),
        SyncResult::Coalesced => {
            return refused(
                "another sync of this workspace is running; this request was folded into it".into(),
                None,
                "",
            );
        }
    };
    let mut json = json!({
        "sync_id": out.sync_id,
        "outcome": outcome,
        "error_kind": kind.map(ErrorKind::as_str),
        "message": message,
        "retry_after": null,
        "report": report.map(render::report_json),
    });
    let id = or_dash(out.sync_id);
    let mut text = match &out.result {
        SyncResult::Succeeded { report } => format!(
            "Sync {id} {}: {}.",
            if out.dry_run {
                "would succeed"
            } else {
                "succeeded"
            },
            render::report_text(report)
        ),
        SyncResult::Failed {
            error_kind,
            message,
        } => format!(
            "Sync {id} FAILED ({}): {message}\nWhat to do: {}.\nNo group or membership was changed (G8); the error shows in `status` until the next successful sync.",
            error_kind.as_str(),
            error_kind.advice()
        ),
        SyncResult::Held { reason, report } => format!(
            "Sync {id} HELD by the safety thresholds: {reason}.\nNothing was changed. Applied, it would do: {}.\nIf that is right: `mdmsync sync --workspace {ws} --confirm {id}`",
            render::report_text(report)
        ),
        _ => String::new(),
    };
    if out.dry_run {
        if let Some(obj) = json.as_object_mut() {
            obj.insert(
                "events".into(),
                Value::Array(out.events.iter().map(render::envelope_json).collect()),
            );
        }
        text.push_str(&format!(
            "\nDry run: nothing was appended. {} event{} planned:",
            out.events.len(),
            if out.events.len() == 1 { "" } else { "s" }
        ));
        for e in &out.events {
            let v = render::envelope_json(e);
            text.push_str(&format!(
                "\n  {} {}",
                e.event.event_type(),
                render::summary(
                    e.event.event_type(),
                    v.get("data").unwrap_or(&Value::Null),
                    &|_| None
                )
            ));
        }
    }
    Output {
        json,
        human: text,
        code,
        streamed: false,
    }
}

/// `sync`.
pub async fn sync(app: &App, args: SyncArgs) -> Result<Output, CliError> {
    let row = app.workspace(&args.workspace)?;
    let ws = row.workspace_id;
    let confirm = args
        .confirm
        .as_deref()
        .map(|s| {
            s.parse::<SyncId>().map_err(|_| {
                CliError::Failed(format!(
                    "--confirm takes a sync id (a UUID, shown by `status`), got {s:?}"
                ))
            })
        })
        .transpose()?;
    let (state, _) = app.state(ws).await?;
    if let Some(c) = confirm {
        match state.held() {
            Some(h) if h.sync_id == c => {}
            Some(h) => {
                return Err(CliError::Failed(format!(
                    "sync {c} is not the held sync; the held one is {} ({})",
                    h.sync_id, h.reason
                )));
            }
            None => {
                return Err(CliError::Failed(format!(
                    "no sync is held in this workspace, so there is nothing to confirm ({c}); `mdmsync status --workspace {ws}` shows the last sync"
                )));
            }
        }
    }
    let trigger = if confirm.is_some() {
        SyncTrigger::Confirmation
    } else if args.force {
        SyncTrigger::ForcedManual
    } else {
        SyncTrigger::Manual
    };
    if let Admission::Refused(r) = app
        .service
        .policy()
        .admit(&state, trigger, app.now(), false)
    {
        return Ok(refusal_output(ws, &r));
    }
    let _lease = match app.take_lease(ws)? {
        Lease::Acquired(g) => g,
        Lease::Busy { holder, since } => {
            return Ok(refused(
                format!(
                    "another sync of this workspace is running ({holder}, since {}); this request is folded into it (T4)",
                    render::time(since)
                ),
                None,
                &format!(
                    "\n`mdmsync status --workspace {ws}` shows its outcome when it has finished."
                ),
            ));
        }
    };
    let mdm = app.client_for(ws, &state).await?;
    progress(&format!(
        "Fetching groups and members from {}…",
        mdm.provider().display_name()
    ));
    let request = SyncRequest {
        trigger,
        actor: app.actor.clone(),
        dry_run: args.dry_run,
        confirm,
    };
    let out = app
        .service
        .sync(ws, &*mdm, request)
        .await
        .map_err(|e| match e {
            ServiceError::Domain(d) => CliError::Failed(d.to_string()),
            other => other.into(),
        })?;
    Ok(sync_output(ws, &out))
}

/// `force-sync`.
pub async fn force_sync(app: &App, args: ForceSyncArgs) -> Result<Output, CliError> {
    let row = app.workspace(&args.workspace)?;
    let ws = row.workspace_id;
    let device = app.device(ws, &args.device)?;
    let (state, _) = app.state(ws).await?;
    let mdm = app.client_for(ws, &state).await?;
    let name = device
        .serial_number
        .clone()
        .unwrap_or_else(|| device.device_id.to_string());
    match app
        .service
        .force_sync_device(ws, &*mdm, device.device_id)
        .await
    {
        Ok(()) => Ok(Output::ok(
            json!({ "ok": true }),
            format!(
                "Asked {} to make {name} check in now.",
                mdm.provider().display_name()
            ),
        )),
        Err(ServiceError::Mdm(e)) => Ok(mdm_failed(&e, &format!("Force sync of {name}"), false)),
        Err(e) => Err(e.into()),
    }
}
