//! The `tutela` binary: `serve`, `token create`, `policy check`.
//!
//! Exit codes: 0 success, 1 a failed check or a runtime failure, 2 bad usage.

mod policy_check;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tutela_app::config::{LogFormat, Overrides};
use tutela_app::Config;
use tutela_core::clock::SystemClock;
use tutela_core::{Clock, Region, Role, SubjectId, TenantId, TokenId};
use tutela_server::Application;

#[derive(Debug, Parser)]
#[command(
    name = "tutela",
    version,
    about = "Personal-information protection engine: the privacy statement, enforced."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Work with the policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Work with the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Delete or anonymize what has reached the end of its retention period.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Find or remove personal information in support text (logs, chats, tickets).
    #[command(subcommand)]
    Pii(PiiCommand),
}

#[derive(Debug, Subcommand)]
enum PiiCommand {
    /// Print the personal information found as JSON lines
    /// `{"line","start","end","type"}` (1-based line, UTF-8 byte offsets, end
    /// exclusive; never the text itself).
    Scan {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
    },
    /// Write the text with every finding replaced.
    Redact {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
        /// `mask` (keep the last 4), `tag` (`<TYPE>`) or `hash` (`<TYPE:hmac>`).
        #[arg(long, default_value = "tag")]
        operator: String,
        /// For `hash`: the 32-byte key as hex (keep one per tenant so joins still work).
        #[arg(long, env = "TUTELA_PII_HASH_KEY", hide_env_values = true)]
        hash_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Run the retention engine once: expire ended trials, remove categories whose period
    /// ended after closure, erase tenants and subjects whose periods all ended, remove
    /// terminated services' data. Safe to interrupt: the next run finishes the work.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        /// Print what would happen and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new master key and re-wrap every tenant key under it; data is not
    /// re-encrypted and stays readable. Restart running servers afterwards.
    Rotate {
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the Merkle tree from the stored entries, check every signed head, and
    /// check the log against its witness (audit.witness_file): not shorter than the
    /// latest witnessed head, same root, no signed head missing, no entry older than
    /// audit.head_grace_s left unsigned. Exit 0 when intact, 1 naming what is wrong.
    Verify {
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Options every command that touches state shares with `serve`.
#[derive(Debug, Args)]
struct CommonArgs {
    /// Configuration file (default: ./tutela.toml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Policy file (default: ./policy/statement.toml, else the built-in copy).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Data directory for the SQLite database and keys (default: ./tutela-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://...` to use PostgreSQL instead of SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on (default: 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Create a demo tenant with subjects (idempotent) and print a token for each role.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and only its hash is stored.
    Create(TokenCreateArgs),
    /// Revoke a token by its id (`tok_...`) or the whole bearer string. Running servers
    /// stop accepting it within `cache.ttl_ms` (default 1 s).
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        token: String,
    },
}

#[derive(Debug, Args)]
struct TokenCreateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// operator, privacy_officer, auditor, service, support, tenant_admin or end_user.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// The tenant a tenant_admin or end_user token is scoped to.
    #[arg(long, value_parser = parse_tenant)]
    tenant: Option<TenantId>,
    /// The subject an end_user token acts as.
    #[arg(long, value_parser = parse_subject)]
    subject: Option<SubjectId>,
    /// Where the caller is: cn or overseas (matters for support, R7).
    #[arg(long, value_parser = parse_region, default_value = "cn")]
    region: Region,
    /// A note on what the token is for; for support tokens, the engineer (required:
    /// grants are bound to the engineer who asked, R7).
    #[arg(long, default_value = "")]
    label: String,
    /// For service tokens: the purposes it may use, comma-separated (R29). A service
    /// token without --purposes and --categories reads nothing personal.
    #[arg(long, value_delimiter = ',', value_parser = parse_purpose)]
    purposes: Vec<tutela_core::Purpose>,
    /// For service tokens: the categories it may use, comma-separated (R29).
    #[arg(long, value_delimiter = ',', value_parser = parse_category)]
    categories: Vec<tutela_core::Category>,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate a policy file and print a summary and the requirement ids it encodes.
    Check {
        /// The file to check (default: the policy `serve` would load).
        file: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}
fn parse_purpose(s: &str) -> Result<tutela_core::Purpose, String> {
    tutela_core::Purpose::parse(s.trim()).map_err(|e| e.to_string())
}
fn parse_category(s: &str) -> Result<tutela_core::Category, String> {
    tutela_core::Category::parse(s.trim()).map_err(|e| e.to_string())
}
fn parse_tenant(s: &str) -> Result<TenantId, String> {
    TenantId::parse(s).map_err(|e| e.to_string())
}
fn parse_subject(s: &str) -> Result<SubjectId, String> {
    SubjectId::parse(s).map_err(|e| e.to_string())
}
fn parse_region(s: &str) -> Result<Region, String> {
    Region::parse(s).map_err(|e| e.to_string())
}

/// An error that means the command was used wrongly (exit 2), not that it failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn load_config(
    common: &CommonArgs,
    listen: Option<SocketAddr>,
    log_format: Option<LogFormatArg>,
) -> anyhow::Result<Config> {
    let overrides = Overrides {
        data_dir: common.data_dir.clone(),
        database_url: common.database_url.clone(),
        policy: common.policy.clone(),
        listen,
        log_format: log_format.map(|f| match f {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    Config::load(common.config.as_deref(), &overrides).map_err(|e| UsageError(e.to_string()).into())
}

/// Logs go to stderr (stdout carries command output such as a new token). `default` is
/// the filter when `RUST_LOG` is unset.
fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve(args) => serve(args, clock).await,
        Command::Token(TokenCommand::Create(args)) => token_create(args, clock).await,
        Command::Token(TokenCommand::Revoke { common, token }) => {
            token_revoke(common, &token, clock).await
        }
        Command::Policy(PolicyCommand::Check { file, common }) => {
            let config = load_config(&common, None, None)?;
            policy_check::run(file.as_deref().or(config.policy.as_deref()))
        }
        Command::Audit(AuditCommand::Verify { common }) => audit_verify(common, clock).await,
        Command::Keys(KeysCommand::Rotate { common }) => keys_rotate(common, clock).await,
        Command::Retention(RetentionCommand::Run { common, dry_run }) => {
            retention_run(common, dry_run, clock).await
        }
        Command::Pii(cmd) => pii(cmd),
    }
}

/// `tutela pii scan|redact`: streams the input line by line (constant memory), with a
/// progress bar on a terminal for large files.
fn pii(cmd: PiiCommand) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, BufReader, BufWriter, IsTerminal as _, Write as _};
    let file = match &cmd {
        PiiCommand::Scan { file } | PiiCommand::Redact { file, .. } => file.clone(),
    };
    let (mut input, size): (Box<dyn BufRead>, Option<u64>) = if file.as_os_str() == "-" {
        (
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            None,
        )
    } else {
        let f = std::fs::File::open(&file)
            .with_context(|| format!("cannot open {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, f)), size)
    };
    let bar = match size {
        Some(len) if len > 8 << 20 && std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(len);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
            ) {
                bar.set_style(style);
            }
            Some(bar)
        }
        _ => None,
    };
    let progress = |bytes: u64| {
        if let Some(b) = &bar {
            b.set_position(bytes);
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = match cmd {
        PiiCommand::Scan { .. } => tutela_pii::stream::scan(&mut input, &mut out, progress),
        PiiCommand::Redact {
            operator, hash_key, ..
        } => {
            let key = match hash_key {
                Some(h) => Some(
                    hex::decode(h.trim())
                        .ok()
                        .and_then(|k| <[u8; 32]>::try_from(k).ok())
                        .ok_or_else(|| {
                            UsageError("--hash-key must be 64 hex digits (32 bytes)".into())
                        })?,
                ),
                None => None,
            };
            if operator == "token" {
                return Err(UsageError(
                    "token operator needs the vault to keep the originals: use POST /v1/redact"
                        .into(),
                )
                .into());
            }
            let op = tutela_pii::Operator::parse(&operator, key).ok_or_else(|| {
                UsageError(format!(
                    "--operator must be mask, tag or hash (hash needs --hash-key); got `{operator}`"
                ))
            })?;
            tutela_pii::stream::redact(
                &mut input,
                &mut out,
                &tutela_pii::Redactor::new(op),
                progress,
            )
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    out.flush()?;
    let totals = result.with_context(|| format!("reading {}", file.display()))?;
    eprintln!(
        "{} lines, {} bytes, {} findings",
        totals.lines, totals.bytes, totals.spans
    );
    Ok(ExitCode::SUCCESS)
}

async fn retention_run(
    common: CommonArgs,
    dry_run: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal as _;
    use tutela_app::retention_engine::{self as retention, RunOptions};
    let config = load_config(&common, None, None)?;
    init_logging(LogFormat::Human, "info,sqlx=warn");
    let state = tutela_app::startup::open_state(config, clock).await?;
    let opts = RunOptions {
        dry_run,
        batch: state.config.retention.batch,
        lease_secs: state.config.retention.lease_secs,
        wait_for_leases: true,
    };
    // A progress bar on a terminal (sized by a dry pass), log lines every second otherwise.
    let bar = if !dry_run && std::io::stderr().is_terminal() {
        let plan = retention::run(
            &state,
            RunOptions {
                dry_run: true,
                ..opts
            },
            &mut |_| {},
        )
        .await?;
        let bar = indicatif::ProgressBar::new(plan.subjects_due);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} subjects ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let started = std::time::Instant::now();
    let mut last_line: Option<std::time::Instant> = None;
    let summary = retention::run(&state, opts, &mut |s| {
        let done = s.subjects_erased + s.subjects_rekeyed;
        match &bar {
            Some(b) => b.set_position(done),
            None if !s.dry_run
                && last_line.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) =>
            {
                tracing::info!(
                    subjects_done = done,
                    subjects_due = s.subjects_due,
                    "retention progress"
                );
                last_line = Some(std::time::Instant::now());
            }
            None => {}
        }
    })
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = summary?;
    let verb = if dry_run { "would" } else { "did" };
    for item in &summary.plan {
        println!(
            "{verb} {:<24} {:<40} {:>8} subjects  ({})",
            item.action, item.scope, item.subjects, item.clause
        );
    }
    println!(
        "summary{}: {} trials expired, {} tenants erased, {} subjects erased, {} subjects re-keyed, {} records deleted, {} anonymized, {} notices queued, {} services finished, in {:.1} s",
        if dry_run { " (dry run, nothing changed)" } else { "" },
        summary.trials_expired,
        summary.tenants_erased,
        summary.subjects_erased,
        summary.subjects_rekeyed,
        summary.records_deleted,
        summary.records_anonymized,
        summary.notices_queued,
        summary.services_finished,
        started.elapsed().as_secs_f64()
    );
    state.store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.common, args.listen, args.log_format)?;
    init_logging(config.log_format, "info,sqlx=warn");
    tracing::info!(config = ?config, "starting tutela");
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Application::build(config, clock).await?;
    if args.demo {
        let report = tutela_app::demo::ensure(app.state())
            .await
            .context("setting up the demo")?;
        print_demo(&report, &format!("{scheme}://{}", app.local_addr()));
    }
    app.run_until(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

fn print_demo(report: &tutela_app::demo::DemoReport, base: &str) {
    let verb = if report.created { "created" } else { "found" };
    println!("\n== tutela demo ==");
    println!("demo tenant {verb}: {}", report.tenant);
    for (kind, id, minor) in &report.subjects {
        println!(
            "  subject {id} ({kind}{})",
            if *minor { ", minor" } else { "" }
        );
    }
    println!("\ntokens (shown once; only their hashes are stored):");
    for (label, bearer) in &report.tokens {
        println!("  {label:<20} {bearer}");
    }
    let token_for = |label: &str| {
        report
            .tokens
            .iter()
            .find(|(l, _)| l == label)
            .map_or("TOKEN", |(_, t)| t.as_str())
    };
    println!("\ntry:");
    println!("  curl -s {base}/healthz");
    println!(
        "  curl -s -H 'Authorization: Bearer {}' {base}/v1/policy",
        token_for("auditor")
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {}' {base}/v1/tenants/{}",
        token_for("tenant_admin"),
        report.tenant
    );
    println!(
        "  curl -s -X POST -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"kind\":\"contact\"}}' {base}/v1/tenants/{}/subjects",
        token_for("tenant_admin"),
        report.tenant
    );
    println!("  curl -s {base}/openapi.json | head -c 300\n");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}

async fn token_create(args: TokenCreateArgs, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.common, None, None)?;
    init_logging(LogFormat::Human, "warn");
    let state = tutela_app::startup::open_state(config, clock.clone()).await?;
    let mut req = tutela_app::tokens::TokenRequest::new(
        args.role,
        args.tenant,
        args.subject,
        args.region,
        args.label,
    );
    req.scope = tutela_core::actor::DataScope::new(args.purposes, args.categories);
    let result = tutela_app::tokens::create(&state.store, clock.as_ref(), req).await;
    state.store.close().await;
    match result {
        Ok((_, bearer)) => {
            println!("{bearer}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ tutela_app::tokens::CreateTokenError::Store(_)) => Err(e.into()),
        Err(e) => Err(UsageError(e.to_string()).into()),
    }
}

async fn token_revoke(
    common: CommonArgs,
    token: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ExitCode> {
    let id = match tutela_crypto::token::parse(token) {
        Some(presented) => TokenId::parse(&format!("{}_{}", TokenId::PREFIX, presented.id_hex)),
        None => TokenId::parse(token),
    }
    .map_err(|_| UsageError("expected a token id (tok_...) or a bearer token".into()))?;
    let config = load_config(&common, None, None)?;
    init_logging(LogFormat::Human, "warn");
    let state = tutela_app::startup::open_state(config, clock).await?;
    let revoked = tutela_app::tokens::revoke(&state, &id).await;
    state.store.close().await;
    if revoked? {
        println!("revoked {id}");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(UsageError(format!("{id} does not exist or is already revoked")).into())
    }
}

async fn audit_verify(common: CommonArgs, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let config = load_config(&common, None, None)?;
    init_logging(LogFormat::Human, "warn");
    let options = tutela_app::audit_log::VerifyOptions::from_config(&config, clock.now())?;
    let key_path = config.effective_audit_key_file();
    anyhow::ensure!(
        key_path.exists(),
        "no audit signing key at {}; nothing was ever sealed here",
        key_path.display()
    );
    let store = tutela_store::Store::open(&config.effective_database_url(), clock.now())
        .await
        .context("opening the database")?;
    let signer = tutela_app::audit_log::load_signer(&key_path)?;
    let alg = tutela_audit::HashAlg::parse(&config.audit.hash).with_context(|| {
        format!(
            "audit.hash must be `sha256` or `sm3`, not `{}`",
            config.audit.hash
        )
    })?;
    let report = tutela_app::audit_log::verify(&store, alg, signer.public_key(), &options).await;
    store.close().await;
    let report = report?;
    if report.witness_skipped > 0 {
        eprintln!(
            "note: {} lines of the witness {} are not signed heads (torn writes?) and were skipped",
            report.witness_skipped,
            options.witness_file.display()
        );
    }
    match report.problem {
        None => {
            let witnessed = report.witnessed.map_or_else(
                || "no head witnessed yet".to_owned(),
                |(size, at)| format!("latest witnessed head {size} entries signed at {at}"),
            );
            println!(
                "audit log intact: {} entries, {} signed heads verified ({} awaiting sealing); \
                 witness {}: {} heads, {witnessed}",
                report.entries,
                report.heads,
                report.unsealed,
                options.witness_file.display(),
                report.witness_heads
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((index, what)) => {
            println!("audit log TAMPERED: first bad index {index}: {what}");
            Ok(ExitCode::from(1))
        }
    }
}

async fn keys_rotate(common: CommonArgs, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let config = load_config(&common, None, None)?;
    init_logging(LogFormat::Human, "warn");
    let cipher =
        tutela_crypto::envelope::Cipher::parse(&config.crypto.cipher).ok_or_else(|| {
            UsageError(format!(
                "crypto.cipher must be `aes-256-gcm` or `sm4-gcm`, not `{}`",
                config.crypto.cipher
            ))
        })?;
    // The same rule as `serve` (`Config::master_key_location`).
    let key_file = config
        .master_key_location()
        .map_err(|e| UsageError(e.to_string()))?
        .path()
        .to_owned();
    anyhow::ensure!(
        key_file.exists(),
        "no master key file at {}; nothing to rotate",
        key_file.display()
    );
    let store = tutela_store::Store::open(&config.effective_database_url(), clock.now())
        .await
        .context("opening the database")?;
    let report = tutela_app::keys::rotate_master(&store, &key_file, cipher).await;
    store.close().await;
    let report = report?;
    println!(
        "master key {} is now current; {} tenant keys re-wrapped (no data re-encrypted)",
        report.new_master_key_id, report.rewrapped
    );
    println!("running servers: send SIGHUP (`kill -HUP <pid>`) to load the new key");
    Ok(ExitCode::SUCCESS)
}
