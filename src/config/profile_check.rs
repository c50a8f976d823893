//! Cross-checks of a profile's keys for the app's safety: the paths nginx refuses, the
//! configuration file's path, the app's own database role.

use super::types::SafePath;
use super::Config;

/// An unquoted PostgreSQL identifier of the agent's choosing: lower case, digits and `_`, not
/// starting with a digit, at most 63 bytes, not in the reserved `pg_` namespace.
pub fn plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
        && !name.starts_with("pg_")
}

/// `(key path, message)` pairs, as `Config::cross_check` returns them.
pub fn cross_check(config: &Config) -> Vec<(Vec<String>, String)> {
    let mut errs = vec![];
    for (name, p) in &config.profiles {
        let key = |k: &str| vec!["profiles".to_string(), name.clone(), k.to_string()];
        for path in &p.blocked_paths {
            if let Err(m) = SafePath::try_from(path.clone()) {
                errs.push((key("blocked_paths"), format!("a URL path prefix: {m}")));
            }
        }
        if !p.config_template.is_empty() && SafePath::try_from(p.config_path.clone()).is_err() {
            errs.push((
                key("config_path"),
                "config_template is set: this must be the absolute path where the app reads \
                 its configuration file (letters, digits and / . _ - + @, no '..')"
                    .into(),
            ));
        }
        if let Some(user) = &p.app_db_user {
            let superuser = p.db.user.as_deref().unwrap_or("postgres");
            if !plain_identifier(user) {
                errs.push((
                    key("app_db_user"),
                    format!(
                        "{user:?} is not a plain PostgreSQL role name (a-z, 0-9, '_', not \
                         starting with a digit or pg_, at most 63 characters)"
                    ),
                ));
            } else if user == superuser {
                errs.push((
                    key("app_db_user"),
                    format!("{user:?} is the db component's user, the agent's superuser; the app's role must be another"),
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(c: &Config) -> Vec<String> {
        c.cross_check()
            .into_iter()
            .map(|(k, _)| k.join("."))
            .collect()
    }

    #[test]
    fn the_default_profile_passes_and_bad_values_name_their_key() {
        let mut c = Config::default();
        c.profiles
            .insert("odoo".into(), super::super::odoo_profile::odoo());
        assert!(keys(&c).is_empty(), "{:?}", c.cross_check());
        for bad in [
            "web/database/",
            "/a b",
            "/a;",
            "/a{",
            "/a'",
            "/a\"",
            "/../x",
            "",
        ] {
            let p = c.profiles.get_mut("odoo").unwrap();
            p.blocked_paths = vec![bad.into()];
            assert_eq!(keys(&c), ["profiles.odoo.blocked_paths"], "{bad:?}");
        }
        let p = c.profiles.get_mut("odoo").unwrap();
        p.blocked_paths = vec!["/web/database/".into()];
        for bad in ["", "etc/odoo.conf", "/etc/../x"] {
            c.profiles.get_mut("odoo").unwrap().config_path = bad.into();
            assert_eq!(keys(&c), ["profiles.odoo.config_path"], "{bad:?}");
        }
        let p = c.profiles.get_mut("odoo").unwrap();
        p.config_path = "/etc/odoo/stagelet.conf".into();
        for bad in ["odoo", "Odoo", "1app", "pg_app", "a-b", "a\"b", ""] {
            c.profiles.get_mut("odoo").unwrap().app_db_user = Some(bad.into());
            assert_eq!(keys(&c), ["profiles.odoo.app_db_user"], "{bad:?}");
        }
        let p = c.profiles.get_mut("odoo").unwrap();
        p.app_db_user = Some("odoo_app".into());
        p.config_template.clear();
        p.config_path.clear();
        assert!(keys(&c).is_empty());
    }
}
