//! The code server of a stage: its record, the API's view of it, and one transition table
//! for what each `codeserver.*` operation needs of the code server and of its stage.

use crate::core::names::Domain;
use crate::core::stage::model::StageState;
use crate::core::Error;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeServerState {
    /// Recorded, no container (the stage was stopped when it was made, or it was terminated).
    Draft,
    Running,
    Stopped,
}

impl CodeServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// Part of the stage record (mode 0600).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeServer {
    pub domain: Domain,
    /// Held while the stage holds ports (not while it is terminated).
    pub port: Option<u16>,
    pub state: CodeServerState,
    /// Never in a view or a log; only `codeserver.create` and `.rotate_password` return it.
    pub password: String,
    /// It was running when its stage stopped, so the stage's start brings it back.
    #[serde(default)]
    pub resume_with_stage: bool,
}

/// A code server as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeServerView {
    pub stage: String,
    pub domain: String,
    pub port: Option<u16>,
    pub state: CodeServerState,
    pub url: String,
    /// Only in the answers of `codeserver.create` and `codeserver.rotate_password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl CodeServerView {
    pub fn new(stage: String, cs: &CodeServer, https: bool, with_password: bool) -> Self {
        let scheme = if https { "https" } else { "http" };
        CodeServerView {
            stage,
            domain: cs.domain.to_string(),
            port: cs.port,
            state: cs.state,
            url: format!("{scheme}://{}/", cs.domain),
            password: with_password.then(|| cs.password.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsOperation {
    Create,
    Start,
    Stop,
    RotatePassword,
    Remove,
}

use CodeServerState::{Draft, Running, Stopped};
use CsOperation::*;

/// (operation, code-server states it may start from (empty: there must be none), stage states
/// it needs, the code server's state after it; `None`: unchanged or gone).
type Row = (
    CsOperation,
    &'static [CodeServerState],
    &'static [StageState],
    Option<CodeServerState>,
);

const TABLE: &[Row] = &[
    (
        Create,
        &[],
        &[StageState::Running, StageState::Stopped],
        None,
    ),
    (
        Start,
        &[Draft, Stopped, Running],
        &[StageState::Running],
        Some(Running),
    ),
    (
        Stop,
        &[Running, Stopped],
        &[
            StageState::Running,
            StageState::Stopped,
            StageState::Terminated,
        ],
        Some(Stopped),
    ),
    (
        RotatePassword,
        &[Draft, Running, Stopped],
        &[
            StageState::Running,
            StageState::Stopped,
            StageState::Terminated,
        ],
        None,
    ),
    (
        Remove,
        &[Draft, Running, Stopped],
        &[
            StageState::Running,
            StageState::Stopped,
            StageState::Terminated,
        ],
        None,
    ),
];

impl CsOperation {
    pub fn name(self) -> &'static str {
        match self {
            Create => "create",
            Start => "start",
            Stop => "stop",
            RotatePassword => "rotate its password",
            Remove => "remove",
        }
    }

    fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|r| r.0 == self)
            .expect("every operation has a row")
    }

    pub fn target(self) -> Option<CodeServerState> {
        self.row().3
    }

    /// Ok when the operation may run on `stage` (in `stage_state`) whose code server is
    /// `current`; else `conflict`, `not_found` or `invalid_state` saying which state is wrong.
    pub fn check(
        self,
        stage: &str,
        stage_state: StageState,
        current: Option<CodeServerState>,
    ) -> Result<(), Error> {
        let (_, from, stage_from, _) = *self.row();
        match (current, from.is_empty()) {
            (Some(_), true) => {
                return Err(Error::Conflict {
                    what: "code server of stage",
                    id: stage.to_string(),
                })
            }
            (None, false) => {
                return Err(Error::NotFound {
                    what: "code server of stage",
                    id: stage.to_string(),
                })
            }
            (Some(s), false) if !from.contains(&s) => {
                return Err(Error::InvalidState {
                    what: format!("the code server of {stage} cannot {}: it", self.name()),
                    state: s.as_str().into(),
                    allowed: from.iter().map(|s| s.as_str().to_string()).collect(),
                })
            }
            _ => {}
        }
        if !stage_from.contains(&stage_state) {
            return Err(Error::InvalidState {
                what: format!(
                    "the code server of {stage} cannot {}: the stage",
                    self.name()
                ),
                state: stage_state.as_str().into(),
                allowed: stage_from.iter().map(|s| s.as_str().to_string()).collect(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_code_server_and_its_stage() {
        let run = StageState::Running;
        assert!(Create.check("a/b", run, None).is_ok());
        assert!(Create.check("a/b", StageState::Stopped, None).is_ok());
        assert!(matches!(
            Create.check("a/b", run, Some(Draft)),
            Err(Error::Conflict { .. })
        ));
        assert!(matches!(
            Create.check("a/b", StageState::Terminated, None),
            Err(Error::InvalidState { .. })
        ));
        assert!(Start.check("a/b", run, Some(Draft)).is_ok());
        assert!(Start.check("a/b", run, Some(Running)).is_ok(), "idempotent");
        match Start.check("a/b", StageState::Stopped, Some(Stopped)) {
            Err(Error::InvalidState { state, allowed, .. }) => {
                assert_eq!(
                    (state.as_str(), allowed),
                    ("stopped", vec!["running".into()])
                )
            }
            other => panic!("{other:?}"),
        }
        match Stop.check("a/b", run, Some(Draft)) {
            Err(Error::InvalidState { state, allowed, .. }) => {
                assert_eq!(state, "draft");
                assert_eq!(allowed, vec!["running", "stopped"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Remove.check("a/b", run, None),
            Err(Error::NotFound { .. })
        ));
        assert!(RotatePassword
            .check("a/b", StageState::Stopped, Some(Draft))
            .is_ok());
        assert!(Remove
            .check("a/b", StageState::Cancelled, Some(Stopped))
            .is_err());
        assert_eq!(Start.target(), Some(Running));
        assert_eq!(Stop.target(), Some(Stopped));
    }

    #[test]
    fn the_view_carries_the_password_only_when_asked() {
        let cs = CodeServer {
            domain: Domain::parse("code.acme.example.com").unwrap(),
            port: Some(25000),
            state: Running,
            password: "s3cret-s3cret-s3cret-s3cret".into(),
            resume_with_stage: false,
        };
        let v = CodeServerView::new("acme/qa".into(), &cs, true, false);
        assert_eq!(v.url, "https://code.acme.example.com/");
        assert!(!serde_json::to_string(&v).unwrap().contains("s3cret"));
        let v = CodeServerView::new("acme/qa".into(), &cs, false, true);
        assert_eq!(v.password.as_deref(), Some("s3cret-s3cret-s3cret-s3cret"));
    }
}
