//! [`Application`]: what `tutela serve` runs and what the integration tests start.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::AppState;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tutela_core::{Clock, Policy};
use tutela_store::Store;

/// The policy compiled into the binary, used when no policy file is configured and none
/// is found at `policy/statement.toml`.
pub const BUILTIN_POLICY: &str = include_str!("../../../policy/statement.toml");

/// Where a policy came from, for logs and `policy check`.
#[derive(Debug, Clone)]
pub enum PolicySource {
    File(PathBuf),
    Builtin,
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::File(p) => write!(f, "{}", p.display()),
            PolicySource::Builtin => f.write_str("<built-in policy/statement.toml>"),
        }
    }
}

/// Loads the policy: the configured file, else `./policy/statement.toml`, else the
/// built-in copy. A file that exists but is invalid is an error, never a fallback.
pub fn load_policy(configured: Option<&Path>) -> anyhow::Result<(Policy, PolicySource)> {
    let path = match configured {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from("policy/statement.toml")).filter(|p| p.exists()),
    };
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading policy file {}", path.display()))?;
            let policy = tutela_core::policy::load(&path.display().to_string(), &text)?;
            Ok((policy, PolicySource::File(path)))
        }
        None => Ok((
            tutela_core::policy::load("<built-in>/policy/statement.toml", BUILTIN_POLICY)?,
            PolicySource::Builtin,
        )),
    }
}

/// Creates the data directory (mode 0700 on Unix: it holds the database and keys).
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting permissions of {}", dir.display()))?;
    }
    Ok(())
}

/// Resolves the master key file (`Config::master_key_location`, the one rule every
/// command follows), prepares its directory and says at start-up where the key is.
/// A configured file inside the data directory is refused here, before anything opens.
pub fn master_key_file(config: &Config) -> anyhow::Result<PathBuf> {
    use crate::config::MasterKeyLocation;
    let location = config.master_key_location()?;
    let path = location.path().to_owned();
    match &location {
        MasterKeyLocation::Legacy { path, move_to } => {
            tracing::warn!(
                key_file = %path.display(),
                "THE MASTER KEY IS INSIDE THE DATA DIRECTORY (an older layout): every backup of the data directory carries the key that decrypts it. Move it: stop tutela, run `mkdir -p -m 700 {dir} && mv {from} {to}`, then start again (or set crypto.key_file to where you keep it)",
                dir = move_to.parent().unwrap_or(Path::new("/")).display(),
                from = path.display(),
                to = move_to.display(),
            );
        }
        MasterKeyLocation::Default(p) | MasterKeyLocation::Configured(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                // tutela's own key directory (or a configured one it must create): owner only.
                if matches!(location, MasterKeyLocation::Default(_)) || !dir.exists() {
                    ensure_data_dir(dir)?;
                }
            }
            if p.exists() {
                tracing::info!(
                    key_file = %p.display(),
                    "master key file in use; back it up separately from the data directory"
                );
            } else {
                tracing::warn!(
                    key_file = %p.display(),
                    "creating a new master key outside the data directory; BACK IT UP SEPARATELY from the data: without it the data cannot be decrypted, and a backup that holds both protects nothing"
                );
            }
        }
    }
    Ok(path)
}

/// Loads the policy and opens (and migrates) the store named by `config`.
pub async fn open_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let (policy, source) = load_policy(config.policy.as_deref())?;
    tracing::info!(policy = %source, version = %policy.statement.version, "policy loaded");
    // The data directory holds the audit signing key on both backends (and the SQLite
    // database on the default one).
    ensure_data_dir(&config.data_dir)?;
    // The witness outside the data directory (issue 14, R29): a misplaced one stops
    // startup before anything is opened.
    let witness = crate::witness::Witness::from_config(&config)?;
    tracing::info!(
        path = %witness.path().display(),
        "signed audit heads are witnessed in this file (audit.witness_file); keep it off the \
         database's disk and backups: `tutela audit verify` checks the log against it"
    );
    let cipher =
        tutela_crypto::envelope::Cipher::parse(&config.crypto.cipher).with_context(|| {
            format!(
                "crypto.cipher must be `aes-256-gcm` or `sm4-gcm`, not `{}`",
                config.crypto.cipher
            )
        })?;
    let vault = crate::vault::Vault::open_local(&master_key_file(&config)?, cipher).await?;
    let store = Store::open(&config.effective_database_url(), clock.now())
        .await
        .context("opening the database")?;
    tracing::info!(backend = store.backend().as_str(), "database ready");
    // Free text an older version stored in clear is sealed once, here (R29): tenant
    // names (before schema 19) and support grants' reasons (before schema 17).
    let sealed = crate::api::grants::seal_legacy_reasons(&vault, &store)
        .await
        .context("sealing support grant reasons stored in clear")?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed the clear reasons of older support grants");
    }
    let resealed = vault
        .reseal_legacy_tenant_names(&store)
        .await
        .context("sealing tenant names stored in clear")?;
    if resealed > 0 {
        tracing::info!(
            tenants = resealed,
            "sealed tenant names an older version stored in clear"
        );
    }
    let audit = crate::audit::AuditLog::open(
        &store,
        &config.effective_audit_key_file(),
        tutela_audit::HashAlg::parse(&config.audit.hash).with_context(|| {
            format!(
                "audit.hash must be `sha256` or `sm3`, not `{}`",
                config.audit.hash
            )
        })?,
        witness,
    )
    .await
    .context("opening the audit log")?;
    let metrics = Metrics::new();
    metrics
        .policy_categories
        .set(i64::try_from(policy.categories.len()).unwrap_or(i64::MAX));
    let metrics = Arc::new(metrics);
    let audit_writer = crate::audit_writer::AuditWriter::spawn(store.clone(), metrics.clone());
    let cache = Arc::new(crate::cache::ReadCache::new(&config.cache));
    Ok(AppState {
        cache,
        store,
        policy: Arc::new(policy),
        clock,
        metrics,
        audit_writer,
        outbox_wake: Arc::new(tokio::sync::Notify::new()),
        config: Arc::new(config),
        vault: Arc::new(vault),
        audit: Arc::new(audit),
    })
}

