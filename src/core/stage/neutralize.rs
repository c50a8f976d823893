//! What a copy of another database goes through before its app first sees it (a clone, a
//! restore of another stage's backup, the subscription's template): the profile's
//! `on_copy_sql` (its own secrets, its own URL), and on dev and qa copies neutralisation: the
//! app's own `neutralize_command` in a one-off container, else the profile's `neutralize_sql`,
//! then `neutralize_check`, which must return 0 (docs/odoo.md, "Copies").

use super::common::grace;
use super::containers::{app_db_user, db_user, SpecContext, NEUTRALIZE};
use super::model::Stage;
use super::{naming, Stages};
use crate::core::settings::{Profile, Settings, TlsMode};
use crate::core::{Error, Result};
use std::time::Duration;

/// How long the app's neutralize command may run.
const NEUTRALIZE_TIMEOUT: Duration = Duration::from_secs(1800);

/// Placeholders of other settings that SQL does not get: passwords stay out of statements
/// (PostgreSQL logs a failing one), and the rest mean nothing to the database.
pub const NOT_IN_SQL: [&str; 8] = [
    "{db_password}",
    "{app_db_password}",
    "{master_password_hash}",
    "{password_hash}",
    "{db_host}",
    "{db_port}",
    "{config}",
    "{modules}",
];

/// The URL the stage is reached at: `https://` when nginx serves it with TLS (`files`, or
/// `acme`, whose certificate follows the stage), else `http://`.
pub fn base_url(config: &Settings, stage: &Stage) -> String {
    let https = config.nginx.enabled && matches!(config.tls.mode, TlsMode::Files | TlsMode::Acme);
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", stage.domain)
}

/// `sql` with `{db_name}`, `{stage}`, `{subscription}`, `{domain}`, `{db_user}`,
/// `{app_db_user}` and `{base_url}` replaced in one pass (a value is never expanded again),
/// each value with its single quotes doubled: placeholders stand inside the template's
/// `'...'` literals, and no value can end one.
pub fn expand_sql(sql: &str, stage: &Stage, profile: &Profile, base_url: &str) -> String {
    let vars = [
        ("{db_name}", stage.db_name().to_string()),
        ("{stage}", stage.name.to_string()),
        ("{subscription}", stage.subscription.to_string()),
        ("{domain}", stage.domain.to_string()),
        ("{db_user}", db_user(profile)),
        ("{app_db_user}", app_db_user(stage, profile)),
        ("{base_url}", base_url.to_string()),
    ];
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match vars.iter().find(|(k, _)| rest.starts_with(k)) {
            Some((k, v)) => {
                out.push_str(&v.replace('\'', "''"));
                rest = &rest[k.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Stages {
    /// The profile's `on_copy_sql`, as the app's role, on the copy in database `db`.
    pub(super) async fn on_copy(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &Stage,
        op: &str,
        db: &str,
    ) -> Result<()> {
        if profile.on_copy_sql.trim().is_empty() {
            return Ok(());
        }
        let url = base_url(config, stage);
        let sql = expand_sql(&profile.on_copy_sql, stage, profile, &url);
        let target = self.app_target(&naming(config), stage, profile).await?;
        self.emit(stage, op, "on_copy_sql", url);
        self.deps
            .db
            .execute(&target, db, &sql)
            .await
            .map_err(|e| Error::Database(format!("on_copy_sql: {e}")))
    }

    /// Neutralises the dev or qa copy in database `db` (the stage's own, or a restore's side
    /// database) and proves it with `neutralize_check`. Marks `stage` neutralised; the caller
    /// saves it.
    pub(super) async fn neutralize(
        &self,
        config: &Settings,
        profile: &Profile,
        stage: &mut Stage,
        op: &str,
        db: &str,
    ) -> Result<()> {
        let naming = naming(config);
        let target = self.app_target(&naming, stage, profile).await?;
        if !profile.neutralize_command.is_empty() {
            self.emit(
                stage,
                op,
                "neutralize",
                profile.neutralize_command.join(" "),
            );
            // `{db_name}` is the database holding the copy, which a restore renames in later.
            let command: Vec<String> = profile
                .neutralize_command
                .iter()
                .map(|c| c.replace("{db_name}", db))
                .collect();
            let data_dir = self
                .deps
                .dirs
                .root(stage.subscription.as_str(), stage.name.as_str());
            let ctx = SpecContext {
                naming: &naming,
                stage,
                profile,
                data_dir: &data_dir,
                grace_s: grace(config, profile, stage, None).as_secs(),
                logs: config.images.log_caps(),
            };
            let spec = ctx.one_off(NEUTRALIZE, &command);
            let (code, tail) = self
                .deps
                .engine
                .run_to_completion(&spec, &naming.owner(stage), NEUTRALIZE_TIMEOUT)
                .await?;
            if code != 0 {
                return Err(Error::Database(format!(
                    "the copy is not neutralised: neutralize_command exited with {code}: {}",
                    tail.trim()
                )));
            }
        } else if !profile.neutralize_sql.trim().is_empty() {
            self.emit(stage, op, "neutralize", "sql");
            self.deps
                .db
                .execute(&target, db, &profile.neutralize_sql)
                .await
                .map_err(|e| Error::Database(format!("neutralize_sql: {e}")))?;
        } else {
            self.emit(
                stage,
                op,
                "neutralize",
                "the profile has neither neutralize_command nor neutralize_sql",
            );
            tracing::warn!(stage = %stage.reference(), profile = %stage.profile, "a dev/qa copy was not neutralised: the profile has neither neutralize_command nor neutralize_sql");
            return Ok(());
        }
        if !profile.neutralize_check.trim().is_empty() {
            let left = self
                .deps
                .db
                .count(&target, db, &profile.neutralize_check)
                .await?;
            if left != 0 {
                return Err(Error::Database(format!(
                    "the copy is not neutralised: neutralize_check returned {left}, not 0"
                )));
            }
            self.emit(stage, op, "neutralize_check", "0");
        }
        stage.neutralized = true;
        Ok(())
    }
}

#[cfg(test)]
#[path = "neutralize_tests.rs"]
mod tests;
