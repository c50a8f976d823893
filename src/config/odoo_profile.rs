//! The embedded default profile: Odoo 17 with PostgreSQL 16, set up as Odoo's deployment guide
//! asks for a server on the internet (docs/odoo.md says why each value is what it is).

use super::images::RunAs;
use super::profile::{map, AdminPassword, Component, Profile, Readiness};
use super::types::{Dur, SignalName};

/// Where the app container sees the file the agent writes from `ODOO_CONF`.
const CONFIG_PATH: &str = "/etc/odoo/stagelet.conf";

/// Odoo's options for one stage: its database only, no database manager, a random master
/// password, proxy mode behind nginx. The image's own `odoo.conf` is not used.
const ODOO_CONF: &str = "[options]
db_host = {db_host}
db_port = {db_port}
db_user = {app_db_user}
db_password = {app_db_password}
db_name = {db_name}
dbfilter = ^{db_name}$
list_db = False
admin_passwd = {master_password_hash}
proxy_mode = True
data_dir = /var/lib/odoo
addons_path = /mnt/extra-addons
workers = 0
";

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Odoo 17 with PostgreSQL 16: the embedded default profile.
pub fn odoo() -> Profile {
    let mut app = Component::new("odoo:17.0", 8069);
    app.mounts = map(&[
        ("filestore", "/var/lib/odoo"),
        ("addons", "/mnt/extra-addons"),
    ]);
    app.run_as = Some(RunAs { uid: 101, gid: 101 });
    // The image's entrypoint appends --db_password to the command line; only the file speaks.
    app.entrypoint = Some(vec![]);
    app.command = argv(&["odoo", "-c", "{config}"]);
    app.init_command = argv(&[
        "odoo",
        "-c",
        "{config}",
        "-d",
        "{db_name}",
        "-i",
        "base",
        "--without-demo=all",
        "--stop-after-init",
    ]);
    app.readiness = Some(Readiness {
        http: "/web/health".into(),
        timeout: Dur::secs(120),
    });
    let mut db = Component::new("postgres:16", 5432);
    db.stop_signal = Some(SignalName(nix::sys::signal::Signal::SIGINT));
    db.user = Some("odoo".into());
    db.shm_size_mb = Some(256);
    db.mounts = map(&[("db", "/var/lib/postgresql/data")]);
    db.env = map(&[
        ("POSTGRES_USER", "{db_user}"),
        ("POSTGRES_PASSWORD", "{db_password}"),
        ("POSTGRES_DB", "postgres"),
    ]);
    let mut code_server = Component::new("codercom/code-server:4.96.4", 8080);
    code_server.password_env = Some("PASSWORD".into());
    code_server.run_as = Some(RunAs {
        uid: 1000,
        gid: 1000,
    });
    code_server.mounts = map(&[("addons", "/home/coder/project")]);
    Profile {
        grace_period: Some(Dur::secs(60)),
        active_users_query: "SELECT count(*) FROM res_users WHERE active AND NOT share".into(),
        neutralize_sql: ODOO_NEUTRALIZE.into(),
        neutralize_check: ODOO_NEUTRALIZE_CHECK.into(),
        neutralize_command: argv(&["odoo", "neutralize", "-c", "{config}", "-d", "{db_name}"]),
        on_copy_sql: ODOO_ON_COPY.into(),
        update_command: argv(&[
            "odoo",
            "-c",
            "{config}",
            "-d",
            "{db_name}",
            "-i",
            "{modules}",
            "-u",
            "{modules}",
            "--stop-after-init",
        ]),
        admin_password: Some(AdminPassword {
            sql: ODOO_ADMIN_PASSWORD.into(),
            hash: "pbkdf2-sha512".into(),
        }),
        config_template: ODOO_CONF.into(),
        config_path: CONFIG_PATH.into(),
        app_db_user: Some("odoo_app".into()),
        blocked_paths: vec!["/web/database/".into()],
        app,
        db,
        code_server: Some(code_server),
    }
}

/// The fallback when `neutralize_command` is empty (Odoo before 16): what Odoo 17's
/// `odoo/addons/base/data/neutralize.sql` does, for any version. Tables are touched only where
/// they exist (`fetchmail_server` comes with `mail`); `smtp_authentication`, required from
/// Odoo 15 on, is supplied where the column exists; crons stop but the autovacuum.
const ODOO_NEUTRALIZE: &str = "DO $$ BEGIN
IF to_regclass('ir_mail_server') IS NOT NULL THEN
  UPDATE ir_mail_server SET active = false;
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'ir_mail_server'::regclass
             AND attname = 'smtp_authentication' AND NOT attisdropped) THEN
    INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, active, sequence)
      VALUES ('neutralized: no mail leaves this stage', 'invalid', 1025, 'none', 'login', true, 0);
  ELSE
    INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, active, sequence)
      VALUES ('neutralized: no mail leaves this stage', 'invalid', 1025, 'none', true, 0);
  END IF;
END IF;
IF to_regclass('fetchmail_server') IS NOT NULL THEN
  UPDATE fetchmail_server SET active = false;
END IF;
IF to_regclass('ir_cron') IS NOT NULL THEN
  UPDATE ir_cron SET active = false WHERE id NOT IN
    (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base'
     AND name = 'autovacuum_job' AND res_id IS NOT NULL);
END IF;
IF to_regclass('ir_config_parameter') IS NOT NULL THEN
  INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'true')
    ON CONFLICT (key) DO UPDATE SET value = 'true';
END IF;
END $$";
/// No active mail server but the neutralised one (a server without a host counts as real).
const ODOO_NEUTRALIZE_CHECK: &str =
    "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host IS DISTINCT FROM 'invalid'";

/// A copy gets its own identity and secret (as Odoo's own duplicate does) and its own URL.
const ODOO_ON_COPY: &str = "UPDATE ir_config_parameter SET value = gen_random_uuid()::text \
WHERE key IN ('database.uuid', 'database.secret'); \
INSERT INTO ir_config_parameter (key, value) VALUES ('web.base.url', '{base_url}') \
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";

/// Returns the rows changed, which must be 1: the `admin` user exists.
const ODOO_ADMIN_PASSWORD: &str =
    "WITH changed AS (UPDATE res_users SET password = '{password_hash}' \
WHERE login = 'admin' RETURNING 1) SELECT count(*) FROM changed";

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests and operators write this profile as TOML; it must read back the same.
    #[test]
    fn the_default_profile_round_trips_through_toml() {
        let text = toml::to_string(&odoo()).unwrap();
        let back: Profile = toml::from_str(&text).unwrap();
        assert_eq!(back, odoo());
        assert!(text.contains("list_db = False"));
    }
}
