//! The app's configuration file: the profile's `config_template` rendered for one stage and
//! written (mode 0600, owned by the app's `run_as`) before every start of an app container, so
//! a changed template applies at the next start. Its master password exists only as a hash.

use super::containers::{expand, APP_CONFIG};
use super::model::Stage;
use super::Stages;
use crate::core::interfaces::AppRole;
use crate::core::password_hash;
use crate::core::settings::Profile;
use crate::core::{Error, Result};

/// The placeholder only the template knows.
pub const MASTER_PASSWORD_HASH: &str = "{master_password_hash}";

/// The file's text: the template with the stage's placeholders and its master password's hash.
pub fn render(profile: &Profile, stage: &Stage) -> String {
    let hash = stage.master_password_hash.as_deref().unwrap_or_default();
    expand(
        &profile.config_template.replace(MASTER_PASSWORD_HASH, hash),
        stage,
        profile,
    )
}

/// The app's own database role, once the stage has its password (stages made before keep the
/// superuser).
pub fn app_role(profile: &Profile, stage: &Stage) -> Option<AppRole> {
    match (&profile.app_db_user, &stage.app_db_password) {
        (Some(user), Some(password)) => Some(AppRole {
            user: user.clone(),
            password: password.clone(),
        }),
        _ => None,
    }
}

/// A random master password, hashed (seconds of CPU: off the async workers); the password
/// itself goes out of scope here.
pub async fn new_master_hash() -> Result<String> {
    tokio::task::spawn_blocking(|| password_hash::pbkdf2_sha512(&password_hash::generate(32)))
        .await
        .map_err(|e| Error::internal("hashing the master password", e))
}

impl Stages {
    /// Writes the app's configuration file when the profile has a template. A stage without a
    /// master password hash (made before there was one) gets one here, recorded first.
    pub(super) async fn write_app_config(
        &self,
        profile: &Profile,
        stage: &mut Stage,
    ) -> Result<()> {
        if profile.config_template.is_empty() {
            return Ok(());
        }
        if stage.master_password_hash.is_none()
            && profile.config_template.contains(MASTER_PASSWORD_HASH)
        {
            stage.master_password_hash = Some(new_master_hash().await?);
            self.save(stage).await?;
        }
        let owner = profile.app.run_as.map_or((0, 0), |r| (r.uid, r.gid));
        self.deps
            .dirs
            .write_private(
                stage.subscription.as_str(),
                stage.name.as_str(),
                APP_CONFIG,
                render(profile, stage).into_bytes(),
                owner,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stage::model::StageState;

    #[test]
    fn the_default_template_serves_one_database_with_the_apps_role() {
        let profile = crate::core::settings::odoo_profile();
        let mut s = crate::core::fakes::stage("acme", "qa", StageState::Build);
        s.db_password = "superpw".into();
        s.app_db_password = Some("apppw".into());
        s.master_password_hash = Some("$pbkdf2-sha512$600000$abc$def".into());
        let text = render(&profile, &s);
        for line in [
            "db_host = db",
            "db_port = 5432",
            "db_user = odoo_app",
            "db_password = apppw",
            "db_name = qa",
            "dbfilter = ^qa$",
            "list_db = False",
            "admin_passwd = $pbkdf2-sha512$600000$abc$def",
            "proxy_mode = True",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert!(
            !text.contains("superpw"),
            "the superuser's password stays out"
        );
        assert!(!text.contains('{'), "every placeholder is filled: {text}");
    }

    #[test]
    fn stages_before_the_apps_role_keep_the_superuser() {
        let profile = crate::core::settings::odoo_profile();
        let mut s = crate::core::fakes::stage("acme", "qa", StageState::Running);
        s.db_password = "superpw".into();
        let text = render(&profile, &s);
        assert!(text.contains("db_user = odoo\n"), "{text}");
        assert!(text.contains("db_password = superpw\n"));
    }
}
