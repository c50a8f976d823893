//! The API's view of a stage: the record plus its containers as the engine sees them, and
//! the drift between the two.

use super::code_server::CodeServerState as Cs;
use super::containers::{self, CODE_SERVER};
use super::model::{ComponentView, Stage, StageState, StageView};
use super::{naming, Stages};
use crate::core::settings::Settings;
use std::collections::BTreeMap;

impl Stages {
    /// The API's view: the record plus the containers as the engine sees them, and drift.
    pub async fn view(&self, config: &Settings, stage: &Stage) -> StageView {
        let naming = naming(config);
        let network = naming.network(stage);
        let mut components = BTreeMap::new();
        let mut drift = vec![];
        for &role in containers::components(stage) {
            let name = naming.container(stage, role);
            let (view, running) = match self.deps.engine.inspect_container(&name, &network).await {
                Ok(Some(info)) => (
                    ComponentView {
                        digest: self.running_digest(&info).await,
                        image: Some(info.image),
                        container_id: Some(info.id),
                        status: info.status,
                    },
                    Some(info.running),
                ),
                Ok(None) => (
                    ComponentView {
                        container_id: None,
                        status: "missing".into(),
                        image: None,
                        digest: None,
                    },
                    None,
                ),
                Err(e) => {
                    drift.push(format!("cannot inspect {role}: {e}"));
                    (
                        ComponentView {
                            container_id: None,
                            status: "unknown".into(),
                            image: None,
                            digest: None,
                        },
                        Some(false),
                    )
                }
            };
            if let Some(d) = drift_of(role, &expected(stage, role), running, &view.status) {
                drift.push(d);
            }
            components.insert(role.to_string(), view);
        }
        let addons = self
            .deps
            .dirs
            .root(stage.subscription.as_str(), stage.name.as_str())
            .join("addons");
        StageView::new(stage, addons.display().to_string(), components, drift)
    }
}

/// What the record says a container should be: running, made but not running, or absent
/// (`None`: nothing is expected, as during a build).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Running(String),
    Stopped(String),
    Absent(String),
    Unknown,
}

fn expected(stage: &Stage, role: &str) -> Expect {
    let why = |what: &str| format!("the {what} is {}", stage.state.as_str());
    if role == CODE_SERVER {
        return match stage.code_server.as_ref().map(|c| c.state) {
            Some(Cs::Running) => Expect::Running("the code server is running".into()),
            Some(Cs::Stopped) => Expect::Stopped("the code server is stopped".into()),
            Some(Cs::Draft) | None => Expect::Absent("the code server is a draft".into()),
        };
    }
    match stage.state {
        StageState::Running => Expect::Running(why("stage")),
        StageState::Stopped => Expect::Stopped(why("stage")),
        StageState::Terminated | StageState::Cancelled => Expect::Absent(why("stage")),
        StageState::Build => Expect::Unknown,
    }
}

/// The drift line for a container the engine shows as `running` (`None`: missing).
fn drift_of(role: &str, expect: &Expect, running: Option<bool>, status: &str) -> Option<String> {
    match (expect, running) {
        (Expect::Running(_) | Expect::Stopped(_), None) => {
            Some(format!("{role} container is missing"))
        }
        (Expect::Running(why), Some(false)) if status != "unknown" => {
            Some(format!("{role} container is {status} while {why}"))
        }
        (Expect::Stopped(why), Some(true)) => Some(format!("{role} container runs while {why}")),
        (Expect::Absent(why), Some(_)) => Some(format!("{role} container exists while {why}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fakes;
    use crate::core::stage::code_server::{CodeServer, CodeServerState};
    use crate::core::stage::containers::{APP, DB};

    #[test]
    fn drift_follows_the_stage_and_its_code_server() {
        let mut s = fakes::stage("a", "b", StageState::Running);
        let line = |s: &Stage, role: &str, running: Option<bool>, status: &str| {
            drift_of(role, &expected(s, role), running, status)
        };
        assert_eq!(line(&s, APP, Some(true), "running"), None);
        assert_eq!(
            line(&s, APP, Some(false), "exited").as_deref(),
            Some("app container is exited while the stage is running")
        );
        assert_eq!(
            line(&s, DB, None, "missing").as_deref(),
            Some("db container is missing")
        );
        // No code server: none expected.
        assert_eq!(line(&s, CODE_SERVER, None, "missing"), None);
        s.code_server = Some(CodeServer {
            domain: crate::core::names::Domain::parse("c.a.com").unwrap(),
            port: Some(25000),
            state: CodeServerState::Stopped,
            password: "x".into(),
            resume_with_stage: false,
        });
        assert_eq!(
            line(&s, CODE_SERVER, Some(true), "running").as_deref(),
            Some("code_server container runs while the code server is stopped")
        );
        s.state = StageState::Terminated;
        assert_eq!(
            line(&s, APP, Some(false), "exited").as_deref(),
            Some("app container exists while the stage is terminated")
        );
        s.state = StageState::Build;
        assert_eq!(line(&s, APP, None, "missing"), None);
    }
}
