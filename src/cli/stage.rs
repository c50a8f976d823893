//! `stagectl stage ...`: stage commands, with `create` showing its steps live.

use super::args::StageCmd;
use super::output;
use super::run::{render, Failure};
use super::stage_text::{age, backups_text, sql_text, stage_text, stats_text, usage_text};
use crate::api::rpc::{BackupApiClient, EventsApiClient, StageApiClient};
use crate::core::stage::model::StageView;
use jsonrpsee::async_client::Client;
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
            admin_password_stdin,
        } => {
            let admin_password = admin_password_stdin.then(read_password).transpose()?;
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
                admin_password,
            );
            let s = with_progress(client, &stage, json, create).await?;
            render(json, &s, |s| {
                let mut out = format!("{}\nhttp://{}/\n", stage_text(s), s.domain);
                if let Some(pw) = &s.admin_password {
                    out += &admin_password_text(pw);
                }
                out
            })
        }
        StageCmd::AdminPassword {
            stage,
            generate: _,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            let r = StageApiClient::set_admin_password(client, stage.clone(), password).await?;
            render(json, &r, |r| match &r.admin_password {
                Some(pw) => admin_password_text(pw),
                None => format!("the admin password of {stage} is set\n"),
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
                            s.tls
                                .as_ref()
                                .map_or("-".into(), super::tls_text::tls_short),
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
            update,
        } => {
            // "changed" and "all" as they are; anything else is a list of modules.
            let update = update.map(|u| match u.as_str() {
                "changed" | "all" => serde_json::Value::String(u),
                _ => u.split(',').map(|m| m.trim().to_string()).collect(),
            });
            let deploy = StageApiClient::deploy(
                client,
                stage.clone(),
                repository,
                branch,
                Some(clear_destination),
                Some(!no_restart),
                Some(submodules),
                update,
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

/// One line of stdin, without its line end: the password never passes through argv.
fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure(super::exit::OTHER, format!("reading stdin: {e}")))?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_string())
}

fn admin_password_text(pw: &str) -> String {
    format!(
        "admin password: {pw}\n(shown only now; `stagectl stage admin-password` sets a new one)\n"
    )
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
