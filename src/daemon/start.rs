//! Start-up and shutdown of the daemon, in order: configuration, logging, state, socket,
//! READY=1, serve; then STOPPING=1, drain, socket removed, exit 0.

use super::signals::{Event, SignalEvents};
use super::{logging, notify, serve, socket, EXIT_CONFIG, EXIT_SETUP};
use crate::api::access::AccessPolicy;
use crate::api::handlers::Handlers;
use crate::api::middleware::SharedPolicy;
use crate::config::{self, Config, ConfigError, SharedConfig};
use crate::core::agent::Agent;
use crate::core::settings::Settings;
use crate::core::stage::StageDeps;
use crate::runtime::backups::FsBackups;
use crate::runtime::blocking::OffThread;
use crate::runtime::disk_walk::{default_threads, Walker};
use crate::runtime::docker::DockerEngine;
use crate::runtime::git::GitCli;
use crate::runtime::hostfs::DataDirs;
use crate::runtime::nginx::NginxSites;
use crate::runtime::port_probe::BindProbe;
use crate::runtime::postgres::client::Postgres;
use crate::runtime::{host::SysHost, probes::HostDependencies, records::FsRecordStore};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

/// Where the configuration comes from; SIGHUP reads the same source again.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// No file: embedded defaults with state and socket under this directory.
    Local(PathBuf),
}

impl ConfigSource {
    /// `--config FILE`, else /etc/stagelet/stagelet.toml if present, else embedded defaults
    /// under `$STAGELET_HOME` or `./.stagelet`.
    pub fn choose(explicit: Option<PathBuf>) -> ConfigSource {
        if let Some(p) = explicit {
            return ConfigSource::File(p);
        }
        if Path::new(config::DEFAULT_PATH).exists() {
            return ConfigSource::File(config::DEFAULT_PATH.into());
        }
        let base = std::env::var_os("STAGELET_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".stagelet"));
        let base = std::path::absolute(&base).unwrap_or(base);
        ConfigSource::Local(base)
    }

    pub fn load(&self) -> Result<Config, Vec<ConfigError>> {
        match self {
            ConfigSource::File(p) => config::load_file(p),
            ConfigSource::Local(base) => Ok(Config::local(base)),
        }
    }

    fn describe(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Local(_) => "embedded defaults".into(),
        }
    }
}

pub fn print_config_errors(origin: &str, errors: &[ConfigError]) {
    for e in errors {
        eprintln!("{origin}:{e}");
    }
}

