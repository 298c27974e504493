//! # mdmsync-cli
//!
//! The operator's command line of mdmsync, binary `mdmsync`: create workspaces, connect them
//! to their MDM (credentials tested first, then stored encrypted), import devices, refresh
//! their MDM metadata, sync groups (with dry runs, the cooldown bypass and confirmation of held
//! syncs), edit groups, and read the audit trail (history, state as of a point in time,
//! verify, export). `mdmsync demo` runs the bundled MDM simulator through the whole story.
//!
//! The command-line contract — commands, arguments, JSON documents, exit codes, environment —
//! is `docs/cli.md`; scripts and the end-to-end tests rely on it. The library part exists so
//! the binary stays a thin `main`; [`run`] is the whole program.

pub mod app;
pub mod args;
pub mod commands;
pub mod demo;
pub mod import;
pub mod mdm;
pub mod mdm_commands;
pub mod output;
pub mod render;

use app::{App, Paths};
use args::{Cli, Command, MetadataCmd, WorkspaceCmd};
use clap::Parser;
use output::{CliError, EXIT_USAGE, Output, emit, emit_error, print_stdout};
use std::process::ExitCode;

/// Runs one parsed command and returns what to print.
pub async fn execute(cli: Cli) -> Result<Output, CliError> {
    let paths = Paths::new(cli.db.clone(), cli.key_file.clone(), cli.ca_cert.clone());
    // Every command but `workspace create`, `workspace list` and `demo` needs an existing
    // database.
    let open = || App::open(paths.clone(), false);
    match cli.command {
        Command::Workspace(WorkspaceCmd::Create { name, plan }) => {
            commands::workspace_create(paths, &name, &plan).await
        }
        Command::Workspace(WorkspaceCmd::List) => commands::workspace_list(paths),
        Command::Demo => demo::run(cli.db.is_some(), paths, cli.json).await,
        Command::Connect(a) => mdm_commands::connect(&open()?, a).await,
        Command::Devices(d) => commands::devices(&open()?, d).await,
        Command::Metadata(MetadataCmd::Refresh { workspace, force }) => {
            mdm_commands::metadata_refresh(&open()?, &workspace, force).await
        }
        Command::Sync(a) => mdm_commands::sync(&open()?, a).await,
        Command::Status(w) => commands::status(&open()?, &w.workspace),
        Command::Groups(g) => commands::groups(&open()?, g).await,
        Command::ForceSync(a) => mdm_commands::force_sync(&open()?, a).await,
        Command::History(a) => commands::history(&open()?, a, cli.json),
        Command::State(a) => commands::state(&open()?, a),
        Command::Verify(a) => commands::verify(&open()?, a),
        Command::Events(e) => commands::events(&open()?, e),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MDMSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The program: parses the command line, runs the command on a tokio runtime, prints the
/// result and returns the exit code of the contract (docs/cli.md).
pub fn run() -> ExitCode {
    let json_wanted = std::env::args_os().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if !e.use_stderr() {
                return ExitCode::SUCCESS;
            }
            if json_wanted {
                let message = e.render().to_string();
                let first = message.lines().next().unwrap_or("invalid command line");
                print_stdout(
                    &serde_json::json!({ "error": first.trim_start_matches("error: ") })
                        .to_string(),
                );
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_tracing();
    mdmsim::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let err = CliError::Failed(format!("cannot start the async runtime: {e}"));
            emit_error(&err, cli.json);
            return ExitCode::from(err.code());
        }
    };
    let json = cli.json;
    match runtime.block_on(execute(cli)) {
        Ok(out) => {
            emit(&out, json);
            ExitCode::from(out.code)
        }
        Err(e) => {
            emit_error(&e, json);
            ExitCode::from(e.code())
        }
    }
}
