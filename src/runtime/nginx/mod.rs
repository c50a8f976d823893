//! nginx virtual hosts: one file per stage in `nginx.sites_dir`, applied as a transaction
//! (write, test, rename, reload, check), with bursts of changes coalesced into one test and one
//! reload. One bad site never blocks the others: only its own change fails (see `batch`).

mod batch;
pub mod control;
pub mod files;
mod isolate;
pub mod render;
pub mod snippet;

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
}

impl NginxSites {
    /// Starts the worker that applies changes.
    pub fn start(config: ConfigFn) -> Arc<NginxSites> {
        let (tx, rx) = mpsc::channel(1024);
        let reloads = Arc::new(AtomicU64::new(0));
        tokio::spawn(worker(rx, config.clone(), reloads.clone()));
        Arc::new(NginxSites {
            config,
            tx,
            reloads,
        })
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
                "stage {}: {msg}; the previous configuration is still serving",
                key.replacen("--", "/", 1)
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

async fn worker(mut rx: mpsc::Receiver<Change>, config: ConfigFn, reloads: Arc<AtomicU64>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + COALESCE;
        while let Ok(Some(change)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            batch.push(change);
        }
        let config = config();
        let dir = config.nginx.sites_dir.clone();
        let control = Control {
            test_command: config.nginx.test_command.clone(),
            reload_command: config.nginx.reload_command.clone(),
            pid_file: config.nginx.pid_file.clone(),
            reload_timeout: config.nginx.reload_timeout.0,
        };
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
