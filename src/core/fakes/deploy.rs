//! Fakes for deploy tests that write what was asked of them, in order, into one shared log:
//! an engine (the update's exit code and the app's readiness set by the test), a database that
//! tracks its snapshot, stage directories with a checkout's module folders, git with a diff,
//! ports whose readiness requests fail a set number of times.

use super::{NullDb, NullDirs, NullEngine};
use crate::core::interfaces::*;
use crate::core::site::SiteSpec;
use crate::core::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What was called, in order.
#[derive(Default, Clone)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Containers all run and have an address; `run_to_completion` exits with `update_exit`; the
/// app is seen exited (not ready) for the next `unready` readiness checks.
#[derive(Default)]
pub struct LogEngine {
    pub log: Log,
    pub update_exit: AtomicI64,
    pub unready: AtomicUsize,
}

#[async_trait::async_trait]
impl Engine for LogEngine {
    async fn create_network(
        &self,
        n: &str,
        l: &BTreeMap<String, String>,
        s: Option<(ipnet::Ipv4Net, u8)>,
    ) -> Result<()> {
        NullEngine.create_network(n, l, s).await
    }
    async fn remove_network(&self, _: &str, _: &Owner) -> Result<()> {
        Ok(())
    }
    async fn list_labelled_networks(&self, _: &str) -> Result<Vec<NetworkInfo>> {
        Ok(vec![])
    }
    async fn connect_network(&self, _: &str, _: &str, _: &[String]) -> Result<()> {
        Ok(())
    }
    async fn disconnect_network(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        Ok(spec.name.clone())
    }
    async fn start_container(&self, name: &str) -> Result<()> {
        self.log.push(format!("start {name}"));
        Ok(())
    }
    async fn stop_container(&self, name: &str, _: &str, _: Duration) -> Result<StopOutcome> {
        self.log.push(format!("stop {name}"));
        Ok(StopOutcome::Exited)
    }
    async fn remove_container(&self, name: &str, _: &Owner) -> Result<()> {
        self.log.push(format!("remove {name}"));
        Ok(())
    }
    async fn rename_container(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn inspect_container(&self, name: &str, _: &str) -> Result<Option<ContainerInfo>> {
        let exited = name.ends_with("--app")
            && self
                .unready
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        Ok(Some(ContainerInfo {
            id: name.into(),
            status: if exited { "exited" } else { "running" }.into(),
            running: !exited,
            exit_code: exited.then_some(1),
            ip: Some(IpAddr::from([10, 0, 0, 2])),
            labels: BTreeMap::new(),
            name: name.into(),
            image: String::new(),
            image_id: String::new(),
        }))
    }
    async fn run_to_completion(
        &self,
        spec: &ContainerSpec,
        _: &Owner,
        _: Duration,
    ) -> Result<(i64, String)> {
        self.log
            .push(format!("run {} {}", spec.name, spec.command.join(" ")));
        let code = self.update_exit.load(Ordering::SeqCst);
        Ok((
            code,
            "line 1\nline 2\nERROR broken: not installable\n".into(),
        ))
    }
    async fn list_labelled(&self, _: &str) -> Result<Vec<ContainerInfo>> {
        Ok(vec![])
    }
    async fn published_ports(&self) -> Result<Vec<u16>> {
        Ok(vec![])
    }
    async fn stats(&self, _: &str) -> Result<Option<ContainerStats>> {
        Ok(None)
    }
    async fn exec(&self, n: &str, r: ExecRequest) -> Result<ExecStatus> {
        NullEngine.exec(n, r).await
    }
    async fn logs(&self, _: &str, _: usize, _: Option<i64>) -> Result<Vec<LogLine>> {
        Ok(vec![])
    }
    async fn follow_logs(
        &self,
        n: &str,
        t: usize,
    ) -> Result<futures::stream::BoxStream<'static, Result<LogLine>>> {
        NullEngine.follow_logs(n, t).await
    }
}

/// Logs each statement's first words; knows whether the snapshot exists.
#[derive(Default)]
pub struct LogDb {
    pub log: Log,
    pub snapshot: AtomicBool,
}

