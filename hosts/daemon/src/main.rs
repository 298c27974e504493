//! `mdmsyncd`: the mdmsync daemon. See `docs/daemon.md`.

use clap::Parser;
use mdmsync_daemon::config::ENV_VARS;
use mdmsync_daemon::providers::ProviderFactory;
use mdmsync_daemon::{Config, forward_signals, init_logging, run};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

fn env_help() -> String {
    let mut s = String::from(
        "Schedules every workspace's group syncs (every 6 h with jitter, sooner after failures, at once after a provider change) and device metadata refreshes (daily), and serves the admin API (every route but /healthz needs `Authorization: Bearer <token>`).\n\nEnvironment (overrides the config file):\n",
    );
    for (var, key) in ENV_VARS {
        s.push_str(&format!("  {var:<32} {key}\n"));
    }
    s.push_str("\nSIGTERM / Ctrl-C: stop taking work, let running syncs finish within shutdown_grace_secs, exit 0. See docs/daemon.md.");
    s
}

/// mdmsyncd — the mdmsync daemon.
#[derive(Debug, Parser)]
#[command(name = "mdmsyncd", version, about, after_help = env_help())]
struct Args {
    /// The TOML config file (keys in docs/daemon.md).
    #[arg(long, short = 'c', env = "MDMSYNCD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mdmsyncd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!(
            "configuration ok: listen {}, database {}",
            config.listen,
            config.database.display()
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(config.log_format, &config.log_filter) {
        eprintln!("mdmsyncd: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mdmsyncd")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mdmsyncd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let factory = Arc::new(ProviderFactory {
        extra_ca_pem: config.extra_ca_pem.clone(),
    });
    let result = runtime.block_on(async move {
        let signals = forward_signals();
        run(config, factory, signals).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "mdmsyncd failed");
            ExitCode::FAILURE
        }
    }
}
