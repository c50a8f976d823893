//! `stagectl stage ...`: stage commands, with `create` showing its steps live.

use super::args::StageCmd;
use super::output;
use super::run::{render, Failure};
use crate::api::rpc::{BackupApiClient, EventsApiClient, StageApiClient};
use crate::core::stage::backup::Backup;
use crate::core::stage::interfaces::{ContainerStats, SqlResult};
use crate::core::stage::model::StageView;
use crate::core::stage::usage::StageUsage;
use crate::core::tls::{TlsState, TlsView};
use jsonrpsee::async_client::Client;
use std::collections::BTreeMap;
use std::io::Write;

pub async fn run(client: &Client, cmd: StageCmd, json: bool) -> Result<String, Failure> {
    let one = |s: &StageView| stage_text(s);
    match cmd {
        StageCmd::Create {
            stage,
            stage_type,
            domain,
            end_date,
            grace_period_s,
            clone_from,
        } => {
            let (sub, name) = stage.split_once('/').ok_or_else(|| {
                Failure(
                    super::exit::status(crate::core::ErrorKind::InvalidParams),
                    format!("stage: {stage:?} is not SUBSCRIPTION/NAME"),
                )
            })?;
            let create = StageApiClient::create(
                client,
                sub.into(),
                name.into(),
                stage_type,
                domain,
                end_date,
                grace_period_s,
                clone_from,
            );
            let s = with_progress(client, &stage, json, create).await?;
            render(json, &s, |s| {
                format!("{}\nhttp://{}/\n", stage_text(s), s.domain)
            })
        }
        StageCmd::List {
            subscription,
            state,
            stage_type,
        } => {
            let list = StageApiClient::list(client, subscription, state, stage_type).await?;
            render(json, &list, |list| {
                let now = time::OffsetDateTime::now_utc();
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|s| {
                        vec![
                            format!("{}/{}", s.subscription, s.name),
                            s.stage_type.as_str().to_string(),
                            s.state.as_str().to_string(),
                            s.domain.clone(),
                            output::opt(&s.http_port),
                            s.tls.as_ref().map_or("-".into(), tls_short),
                            age(&s.created_at, now),
                        ]
                    })
                    .collect();
                output::table(
                    &["STAGE", "TYPE", "STATE", "DOMAIN", "PORT", "TLS", "AGE"],
                    &rows,
                )
            })
        }
        StageCmd::Get { stage } => render(json, &StageApiClient::get(client, stage).await?, one),
        StageCmd::Start { stage } => {
            render(json, &StageApiClient::start(client, stage).await?, one)
        }
        StageCmd::Stop {
            stage,
            grace_period_s,
        } => render(
            json,
            &StageApiClient::stop(client, stage, grace_period_s).await?,
            one,
        ),
        StageCmd::Restart {
            stage,
            grace_period_s,
        } => render(
            json,
            &StageApiClient::restart(client, stage, grace_period_s).await?,
            one,
        ),
        StageCmd::Terminate { stage } => {
            render(json, &StageApiClient::terminate(client, stage).await?, one)
        }
        StageCmd::Restore { stage } => {
            render(json, &StageApiClient::restore(client, stage).await?, one)
        }
        StageCmd::Cancel { stage } => {
            render(json, &StageApiClient::cancel(client, stage).await?, one)
        }
        StageCmd::Update {
            stage,
            end_date,
            stage_type,
            grace_period_s,
            webhook_state,
        } => render(
            json,
            &StageApiClient::update(
                client,
                stage,
                end_date,
                stage_type,
                grace_period_s,
                webhook_state,
            )
            .await?,
            one,
        ),
        StageCmd::Deploy {
            stage,
            repository,
            branch,
            clear_destination,
            no_restart,
            submodules,
        } => {
            let deploy = StageApiClient::deploy(
                client,
                stage.clone(),
                repository,
                branch,
                Some(clear_destination),
                Some(!no_restart),
                Some(submodules),
            );
            let s = with_progress(client, &stage, json, deploy).await?;
            render(json, &s, |s| {
                format!(
                    "deployed {} ({}), {} commits\n",
                    output::opt(&s.git.last_commit),
                    output::opt(&s.git.last_commit_message),
                    output::opt(&s.git.commit_count)
                )
            })
        }
        StageCmd::Usage { stage, refresh } => render(
            json,
            &StageApiClient::usage(client, stage, Some(refresh)).await?,
            usage_text,
        ),
        StageCmd::Backup { stage } => {
            let b = BackupApiClient::backup(client, stage).await?;
            render(json, &b, |b| backups_text(std::slice::from_ref(b)))
        }
        StageCmd::Backups { stage } => {
            render(json, &BackupApiClient::backups(client, stage).await?, |l| {
                backups_text(l)
            })
        }
        StageCmd::RestoreBackup { stage, backup } => render(
            json,
            &BackupApiClient::restore_backup(client, stage, backup).await?,
            one,
        ),
        StageCmd::BackupDelete { stage, backup } => {
            BackupApiClient::backup_delete(client, stage, backup.clone()).await?;
            render(json, &serde_json::json!({ "deleted": backup }), |_| {
                format!("deleted backup {backup}\n")
            })
        }
        StageCmd::Sql {
            stage,
            query,
            write,
            timeout_s,
            max_rows,
        } => {
            let r = StageApiClient::sql(
                client,
                stage,
                query,
                Some(!write),
                Some(timeout_s),
                Some(max_rows),
                None,
            )
            .await?;
            render(json, &r, sql_text)
        }
        StageCmd::Logs {
            stage,
            component,
            tail,
            since,
            follow,
        } => {
            if follow {
                let mut lines =
                    StageApiClient::follow_logs(client, stage, Some(component), tail).await?;
                while let Some(line) = lines.next().await {
                    let line = line.map_err(|e| Failure(super::exit::OTHER, e.to_string()))?;
                    if json {
                        println!("{}", serde_json::to_string(&line).unwrap_or_default());
                    } else {
                        println!("{} {}", line.at, line.line);
                    }
                }
                return Ok(String::new());
            }
            let r = StageApiClient::logs(client, stage, Some(component), tail, since).await?;
            render(json, &r, |r| {
                r.lines
                    .iter()
                    .map(|l| format!("{} {}\n", l.at, l.line))
                    .collect()
            })
        }
        StageCmd::Exec {
            stage,
            component,
            timeout_s,
            command,
        } => {
            let r =
                StageApiClient::exec(client, stage, Some(component), command, timeout_s).await?;
            if json {
                return render(json, &r, |_| String::new());
            }
            eprint!("{}", r.stderr);
            if r.stdout_truncated || r.stderr_truncated {
                eprintln!("(output cut at 1 MiB)");
            }
            match r.exit_code {
                Some(0) => Ok(r.stdout),
                Some(code) => Err(Failure(
                    super::exit::OTHER,
                    format!("{}the command exited with {code}", r.stdout),
                )),
                None => Err(Failure(
                    super::exit::OTHER,
                    format!("{}the command was killed at its timeout", r.stdout),
                )),
            }
        }
        StageCmd::Stats { stage } => render(
            json,
            &StageApiClient::stats(client, stage).await?,
            stats_text,
        ),
    }
}

