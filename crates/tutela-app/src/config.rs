//! Configuration: built-in defaults that work on a laptop, then `tutela.toml` (or the file
//! given with `--config`), then `TUTELA_*` environment variables, then command-line flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// TLS certificate and key (PEM). When set, `serve` speaks HTTPS only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Field encryption settings (R29).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CryptoConfig {
    /// `aes-256-gcm` (default) or `sm4-gcm`.
    pub cipher: String,
    /// The local master key file. Default: outside the data directory, at
    /// `<parent of data_dir>/tutela-keys/<data_dir name>.master.key` (the directory
    /// 0700, the file 0600), so a backup of the data directory does not carry the key
    /// that decrypts it; back the key up separately. A path inside the data directory is
    /// refused unless `allow_key_in_data_dir` is set. An existing
    /// `<data_dir>/master.key` of an older install is still used, with a warning.
    pub key_file: Option<PathBuf>,
    /// Accept a configured `key_file` inside the data directory (legacy layouts only:
    /// every backup of the data then carries the key).
    pub allow_key_in_data_dir: bool,
    /// The Ed25519 key that signs audit tree heads; default `<data_dir>/audit-signing.key`.
    pub audit_key_file: Option<PathBuf>,
}

impl Default for CryptoConfig {
    fn default() -> Self {
        Self {
            cipher: "aes-256-gcm".to_owned(),
            key_file: None,
            allow_key_in_data_dir: false,
            audit_key_file: None,
        }
    }
}

/// Read-path caches of authentication and subject metadata (never of personal data).
///
/// Changes made through this process (a token revoked, a tenant frozen) take effect at
/// once; changes made by another process (a second replica, the CLI) take effect within
/// `ttl_ms`. `ttl_ms = 0` turns the caches off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub ttl_ms: u64,
    /// Entries per cache (tokens, subjects, tenants).
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 1000,
            capacity: 100_000,
        }
    }
}

/// Signed links in outgoing messages (unsubscribe, R15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Public base URL the links point at; unset means `http://<listen>`.
    pub base_url: Option<String>,
    /// How long an unsubscribe link stays valid.
    pub unsubscribe_valid_days: u32,
    /// How long an access-export download link stays valid (R33). Links are single
    /// use whatever this says.
    pub export_valid_minutes: u32,
}

impl Default for LinksConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            unsubscribe_valid_days: 60,
            export_valid_minutes: 15,
        }
    }
}

/// Just-in-time support access (R7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrantsConfig {
    /// A request nobody approves lapses after this many days.
    pub pending_days: u32,
    /// The longest an approved grant lasts, and the default.
    pub max_minutes: u32,
}

impl Default for GrantsConfig {
    fn default() -> Self {
        Self {
            pending_days: 4,
            max_minutes: 8 * 60,
        }
    }
}

/// The propagation outbox: deletion notices to recipients (R34).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// How often the sender looks for due notices when nothing wakes it.
    pub poll_ms: u64,
    /// How long one webhook attempt may take.
    pub timeout_ms: u64,
    /// The first retry waits this long; each further one twice as long.
    pub backoff_base_secs: u32,
    /// The longest wait between two attempts.
    pub backoff_max_secs: u32,
    /// Notices claimed (and sent concurrently) per round.
    pub batch: u32,
    /// How far a recipient's signed acknowledgement may be from our clock.
    pub ack_tolerance_secs: u32,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            poll_ms: 1_000,
            timeout_ms: 10_000,
            backoff_base_secs: 30,
            backoff_max_secs: 6 * 3600,
            batch: 64,
            ack_tolerance_secs: 300,
        }
    }
}

impl OutboxConfig {
    pub fn backoff(&self) -> tutela_core::delivery::Backoff {
        tutela_core::delivery::Backoff {
            base: time::Duration::seconds(i64::from(self.backoff_base_secs.max(1))),
            max: time::Duration::seconds(i64::from(self.backoff_max_secs.max(1))),
        }
    }
}

