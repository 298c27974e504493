//! `mdmsync demo`: the whole story on a fresh machine. Starts the bundled MDM simulator
//! (`mdmsim`) in-process for Jamf and Microsoft Intune with a sample fleet, and walks through
//! what an operator does: create Pro workspaces, connect them (the credential test), import
//! devices, refresh metadata, sync, change the fleet in the MDM (a rename, a membership move, a
//! removed group), sync again, watch a failed sync leave every group untouched, and read the
//! groups and the audit history. It runs the same code paths as the commands.

use crate::app::{App, Paths, default_key_file};
use crate::args::{
    ConnectArgs, DevicesCmd, GroupsCmd, HistoryArgs, SyncArgs, VerifyArgs, WorkspaceArg,
};
use crate::commands;
use crate::mdm_commands;
use crate::output::{CliError, Output};
use mdmsim::{FaultKind, FaultRule, RunningSim, Scenario, SimOptions, Simulator};
use mdmsync_core::{Endpoint, Provider};
use serde_json::{Value, json};
use std::io::Write;

/// The providers the demo runs.
pub const PROVIDERS: [Provider; 2] = [Provider::Jamf, Provider::Intune];

/// Prints the narration: stdout normally, stderr with `--json` (stdout then carries one
/// summary document).
struct Narrator {
    json: bool,
}

