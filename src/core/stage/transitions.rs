//! The stage lifecycle as one table: which operation may start from which state, and where it
//! leads. Every `invalid_state` error comes from here, and [`Stage::apply`] is the only writer
//! of a stage's state.

use super::model::{Stage, StageState};
use crate::core::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A create's steps all done: the stage runs. (Its rollback is a `Cancel`.)
    Create,
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
    /// The app's admin password is set in its database, which must run.
    SetAdminPassword,
}

use Operation::*;
use StageState::*;

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Create => "finish its create",
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
            SetAdminPassword => "set its admin password",
        }
    }

    /// (states it may start from, state it ends in); `None`: the state is unchanged.
    fn row(self) -> (&'static [StageState], Option<StageState>) {
        match self {
            Create => (&[Build], Some(Running)),
            Start => (&[Stopped, Running], Some(Running)),
            Stop => (&[Running, Stopped], Some(Stopped)),
            Restart => (&[Running, Stopped], Some(Running)),
            Terminate => (&[Running, Stopped, Terminated], Some(Terminated)),
            Restore => (&[Terminated], Some(Stopped)),
            Cancel => (
                &[Build, Running, Stopped, Terminated, Cancelled],
                Some(Cancelled),
            ),
            Update => (&[Build, Running, Stopped, Terminated], None),
            Measure => (&[Running, Stopped, Terminated], None),
            Deploy => (&[Running, Stopped], None),
            Console => (&[Running], None),
            Backup => (&[Running], None),
            RestoreBackup => (&[Stopped], None),
            SetAdminPassword => (&[Running], None),
        }
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

impl Stage {
    /// Moves the record to where `op` leads, after checking (again, on the record as it is now)
    /// that `op` may run from its state. A refusal leaves the record as it was.
    pub fn apply(&mut self, op: Operation) -> Result<(), Error> {
        op.check(&self.reference(), self.state)?;
        self.state = op.target(self.state);
        Ok(())
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

    const ALL_OPS: [Operation; 14] = [
        Create,
        Start,
        Stop,
        Restart,
        Terminate,
        Restore,
        Cancel,
        Update,
        Measure,
        Deploy,
        Console,
        Backup,
        RestoreBackup,
        SetAdminPassword,
    ];

    /// Every (operation, state) pair the table refuses: `apply` errs and leaves the record.
    #[test]
    fn apply_refuses_what_the_table_refuses_and_changes_nothing() {
        let mut refused = 0;
        for op in ALL_OPS {
            for from in StageState::ALL {
                let mut s = crate::core::fakes::stage("a", "b", from);
                let before = s.clone();
                let allowed = op.allowed_from().contains(&from);
                match s.apply(op) {
                    Ok(()) => {
                        assert!(allowed, "{op:?} from {from:?} should be refused");
                        assert_eq!(s.state, op.target(from));
                    }
                    Err(Error::InvalidState { state, .. }) => {
                        assert!(!allowed, "{op:?} from {from:?} should be allowed");
                        assert_eq!(state, from.as_str());
                        assert_eq!(s, before, "{op:?} from {from:?} changed the record");
                        refused += 1;
                    }
                    Err(e) => panic!("{op:?} from {from:?}: {e}"),
                }
            }
        }
        // 14 operations by 5 states, minus the 29 pairs the table allows.
        assert_eq!(refused, 14 * 5 - 29);
    }

    #[test]
    fn the_refusals_that_guard_the_races() {
        use StageState::*;
        let refuse = |op: Operation, from: StageState| {
            let mut s = crate::core::fakes::stage("a", "b", from);
            assert!(s.apply(op).is_err(), "{op:?} from {from:?}");
            assert_eq!(s.state, from);
        };
        // A create that finished once, or was cancelled meanwhile, cannot finish again.
        for from in [Running, Stopped, Terminated, Cancelled] {
            refuse(Create, from);
        }
        // Nothing but a cancel leaves a cancelled stage.
        for op in [Start, Stop, Restart, Terminate, Restore, Update, Deploy] {
            refuse(op, Cancelled);
        }
        // A build is only finished or cancelled.
        for op in [Start, Stop, Restart, Terminate, Restore, Deploy, Backup] {
            refuse(op, Build);
        }
        refuse(Restore, Stopped);
        refuse(Restore, Running);
        refuse(Start, Terminated);
        refuse(RestoreBackup, Running);
        refuse(Backup, Stopped);
        refuse(Console, Stopped);
        // The admin password goes into the database: it must run.
        refuse(SetAdminPassword, Stopped);
        refuse(Measure, Cancelled);
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