/// The retention engine (R19, R20, R41).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between scheduled runs inside `serve`; 0 turns the scheduler off.
    pub interval_secs: u64,
    /// Subjects per batch (one transaction each).
    pub batch: u32,
    /// How long a batch's subjects stay leased to the run preparing it.
    pub lease_secs: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval_secs: 3600,
            batch: 500,
            lease_secs: 300,
        }
    }
}

/// Audit log settings.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The Merkle tree hash: `sha256` (default) or `sm3` (GB/T 32905). Fixed for the
    /// life of a log: a log started with one cannot be continued with the other.
    pub hash: String,
    /// The witness outside the database (issue 14, R29): an append-only file receiving
    /// every signed tree head, one JSON line each, fsynced. It must lie outside the data
    /// directory. Unset: `<parent of data_dir>/tutela-witness/<data_dir name>.heads`.
    pub witness_file: Option<PathBuf>,
    /// Optional `http(s)://` URL each signed head is also POSTed to as JSON (best effort:
    /// failures are logged and the latest head is sent again later).
    pub witness_webhook: Option<String>,
    /// How long an entry may exist before a signed head must cover it; `audit verify`
    /// fails on older entries that no head signed.
    pub head_grace_s: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            hash: "sha256".to_owned(),
            witness_file: None,
            witness_webhook: None,
            head_grace_s: 300,
        }
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A webhook URL may carry a secret in its path or query: show only its origin.
        let webhook = self.witness_webhook.as_deref().map(|u| {
            reqwest::Url::parse(u).map_or_else(
                |_| "<invalid url>".to_owned(),
                |url| format!("{}/***", url.origin().ascii_serialization()),
            )
        });
        f.debug_struct("AuditConfig")
            .field("hash", &self.hash)
            .field("witness_file", &self.witness_file)
            .field("witness_webhook", &webhook)
            .field("head_grace_s", &self.head_grace_s)
            .finish()
    }
}

/// Request limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub body_bytes: usize,
    /// Longest a request may take before it is answered with 408.
    pub request_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
        }
    }
}

/// The whole configuration of a tutela process.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database, keys and other state live.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL; unset means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The policy file; unset means `policy/statement.toml`, else the built-in copy.
    pub policy: Option<PathBuf>,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub crypto: CryptoConfig,
    pub cache: CacheConfig,
    pub audit: AuditConfig,
    pub links: LinksConfig,
    pub grants: GrantsConfig,
    pub outbox: OutboxConfig,
    pub retention: RetentionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tutela-data"),
            database_url: None,
            policy: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Human,
            tls: None,
            limits: Limits::default(),
            crypto: CryptoConfig::default(),
            cache: CacheConfig::default(),
            audit: AuditConfig::default(),
            links: LinksConfig::default(),
            grants: GrantsConfig::default(),
            outbox: OutboxConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The database URL may carry a password: show only its scheme.
        let db = self
            .database_url
            .as_deref()
            .map(|u| u.split("://").next().unwrap_or("?").to_owned() + "://***");
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database_url", &db)
            .field("policy", &self.policy)
            .field("listen", &self.listen)
            .field("log_format", &self.log_format)
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("crypto", &self.crypto)
            .field("cache", &self.cache)
            .field("audit", &self.audit)
            .field("links", &self.links)
            .field("grants", &self.grants)
            .field("outbox", &self.outbox)
            .field("retention", &self.retention)
            .finish()
    }
}

/// Overrides from the command line; `None` leaves the configured value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

/// Top-level keys, as `TUTELA_<KEY>` environment variables may name them.
const CONFIG_KEYS: &[&str] = &[
    "data_dir",
    "database_url",
    "policy",
    "listen",
    "log_format",
    "tls",
    "limits",
    "crypto",
    "cache",
    "audit",
    "links",
    "grants",
    "outbox",
    "retention",
];

