//! Checks of `on_copy_sql` that its type cannot make: placeholders that SQL is not offered
//! (passwords among them) would stay as written.

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
    fn on_copy_sql_names_only_what_it_gets() {
        let mut c = Config::default();
        assert!(keys(&c).is_empty());
        let p = c.profiles.get_mut("odoo").unwrap();
        p.on_copy_sql = "ALTER ROLE x PASSWORD '{db_password}'".into();
        assert_eq!(keys(&c), ["profiles.odoo.on_copy_sql"]);
        let p = c.profiles.get_mut("odoo").unwrap();
        p.on_copy_sql = "UPDATE t SET v = '{base_url}' WHERE k = '{1,2}'".into();
        assert!(keys(&c).is_empty());
    }
}
