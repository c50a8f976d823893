//! The command line of `stagectl`, declared with clap. Completions and the man page come from
//! this same declaration.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "stagectl",
    version,
    about = "Drive the stagelet agent over its Unix socket"
)]
pub struct Cli {
    /// API socket [default: $STAGELET_SOCKET, /run/stagelet/stagelet.sock, ./.stagelet/stagelet.sock]
    #[arg(long, global = true, env = "STAGELET_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Print the raw JSON result instead of a table
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Agent version, host name, Docker and nginx health
    Info,
    /// Host CPU, memory and disks
    Host,
    /// Subscriptions (tenants)
    #[command(subcommand, alias = "sub")]
    Subscription(SubscriptionCmd),
    /// Stages: create, list, stop, start, terminate, restore, cancel, ...
    #[command(subcommand)]
    Stage(StageCmd),
    /// A stage's browser VS Code: create, start, stop, remove, rotate-password
    #[command(subcommand, name = "codeserver", alias = "code")]
    CodeServer(CodeServerCmd),
    /// Certificates (ACME mode): renew
    #[command(subcommand)]
    Tls(TlsCmd),
    /// Container images of the profiles: pull them ahead of the first stage
    #[command(subcommand)]
    Images(ImagesCmd),
    /// Print the man page (roff), for packaging
    #[command(hide = true)]
    Man,
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum TlsCmd {
    /// Order the stage's certificates (its domain's and its code server's) again now
    Renew {
        /// SUBSCRIPTION/NAME or UUID
        stage: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImagesCmd {
    /// Pull every image of a profile (the registry's credentials from the agent's config)
    Pull {
        /// Profile [default: agent.default_profile]
        profile: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionCmd {
    /// Create a subscription
    Create {
        id: String,
        #[arg(long)]
        stage_limit: u32,
        #[command(flatten)]
        limits: Limits,
        /// Profile its stages use [default: agent.default_profile]
        #[arg(long)]
        profile: Option<String>,
    },
    /// Change limits or settings
    Update {
        id: String,
        #[arg(long)]
        stage_limit: Option<u32>,
        #[command(flatten)]
        limits: Limits,
    },
    /// Show one subscription
    Get { id: String },
    /// List subscriptions
    #[command(alias = "ls")]
    List,
    /// Delete a subscription that has no stages left
    Delete { id: String },
    /// The public key to add as a read-only deploy key at the git host (made once)
    DeployKey { id: String },
}

#[derive(Args, Debug, Default)]
pub struct Limits {
    /// Storage limit in MB (0: none)
    #[arg(long)]
    pub storage_limit_mb: Option<u64>,
    /// App environment override, KEY=VALUE (repeatable)
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Memory limit per container, MB
    #[arg(long)]
    pub memory_limit_mb: Option<u64>,
    /// CPU limit per container, in CPUs
    #[arg(long)]
    pub cpu_limit: Option<f64>,
}

impl Limits {
    pub fn touches_settings(&self) -> bool {
        !self.env.is_empty() || self.memory_limit_mb.is_some() || self.cpu_limit.is_some()
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

#[derive(Subcommand, Debug)]
pub enum CodeServerCmd {
    /// Create the stage's code server; prints its URL and its password, once
    Create {
        /// SUBSCRIPTION/NAME
        stage: String,
        #[arg(long)]
        domain: String,
    },
    /// Start it (the stage must be running)
    Start { stage: String },
    /// Stop it
    Stop { stage: String },
    /// Remove its container, port and server block; the stage stays as it is
    Remove { stage: String },
    /// Give it a new password, in force at once; prints it, once
    RotatePassword { stage: String },
}

#[derive(Subcommand, Debug)]
pub enum StageCmd {
    /// Create a stage and watch its steps
    Create {
        /// SUBSCRIPTION/NAME
        stage: String,
        #[arg(long = "type", value_parser = ["dev", "qa", "prod"])]
        stage_type: String,
        #[arg(long)]
        domain: String,
        /// RFC 3339 time after which the stage is stopped
        #[arg(long)]
        end_date: Option<String>,
        /// Seconds between the stop signal and SIGKILL
        #[arg(long)]
        grace_period_s: Option<u64>,
        /// Start as a copy of this stage (SUBSCRIPTION/NAME); dev and qa copies are neutralised
        #[arg(long)]
        clone_from: Option<String>,
        /// Read the app's admin password from stdin (one line) instead of having one generated
        /// and printed once (a clone keeps its source's without this)
        #[arg(long)]
        admin_password_stdin: bool,
    },
    /// Set the app's admin password on a running stage: generated and printed once, or read
    /// from stdin (never from the command line)
    AdminPassword {
        stage: String,
        /// Generate one and print it, once (the default)
        #[arg(long, conflicts_with = "password_stdin")]
        generate: bool,
        /// Read the password from stdin (one line; at least 12 characters)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List stages
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        subscription: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long = "type")]
        stage_type: Option<String>,
    },
    /// Show one stage
    Get {
        stage: String,
    },
    Start {
        stage: String,
    },
    Stop {
        stage: String,
        #[arg(long)]
        grace_period_s: Option<u64>,
    },
    Restart {
        stage: String,
        #[arg(long)]
        grace_period_s: Option<u64>,
    },
    /// Stop, remove the containers, keep the data until purge
    Terminate {
        stage: String,
    },
    /// Bring a terminated stage back, stopped
    Restore {
        stage: String,
    },
    /// Remove everything of the stage, data included
    Cancel {
        stage: String,
    },
    /// Change the end date ("" clears it), type or grace period
    Update {
        stage: String,
        #[arg(long)]
        end_date: Option<String>,
        #[arg(long = "type", value_parser = ["dev", "qa", "prod"])]
        stage_type: Option<String>,
        #[arg(long)]
        grace_period_s: Option<u64>,
        /// Set by the controller that owns the webhook
        #[arg(long, value_parser = ["not_linked", "linked"])]
        webhook_state: Option<String>,
    },
    /// Deploy a git branch into the stage's addons and restart its app
    Deploy {
        stage: String,
        /// Repository URL (https://, ssh:// or user@host:path)
        #[arg(long = "repo")]
        repository: String,
        #[arg(long)]
        branch: String,
        /// Remove what the new commit does not have first
        #[arg(long = "clear")]
        clear_destination: bool,
        /// Leave the app running the old code
        #[arg(long)]
        no_restart: bool,
        /// Check the commit's submodules out too (one level)
        #[arg(long)]
        submodules: bool,
        /// Modules the profile's update command updates: changed (the default), all, or a
        /// comma-separated list of module folders
        #[arg(long)]
        update: Option<String>,
    },
    /// Back up a running stage (database and filestore)
    Backup {
        stage: String,
    },
    /// List a stage's backups
    Backups {
        stage: String,
    },
    /// Restore a backup into a stopped stage
    RestoreBackup {
        stage: String,
        backup: String,
    },
    /// Delete a backup
    BackupDelete {
        stage: String,
        backup: String,
    },
    /// Database, filestore and addons sizes, and active users
    Usage {
        stage: String,
        /// Measure now instead of showing the last measure
        #[arg(long)]
        refresh: bool,
    },
    /// CPU and memory of each container (one sample)
    Stats {
        stage: String,
    },
    /// One SQL statement on the stage database, printed as a table
    Sql {
        stage: String,
        query: String,
        /// Allow writes (the default is a read-only transaction)
        #[arg(long)]
        write: bool,
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
        #[arg(long, default_value_t = 1000)]
        max_rows: usize,
    },
    /// The last lines a container printed; -f follows
    Logs {
        stage: String,
        #[arg(long, default_value = "app", value_parser = ["app", "db", "code_server"])]
        component: String,
        #[arg(long)]
        tail: Option<usize>,
        /// RFC 3339 time to start from
        #[arg(long)]
        since: Option<String>,
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Run a command (an argv, no shell) in a container: stagectl stage exec acme/qa -- ls /
    Exec {
        stage: String,
        #[arg(long, default_value = "app", value_parser = ["app", "db", "code_server"])]
        component: String,
        #[arg(long)]
        timeout_s: Option<u64>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}
