//! `check-config` on the real-image keys (issue 15): a bad `run_as`, a bad image reference,
//! an unknown pull policy, a readable `password_file`, a registry key that is no host and
//! zero log files, each with its line and key.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn check(text: &str, dir: &std::path::Path) -> (Option<i32>, String, String) {
    let p = dir.join("stagelet.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(common::DAEMON)
        .arg("check-config")
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        p.display().to_string(),
    )
}

const PROFILE: &str = r#"[agent]
default_profile = "p"
[profiles.p.app]
image = "odoo:17.0"
port = 8069
run_as = "odoo:odoo"
[profiles.p.db]
image = "Postgres :16"
port = 5432
pull = "sometimes"
"#;

#[test]
fn bad_run_as_image_and_pull_are_refused_with_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err, path) = check(PROFILE, dir.path());
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains(&format!("{path}:6:1: profiles.p.app.run_as: ")),
        "{err}"
    );
    assert!(err.contains("\"UID:GID\""), "{err}");
    assert!(
        err.contains(&format!("{path}:10:1: profiles.p.db.pull: ")),
        "{err}"
    );
    // Fixed, the image reference is the next complaint (a cross-key check, located by key).
    let fixed = PROFILE
        .replace("\"odoo:odoo\"", "\"101:101\"")
        .replace("\"sometimes\"", "\"never\"");
    let (code, err, path) = check(&fixed, dir.path());
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains(&format!("{path}:8:1: profiles.p.db.image: ")),
        "{err}"
    );
    assert!(err.contains("space"), "{err}");
    let fixed = fixed.replace("\"Postgres :16\"", "\"../postgres:16\"");
    let (_, err, _) = check(&fixed, dir.path());
    assert!(
        err.contains("profiles.p.db.image") && err.contains(".."),
        "{err}"
    );
    let fixed = fixed.replace("\"../postgres:16\"", "\"postgres:16\"");
    let (code, err, _) = check(&fixed, dir.path());
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_password_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[logs]\nmax_files = 3\n\n[registries.\"registry.example.com:5000\"]\nusername = \"deploy\"\npassword_file = \"{}\"\n",
        pw.display()
    );
    let (code, err, path) = check(&text, dir.path());
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains(&format!(
            "{path}:6:1: registries.registry.example.com:5000.password_file: "
        )) && err.contains("0644"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, err, _) = check(&text, dir.path());
    assert_eq!(code, Some(0), "{err}");
    let missing = text.replace(&pw.display().to_string(), "/nonexistent/pw");
    let (code, err, _) = check(&missing, dir.path());
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains("password_file") && err.contains("/nonexistent/pw"),
        "{err}"
    );
}

#[test]
fn a_registry_key_docker_would_read_as_a_hub_path_and_zero_log_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[logs]\nmax_files = 0\n\n[registries.\"myregistry\"]\nusername = \"deploy\"\npassword_file = \"{}\"\n",
        pw.display()
    );
    let (code, err, path) = check(&text, dir.path());
    assert_eq!(code, Some(78), "{err}");
    assert!(
        err.contains(&format!("{path}:2:1: logs.max_files: ")),
        "{err}"
    );
    assert!(!err.contains("max_size_mb"), "{err}");
    assert!(
        err.contains(&format!("{path}:4:13: registries.myregistry: ")),
        "{err}"
    );
    for ok in ["localhost", "localhost:5000", "registry.example.com"] {
        let fixed = text
            .replace("max_files = 0", "max_files = 3")
            .replace("myregistry", ok);
        let (code, err, _) = check(&fixed, dir.path());
        assert_eq!(code, Some(0), "{ok}: {err}");
    }
}
