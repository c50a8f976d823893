//! nginx virtual hosts: one file per stage in `nginx.sites_dir`, applied as a transaction
//! (write, test, rename, reload, check), with bursts of changes coalesced into one test and one
//! reload. One bad site never blocks the others: only its own change fails (see `batch`).

mod batch;
pub mod control;
pub mod files;
pub mod global;
mod isolate;
pub mod render;

use crate::config::Config;
use crate::core::interfaces::ProxySites;
use crate::core::names::{StageName, SubscriptionId};
use crate::core::site::{site_key, SiteSpec};
use crate::core::{Error, Result};
use control::Control;
use render::RenderOptions;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Changes arriving within this window share one test and one reload.
pub const COALESCE: Duration = Duration::from_millis(100);

/// The live configuration, read at each batch so a SIGHUP applies to the next change.
pub type ConfigFn = Arc<dyn Fn() -> Arc<Config> + Send + Sync>;

type Reply = oneshot::Sender<Result<(), String>>;

struct Change {
    key: String,
    /// `None`: remove the site.
    spec: Option<SiteSpec>,
    reply: Reply,
}

pub struct NginxSites {
    config: ConfigFn,
    tx: mpsc::Sender<Change>,
    reloads: Arc<AtomicU64>,
    /// Asks the worker to bring the global file up to date (after SIGHUP).
    refresh: Arc<tokio::sync::Notify>,
}

impl NginxSites {
    /// Starts the worker that applies changes.
    pub fn start(config: ConfigFn) -> Arc<NginxSites> {
        let (tx, rx) = mpsc::channel(1024);
        let reloads = Arc::new(AtomicU64::new(0));
        let refresh = Arc::new(tokio::sync::Notify::new());
        refresh.notify_one();
        tokio::spawn(worker(rx, config.clone(), reloads.clone(), refresh.clone()));
        Arc::new(NginxSites {
            config,
            tx,
            reloads,
            refresh,
        })
    }

    /// Brings the global file and the sites up to date with the configuration (SIGHUP calls
    /// this).
    pub fn refresh_global(&self) {
        self.refresh.notify_one();
    }

    /// How many reloads this agent has made.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::SeqCst)
    }

    async fn submit(&self, key: String, spec: Option<SiteSpec>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let change = Change {
            key: key.clone(),
            spec,
            reply,
        };
        self.tx
            .send(change)
            .await
            .map_err(|_| Error::Nginx("the nginx worker has stopped".into()))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(Error::Nginx(format!(
                "stage {}: {msg}; the previous configuration is still serving{}",
                key.replacen("--", "/", 1),
                global::hint(&msg, &(self.config)())
            ))),
            Err(_) => Err(Error::Nginx("the nginx worker has stopped".into())),
        }
    }
}

#[async_trait::async_trait]
impl ProxySites for NginxSites {
    async fn apply(&self, site: SiteSpec) -> Result<()> {
        if !(self.config)().nginx.enabled {
            return Ok(());
        }
        self.submit(site.key(), Some(site)).await
    }

    async fn remove(&self, subscription: SubscriptionId, name: StageName) -> Result<()> {
        if !(self.config)().nginx.enabled {
            return Ok(());
        }
        self.submit(site_key(&subscription, &name), None).await
    }
}

async fn worker(
    mut rx: mpsc::Receiver<Change>,
    config: ConfigFn,
    reloads: Arc<AtomicU64>,
    refresh: Arc<tokio::sync::Notify>,
) {
    loop {
        // Start-up (notified once by `start`) and SIGHUP: the global file on its own, then
        // the sites whose files the configuration now renders otherwise (new ports).
        let first = tokio::select! {
            biased;
            () = refresh.notified() => {
                let config = config();
                global_now(config.clone(), &reloads).await;
                sites_now(config, &reloads).await;
                continue;
            }
            change = rx.recv() => match change {
                Some(c) => c,
                None => return,
            },
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + COALESCE;
        while let Ok(Some(change)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            batch.push(change);
        }
        let config = config();
        // A configuration changed by SIGHUP applies before this batch, on its own.
        global_now(config.clone(), &reloads).await;
        let dir = config.nginx.sites_dir.clone();
        let control = control_of(&config);
        // The last change to a key wins; every caller of that key gets its result.
        let mut by_key: BTreeMap<String, (Option<SiteSpec>, Vec<Reply>)> = BTreeMap::new();
        for c in batch {
            let entry = by_key.entry(c.key).or_default();
            entry.0 = c.spec;
            entry.1.push(c.reply);
        }
        let changes: Vec<(String, Option<SiteSpec>)> = by_key
            .iter()
            .map(|(k, (c, _))| (k.clone(), c.clone()))
            .collect();
        let opts = RenderOptions::from_config(&config);
        let (results, reloaded) = tokio::task::spawn_blocking(move || {
            files::recover(&dir);
            batch::apply(&dir, &control, &opts, changes)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        if reloaded {
            reloads.fetch_add(1, Ordering::SeqCst);
        }
        for ((_, (_, replies)), result) in by_key.into_iter().zip(results) {
            for reply in replies {
                let _ = reply.send(result.clone());
            }
        }
    }
}

fn control_of(config: &Config) -> Control {
    Control {
        test_command: config.nginx.test_command.clone(),
        reload_command: config.nginx.reload_command.clone(),
        pid_file: config.nginx.pid_file.clone(),
        reload_timeout: config.nginx.reload_timeout.0,
    }
}

/// Brings the global file up to date; a failure is logged (each site change then says what
/// nginx thinks of its own file).
async fn global_now(config: Arc<Config>, reloads: &AtomicU64) {
    if !config.nginx.enabled {
        return;
    }
    let path = config.nginx.global_file.as_str().to_string();
    let done = tokio::task::spawn_blocking(move || global::ensure(&config, &control_of(&config)))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    match done {
        Ok(true) => {
            reloads.fetch_add(1, Ordering::SeqCst);
            tracing::info!(file = %path, "nginx global file written; nginx reloaded");
        }
        Ok(false) => {}
        Err(error) => {
            tracing::error!(file = %path, %error, "cannot bring the nginx global file up to date")
        }
    }
}

/// Renders again every site whose file the configuration would now render otherwise, in one
/// batch (one test, one reload). A site nginx refuses that way keeps its file and says so.
async fn sites_now(config: Arc<Config>, reloads: &AtomicU64) {
    if !config.nginx.enabled {
        return;
    }
    let dir = config.nginx.sites_dir.clone();
    let control = control_of(&config);
    let opts = RenderOptions::from_config(&config);
    let (results, reloaded) = tokio::task::spawn_blocking(move || {
        files::recover(&dir);
        let changes = batch::stale(&dir, &opts);
        if changes.is_empty() {
            return (vec![], false);
        }
        let keys: Vec<String> = changes.iter().map(|(k, _)| k.clone()).collect();
        let (results, reloaded) = batch::apply(&dir, &control, &opts, changes);
        (keys.into_iter().zip(results).collect::<Vec<_>>(), reloaded)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    if reloaded {
        reloads.fetch_add(1, Ordering::SeqCst);
        tracing::info!(
            sites = results.len(),
            "site files rendered again for the configuration; nginx reloaded"
        );
    }
    for (key, result) in results {
        if let Err(error) = result {
            tracing::warn!(site = %key, %error, "this site's file keeps its previous settings until its next change");
        }
    }
}
