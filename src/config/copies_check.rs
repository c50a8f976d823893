//! Checks of the profile keys a copy runs (`on_copy_sql`, `neutralize_command`) that their
//! types cannot make: placeholders that would stay as written.

use crate::core::stage::neutralize::NOT_IN_SQL;

/// `(key path, message)` pairs for every profile.
pub(super) fn cross_check(config: &super::Config) -> Vec<(Vec<String>, String)> {
    let key = |name: &str, k: &str| vec!["profiles".into(), name.to_string(), k.to_string()];
    let mut errs = vec![];
    for (name, p) in &config.profiles {
        for placeholder in NOT_IN_SQL {
            if p.on_copy_sql.contains(placeholder) {
                errs.push((
                    key(name, "on_copy_sql"),
                    format!(
                        "{placeholder} is not offered in SQL (it would stay as written); \
                         on_copy_sql knows {{db_name}}, {{stage}}, {{subscription}}, \
                         {{domain}}, {{db_user}}, {{app_db_user}} and {{base_url}}"
                    ),
                ));
            }
        }
        let uses_config = p.neutralize_command.iter().any(|a| a.contains("{config}"));
        if uses_config && p.config_template.is_empty() {
            errs.push((
                key(name, "neutralize_command"),
                "uses {config}, but config_template is empty: no configuration file is \
                 mounted"
                    .into(),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    fn keys(c: &Config) -> Vec<String> {
        super::cross_check(c)
            .into_iter()
            .map(|(k, _)| k.join("."))
            .collect()
    }

    #[test]
    fn copy_keys_name_only_what_they_get() {
        let mut c = Config::default();
        assert!(keys(&c).is_empty());
        let p = c.profiles.get_mut("odoo").unwrap();
        p.on_copy_sql = "ALTER ROLE x PASSWORD '{db_password}'".into();
        p.config_template.clear();
        assert_eq!(
            keys(&c),
            [
                "profiles.odoo.on_copy_sql",
                "profiles.odoo.neutralize_command"
            ]
        );
    }
}
