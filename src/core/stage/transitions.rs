//! The stage lifecycle as one table: which operation may start from which state, and where it
//! leads. Every `invalid_state` error comes from here.

use super::model::StageState;
use crate::core::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Start,
    Stop,
    Restart,
    Terminate,
    Restore,
    Cancel,
    Update,
    /// Measuring the stage's directories: only while its data is there.
    Measure,
    /// A git deploy into the addons.
    Deploy,
    /// SQL and commands: they need the containers running.
    Console,
    /// pg_dump needs the database running.
    Backup,
    /// Replacing the data needs the app stopped.
    RestoreBackup,
}

use Operation::*;
use StageState::*;

/// (operation, states it may start from, state it ends in). `None`: the state is unchanged.
const TABLE: &[(Operation, &[StageState], Option<StageState>)] = &[
    (Start, &[Stopped, Running], Some(Running)),
    (Stop, &[Running, Stopped], Some(Stopped)),
    (Restart, &[Running, Stopped], Some(Running)),
    (Terminate, &[Running, Stopped, Terminated], Some(Terminated)),
    (Restore, &[Terminated], Some(Stopped)),
    (
        Cancel,
        &[Build, Running, Stopped, Terminated, Cancelled],
        Some(Cancelled),
    ),
    (Update, &[Build, Running, Stopped, Terminated], None),
    (Measure, &[Running, Stopped, Terminated], None),
    (Deploy, &[Running, Stopped], None),
    (Console, &[Running], None),
    (Backup, &[Running], None),
    (RestoreBackup, &[Stopped], None),
];

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Start => "start",
            Stop => "stop",
            Restart => "restart",
            Terminate => "terminate",
            Restore => "restore",
            Cancel => "cancel",
            Update => "update",
            Measure => "measure",
            Deploy => "deploy",
            Console => "run SQL or commands",
            Backup => "back up",
            RestoreBackup => "restore a backup",
        }
    }

    fn row(self) -> (&'static [StageState], Option<StageState>) {
        TABLE
            .iter()
            .find(|(op, _, _)| *op == self)
            .map(|(_, from, to)| (*from, *to))
            .expect("every operation has a row")
    }

    pub fn allowed_from(self) -> &'static [StageState] {
        self.row().0
    }

    /// The state after the operation, from `from`.
    pub fn target(self, from: StageState) -> StageState {
        self.row().1.unwrap_or(from)
    }

    /// Ok when the operation may start from `state`; else the contract's `invalid_state`.
    pub fn check(self, stage: &str, state: StageState) -> Result<(), Error> {
        if self.allowed_from().contains(&state) {
            return Ok(());
        }
        Err(Error::InvalidState {
            what: format!("stage {stage} cannot {}: it", self.name()),
            state: state.as_str().to_string(),
            allowed: self
                .allowed_from()
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_lifecycle() {
        assert!(Stop.check("a/b", Running).is_ok());
        assert!(Stop.check("a/b", Stopped).is_ok(), "stop is idempotent");
        assert!(Start.check("a/b", Terminated).is_err());
        assert!(Restore.check("a/b", Stopped).is_err());
        assert!(Restore.check("a/b", Terminated).is_ok());
        for s in [Build, Running, Stopped, Terminated, Cancelled] {
            assert!(Cancel.check("a/b", s).is_ok());
        }
        assert!(Update.check("a/b", Cancelled).is_err());
        assert_eq!(Terminate.target(Running), Terminated);
        assert_eq!(Restore.target(Terminated), Stopped);
        assert_eq!(Update.target(Stopped), Stopped);
    }

    #[test]
    fn refusals_carry_state_and_allowed() {
        match Start.check("acme/qa", Cancelled) {
            Err(Error::InvalidState { state, allowed, .. }) => {
                assert_eq!(state, "cancelled");
                assert_eq!(allowed, vec!["stopped", "running"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
