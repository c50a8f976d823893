//! Runs one `stagectl` command: connect, call through the generated client, print.

use super::args::{Cli, Command, Limits, SubscriptionCmd};
use super::{exit, output};
use crate::api::client;
use crate::api::rpc::{AgentApiClient, HostApiClient, SubscriptionApiClient};
use crate::core::agent::AgentInfo;
use crate::core::interfaces::HostStats;
use crate::core::subscription::{Settings, SubscriptionView};
use crate::core::time::rfc3339;
use clap::{CommandFactory, Parser};
use jsonrpsee::core::ClientError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A failure and the exit status it maps to.
pub struct Failure(pub u8, pub String);

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Call(obj) => {
                let data = obj
                    .data()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok());
                let field = crate::api::errors::field_of(data.as_ref());
                let mut msg = obj.message().to_string();
                if let Some(f) = field.filter(|f| !msg.starts_with(f.as_str())) {
                    msg = format!("{f}: {msg}");
                }
                // A failed deploy's update output, as the daemon kept it.
                let tail = data
                    .as_ref()
                    .and_then(|d| d.get("log_tail")?.as_array().cloned());
                for line in tail.iter().flatten().filter_map(|l| l.as_str()) {
                    msg.push_str("\n  ");
                    msg.push_str(line);
                }
                Failure(exit::status_of_code(obj.code()), msg)
            }
            other => Failure(exit::OTHER, other.to_string()),
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "stagectl",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if let Command::Man = cli.command {
        return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(exit::OTHER)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure(status, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(status)
        }
    }
}

/// `--socket`/`STAGELET_SOCKET`, else the system socket, else a first-try daemon's in `./.stagelet`.
fn socket_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let system = PathBuf::from("/run/stagelet/stagelet.sock");
        let local = PathBuf::from(".stagelet/stagelet.sock");
        if !system.exists() && local.exists() {
            local
        } else {
            system
        }
    })
}

pub fn render<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<String, Failure> {
    if json {
        serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| Failure(exit::OTHER, e.to_string()))
    } else {
        Ok(human(value))
    }
}

async fn run(cli: Cli) -> Result<String, Failure> {
    let socket = socket_path(cli.socket);
    let client = client::connect(Path::new(&socket))
        .await
        .map_err(|e| Failure(exit::CONNECT, e.to_string()))?;
    let json = cli.json;
    match cli.command {
        Command::Info => render(json, &client.info().await?, info_text),
        Command::Host => render(json, &client.stats().await?, host_text),
        Command::Subscription(cmd) => subscription(&client, cmd, json).await,
        Command::Stage(cmd) => super::stage::run(&client, cmd, json).await,
        Command::CodeServer(cmd) => super::codeserver::run(&client, cmd, json).await,
        Command::Tls(super::args::TlsCmd::Renew { stage }) => {
            use crate::api::rpc::TlsApiClient;
            let s = TlsApiClient::renew(&client, stage).await?;
            render(json, &s, super::tls_text::tls_text)
        }
        Command::Images(cmd) => super::images::run(&client, cmd, json).await,
        Command::Completions { .. } | Command::Man => unreachable!("handled before connecting"),
    }
}