#[async_trait::async_trait]
impl StageDatabase for LogDb {
    async fn wait_ready(&self, _: &DbTarget, _: Duration) -> Result<()> {
        Ok(())
    }
    async fn create_database(&self, _: &DbTarget, _: &str) -> Result<()> {
        Ok(())
    }
    async fn count(&self, _: &DbTarget, _: &str, query: &str) -> Result<i64> {
        match query.contains("__pre_deploy") {
            true => Ok(self.snapshot.load(Ordering::SeqCst) as i64),
            false => Ok(0),
        }
    }
    async fn sql(&self, t: &DbTarget, db: &str, req: &SqlRequest) -> Result<SqlResult> {
        NullDb.sql(t, db, req).await
    }
    async fn ensure_console_roles(&self, _: &DbTarget, _: &str, _: &ConsoleRoles) -> Result<()> {
        Ok(())
    }
    async fn ensure_app_role(&self, _: &DbTarget, _: &str, _: &AppRole) -> Result<()> {
        Ok(())
    }
    async fn execute(&self, _: &DbTarget, _: &str, sql: &str) -> Result<()> {
        self.log.push(format!("sql {sql}"));
        Ok(())
    }
    async fn execute_count(&self, _: &DbTarget, _: &str, sql: &str) -> Result<i64> {
        self.log.push(format!("sql {sql}"));
        Ok(1)
    }
    async fn each(&self, _: &DbTarget, _: &str, statements: &[String]) -> Result<()> {
        for s in statements {
            let words: Vec<&str> = s.split_whitespace().take(3).collect();
            self.log.push(format!("sql {}", words.join(" ")));
            if s.starts_with("CREATE DATABASE") {
                self.snapshot.store(true, Ordering::SeqCst);
            }
            if s.contains("RENAME TO") || s.contains("EXISTS \"qa__pre_deploy\"") {
                self.snapshot.store(false, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// A checkout with `modules`; every directory call logged.
#[derive(Default)]
pub struct LogDirs {
    pub log: Log,
    pub modules: BTreeSet<String>,
    /// What `put_back` says: something was kept.
    pub kept: AtomicBool,
}

#[async_trait::async_trait]
impl StageDirs for LogDirs {
    fn root(&self, s: &str, n: &str) -> PathBuf {
        NullDirs.root(s, n)
    }
    async fn create(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn remove(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn git_cache(&self, s: &str, n: &str) -> PathBuf {
        NullDirs.git_cache(s, n)
    }
    async fn scratch(&self, s: &str, n: &str) -> Result<PathBuf> {
        NullDirs.scratch(s, n).await
    }
    async fn drop_scratch(&self, _: &str, _: &str) -> Result<()> {
        self.log.push("drop_scratch");
        Ok(())
    }
    async fn copy_dir(&self, _: (&str, &str), _: (&str, &str), _: &str) -> Result<()> {
        Ok(())
    }
    async fn lay_out_dir(&self, _: &str, _: &str, dir: &str, _: &Path, _: bool) -> Result<()> {
        self.log.push(format!("lay_out {dir}"));
        Ok(())
    }
    async fn lay_out_kept(&self, _: &str, _: &str, dir: &str, _: &Path, _: bool) -> Result<()> {
        self.log.push(format!("lay_out_kept {dir}"));
        self.kept.store(true, Ordering::SeqCst);
        Ok(())
    }
    async fn put_back(&self, _: &str, _: &str, dir: &str) -> Result<bool> {
        self.log.push(format!("put_back {dir}"));
        Ok(self.kept.swap(false, Ordering::SeqCst))
    }
    async fn drop_kept(&self, _: &str, _: &str) -> Result<()> {
        self.log.push("drop_kept");
        Ok(())
    }
    async fn folders_with(&self, _: &Path, _: &str) -> Result<BTreeSet<String>> {
        Ok(self.modules.clone())
    }
    async fn rename_db_files(&self, _: &str, _: &str, _: bool, _: &str, _: &str) -> Result<bool> {
        Ok(false)
    }
}

/// Fetches commit `b…b` (subject "new"); the diff from any known commit is `changed`.
#[derive(Default)]
pub struct LogGit {
    pub log: Log,
    pub changed: Option<BTreeSet<String>>,
}

pub const NEW_COMMIT: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[async_trait::async_trait]
impl Git for LogGit {
    async fn fetch(&self, _: &FetchRequest) -> Result<Commit> {
        Ok(Commit {
            hash: NEW_COMMIT.into(),
            subject: "new".into(),
            count: 2,
        })
    }
    async fn export(&self, _: &FetchRequest, _: &str, _: &Path) -> Result<()> {
        Ok(())
    }
    async fn changed_top_level(
        &self,
        _: &FetchRequest,
        old: &str,
        new: &str,
    ) -> Result<Option<BTreeSet<String>>> {
        self.log.push(format!("diff {} {}", &old[..4], &new[..4]));
        Ok(self.changed.clone())
    }
    async fn deploy_key(&self, _: &str) -> Result<String> {
        Ok(String::new())
    }
    async fn remove_deploy_key(&self, _: &str) -> Result<()> {
        Ok(())
    }
}

/// Logs the site state each apply asks for.
#[derive(Default)]
pub struct LogProxy {
    pub log: Log,
}

#[async_trait::async_trait]
impl ProxySites for LogProxy {
    async fn apply(&self, s: SiteSpec) -> Result<()> {
        self.log.push(format!("site {:?}", s.state).to_lowercase());
        Ok(())
    }
    async fn remove(
        &self,
        _: crate::core::names::SubscriptionId,
        _: crate::core::names::StageName,
    ) -> Result<()> {
        Ok(())
    }
}

/// Ports that are free; the next `refused` readiness requests get no answer, then 200.
#[derive(Default)]
pub struct FlakyPorts {
    pub refused: AtomicUsize,
}

#[async_trait::async_trait]
impl PortProbe for FlakyPorts {
    fn in_use(&self, _: IpAddr, _: u16) -> bool {
        false
    }
    fn accepts(&self, _: IpAddr, _: u16) -> bool {
        true
    }
    async fn http_get(
        &self,
        _: IpAddr,
        _: u16,
        _: &str,
        _: &str,
        _: Duration,
    ) -> std::result::Result<u16, String> {
        match self
            .refused
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Err("connection refused".into()),
            Err(_) => Ok(200),
        }
    }
}
