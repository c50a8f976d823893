//! `wait_ready` against a scripted probe and an engine whose app is running, exited or
//! crash-looping; and a start whose app never gets ready.

use super::*;
use crate::config::profile::Readiness;
use crate::core::fakes::{self, NullEngine};
use crate::core::interfaces::{
    ContainerInfo, ContainerSpec, ContainerStats, Engine, ExecRequest, ExecStatus, LogLine,
    NetworkInfo, Owner, PortProbe, ProxySites, StopOutcome,
};
use crate::core::names::{StageName, SubscriptionId};
use crate::core::settings::Dur;
use crate::core::site::{SiteSpec, SiteState};
use crate::core::stage::model::StageState;
use crate::core::ErrorKind;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Answers from a script (the last one repeats), recording what was asked.
#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<std::result::Result<u16, String>>>,
    asked: Mutex<Vec<(IpAddr, u16, String, String)>>,
}

impl Script {
    fn new(answers: &[std::result::Result<u16, &str>]) -> Arc<Self> {
        let answers = answers.iter().map(|a| a.map_err(str::to_string)).collect();
        Arc::new(Script {
            answers: Mutex::new(answers),
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl PortProbe for Script {
    fn in_use(&self, _: IpAddr, _: u16) -> bool {
        false
    }
    fn accepts(&self, _: IpAddr, _: u16) -> bool {
        true
    }
    async fn http_get(
        &self,
        addr: IpAddr,
        port: u16,
        host: &str,
        path: &str,
        _: Duration,
    ) -> std::result::Result<u16, String> {
        let asked = (addr, port, host.to_string(), path.to_string());
        self.asked.lock().unwrap().push(asked);
        let mut answers = self.answers.lock().unwrap();
        match answers.len() {
            0 => Err("no script".into()),
            1 => answers[0].clone(),
            _ => answers.pop_front().unwrap(),
        }
    }
}

/// Every container exists with the stage's labels, in `status`; stops are recorded.
struct AppEngine {
    status: Mutex<(String, Option<i64>)>,
    labels: BTreeMap<String, String>,
    stopped: Mutex<Vec<String>>,
}

impl AppEngine {
    fn new(stage: &Stage, status: &str, exit_code: Option<i64>) -> Arc<Self> {
        Arc::new(AppEngine {
            status: Mutex::new((status.into(), exit_code)),
            labels: naming(&Settings::default()).labels(stage, APP),
            stopped: Mutex::default(),
        })
    }
}

#[async_trait::async_trait]
impl Engine for AppEngine {
    async fn create_network(
        &self,
        n: &str,
        l: &BTreeMap<String, String>,
        s: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        NullEngine.create_network(n, l, s).await
    }
    async fn remove_network(&self, n: &str, o: &Owner) -> Result<()> {
        NullEngine.remove_network(n, o).await
    }
    async fn list_labelled_networks(&self, l: &str) -> Result<Vec<NetworkInfo>> {
        NullEngine.list_labelled_networks(l).await
    }
    async fn connect_network(&self, n: &str, c: &str, a: &[String]) -> Result<()> {
        NullEngine.connect_network(n, c, a).await
    }
    async fn disconnect_network(&self, n: &str, c: &str) -> Result<()> {
        NullEngine.disconnect_network(n, c).await
    }
    async fn create_container(&self, s: &ContainerSpec) -> Result<String> {
        NullEngine.create_container(s).await
    }
    async fn start_container(&self, _: &str) -> Result<()> {
        Ok(())
    }
    async fn stop_container(&self, name: &str, _: &str, _: Duration) -> Result<StopOutcome> {
        self.stopped.lock().unwrap().push(name.to_string());
        Ok(StopOutcome::Exited)
    }
    async fn remove_container(&self, n: &str, o: &Owner) -> Result<()> {
        NullEngine.remove_container(n, o).await
    }
    async fn rename_container(&self, i: &str, n: &str) -> Result<()> {
        NullEngine.rename_container(i, n).await
    }
    async fn inspect_container(&self, name: &str, _: &str) -> Result<Option<ContainerInfo>> {
        let (status, exit_code) = self.status.lock().unwrap().clone();
        Ok(Some(ContainerInfo {
            id: name.into(),
            running: status == "running" || status == "restarting",
            status,
            exit_code,
            ip: Some("10.0.0.2".parse().unwrap()),
            labels: self.labels.clone(),
            name: name.into(),
            image: "odoo:17.0".into(),
            image_id: "sha256:0".into(),
        }))
    }
    async fn run_to_completion(
        &self,
        s: &ContainerSpec,
        o: &Owner,
        t: Duration,
    ) -> Result<(i64, String)> {
        NullEngine.run_to_completion(s, o, t).await
    }
    async fn list_labelled(&self, l: &str) -> Result<Vec<ContainerInfo>> {
        NullEngine.list_labelled(l).await
    }
    async fn published_ports(&self) -> Result<Vec<u16>> {
        NullEngine.published_ports().await
    }
    async fn stats(&self, n: &str) -> Result<Option<ContainerStats>> {
        NullEngine.stats(n).await
    }
    async fn exec(&self, n: &str, r: ExecRequest) -> Result<ExecStatus> {
        NullEngine.exec(n, r).await
    }
    async fn logs(&self, _: &str, _: usize, _: Option<i64>) -> Result<Vec<LogLine>> {
        let line = |l: &str| LogLine {
            at: String::new(),
            stream: "stderr".into(),
            line: l.into(),
        };
        Ok(vec![line("odoo: starting"), line("KeyError: 'boom'")])
    }
    async fn follow_logs(
        &self,
        n: &str,
        t: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        NullEngine.follow_logs(n, t).await
    }
}

/// The sites applied, in order.
#[derive(Default)]
struct Sites(Mutex<Vec<SiteState>>);

#[async_trait::async_trait]
impl ProxySites for Sites {
    async fn apply(&self, site: SiteSpec) -> Result<()> {
        self.0.lock().unwrap().push(site.state);
        Ok(())
    }
    async fn remove(&self, _: SubscriptionId, _: StageName) -> Result<()> {
        Ok(())
    }
}

/// Stages over one stage record in `state`, the probe and the engine; settings whose odoo
/// profile waits `timeout` for `/web/health`.
fn setup(
    state: StageState,
    probe: Arc<Script>,
    engine: impl FnOnce(&Stage) -> Arc<AppEngine>,
    timeout: Duration,
) -> (Stages, Stage, Settings, Arc<AppEngine>, Arc<Sites>) {
    let stage = fakes::stage("acme", "qa", state);
    let engine = engine(&stage);
    let sites = Arc::new(Sites::default());
    let mut deps = fakes::deps(
        fakes::store_with(std::slice::from_ref(&stage)),
        Arc::new(fakes::SlowMeter::default()),
    );
    (deps.ports, deps.engine, deps.proxy) = (probe, engine.clone(), sites.clone());
    let mut config = Settings::default();
    let profile = config.profiles.get_mut("odoo").unwrap();
    profile.app.readiness = Some(Readiness {
        http: "/web/health".into(),
        timeout: Dur(timeout),
    });
    (Stages::load(deps).unwrap(), stage, config, engine, sites)
}

fn running(stage: &Stage) -> Arc<AppEngine> {
    AppEngine::new(stage, "running", None)
}

#[test]
fn two_and_three_hundreds_pass() {
    for s in [200, 204, 302, 303, 399] {
        assert!(passes(s), "{s}");
    }
    for s in [0, 101, 199, 400, 404, 500, 502, 503] {
        assert!(!passes(s), "{s}");
    }
}

#[tokio::test]
async fn it_asks_the_published_port_until_the_app_answers() {
    let probe = Script::new(&[Err("connection refused"), Ok(503), Ok(302)]);
    let (stages, stage, config, _, _) = setup(
        StageState::Build,
        probe.clone(),
        running,
        Duration::from_secs(30),
    );
    let profile = &config.profiles["odoo"];
    stages.wait_ready(&config, profile, &stage).await.unwrap();
    let asked = probe.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3);
    let want = (
        config.ports.bind_address,
        20000,
        "qa.acme.example.com".to_string(),
        "/web/health".to_string(),
    );
    assert!(asked.iter().all(|a| *a == want), "{asked:?}");
}

#[tokio::test]
async fn without_readiness_nothing_is_asked() {
    let probe = Script::new(&[Ok(500)]);
    let (stages, stage, mut config, _, _) = setup(
        StageState::Build,
        probe.clone(),
        running,
        Duration::from_secs(30),
    );
    config.profiles.get_mut("odoo").unwrap().app.readiness = None;
    let profile = &config.profiles["odoo"];
    stages.wait_ready(&config, profile, &stage).await.unwrap();
    assert!(probe.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_timeout_names_the_path_the_last_answer_and_the_container() {
    let probe = Script::new(&[Err("connection refused"), Ok(404)]);
    let (stages, stage, config, _, _) =
        setup(StageState::Build, probe, running, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let e = stages
        .wait_ready(&config, &config.profiles["odoo"], &stage)
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Docker);
    let m = e.to_string();
    for part in [
        "GET /web/health",
        "within 1s",
        "last: HTTP 404",
        "container stagelet-acme--qa--app is running",
    ] {
        assert!(m.contains(part), "{part:?} not in {m}");
    }
}

#[tokio::test]
async fn an_app_that_exits_fails_at_once_with_its_exit_code() {
    for (status, code) in [("exited", 3), ("restarting", 1)] {
        let probe = Script::new(&[Err("connection refused")]);
        let (stages, stage, config, _, _) = setup(
            StageState::Build,
            probe,
            |s| AppEngine::new(s, status, Some(code)),
            Duration::from_secs(60),
        );
        let started = std::time::Instant::now();
        let e = stages
            .wait_ready(&config, &config.profiles["odoo"], &stage)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(e.kind(), ErrorKind::Docker);
        let m = e.to_string();
        for part in [
            format!("{status} (exit code {code})"),
            "GET /web/health".into(),
            "last: connection refused".into(),
            "KeyError: 'boom'".into(),
        ] {
            assert!(m.contains(&part), "{part:?} not in {m}");
        }
    }
}

/// A start whose app never answers: nginx never proxies (it keeps the stopped page), the
/// containers are stopped again and the stage stays stopped with the reason.
#[tokio::test]
async fn a_start_that_is_never_ready_stays_stopped_behind_its_503() {
    let probe = Script::new(&[Ok(404)]);
    let (stages, stage, config, engine, sites) =
        setup(StageState::Stopped, probe, running, Duration::from_secs(1));
    let e = stages.start(&config, "acme/qa").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Docker);
    assert!(sites.0.lock().unwrap().is_empty(), "a site was applied");
    let stopped = engine.stopped.lock().unwrap().clone();
    let naming = naming(&config);
    for role in [APP, super::super::containers::DB] {
        assert!(
            stopped.contains(&naming.container(&stage, role)),
            "{stopped:?}"
        );
    }
    let after = stages.find("acme/qa").unwrap();
    assert_eq!(after.state, StageState::Stopped);
    assert!(
        after.last_error.unwrap().contains("GET /web/health"),
        "the reason is on the record"
    );
}

/// Once ready, the start puts the proxying site.
#[tokio::test]
async fn a_start_proxies_once_ready() {
    let probe = Script::new(&[Err("connection refused"), Ok(200)]);
    let (stages, _, config, _, sites) = setup(
        StageState::Stopped,
        probe.clone(),
        running,
        Duration::from_secs(30),
    );
    let s = stages.start(&config, "acme/qa").await.unwrap();
    assert_eq!(s.state, StageState::Running);
    assert_eq!(*sites.0.lock().unwrap(), vec![SiteState::Running]);
    assert_eq!(probe.asked.lock().unwrap().len(), 2);
}