fn usage_text(u: &StageUsage) -> String {
    let Some(s) = &u.storage else {
        return format!(
            "{}: not measured yet (stagectl stage usage {} --refresh)\n",
            u.stage, u.stage
        );
    };
    let row = |name: &str, allocated: u64, apparent: u64| {
        vec![
            name.to_string(),
            output::size(allocated),
            output::size(apparent),
        ]
    };
    let mut out = output::table(
        &["", "ON DISK", "APPARENT"],
        &[
            row("database", s.database_bytes, s.apparent.database_bytes),
            row("filestore", s.filestore_bytes, s.apparent.filestore_bytes),
            row("addons", s.addons_bytes, s.apparent.addons_bytes),
            row("total", s.used_bytes, s.apparent.used_bytes),
        ],
    );
    out += "\n";
    let mut pairs = vec![
        ("files", s.files.to_string()),
        ("active users", output::opt(&u.active_users)),
        ("measured", crate::core::time::rfc3339(&s.measured_at)),
    ];
    if s.unreadable > 0 {
        pairs.push(("unreadable", format!("{} entries skipped", s.unreadable)));
    }
    if u.over_limit {
        pairs.push(("limit", "the subscription is OVER its storage limit".into()));
    }
    out += &output::block(&pairs);
    out
}

fn backups_text(list: &[Backup]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                format!("{:?}", b.status).to_lowercase(),
                output::size(b.sizes.values().sum()),
                crate::core::time::rfc3339(&b.created_at),
                b.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["ID", "STATUS", "SIZE", "CREATED", "ERROR"], &rows)
}

fn sql_text(r: &SqlResult) -> String {
    let header: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    serde_json::Value::Null => "NULL".to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let mut out = if header.is_empty() {
        String::new()
    } else {
        output::table(&header, &rows)
    };
    let more = if r.truncated {
        " (more rows not sent)"
    } else {
        ""
    };
    out += &format!("({} rows{more})\n", r.row_count);
    out
}

fn stats_text(stats: &BTreeMap<String, Option<ContainerStats>>) -> String {
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|(role, s)| match s {
            Some(s) => vec![
                role.clone(),
                format!("{:.1}%", s.cpu_pct),
                output::size(s.memory_bytes),
                output::size(s.memory_limit_bytes),
            ],
            None => vec![role.clone(), "not running".into(), "-".into(), "-".into()],
        })
        .collect();
    output::table(&["COMPONENT", "CPU", "MEMORY", "LIMIT"], &rows)
}

