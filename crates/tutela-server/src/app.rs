//! [`Application`]: what `tutela serve` runs and what the integration tests start.

use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tutela_app::startup::open_state;
use tutela_app::{AppState, Config};
use tutela_core::Clock;

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
        let sealer = tokio::spawn(tutela_app::audit_log::run_sealer(
            self.state.clone(),
            stopped,
        ));
        // The outbox sender (R34): deletion notices to recipients, retried until acknowledged.
        let (stop_outbox, outbox_stopped) = tokio::sync::oneshot::channel::<()>();
        let outbox = tokio::spawn(tutela_app::outbox::run(self.state.clone(), outbox_stopped));
        // The retention scheduler (R19, R20, R41).
        let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
        let retention = tokio::spawn(tutela_app::retention_engine::run_scheduler(
            self.state.clone(),
            retention_stopped,
        ));
        // SIGHUP reloads the master keys: `tutela keys rotate` makes a new key current and
        // re-wraps every tenant key under it while this process runs.
        let reload = tokio::spawn(reload_keys_on_hangup(self.state.clone()));
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
        reload.abort();
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

/// Reloads the master keys each time the process receives SIGHUP.
async fn reload_keys_on_hangup(state: tutela_app::AppState) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; restart to load rotated master keys");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match state.vault.reload_master_keys().await {
            Ok(()) => tracing::info!("master keys reloaded (SIGHUP)"),
            Err(e) => {
                tracing::error!(error = %e, "reloading the master keys failed; the keys in memory stay in use")
            }
        }
    }
}
