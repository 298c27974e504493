//! The command line, as clap parses it. The contract (commands, arguments, JSON shapes, exit
//! codes) is documented in `docs/cli.md`; keep the two in step.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// `mdmsync`: mirror device groups from an MDM into your workspaces, and audit every change.
#[derive(Debug, Parser)]
#[command(
    name = "mdmsync",
    version,
    about = "Mirror device groups from Jamf, Iru (Kandji), SimpleMDM, Fleet, JumpCloud or Intune into workspaces, with a full audit history.",
    long_about = None,
    after_help = "Start with `mdmsync demo`. Every command takes --json and then prints exactly one JSON document on stdout. The contract: docs/cli.md."
)]
pub struct Cli {
    /// The SQLite database (created by `workspace create` if missing). Default ./mdmsync.db.
    #[arg(long, global = true, env = "MDMSYNC_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The key file the credential vault is encrypted with (64 hex digits; created 0600 on
    /// first use if missing). Default: the database path with the extension `.key`.
    /// MDMSYNC_KEY (64 hex digits) takes precedence over any key file.
    #[arg(long, global = true, env = "MDMSYNC_KEY_FILE", value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// An extra CA certificate (PEM file) to trust when talking to the MDM, e.g. a private CA
    /// of a self-hosted Jamf or a TLS-inspecting proxy. Added to the public roots; TLS is
    /// always verified.
    #[arg(long, global = true, env = "MDMSYNC_CA_CERT", value_name = "PEM_FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Print exactly one JSON document on stdout (logs and progress go to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and list workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// Connect a workspace to its MDM: test the credentials (nothing is saved if the test
    /// fails), save them encrypted, refresh device metadata and, when the provider is new,
    /// sync groups at once.
    Connect(ConnectArgs),
    /// Import and list the workspace's devices.
    #[command(subcommand)]
    Devices(DevicesCmd),
    /// Device metadata from the MDM (MDM id, user, display name, console link).
    #[command(subcommand)]
    Metadata(MetadataCmd),
    /// Sync the workspace's groups from its MDM now.
    Sync(SyncArgs),
    /// The workspace's sync status: last sync, last error, next schedule, held sync.
    Status(WorkspaceArg),
    /// List and edit device groups.
    #[command(subcommand)]
    Groups(GroupsCmd),
    /// Ask the MDM to make a device check in now.
    ForceSync(ForceSyncArgs),
    /// The audit history: every event, who caused it, in which sync.
    History(HistoryArgs),
    /// The workspace's groups as they were at a position or a time.
    State(StateArgs),
    /// Rebuild the read models from the event log and compare them with the live ones.
    Verify(VerifyArgs),
    /// Export the event log.
    #[command(subcommand)]
    Events(EventsCmd),
    /// Run the bundled MDM simulator and a full scenario (needs nothing outside the repository).
    Demo,
}

/// `workspace …`
#[derive(Debug, Subcommand)]
pub enum WorkspaceCmd {
    /// Create a workspace.
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its plan: free (metadata only), pro or enterprise (group sync).
        #[arg(long, value_name = "free|pro|enterprise")]
        plan: String,
    },
    /// List workspaces.
    List,
}

/// `--workspace W`: a workspace id, or its name.
#[derive(Debug, Args)]
pub struct WorkspaceArg {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
}

/// `connect …`
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
    /// jamf, iru (alias kandji), simplemdm, fleet, jumpcloud or intune.
    #[arg(long)]
    pub provider: String,
    /// Overrides the provider's API endpoint (SimpleMDM, JumpCloud, Graph; regions, national
    /// clouds, tests). http:// only for loopback hosts.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Overrides the Entra token endpoint's base (Intune national clouds, tests).
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// A credential field, repeatable: jamf host, client_id, client_secret; iru host,
    /// api_token; simplemdm api_key; fleet host, api_token; jumpcloud api_key [org_id];
    /// intune tenant_id, client_id, client_secret.
    #[arg(
        long = "credential",
        value_name = "KEY=VALUE",
        conflicts_with = "credentials_file"
    )]
    pub credentials: Vec<String>,
    /// The credential fields in a file: a JSON object, or KEY=VALUE lines (`#` comments).
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
}