fn policy_of(config: &Config) -> AccessPolicy {
    let (policy, missing) =
        AccessPolicy::resolve(&config.access.admin_groups, &config.access.reader_groups);
    for group in missing {
        tracing::warn!(%group, "access group does not exist; it grants nothing");
    }
    policy
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(source: ConfigSource) -> ExitCode {
    let config = match source.load() {
        Ok(c) => c,
        Err(errors) => {
            print_config_errors(&source.describe(), &errors);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    logging::init(config.agent.log_format);
    crate::runtime::test_hooks::install();
    if let ConfigSource::Local(base) = &source {
        eprintln!(
            "stagelet: no {} and no --config: running on embedded defaults\n  state:  {}\n  socket: {}\n  nginx:  off (stages answer on 127.0.0.1:<http_port>)\n  try:    STAGELET_SOCKET={} stagectl info",
            config::DEFAULT_PATH,
            config.agent.state_dir.display(),
            config.agent.socket.display(),
            config.agent.socket.display(),
        );
        tracing::info!(dir = %base.display(), "embedded default configuration");
    }
    let mut signals = match SignalEvents::register() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot register signal handlers");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let store = match FsRecordStore::open(&config.agent.state_dir) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, dir = %config.agent.state_dir.display(), "cannot open the state directory");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let deps = Arc::new(HostDependencies {
        docker_endpoint: config.docker.endpoint.clone(),
        nginx_enabled: config.nginx.enabled,
        nginx_binary: nginx_binary(&config),
    });
    let host = Arc::new(SysHost::new(&config.agent.state_dir));
    let shared = crate::config::shared(config.clone());
    let live = shared.clone();
    let live_config = shared.clone();
    super::conn::raise_fd_limit(config.api.max_connections);
    let engine: Arc<dyn crate::core::interfaces::Engine> =
        Arc::new(DockerEngine::new(&config.docker.endpoint));
    let stage_deps = StageDeps {
        store: store.clone(),
        engine: engine.clone(),
        db: Arc::new(Postgres),
        dirs: Arc::new(OffThread::new(DataDirs {
            data_root: config.agent.state_dir.join("data"),
            git_root: config.agent.state_dir.join("git"),
        })),
        proxy: NginxSites::start(Arc::new(move || crate::config::current(&live))),
        ports: Arc::new(BindProbe),
        git: Arc::new(GitCli::new(&config.agent.state_dir)),
        backups: Arc::new(OffThread::new(FsBackups {
            root: config.agent.state_dir.join("backups"),
        })),
        dumps: Arc::new(crate::runtime::postgres::dump::PgDumps { engine }),
        files: Arc::new(crate::runtime::host_files::RealFiles),
        meter: Arc::new(OffThread::new(Walker {
            threads: default_threads(),
        })),
    };
    let settings = crate::core::settings::shared(Settings::from_config(&config));
    let agent = match Agent::new(settings, store, stage_deps, host, deps) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the records");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    let policy: SharedPolicy = Arc::new(RwLock::new(Arc::new(policy_of(&config))));
    let mut sock = match socket::acquire(
        &config.agent.socket,
        config.agent.socket_mode.0,
        &config.agent.socket_group,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the API socket");
            return ExitCode::from(EXIT_SETUP);
        }
    };
    tracing::info!(socket = %sock.path.display(), systemd = sock.from_systemd(), version = env!("CARGO_PKG_VERSION"), "listening");
    notify::ready();
    let watchdog = notify::spawn_watchdog();
    let background = tokio::spawn(
        agent
            .clone()
            .run_background(config.lifecycle.scheduler_interval.0),
    );
    let measuring = tokio::spawn(agent.clone().run_usage());

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_task = {
        let (agent, policy, source) = (agent.clone(), policy.clone(), source.clone());
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                match signals.next().await {
                    Event::Stop => {
                        tracing::info!("stopping: no new requests; in-flight ones may finish");
                        notify::stopping();
                        let _ = stop_tx.send(());
                        return;
                    }
                    Event::Reload => reload(&agent, &shared, &policy, &source),
                }
            }
        })
    };
    let methods = Handlers::new(agent.clone()).into_module();
    let drain = config.agent.shutdown_timeout.0;
    let stopping = std::sync::OnceLock::new();
    serve::run(
        sock.take_listener(),
        methods,
        policy,
        live_config,
        async {
            let _ = stop_rx.await;
            let _ = stopping.set(std::time::Instant::now());
        },
        drain,
    )
    .await;
    // Operations whose clients are gone run on; they get what is left of the same timeout.
    // The scheduler starts nothing new while they drain.
    background.abort();
    measuring.abort();
    let left = drain.saturating_sub(stopping.get().map_or(drain, |t| t.elapsed()));
    if !agent.finish_operations(left).await {
        tracing::warn!(?drain, "operations still running are cut off");
    }
    signal_task.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    drop(sock);
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

fn reload(agent: &Agent, shared: &SharedConfig, policy: &SharedPolicy, source: &ConfigSource) {
    notify::reloading();
    match source.load() {
        Ok(new) => {
            let new_policy = policy_of(&new);
            for key in super::reload::apply(shared, agent, new) {
                tracing::warn!(%key, "changed in the configuration; takes effect after a restart");
            }
            *policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new_policy);
            tracing::info!(source = %source.describe(), "configuration reloaded");
        }
        Err(errors) => {
            for e in errors {
                tracing::error!(error = %e, "configuration not reloaded");
            }
        }
    }
    notify::reloaded();
}

fn nginx_binary(config: &Config) -> String {
    config
        .nginx
        .test_command
        .first()
        .filter(|c| Path::new(c).file_name().is_some_and(|n| n == "nginx"))
        .cloned()
        .unwrap_or_else(|| "nginx".into())
}