impl Config {
    /// Loads defaults, then the config file (`file`, or `./tutela.toml` when present),
    /// then `TUTELA_*` variables (nested keys with `__`, e.g. `TUTELA_LIMITS__BODY_BYTES`),
    /// then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => fig = fig.merge(Toml::file_exact(path)),
            None if Path::new("tutela.toml").exists() => {
                fig = fig.merge(Toml::file_exact("tutela.toml"))
            }
            None => {}
        }
        // Only variables naming a configuration key: others (TUTELA_TEST_DB, ...) belong to
        // other tools and must not make startup fail.
        let env = Env::prefixed("TUTELA_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                CONFIG_KEYS
                    .iter()
                    .any(|known| k == *known || k.starts_with(&format!("{known}__")))
            })
            .split("__");
        fig = fig.merge(env).merge(Serialized::defaults(overrides));
        fig.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))
    }

    /// The base URL of links in outgoing messages.
    pub fn links_base_url(&self) -> String {
        self.links
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// The master key file in effect: the one rule `serve`, `serve --demo`,
    /// `token create`, `retention run` and `keys rotate` all follow (see
    /// [`MasterKeyLocation`]). Refuses a configured file inside the data directory unless
    /// `crypto.allow_key_in_data_dir` is set.
    pub fn master_key_location(&self) -> Result<MasterKeyLocation, KeyLocationError> {
        if let Some(path) = &self.crypto.key_file {
            if !self.crypto.allow_key_in_data_dir && is_within(path, &self.data_dir) {
                return Err(KeyLocationError::InsideDataDir {
                    key_file: path.clone(),
                    data_dir: self.data_dir.clone(),
                    default: self.default_key_file(),
                });
            }
            return Ok(MasterKeyLocation::Configured(path.clone()));
        }
        let legacy = self.data_dir.join(LEGACY_KEY_FILE);
        if legacy.exists() {
            return Ok(MasterKeyLocation::Legacy {
                path: legacy,
                move_to: self.default_key_file(),
            });
        }
        Ok(MasterKeyLocation::Default(self.default_key_file()))
    }

    /// `<parent of data_dir>/tutela-keys/<data_dir name>.master.key`.
    pub fn default_key_file(&self) -> PathBuf {
        self.beside_data_dir(KEY_DIR, ".master.key")
            .unwrap_or_else(|| Path::new("/").join(KEY_DIR).join("tutela.master.key"))
    }

    /// A file kept beside the data directory, never in it (the master key, the audit
    /// witness): `<parent of data_dir>/<dir>/<data_dir name><suffix>`. `None` when the
    /// data directory has no parent.
    pub fn beside_data_dir(&self, dir: &str, suffix: &str) -> Option<PathBuf> {
        let data = normalized(&self.data_dir);
        let (parent, name) = (data.parent()?, data.file_name()?);
        let mut file = name.to_os_string();
        file.push(suffix);
        Some(parent.join(dir).join(file))
    }

    /// The audit head signing key file in effect.
    pub fn effective_audit_key_file(&self) -> PathBuf {
        self.crypto
            .audit_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-signing.key"))
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite:{}", self.data_dir.join("tutela.db").display()),
        }
    }
}

/// Where older versions kept the master key, inside the data directory.
pub const LEGACY_KEY_FILE: &str = "master.key";
/// The directory beside the data directory that holds master keys by default.
pub const KEY_DIR: &str = "tutela-keys";

/// Where the local master key is, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyLocation {
    /// `crypto.key_file` as configured.
    Configured(PathBuf),
    /// The default, outside the data directory.
    Default(PathBuf),
    /// `<data_dir>/master.key` of an older install: still used so an upgrade loses no
    /// data, but every backup of the data directory carries it; `move_to` is where it
    /// belongs.
    Legacy { path: PathBuf, move_to: PathBuf },
}

impl MasterKeyLocation {
    pub fn path(&self) -> &Path {
        match self {
            MasterKeyLocation::Configured(p)
            | MasterKeyLocation::Default(p)
            | MasterKeyLocation::Legacy { path: p, .. } => p,
        }
    }
}

