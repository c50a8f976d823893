//! A deploy's update decided as pure functions: which modules `update` names ("changed", "all"
//! or a list), checked against the module folders of the new checkout; what `{modules}` becomes;
//! the SQL of the database snapshot and of putting it back.

use crate::core::{Error, Result};
use std::collections::BTreeSet;

/// A module is a top-level folder of the checkout holding this file (Odoo's manifest).
pub const MANIFEST: &str = "__manifest__.py";

/// The longest module name taken, and the most names one deploy may list.
const NAME_MAX: usize = 100;
const NAMES_MAX: usize = 1000;

/// `stage.deploy`'s `update`, as the API parsed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UpdateModules {
    /// The module folders whose files changed since the deployed commit.
    #[default]
    Changed,
    /// Every installed module (the update command's own `all`).
    All,
    /// These module folders of the checkout; an empty list updates nothing.
    Named(Vec<String>),
}

/// What the update command runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modules {
    /// Nothing to update: the app only restarts. Says why.
    Nothing(String),
    All,
    List(Vec<String>),
}

impl Modules {
    /// `{modules}`: the names joined by commas, or `all`.
    pub fn placeholder(&self) -> String {
        match self {
            Modules::Nothing(_) => String::new(),
            Modules::All => "all".into(),
            Modules::List(l) => l.join(","),
        }
    }
}

/// A plain folder name: ASCII letters, digits, `_`, `-` and `.`, not starting with `-` or `.`,
/// no `..`. Nothing in it can be a path, an option, a list separator or a placeholder.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with(['-', '.'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Checks the names of `update: [..]` before anything runs; duplicates go.
pub fn check_names(names: &[String]) -> Result<Vec<String>> {
    if names.len() > NAMES_MAX {
        return Err(Error::invalid(
            "update",
            format!("lists {} modules; at most {NAMES_MAX}", names.len()),
        ));
    }
    let mut out: Vec<String> = vec![];
    for n in names {
        if n == "all" {
            return Err(Error::invalid(
                "update",
                "\"all\" is not a module name; pass update: \"all\" instead of a list",
            ));
        }
        if !is_plain_name(n) {
            let shown: String = n.chars().take(40).collect();
            return Err(Error::invalid(
                "update",
                format!(
                    "{shown:?} is not a plain module folder name (letters, digits, '_', '-', \
                     '.'; no '/', '..', ',' or leading '-')"
                ),
            ));
        }
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    Ok(out)
}

/// The first component of a path git printed.
pub fn top_level(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// The modules to update. `in_checkout`: the checkout's module folders (names that are not
/// plain are never modules here); `changed`: the top-level names changed since the deployed
/// commit, `None` on a first deploy or when that commit is unknown.
pub fn plan(
    update: &UpdateModules,
    in_checkout: &BTreeSet<String>,
    changed: Option<&BTreeSet<String>>,
) -> Result<Modules> {
    let modules: BTreeSet<&String> = in_checkout.iter().filter(|m| is_plain_name(m)).collect();
    let list = |l: Vec<String>, why: &str| match l.is_empty() {
        true => Modules::Nothing(why.to_string()),
        false => Modules::List(l),
    };
    Ok(match update {
        UpdateModules::All => Modules::All,
        UpdateModules::Named(names) => {
            for n in names {
                if !modules.contains(n) {
                    return Err(Error::invalid(
                        "update",
                        format!(
                            "{n:?} is not a module of the new commit (a top-level folder with \
                             {MANIFEST})"
                        ),
                    ));
                }
            }
            list(names.clone(), "update names no module")
        }
        UpdateModules::Changed => match changed {
            None => list(
                modules.into_iter().cloned().collect(),
                "the commit has no module folder",
            ),
            Some(tops) => list(
                modules
                    .into_iter()
                    .filter(|m| tops.contains(*m))
                    .cloned()
                    .collect(),
                "no module folder changed since the deployed commit",
            ),
        },
    })
}

/// `update_command` with `{modules}` filled in; the other placeholders are the spec's.
pub fn update_argv(command: &[String], modules: &Modules) -> Vec<String> {
    let m = modules.placeholder();
    command.iter().map(|c| c.replace("{modules}", &m)).collect()
}

/// The database a deploy copies the stage's into before its update.
pub fn snapshot_name(db: &str) -> String {
    format!("{db}__pre_deploy")
}

/// Where the failed update's database goes while the snapshot is renamed in.
fn failed_name(db: &str) -> String {
    format!("{db}__deploy_failed")
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn drop_db(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", ident(name))
}

/// Ends every other session on `db`: a template copy and a rename need it alone.
fn terminate(db: &str) -> String {
    format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {} AND pid <> \
         pg_backend_pid()",
        literal(db)
    )
}

/// Run one by one on the maintenance database: a template copy of `db` owned by `db`'s owner
/// (the app's role), so it can be renamed back as it is.
pub fn snapshot_sql(db: &str) -> Vec<String> {
    let snap = snapshot_name(db);
    vec![
        drop_db(&snap),
        terminate(db),
        format!("CREATE DATABASE {} TEMPLATE {}", ident(&snap), ident(db)),
        format!(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I OWNER TO %I', {}, (SELECT \
             pg_get_userbyid(datdba) FROM pg_database WHERE datname = {})); END $$",
            literal(&snap),
            literal(db)
        ),
    ]
}

/// How many snapshots of `db` exist (0 or 1).
pub fn snapshot_count_sql(db: &str) -> String {
    format!(
        "SELECT count(*) FROM pg_database WHERE datname = {}",
        literal(&snapshot_name(db))
    )
}

/// Puts the snapshot back: both renames in one transaction, so `db` is never missing, then
/// the failed database goes. Run only while the snapshot exists.
pub fn restore_sql(db: &str) -> Vec<String> {
    let (snap, failed) = (snapshot_name(db), failed_name(db));
    vec![
        drop_db(&failed),
        terminate(db),
        format!(
            "BEGIN; ALTER DATABASE {} RENAME TO {}; ALTER DATABASE {} RENAME TO {}; COMMIT",
            ident(db),
            ident(&failed),
            ident(&snap),
            ident(db)
        ),
        drop_db(&failed),
    ]
}

/// Drops the snapshot once the deploy succeeded.
pub fn drop_snapshot_sql(db: &str) -> Vec<String> {
    vec![drop_db(&snapshot_name(db))]
}

#[cfg(test)]
#[path = "deploy_plan_tests.rs"]
mod tests;
