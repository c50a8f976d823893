//! The agent's global nginx file: written by the daemon from its configuration into an nginx
//! laid out as Debian's (the package's conf.d file, Debian's default site), kept current on
//! SIGHUP, and never letting an unknown Host name reach a stage.

mod common;

use common::nginx::{curl, self_signed, setup_with, site, Backend, TestNginx};
use common::{require_engine, Daemon, StageEnv, DAEMON, TEST_PROFILE};
use stagelet::core::interfaces::ProxySites;
use stagelet::core::site::SiteState;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GETs over TLS with SNI `host`: 0 when the handshake is refused.
fn tls_status(host: &str, port: u16) -> u16 {
    let resolve = format!("{host}:{port}:127.0.0.1");
    curl(&[
        "-k",
        "--resolve",
        &resolve,
        &format!("https://{host}:{port}/"),
    ])
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_debians_default_site_a_stage_answers_and_unknown_names_get_debians_page() {
    if !require_engine(
        "with_debians_default_site_a_stage_answers_and_unknown_names_get_debians_page",
    )
    .await
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = common::ports(2);
    // No global file yet: nginx includes an empty glob, as right after `apt install`.
    let nginx = TestNginx::start_debian(dir.path(), base, base + 1, true);
    assert!(!nginx.global_file().exists());
    let daemon = Daemon::start_in_env(dir, &[&nginx.toml(), TEST_PROFILE], vec![]);
    let env = StageEnv { daemon, nginx };
    // The daemon wrote the file and reloaded nginx: the catch-all now holds the TLS port,
    // which nothing else in this nginx listens on.
    wait_listening(base + 1, &env.daemon.log());
    let text = std::fs::read_to_string(env.nginx.global_file()).unwrap();
    assert!(text.starts_with("# Managed by stagelet"), "{text}");
    assert!(
        text.contains(&format!("    listen 127.0.0.1:{base};\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "include {}/*.conf;",
            env.nginx.sites_dir.display()
        )),
        "{text}"
    );
    assert_eq!(tls_status("unknown.example.com", base + 1), 0);

    let out = env
        .daemon
        .ctl(&["subscription", "create", "acme", "--stage-limit", "1"]);
    assert!(out.status.success(), "{out:?}");
    let out = env.daemon.ctl(&[
        "stage",
        "create",
        "acme/qa",
        "--type",
        "qa",
        "--domain",
        "qa.acme.example.com",
    ]);
    assert!(out.status.success(), "{out:?}\n{}", env.daemon.log());
    let (status, body) = env.nginx.get("qa.acme.example.com", "/");
    assert_eq!(
        (status, body.as_str()),
        (200, "stagelet test app acme-qa\n")
    );
    // Debian's default_server keeps unknown names: its page, never the stage.
    let (status, body) = env.nginx.get("unknown.example.com", "/");
    assert_eq!(status, 200);
    assert!(body.contains("Debian's default site"), "{body}");
    let (status, body) = env.nginx.get("", "/");
    assert!(!body.contains("stagelet test app"), "{status} {body}");
    let out = env.daemon.ctl(&["stage", "cancel", "acme/qa"]);
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_debians_default_site_the_catch_all_closes_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = common::ports(3);
    let nginx = TestNginx::start_debian(dir.path(), base, base + 1, false);
    let s = setup_with(dir, nginx);
    let backend = Backend::start(s.dir.path(), base + 2, "the stage\n");
    s.sites
        .apply(site(
            "acme",
            "qa",
            "qa.acme.example.com",
            SiteState::Running,
            backend.port,
        ))
        .await
        .unwrap();
    assert!(
        s.nginx.global_file().exists(),
        "the agent writes its global file"
    );
    assert_eq!(
        s.nginx.get("qa.acme.example.com", "/"),
        (200, "the stage\n".into())
    );
    // The catch-all comes before the stage in nginx's order: it is the default server, so
    // an unknown name gets the connection closed, not the first (only) stage.
    let (status, body) = s.nginx.get("unknown.example.com", "/");
    assert_eq!((status, body.as_str()), (0, ""));
    // The port is open: the close is the catch-all's 444, not a refused connection.
    std::net::TcpStream::connect(("127.0.0.1", base)).unwrap();
    wait_listening(base + 1, "the catch-all's TLS port");
    assert_eq!(tls_status("unknown.example.com", base + 1), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_moves_the_global_file_and_the_stages_to_new_ports() {
    let test = "sighup_moves_the_global_file_and_the_stages_to_new_ports";
    let Some(env) = StageEnv::with_stages(test, "", None, &["qa"]).await else {
        return;
    };
    let file = env.nginx.global_file();
    let before = std::fs::read_to_string(&file).unwrap();
    let new = common::ports(2);
    let (new_http, new_https) = (new, new + 1);
    let mut table: toml::Table =
        toml::from_str(&std::fs::read_to_string(&env.daemon.config_path).unwrap()).unwrap();
    table["nginx"]["listen_http"] = toml::Value::Integer(new_http.into());
    table["nginx"]["listen_https"] = toml::Value::Integer(new_https.into());
    std::fs::write(&env.daemon.config_path, toml::to_string(&table).unwrap()).unwrap();
    env.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    // nginx was reloaded with it: it listens on the new ports.
    wait_listening(new_https, &env.daemon.log());
    let after = std::fs::read_to_string(&file).unwrap();
    assert_ne!(before, after);
    assert!(
        after.contains(&format!("listen 127.0.0.1:{new_https} ssl;")),
        "{after}"
    );
    // The stage's own file follows, not only at its next change: it answers on the new port.
    let get = || {
        curl(&[
            "-H",
            "Host: qa.acme.example.com",
            &format!("http://127.0.0.1:{new_http}/"),
        ])
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while get().0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the stage does not answer on the new port: {:?}\n{}",
            get(),
            env.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get().1, "stagelet test app acme-qa\n");
    let out = env.daemon.ctl(&["stage", "cancel", "acme/qa"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn check_config_refuses_paths_nginx_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[nginx]\nsites_dir = \"/etc/nginx/stage let\"\nglobal_file = \"/etc/nginx/stage let/g.conf\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(DAEMON)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        err.contains(&format!("{p}:3:")) && err.contains("nginx.global_file"),
        "{err}"
    );
    std::fs::write(
        &path,
        "[nginx]\nsites_dir = \"/etc/nginx/stage let\"\nglobal_file = \"/etc/nginx/g/g.conf\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(DAEMON)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{p}:2:")) && err.contains("nginx.sites_dir"),
        "{err}"
    );
    std::fs::write(
        &path,
        "[nginx]\nsites_dir = \"/srv/sites\"\nglobal_file = \"/srv/sites/global.conf\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(DAEMON)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{p}:3:"))
            && err.contains("nginx.global_file")
            && err.contains("sites_dir"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_global_file_stays_when_one_site_breaks_nginx() {
    // An upgrade from 0.1.0: sites exist but no global file; one site's certificate vanished.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = common::ports(3);
    let nginx = TestNginx::start_debian(dir.path(), base, base + 1, false);
    let s = setup_with(dir, nginx);
    let certs = s.dir.path().join("certs");
    self_signed(&certs, "a.example.com");
    s.set_config(|c| {
        c.nginx.tls_certificate = format!("{}/{{domain}}.pem", certs.display());
        c.nginx.tls_certificate_key = format!("{}/{{domain}}.key", certs.display());
    });
    let backend = Backend::start(s.dir.path(), base + 2, "ok\n");
    let spec = |n: &str| {
        site(
            "acme",
            n,
            &format!("{n}.example.com"),
            SiteState::Running,
            backend.port,
        )
    };
    s.sites.apply(spec("a")).await.unwrap();
    let global = s.nginx.global_file();
    std::fs::remove_file(&global).unwrap();
    std::fs::remove_file(certs.join("a.example.com.pem")).unwrap();
    std::fs::remove_file(certs.join("a.example.com.key")).unwrap();

    s.sites.apply(spec("b")).await.unwrap();
    assert!(global.exists(), "the new global file stays");
    assert_eq!(s.nginx.get("b.example.com", "/"), (200, "ok\n".into()));
    // a is out of the way: rendered again without TLS (or set aside), never blocking b.
    let text = std::fs::read_to_string(s.file("acme", "a")).unwrap_or_default();
    assert!(!text.contains("ssl_certificate"), "{text}");
}