/// A built application: state loaded, listener bound, not yet serving.
pub struct Application {
    state: AppState,
    listener: std::net::TcpListener,
    addr: SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl Application {
    /// Loads the policy, opens the store and binds `config.listen` (port 0 picks a free port).
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let listen = config.listen;
        // Load the certificate first: a bad one must stop startup before anything else.
        let tls = match &config.tls {
            None => None,
            Some(tls) => {
                // One crypto provider for the process: ring, shared with tutela-crypto.
                let _ = rustls::crypto::ring::default_provider().install_default();
                Some(
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                        .await
                        .with_context(|| {
                            format!(
                                "loading TLS certificate {} and key {}",
                                tls.cert.display(),
                                tls.key.display()
                            )
                        })?,
                )
            }
        };
        let state = open_state(config, clock).await?;
        let listener =
            std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(Self {
            state,
            listener,
            addr,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and closes the
    /// database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = crate::api::router(self.state.clone());
        let store = self.state.store.clone();
        // The sealer: signs a tree head at least every second while entries arrive, on
        // the one replica holding the sealer lease. Told to stop, it seals what the last
        // requests wrote and ends (before the database closes).
        let (stop_sealer, stopped) = tokio::sync::oneshot::channel::<()>();
        let sealer = tokio::spawn(run_sealer(self.state.clone(), stopped));
        // The outbox sender (R34): deletion notices to recipients, retried until acknowledged.
        let (stop_outbox, outbox_stopped) = tokio::sync::oneshot::channel::<()>();
        let outbox = tokio::spawn(crate::outbox::run(self.state.clone(), outbox_stopped));
        // The retention scheduler (R19, R20, R41).
        let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
        let retention = tokio::spawn(crate::retention::run_scheduler(
            self.state.clone(),
            retention_stopped,
        ));
        match self.tls {
            None => {
                let listener = tokio::net::TcpListener::from_std(self.listener)?;
                tracing::info!(addr = %self.addr, "listening (http)");
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await?;
            }
            Some(rustls_config) => {
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    shutdown.await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
                });
                tracing::info!(addr = %self.addr, "listening (https)");
                axum_server::from_tcp_rustls(self.listener, rustls_config)
                    .handle(handle)
                    .serve(router.into_make_service())
                    .await?;
            }
        }
        let _ = stop_retention.send(());
        if let Err(e) = retention.await {
            tracing::error!(error = %e, "the retention scheduler task failed");
        }
        let _ = stop_outbox.send(());
        if let Err(e) = outbox.await {
            tracing::error!(error = %e, "the outbox sender task failed");
        }
        let _ = stop_sealer.send(());
        if let Err(e) = sealer.await {
            tracing::error!(error = %e, "the audit sealer task failed");
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The sealer loop: takes the lease when free, seals every second while holding it, and
/// on `stop` seals once more and returns.
async fn run_sealer(state: AppState, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut lease: Option<tutela_store::SealerLease> = None;
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        if let Some(held) = &mut lease {
            if !held.is_held().await {
                tracing::warn!("lost the audit sealer lease; another replica may seal now");
                lease = None;
            }
        }
        if lease.is_none() {
            match state.store.try_sealer_lease().await {
                Ok(Some(l)) => {
                    tracing::info!("this replica seals the audit log");
                    lease = Some(l);
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot ask for the audit sealer lease"),
            }
        }
        if lease.is_some() {
            let started = std::time::Instant::now();
            match state.audit.seal_once(&state.store, state.clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(
                    entries = n,
                    millis = started.elapsed().as_millis(),
                    "audit entries sealed"
                ),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "audit sealing failed; will retry")
                }
            }
        }
        if stopping {
            if let Some(l) = lease {
                l.release().await;
            }
            return;
        }
    }
}