/// Why the master key's location is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyLocationError {
    #[error(
        "crypto.key_file {key_file} is inside the data directory {data_dir}: every backup of \
         the data would carry the key that decrypts it. Keep the key outside (the default is \
         {default}), or set crypto.allow_key_in_data_dir = true for a legacy layout"
    )]
    InsideDataDir {
        key_file: PathBuf,
        data_dir: PathBuf,
        default: PathBuf,
    },
}

/// An absolute form of `p` with `.` and `..` resolved (through symbolic links where the
/// path exists, lexically beyond), for comparing locations.
fn normalized(p: &Path) -> PathBuf {
    crate::witness::resolve(p).unwrap_or_else(|_| p.to_owned())
}

/// Whether `path` is `dir` or lies inside it.
fn is_within(path: &Path, dir: &Path) -> bool {
    normalized(path).starts_with(normalized(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_key_defaults_outside_the_data_directory_r29() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let c = Config {
            data_dir: data.clone(),
            ..Config::default()
        };
        let expected = normalized(root.path()).join("tutela-keys/data.master.key");
        assert_eq!(
            c.master_key_location().unwrap(),
            MasterKeyLocation::Default(expected.clone())
        );
        // Inside the data directory, however spelled: refused without the opt-in.
        for inside in [
            data.join("master.key"),
            data.join("keys/../keys/k"),
            root.path().join("x/../data/k"),
        ] {
            let c = Config {
                data_dir: data.clone(),
                crypto: CryptoConfig {
                    key_file: Some(inside.clone()),
                    ..CryptoConfig::default()
                },
                ..Config::default()
            };
            let err = c.master_key_location().unwrap_err().to_string();
            assert!(
                err.contains("inside the data directory"),
                "{inside:?}: {err}"
            );
            let c = Config {
                crypto: CryptoConfig {
                    allow_key_in_data_dir: true,
                    ..c.crypto
                },
                ..c
            };
            assert_eq!(
                c.master_key_location().unwrap(),
                MasterKeyLocation::Configured(inside)
            );
        }
        // A sibling whose name only starts like the data directory is outside.
        let beside = root.path().join("data-keys/master.key");
        let c = Config {
            data_dir: data.clone(),
            crypto: CryptoConfig {
                key_file: Some(beside.clone()),
                ..CryptoConfig::default()
            },
            ..Config::default()
        };
        assert_eq!(
            c.master_key_location().unwrap(),
            MasterKeyLocation::Configured(beside)
        );
        // An older install's key in the data directory is still found.
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("master.key"), "1 00\n").unwrap();
        let c = Config {
            data_dir: data.clone(),
            ..Config::default()
        };
        assert_eq!(
            c.master_key_location().unwrap(),
            MasterKeyLocation::Legacy {
                path: data.join("master.key"),
                move_to: expected
            }
        );
    }

    #[test]
    fn debug_redacts_database_password() {
        let c = Config {
            database_url: Some("postgres://u:secretpw@h/db".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("secretpw"), "{shown}");
        assert!(shown.contains("postgres://***"));
    }

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let c = Config::default();
        assert_eq!(c.effective_database_url(), "sqlite:./tutela-data/tutela.db");
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9999\"\n[limits]\nbody_bytes = 10\n",
        )
        .unwrap();
        let c = Config::load(Some(&f), &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.limits.body_bytes, 10);
        let c = Config::load(
            Some(&f),
            &Overrides {
                listen: Some("127.0.0.1:7000".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.toml");
        std::fs::write(&f, "lisen = \"127.0.0.1:9999\"\n").unwrap();
        assert!(Config::load(Some(&f), &Overrides::default()).is_err());
        assert!(matches!(
            Config::load(Some(&dir.path().join("nope.toml")), &Overrides::default()),
            Err(ConfigError::MissingFile(_))
        ));
    }
}
