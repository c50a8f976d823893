//! The application's admin password (issue 16): checked, generated when absent, hashed as the
//! profile's `admin_password` says and set by its SQL as the app's role on the stage database.
//! The password is answered once and goes nowhere else: no log, event, record or command line.

use super::containers::expand;
use super::model::{Stage, Step};
use super::transitions::Operation;
use super::{naming, Stages};
use crate::core::interfaces::DbTarget;
use crate::core::password_hash;
use crate::core::settings::{Profile, Settings};
use crate::core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Shorter passwords are refused.
pub const MIN_LEN: usize = 12;
/// What the agent generates: 24 letters and digits, about 142 bits.
pub const GENERATED_LEN: usize = 24;
/// The one hash the agent knows: passlib's, as Odoo's `res.users` stores it.
pub const PBKDF2_SHA512: &str = "pbkdf2-sha512";
/// Where the hash goes in the profile's SQL.
pub const PLACEHOLDER: &str = "{password_hash}";

/// A password on its way to the hash; `Debug` never shows it, so a request logged with `?`
/// leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The answer of `stage.set_admin_password`: the password only when the agent made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminPasswordReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
}

/// The password to set, and whether the agent generated it (then the answer carries it).
#[derive(Debug, Clone)]
pub struct Chosen {
    pub password: Secret,
    pub generated: bool,
}

impl Chosen {
    fn generate() -> Self {
        Chosen {
            password: Secret(password_hash::generate(GENERATED_LEN)),
            generated: true,
        }
    }

    /// The password for the answer: only one the agent made (the caller knows its own).
    pub fn answer(&self) -> Option<String> {
        self.generated.then(|| self.password.0.clone())
    }
}

/// A caller's password: at least [`MIN_LEN`] characters, no control character (a newline or
/// a tab is a paste gone wrong, and the form login could never send it back). The message
/// never quotes the password.
pub fn check(field: &'static str, password: &Secret) -> Result<()> {
    let count = password.0.chars().count();
    if count < MIN_LEN {
        return Err(Error::invalid(
            field,
            format!("must be at least {MIN_LEN} characters; this one has {count}"),
        ));
    }
    if password.0.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must not hold control characters (newline, tab, ...)",
        ));
    }
    Ok(())
}

fn no_way(field: &'static str, profile_name: &str) -> Error {
    Error::invalid(
        field,
        format!("the profile {profile_name:?} has no way to set an admin password (it has no admin_password)"),
    )
}

/// `stage.create`'s decision, before anything runs. A given password is checked and set on
/// any stage; without one, a fresh stage gets a generated password and a clone keeps its
/// source's users. A profile without `admin_password` refuses a given password and otherwise
/// sets nothing (docs/odoo.md).
pub fn for_create(
    profile_name: &str,
    profile: &Profile,
    given: Option<Secret>,
    clone: bool,
) -> Result<Option<Chosen>> {
    const FIELD: &str = "admin_password";
    if let Some(pw) = &given {
        check(FIELD, pw)?;
    }
    Ok(match (&profile.admin_password, given) {
        (None, Some(_)) => return Err(no_way(FIELD, profile_name)),
        (None, None) => None,
        (Some(_), Some(password)) => Some(Chosen {
            password,
            generated: false,
        }),
        (Some(_), None) if clone => None,
        (Some(_), None) => Some(Chosen::generate()),
    })
}

/// `stage.set_admin_password`'s decision: the given password, checked, or a generated one.
pub fn for_reset(profile_name: &str, profile: &Profile, given: Option<Secret>) -> Result<Chosen> {
    const FIELD: &str = "password";
    if let Some(pw) = &given {
        check(FIELD, pw)?;
    }
    match (&profile.admin_password, given) {
        (None, Some(_)) => Err(no_way(FIELD, profile_name)),
        // Nothing was given to name: the stage's profile is what lacks.
        (None, None) => Err(no_way("stage", profile_name)),
        (Some(_), Some(password)) => Ok(Chosen {
            password,
            generated: false,
        }),
        (Some(_), None) => Ok(Chosen::generate()),
    }
}

