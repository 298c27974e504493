//! `mdmsim`: serve a fake MDM API on 127.0.0.1 until Ctrl-C.

use clap::Parser;
use mdmsim::{Provider, Scenario, SimOptions, Simulator};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

const SCENARIO_HELP: &str = r#"SCENARIO FORMAT (JSON, or TOML when the file ends in .toml)

Ids are neutral positive integers ("sim ids"); each provider derives its own id forms from
them (Jamf "17", Iru UUID, SimpleMDM 17, Fleet 17 with label ids = group id + 100, JumpCloud
24-hex, Intune GUIDs). See docs/simulator.md for the exact derivation.

  {
    "devices": [
      { "id": 1,                          // sim id, unique, >= 1
        "serial_number": "C02SIM000001",  // optional; may repeat across devices
        "device_name": "Ada's MacBook Pro",
        "user": { "id": "ada", "name": "Ada Lovelace", "email": "ada@example.com" },  // optional
        "last_seen": "2025-06-01T08:00:00Z",  // optional, RFC 3339
        "kiosk": false }                  // optional; Intune: not in Entra (zero azureADDeviceId)
    ],
    "groups": [
      { "id": 1, "name": "Engineering", "smart": false, "members": [1] }
    ],
    "credentials": {                      // every field optional; defaults shown
      "client_id": "mdmsim-client",       // Jamf, Intune
      "client_secret": "mdmsim-client-secret",
      "api_token": "mdmsim-api-token",    // Iru, Fleet (Bearer)
      "api_key": "mdmsim-api-key",        // SimpleMDM (Basic user), JumpCloud (x-api-key)
      "tenant_id": "7d0c5b3e-0000-4000-8000-00000000a11c",  // Intune
      "org_id": null                      // JumpCloud: when set, x-org-id is required
    },
    "token_lifetime_secs": 599,           // optional; default Jamf 599, Intune 3599
    "options": {                          // every field optional; defaults shown
      "intune_device_read_all": true,     // false: members come back with deviceId null
      "intune_require_consistency_level": true,
      "iru_tag_page_size": 50,
      "jumpcloud_null_associations": false,  // true: short membership pages mid-listing
      "jamf_inventory_v4": true
    }
  }

TOML: the same keys, e.g.
  [[devices]]
  id = 1
  serial_number = "C02SIM000001"
  device_name = "Ada's MacBook Pro"
  [devices.user]
  id = "ada"
  name = "Ada Lovelace"
  [[groups]]
  id = 1
  name = "Engineering"
  members = [1]

Without --scenario a small sample (5 devices, 3 groups) is served. With --generate-devices a
fleet is generated from --seed instead (groups and memberships from the other flags).

CONTROL API (same server, no provider auth): GET/PUT /_sim/scenario, POST /_sim/groups,
PATCH/DELETE /_sim/groups/{id}, PUT /_sim/groups/{id}/members, POST /_sim/devices,
DELETE /_sim/devices/{id}, POST /_sim/devices/{id}/move, GET/POST/DELETE /_sim/faults,
DELETE /_sim/faults/{id}, POST /_sim/tokens/expire, GET/DELETE /_sim/requests, GET /_sim/stats,
GET /_sim/force-syncs. Faults: {"kind": "too_many_requests", "retry_after_secs": 2,
"route": "jamf.inventory", "times": 1}; see docs/simulator.md for every kind."#;

/// A fake of an MDM provider's API (Jamf, Iru, SimpleMDM, Fleet, JumpCloud, Intune) for tests
/// and demos. Prints `listening on URL` on the first line of stdout, then serves until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "mdmsim", version, after_long_help = SCENARIO_HELP)]
struct Args {
    /// Provider to simulate: jamf, iru (kandji), simplemdm, fleet, jumpcloud, intune.
    #[arg(long)]
    provider: Provider,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Scenario file (JSON, or TOML if it ends in .toml). See --help for the format.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Serve HTTPS with a generated CA; its PEM is written to --ca-out (or printed).
    #[arg(long)]
    tls: bool,
    /// Where to write the CA certificate PEM when --tls is given.
    #[arg(long, requires = "tls")]
    ca_out: Option<PathBuf>,
    /// Generate a fleet of N devices instead of reading a scenario.
    #[arg(long, conflicts_with = "scenario")]
    generate_devices: Option<usize>,
    /// Groups in the generated fleet.
    #[arg(long, default_value_t = 100, requires = "generate_devices")]
    generate_groups: usize,
    /// Memberships in the generated fleet (default: 2 per device).
    #[arg(long, requires = "generate_devices")]
    generate_memberships: Option<usize>,
    /// Seed of the generated fleet.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mdmsim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdmsim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let scenario = match (&args.scenario, args.generate_devices) {
        (Some(path), _) => Scenario::load(path)?,
        (None, Some(n)) => Scenario::generate(
            args.seed,
            n,
            args.generate_groups,
            args.generate_memberships.unwrap_or(n * 2),
        ),
        (None, None) => Scenario::sample(),
    };
    let mut opts = SimOptions::new(args.provider, scenario);
    opts.tls = args.tls;
    opts.bind = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let sim = Simulator::start(opts).await?;
    // The banner goes to whoever reads it; a reader that stops after the first line (tests,
    // `head -1`) must not make the simulator panic, so write errors are ignored.
    say(&format!("listening on {}", sim.origin()));
    say(&format!("api base: {}", sim.base_url()));
    if let Some(t) = sim.token_url() {
        say(&format!("token url: {t}"));
    }
    if let Some(pem) = sim.ca_cert_pem() {
        match &args.ca_out {
            Some(path) => {
                std::fs::write(path, pem)?;
                say(&format!("ca certificate: {}", path.display()));
            }
            None => say(pem.trim_end()),
        }
    }
    let fields: Vec<String> = sim.credentials().into_keys().collect();
    say(&format!(
        "credentials: the scenario's {} (defaults in --help)",
        fields.join(", ")
    ));
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}

/// Writes one line to stdout and flushes it; a closed stdout is not an error worth dying for.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