/// `devices …`
#[derive(Debug, Subcommand)]
pub enum DevicesCmd {
    /// Register devices from a CSV file (header `serial_number[,name]`) or a JSON array of
    /// `{"serial_number","name"}`; `-` reads standard input. Devices already registered (same
    /// serial number; without one, same name) are skipped, so a re-import adds nothing.
    Import {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// The file.
        file: PathBuf,
    },
    /// List devices, with their MDM metadata.
    List {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// Only devices whose serial number or MDM display name contains this.
        #[arg(long, value_name = "Q")]
        search: Option<String>,
    },
}

/// `metadata …`
#[derive(Debug, Subcommand)]
pub enum MetadataCmd {
    /// Look up every device that is due (at most once a day) in the MDM by serial number.
    Refresh {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// Refresh every device, due or not.
        #[arg(long)]
        force: bool,
    },
}

/// `sync …`
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
    /// Fetch and plan, print the events it would append, append nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Bypass the 15-minute cooldown between manual syncs (recorded as `forced_manual`).
    #[arg(long, conflicts_with = "confirm")]
    pub force: bool,
    /// Confirm a held sync (see `status`): the MDM is asked again and the changes apply if its
    /// answer is the one that was held.
    #[arg(long, value_name = "SYNC_ID")]
    pub confirm: Option<String>,
}

/// `groups …`
#[derive(Debug, Subcommand)]
pub enum GroupsCmd {
    /// List groups with their members.
    List(WorkspaceArg),
    /// Create a manual group.
    Create {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// Its name (unique in the workspace, case-insensitively).
        #[arg(long)]
        name: String,
    },
    /// Rename a manual group (synced groups take their MDM name).
    Rename {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// The group: its id, or its name.
        #[arg(long, value_name = "ID")]
        group: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Add devices to a manual group.
    Add(MembersArgs),
    /// Remove devices from a manual group.
    Remove(MembersArgs),
    /// Delete a group; a synced group's MDM group is then excluded from later syncs.
    Delete {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// The group: its id, or its name.
        #[arg(long, value_name = "ID")]
        group: String,
    },
    /// Include an excluded MDM group again; the next sync creates it anew.
    Include {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// The group's id in the MDM.
        #[arg(long, value_name = "X")]
        mdm_group_id: String,
    },
    /// Set a policy or setting on a group (any group, synced ones too); a JSON `null` removes it.
    SetPolicy {
        /// The workspace: its id, or its name.
        #[arg(long, short = 'w', value_name = "W")]
        workspace: String,
        /// The group: its id, or its name.
        #[arg(long, value_name = "ID")]
        group: String,
        /// The key.
        #[arg(long, value_name = "K")]
        key: String,
        /// The value, as JSON (`true`, `"text"`, `{"a":1}`).
        #[arg(long, value_name = "JSON")]
        value: String,
    },
}

/// `groups add|remove …`
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
    /// The group: its id, or its name.
    #[arg(long, value_name = "ID")]
    pub group: String,
    /// Devices: ids or serial numbers.
    #[arg(long = "device", value_name = "ID", num_args = 1.., required = true)]
    pub devices: Vec<String>,
}

/// `force-sync …`
#[derive(Debug, Args)]
pub struct ForceSyncArgs {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
    /// The device: its id, or its serial number.
    #[arg(long, value_name = "ID")]
    pub device: String,
}

/// `history …`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
    /// Only events naming this group (id, or name of an existing group).
    #[arg(long, value_name = "ID", conflicts_with = "device")]
    pub group: Option<String>,
    /// Only events naming this device (id, or serial number).
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
}

/// `state …`
#[derive(Debug, Args)]
pub struct StateArgs {
    /// The workspace: its id, or its name.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: String,
    /// A log position (a number) or an RFC 3339 time.
    #[arg(long, value_name = "RFC3339|POSITION")]
    pub as_of: String,
}

/// `verify …`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only report differences of this workspace.
    #[arg(long, short = 'w', value_name = "W")]
    pub workspace: Option<String>,
}

/// `events …`
#[derive(Debug, Subcommand)]
pub enum EventsCmd {
    /// Print stored events as JSON lines, one event per line, in log order.
    Export {
        /// Only events after this log position.
        #[arg(long, value_name = "POSITION", default_value_t = 0)]
        after: u64,
    },
}