/// The password hashed as `kind` says (the configuration check admits only [`PBKDF2_SHA512`]).
/// On a blocking thread: 600,000 rounds take a noticeable while.
async fn hash(kind: &str, password: &Secret) -> Result<String> {
    if kind != PBKDF2_SHA512 {
        return Err(Error::internal(
            "hashing the admin password",
            format!("the profile's admin_password.hash {kind:?} is not {PBKDF2_SHA512:?}"),
        ));
    }
    let pw = password.clone();
    tokio::task::spawn_blocking(move || password_hash::pbkdf2_sha512(pw.expose()))
        .await
        .map_err(|e| Error::internal("hashing the admin password", e))
}

/// The profile's SQL with the stage's placeholders and the hash in place.
pub fn render_sql(sql: &str, stage: &Stage, profile: &Profile, hash: &str) -> String {
    expand(sql, stage, profile).replace(PLACEHOLDER, hash)
}

impl Stages {
    /// Create's step: the chosen password, if any, after init or the copy and before the app
    /// starts, so the app never serves a moment with the image's `admin`/`admin`.
    pub(super) async fn admin_password_step(
        &self,
        profile: &Profile,
        stage: &mut Stage,
        target: &DbTarget,
        chosen: Option<&Chosen>,
    ) -> Result<()> {
        let Some(chosen) = chosen else {
            return Ok(());
        };
        self.step(stage, Step::AdminPassword).await?;
        self.apply_admin_password(profile, stage, target, chosen)
            .await
    }

    /// Runs the profile's `admin_password` SQL on the stage database as `target` (the
    /// superuser). It must say it changed at least one row. Errors never carry the hash.
    pub(super) async fn apply_admin_password(
        &self,
        profile: &Profile,
        stage: &Stage,
        target: &DbTarget,
        chosen: &Chosen,
    ) -> Result<()> {
        let how = profile.admin_password.as_ref().ok_or_else(|| {
            Error::internal(
                "setting the admin password",
                "the profile has no admin_password",
            )
        })?;
        let hashed = hash(&how.hash, &chosen.password).await?;
        let sql = render_sql(&how.sql, stage, profile, &hashed);
        let changed = self
            .deps
            .db
            .execute_count(
                &super::teardown::as_app_role(target.clone(), stage, profile),
                stage.db_name(),
                &sql,
            )
            .await
            .map_err(|e| match e {
                Error::Database(m) => Error::Database(format!(
                    "admin_password sql: {}",
                    m.replace(&hashed, "<hash>")
                )),
                other => other,
            })?;
        if changed < 1 {
            return Err(Error::Database(format!(
                "admin_password sql changed {changed} rows on {}: the profile's admin user is not \
                 in the database",
                stage.db_name()
            )));
        }
        Ok(())
    }

    /// `stage.set_admin_password`: on a running stage (its database must answer), under the
    /// stage's lock. Answers the password only when it was generated.
    pub async fn set_admin_password(
        &self,
        config: &Settings,
        reference: &str,
        password: Option<Secret>,
    ) -> Result<AdminPasswordReply> {
        let stage = self.find(reference)?;
        let profile = super::common::profile_of(config, &stage.profile)?;
        // Checked before the lock is waited for: bad input is refused at once.
        let chosen = for_reset(&stage.profile, profile, password)?;
        let (_guard, stage) = self.begin(reference, Operation::SetAdminPassword).await?;
        let profile = super::common::profile_of(config, &stage.profile)?;
        let target = self.db_target(&naming(config), &stage, profile).await?;
        self.apply_admin_password(profile, &stage, &target, &chosen)
            .await?;
        let how = if chosen.generated {
            "generated"
        } else {
            "given"
        };
        self.emit(&stage, "set_admin_password", "done", how);
        Ok(AdminPasswordReply {
            admin_password: chosen.answer(),
        })
    }
}

#[cfg(test)]
#[path = "admin_password_tests.rs"]
mod tests;
