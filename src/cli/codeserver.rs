//! `stagectl codeserver ...`: a stage's code server. The password is printed only by `create`
//! and `rotate-password`, the two answers that carry it.

use super::args::CodeServerCmd;
use super::output;
use super::run::{render, Failure};
use crate::api::rpc::CodeServerApiClient;
use crate::core::stage::code_server::CodeServerView;
use jsonrpsee::async_client::Client;

pub async fn run(client: &Client, cmd: CodeServerCmd, json: bool) -> Result<String, Failure> {
    let view = match cmd {
        CodeServerCmd::Create { stage, domain } => {
            CodeServerApiClient::create(client, stage, domain).await?
        }
        CodeServerCmd::Start { stage } => CodeServerApiClient::start(client, stage).await?,
        CodeServerCmd::Stop { stage } => CodeServerApiClient::stop(client, stage).await?,
        CodeServerCmd::Remove { stage } => {
            let gone = CodeServerApiClient::remove(client, stage).await?;
            return render(json, &gone, |v| {
                format!("removed the code server of {} ({})\n", v.stage, v.domain)
            });
        }
        CodeServerCmd::RotatePassword { stage } => {
            CodeServerApiClient::rotate_password(client, stage).await?
        }
    };
    render(json, &view, text)
}

fn text(v: &CodeServerView) -> String {
    let mut pairs = vec![
        ("stage", v.stage.clone()),
        ("url", v.url.clone()),
        ("state", v.state.as_str().to_string()),
        ("port", output::opt(&v.port)),
    ];
    if let Some(p) = &v.password {
        pairs.push(("password", p.clone()));
    }
    let mut out = output::block(&pairs);
    if v.password.is_some() {
        out += "(the password is shown only now; `stagectl codeserver rotate-password` makes a new one)\n";
    }
    out
}