/// Runs `call`, printing the stage's events to stderr as they come (unless `json`).
async fn with_progress<T>(
    client: &Client,
    stage: &str,
    json: bool,
    call: impl std::future::Future<Output = Result<T, jsonrpsee::core::ClientError>>,
) -> Result<T, Failure> {
    let mut events = EventsApiClient::watch(client, Some(stage.to_string())).await?;
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            r = &mut call => break r,
            Some(Ok(e)) = events.next() => {
                if !json {
                    eprintln!("  {} {:<12} {}", e.operation, e.step, e.message);
                    let _ = std::io::stderr().flush();
                }
            }
        }
    };
    Ok(result?)
}

/// "3d", "5h", "12m", "40s" since an RFC 3339 time.
fn age(created: &str, now: time::OffsetDateTime) -> String {
    let Ok(t) =
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
    else {
        return "-".into();
    };
    let s = (now - t).whole_seconds().max(0);
    match s {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `tls` in one word: the state, or the mode when it is off.
fn tls_short(t: &TlsView) -> String {
    match t.state {
        TlsState::None => t.mode.clone(),
        s => format!("{s:?}").to_lowercase(),
    }
}

/// A domain's `tls` on one line: state, end, issuer, error and next attempt.
fn tls_line(t: &TlsView) -> String {
    let mut s = format!("{} ({})", tls_short(t), t.mode);
    if let Some(end) = &t.not_after {
        s += &format!(", until {end}");
    }
    if let Some(i) = &t.issuer {
        s += &format!(", issuer {i}");
    }
    if let Some(e) = &t.last_error {
        s += &format!(", last error: {e}");
    }
    if let Some(n) = &t.next_attempt {
        s += &format!(", next attempt {n}");
    }
    s
}

/// `stagectl tls renew`'s answer: the stage and its domains' TLS.
pub(super) fn tls_text(s: &StageView) -> String {
    let mut pairs = vec![("stage", format!("{}/{}", s.subscription, s.name))];
    if let Some(t) = &s.tls {
        pairs.push(("tls", format!("{}: {}", s.domain, tls_line(t))));
    }
    if let Some(t) = s
        .code_server
        .as_ref()
        .and_then(|c| c.tls.as_ref().map(|t| (c, t)))
    {
        pairs.push((
            "code server tls",
            format!("{}: {}", t.0.domain, tls_line(t.1)),
        ));
    }
    output::block(&pairs)
}

fn stage_text(s: &StageView) -> String {
    let components: Vec<String> = s
        .components
        .iter()
        .map(|(k, c)| format!("{k} {}", c.status))
        .collect();
    let mut pairs = vec![
        ("stage", format!("{}/{}", s.subscription, s.name)),
        ("uuid", s.uuid.to_string()),
        ("type", s.stage_type.as_str().to_string()),
        ("state", s.state.as_str().to_string()),
        ("domain", s.domain.clone()),
        ("http port", output::opt(&s.http_port)),
        ("tls", s.tls.as_ref().map_or("-".into(), tls_line)),
        ("containers", components.join(", ")),
        ("addons dir", s.addons_dir.clone()),
        (
            "storage",
            s.storage.as_ref().map_or("not measured yet".into(), |u| {
                format!(
                    "{} (database {}, filestore {}, addons {})",
                    output::size(u.used_bytes),
                    output::size(u.database_bytes),
                    output::size(u.filestore_bytes),
                    output::size(u.addons_bytes)
                )
            }),
        ),
        ("active users", output::opt(&s.active_users)),
        (
            "code server",
            s.code_server.as_ref().map_or("-".into(), |c| {
                format!(
                    "{} ({}, port {})",
                    c.url,
                    c.state.as_str(),
                    output::opt(&c.port)
                )
            }),
        ),
        (
            "code server tls",
            s.code_server
                .as_ref()
                .and_then(|c| c.tls.as_ref())
                .map_or("-".into(), tls_line),
        ),
        ("created", s.created_at.clone()),
        ("end date", output::opt(&s.end_date)),
        ("purge at", output::opt(&s.purge_at)),
    ];
    if let Some(r) = s.stop_reason {
        pairs.push(("stop reason", format!("{r:?}").to_lowercase()));
    }
    if let Some(e) = &s.last_error {
        pairs.push(("last error", e.clone()));
    }
    if let Some(commit) = &s.git.last_commit {
        pairs.push((
            "git",
            format!(
                "{} {} @ {} ({} commits): {}",
                output::opt(&s.git.repository),
                output::opt(&s.git.branch),
                commit,
                output::opt(&s.git.commit_count),
                output::opt(&s.git.last_commit_message)
            ),
        ));
    }
    if s.over_limit {
        pairs.push(("limit", "the subscription is OVER its storage limit".into()));
    }
    if !s.drift.is_empty() {
        pairs.push(("drift", s.drift.join("; ")));
    }
    output::block(&pairs)
}
