//! Opening tutela: the policy, the data directory, the master key, the store and the
//! audit log, assembled into the [`AppState`] that the HTTP API, the background jobs and
//! the CLI's offline commands share.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::state::AppState;
use anyhow::Context as _;
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
    let vault = crate::keys::Vault::open_local(&master_key_file(&config)?, cipher).await?;
    let store = Store::open(&config.effective_database_url(), clock.now())
        .await
        .context("opening the database")?;
    tracing::info!(backend = store.backend().as_str(), "database ready");
    // Free text an older version stored in clear is sealed once, here (R29): tenant
    // names (before schema 19) and support grants' reasons (before schema 17).
    let sealed = crate::grants::seal_legacy_reasons(&vault, &store)
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
    let audit = crate::audit_log::AuditLog::open(
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