async fn subscription(
    client: &jsonrpsee::async_client::Client,
    cmd: SubscriptionCmd,
    json: bool,
) -> Result<String, Failure> {
    let one = |s: &SubscriptionView| subscription_text(s);
    match cmd {
        SubscriptionCmd::Create {
            id,
            stage_limit,
            limits,
            profile,
        } => {
            let settings = limits
                .touches_settings()
                .then(|| merged(Settings::default(), &limits));
            let s = SubscriptionApiClient::create(
                client,
                id,
                stage_limit,
                limits.storage_limit_mb,
                profile,
                settings,
            )
            .await?;
            render(json, &s, one)
        }
        SubscriptionCmd::Update {
            id,
            stage_limit,
            limits,
        } => {
            let settings = if limits.touches_settings() {
                Some(merged(
                    SubscriptionApiClient::get(client, id.clone())
                        .await?
                        .subscription
                        .settings,
                    &limits,
                ))
            } else {
                None
            };
            let s = SubscriptionApiClient::update(
                client,
                id,
                stage_limit,
                limits.storage_limit_mb,
                settings,
            )
            .await?;
            render(json, &s, one)
        }
        SubscriptionCmd::Get { id } => {
            render(json, &SubscriptionApiClient::get(client, id).await?, one)
        }
        SubscriptionCmd::List => {
            render(json, &SubscriptionApiClient::list(client).await?, |subs| {
                let rows: Vec<Vec<String>> = subs
                    .iter()
                    .map(|s| {
                        vec![
                            s.id.to_string(),
                            s.stage_limit.to_string(),
                            s.storage_limit_mb.map_or("-".into(), |m| format!("{m} MB")),
                            used(s),
                            s.profile.clone(),
                            s.created_at.date().to_string(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID",
                        "STAGE LIMIT",
                        "STORAGE LIMIT",
                        "USED",
                        "PROFILE",
                        "CREATED",
                    ],
                    &rows,
                )
            })
        }
        SubscriptionCmd::DeployKey { id } => {
            let key = SubscriptionApiClient::deploy_key(client, id).await?;
            render(json, &key, |k| format!("{}\n", k.public_key))
        }
        SubscriptionCmd::Delete { id } => {
            SubscriptionApiClient::delete(client, id.clone()).await?;
            render(json, &serde_json::json!({ "deleted": id }), |_| {
                format!("deleted {id}\n")
            })
        }
    }
}

/// The CLI's flags laid over the settings the subscription already has.
fn merged(mut settings: Settings, limits: &Limits) -> Settings {
    settings.env.extend(limits.env.iter().cloned());
    if limits.memory_limit_mb.is_some() {
        settings.memory_limit_mb = limits.memory_limit_mb;
    }
    if limits.cpu_limit.is_some() {
        settings.cpu_limit = limits.cpu_limit;
    }
    settings
}

/// Storage used, marked when over the limit.
fn used(s: &SubscriptionView) -> String {
    let mark = if s.over_limit { " OVER LIMIT" } else { "" };
    format!("{}{mark}", output::size(s.used_bytes))
}

fn subscription_text(s: &SubscriptionView) -> String {
    let env: Vec<String> = s
        .settings
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    output::block(&[
        ("id", s.id.to_string()),
        ("stage limit", s.stage_limit.to_string()),
        (
            "storage limit",
            s.storage_limit_mb.map_or("-".into(), |m| format!("{m} MB")),
        ),
        ("storage used", used(s)),
        ("profile", s.profile.clone()),
        (
            "env",
            if env.is_empty() {
                "-".into()
            } else {
                env.join(" ")
            },
        ),
        (
            "memory limit",
            s.settings
                .memory_limit_mb
                .map_or("-".into(), |m| format!("{m} MB")),
        ),
        ("cpu limit", output::opt(&s.settings.cpu_limit)),
        ("created", rfc3339(&s.created_at)),
        ("updated", rfc3339(&s.updated_at)),
    ])
}

fn info_text(i: &AgentInfo) -> String {
    let dep = |ok: bool, v: &Option<String>, m: &Option<String>| {
        let disabled = m.as_deref().is_some_and(|m| m.starts_with("disabled"));
        let state = match (ok, disabled) {
            (true, _) => "ok",
            (false, true) => "off",
            (false, false) => "NOT OK",
        };
        let mut s = format!("{state} {}", output::opt(v));
        if let Some(m) = m {
            s += &format!(" ({m})");
        }
        s
    };
    let stages: Vec<String> = i.stages.iter().map(|(k, v)| format!("{k} {v}")).collect();
    output::block(&[
        ("version", format!("{} (API {})", i.version, i.api_version)),
        ("hostname", i.hostname.clone()),
        (
            "docker",
            dep(i.docker.reachable, &i.docker.version, &i.docker.message),
        ),
        ("nginx", dep(i.nginx.ok, &i.nginx.version, &i.nginx.message)),
        ("uptime", format!("{}s", i.uptime_s)),
        ("subscriptions", i.subscriptions.to_string()),
        (
            "stages",
            if stages.is_empty() {
                "none".into()
            } else {
                stages.join(", ")
            },
        ),
    ]) + &i
        .warnings
        .iter()
        .map(|w| format!("WARNING: {w}\n"))
        .collect::<String>()
}

fn host_text(h: &HostStats) -> String {
    let mut out = output::block(&[
        (
            "cpu",
            format!(
                "{} cores, {:.1}% used, load {:.2} {:.2} {:.2}",
                h.cpu.cores,
                h.cpu.usage_pct,
                h.cpu.load_avg[0],
                h.cpu.load_avg[1],
                h.cpu.load_avg[2]
            ),
        ),
        (
            "memory",
            format!(
                "{} used of {}",
                output::size(h.memory.used),
                output::size(h.memory.total)
            ),
        ),
    ]);
    let rows: Vec<Vec<String>> = h
        .disks
        .iter()
        .map(|d| {
            let mark = if d.holds_state_dir { " (state)" } else { "" };
            vec![
                format!("{}{mark}", d.mount),
                output::size(d.total),
                output::size(d.available),
            ]
        })
        .collect();
    out += "\n";
    out += &output::table(&["MOUNT", "TOTAL", "AVAILABLE"], &rows);
    out
}