impl Narrator {
    fn say(&self, text: &str) {
        let line = format!("{text}\n");
        if self.json {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }

    fn heading(&self, text: &str) {
        self.say(&format!("\n━━ {text} ━━"));
    }

    fn step(&self, command: &str, what: &str) {
        self.say(&format!("\n▶ {what}\n  $ mdmsync {command}"));
    }

    fn show(&self, out: &Output) {
        // The commands' "Next: …" hints are for people at a prompt; the demo goes on by itself.
        for line in out.human.lines().filter(|l| !l.starts_with("Next:")) {
            self.say(&format!("  {line}"));
        }
    }
}

/// Runs the demo. `db_given`: the operator named a database (`--db` / `MDMSYNC_DB`), which
/// is used and kept; otherwise a temporary one is made and removed at the end.
pub async fn run(db_given: bool, paths: Paths, json_mode: bool) -> Result<Output, CliError> {
    let n = Narrator { json: json_mode };
    let tmp = tempfile::tempdir()
        .map_err(|e| CliError::Failed(format!("cannot make a temporary directory: {e}")))?;
    let paths = if db_given {
        paths
    } else {
        let db = tmp.path().join("demo.db");
        Paths {
            key_file: default_key_file(&db),
            db,
            ca_cert: None,
        }
    };
    n.say("mdmsync demo — mirroring device groups from two simulated MDMs into workspaces.");
    n.say(&format!(
        "Database: {}{}",
        paths.db.display(),
        if db_given {
            " (kept)"
        } else {
            " (temporary; pass --db to keep it)"
        }
    ));
    let app = App::open(paths, true)?;
    let mut summary = Vec::new();
    for provider in PROVIDERS {
        summary.push(story(&app, &n, provider).await?);
    }
    n.heading("Finally: is the audit log the truth?");
    n.step(
        "verify",
        "Rebuild every read model from the event log and compare",
    );
    let v = commands::verify(&app, VerifyArgs { workspace: None })?;
    n.show(&v);
    n.say("\nThat was the engine end to end. Next: `mdmsync --help`, docs/cli.md, and `cargo test -p mdmsync-cli`.");
    Ok(Output {
        json: json!({ "ok": v.json["ok"], "db": app.paths.db, "workspaces": summary }),
        human: String::new(),
        code: v.code,
        streamed: !json_mode,
    })
}

/// The simulator's connection flags for a provider: tenant-host providers take the `host`
/// credential; fixed-endpoint ones a base URL (and Intune a login URL).
fn connect_args(sim: &RunningSim, workspace: &str) -> ConnectArgs {
    let provider = sim.provider();
    let fixed = matches!(provider.endpoint(), Endpoint::Fixed { .. });
    ConnectArgs {
        workspace: workspace.to_owned(),
        provider: provider.slug().to_owned(),
        base_url: fixed.then(|| sim.base_url()),
        login_url: sim.login_url(),
        credentials: sim
            .credentials()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        credentials_file: None,
    }
}

fn redacted_connect_line(provider: Provider, args: &ConnectArgs) -> String {
    let mut s = format!(
        "connect --workspace {} --provider {}",
        args.workspace,
        provider.slug()
    );
    if let Some(b) = &args.base_url {
        s.push_str(&format!(" --base-url {b}"));
    }
    if let Some(l) = &args.login_url {
        s.push_str(&format!(" --login-url {l}"));
    }
    for f in provider.credential_fields() {
        if f.secret {
            s.push_str(&format!(" --credential {}=…", f.key));
        } else if let Some(c) = args
            .credentials
            .iter()
            .find(|c| c.starts_with(&format!("{}=", f.key)))
        {
            s.push_str(&format!(" --credential {c}"));
        }
    }
    s
}

async fn story(app: &App, n: &Narrator, provider: Provider) -> Result<Value, CliError> {
    let name = provider.display_name();
    n.heading(&format!(
        "{name}: a simulated tenant with 5 devices and 3 groups"
    ));
    let scenario = Scenario::sample();
    let sim = Simulator::start(SimOptions::new(provider, scenario.clone()))
        .await
        .map_err(|e| CliError::Failed(format!("cannot start the {name} simulator: {e}")))?;
    let ctl = sim.control();
    n.say(&format!("  simulator listening at {}", sim.origin()));

    let ws_name = format!("Acme on {name}");
    n.step(
        &format!("workspace create --name {ws_name:?} --plan pro"),
        "Create a Pro workspace (Pro and Enterprise sync groups)",
    );
    let created = commands::workspace_create(app.paths.clone(), &ws_name, "pro").await?;
    n.show(&created);
    let ws = created.json["id"].as_str().unwrap_or_default().to_owned();

    let args = connect_args(&sim, &ws);
    n.step(
        &redacted_connect_line(provider, &args),
        "Connect it: a test call first, then the credentials are stored encrypted; a new provider syncs at once",
    );
    let out = mdm_commands::connect(app, args).await?;
    n.show(&out);
    if out.code != 0 {
        return Err(CliError::Failed(format!(
            "the demo could not connect to the {name} simulator"
        )));
    }

    let csv = app
        .paths
        .db
        .with_file_name(format!("devices-{}.csv", provider.slug()));
    let mut text = String::from("serial_number,name\n");
    for d in &scenario.devices {
        text.push_str(&format!(
            "{},\"{}\"\n",
            d.serial_number.clone().unwrap_or_default(),
            d.device_name.replace('"', "\"\"")
        ));
    }
    std::fs::write(&csv, text)
        .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", csv.display())))?;
    n.step(
        &format!("devices import --workspace {ws} {}", csv.display()),
        "Import the product's devices (CSV: serial_number,name)",
    );
    n.show(
        &commands::devices(
            app,
            DevicesCmd::Import {
                workspace: ws.clone(),
                file: csv.clone(),
            },
        )
        .await?,
    );

    n.step(
        &format!("metadata refresh --workspace {ws}"),
        "Look the devices up in the MDM by serial number",
    );
    n.show(&mdm_commands::metadata_refresh(app, &ws, false).await?);
    n.step(
        &format!("devices list --workspace {ws}"),
        "Devices now carry their MDM id, user and console link",
    );
    n.show(
        &commands::devices(
            app,
            DevicesCmd::List {
                workspace: ws.clone(),
                search: None,
            },
        )
        .await?,
    );

    let sync_args = |force: bool| SyncArgs {
        workspace: ws.clone(),
        dry_run: false,
        force,
        confirm: None,
    };
    n.step(
        &format!("sync --workspace {ws}"),
        "Sync now, so the groups get their members",
    );
    let out = mdm_commands::sync(app, sync_args(false)).await?;
    n.show(&out);
    n.step(
        &format!("sync --workspace {ws} --force"),
        "The operator's bypass of the cooldown (recorded as such)",
    );
    n.show(&mdm_commands::sync(app, sync_args(true)).await?);
    n.step(
        &format!("groups list --workspace {ws}"),
        "The mirrored groups",
    );
    n.show(&groups(app, &ws).await?);

    n.heading(&format!("{name}: the fleet changes in the MDM"));
    n.say("  • \"Engineering\" is renamed \"Platform Engineering\"");
    n.say("  • the Lab Mac mini (C02SIM000004) moves from Engineering to Kiosks");
    n.say("  • the group \"All Laptops\" is deleted");
    let sim_err = |e: mdmsim::SimError| CliError::Failed(format!("simulator: {e}"));
    ctl.rename_group(1, "Platform Engineering")
        .map_err(sim_err)?;
    ctl.move_device(4, Some(1), 3).map_err(sim_err)?;
    ctl.remove_group(2).map_err(sim_err)?;
    n.step(
        &format!("sync --workspace {ws} --force"),
        "Sync again: renamed, detached (the group stays, now manual), members moved",
    );
    n.show(&mdm_commands::sync(app, sync_args(true)).await?);
    n.step(&format!("groups list --workspace {ws}"), "The groups now");
    let before = groups(app, &ws).await?;
    n.show(&before);

    n.heading(&format!("{name}: the MDM fails"));
    n.say("  The simulator now answers every call with HTTP 500.");
    let fault = ctl.add_fault(FaultRule::new(FaultKind::InternalServerError));
    n.step(
        &format!("sync --workspace {ws} --force"),
        "A failed sync changes no group and no membership (G8)",
    );
    n.show(&mdm_commands::sync(app, sync_args(true)).await?);
    ctl.remove_fault(fault);
    let after = groups(app, &ws).await?;
    n.say(&format!(
        "  Groups and members after the failure are {} before it.",
        if after.json == before.json {
            "exactly as"
        } else {
            "NOT as"
        }
    ));
    n.step(
        &format!("status --workspace {ws}"),
        "The failure is shown until the next successful sync",
    );
    n.show(&commands::status(app, &ws)?);

    let group = after.json.as_array().and_then(|gs| {
        gs.iter()
            .find(|g| g["name"] == "Platform Engineering")
            .and_then(|g| g["id"].as_str().map(str::to_owned))
    });
    if let Some(group) = group {
        n.step(
            &format!("history --workspace {ws} --group {group}"),
            "Why is each device in \"Platform Engineering\"? Its audit history",
        );
        n.show(&commands::history(
            app,
            HistoryArgs {
                workspace: ws.clone(),
                group: Some(group),
                device: None,
            },
            false,
        )?);
    }
    if provider == PROVIDERS[0] {
        n.step(
            &format!("history --workspace {ws}"),
            "The workspace's whole audit history: every event, who caused it, in which sync",
        );
        n.show(&commands::history(
            app,
            HistoryArgs {
                workspace: ws.clone(),
                group: None,
                device: None,
            },
            false,
        )?);
    }
    sim.shutdown().await;
    let _ = std::fs::remove_file(&csv);
    Ok(json!({ "id": ws, "name": ws_name, "provider": provider.slug(), "groups": after.json }))
}

async fn groups(app: &App, ws: &str) -> Result<Output, CliError> {
    commands::groups(
        app,
        GroupsCmd::List(WorkspaceArg {
            workspace: ws.to_owned(),
        }),
    )
    .await
}
