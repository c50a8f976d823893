//! Issue 16's stages: the embedded default `odoo` profile, unchanged but for the stand-in images
//! (tests/images/README.md) and a short grace period, as the daemon's default profile.

use stagelet::config::profile::odoo;
use stagelet::config::types::Dur;

/// Overrides for [`super::StageEnv::start`]: `[profiles.odoo]` is the default profile with
/// `stagelet-test/odoo:1`, `stagelet-test/postgres:1` and `stagelet-test/code-server:1`.
pub fn odoo_overrides() -> String {
    let mut p = odoo();
    p.app.image = "stagelet-test/odoo:1".into();
    p.db.image = "stagelet-test/postgres:1".into();
    if let Some(cs) = p.code_server.as_mut() {
        cs.image = "stagelet-test/code-server:1".into();
        // The stand-in reads AUTH_PASSWORD where the real image reads PASSWORD.
        cs.password_env = Some("AUTH_PASSWORD".into());
    }
    p.grace_period = Some(Dur::secs(5));
    let mut profiles = toml::Table::new();
    profiles.insert("odoo".into(), toml::Table::try_from(&p).unwrap().into());
    let mut top = toml::Table::new();
    top.insert("profiles".into(), profiles.into());
    format!(
        "[agent]\ndefault_profile = \"odoo\"\n{}",
        toml::to_string(&top).unwrap()
    )
}
