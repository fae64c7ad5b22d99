//! Crash proof (issue 15 item 9): `tutela serve` killed with SIGKILL under a concurrent
//! write load loses no acknowledged write and leaves an audit log that verifies.
//!
//! Each round runs [`TASKS`] clients against the real binary, each writing in turn to
//! its own subject: a record (`PUT …/records/administrator`), a consent grant or
//! withdrawal, a data-subject request (a complaint). After every client has had a write
//! acknowledged, the load goes on for a few hundred milliseconds (a delay derived from
//! the round number), then the process is killed with SIGKILL. `tutela audit verify`
//! runs on what the crash left; the server restarts on the same data directory (and
//! database) and every acknowledged write of every round so far is read back through the
//! API. What is provable, and asserted: a write acknowledged before the kill is there
//! with its value; the one write a client had in flight at the kill may or may not be,
//! and if it is, it is whole and it is the latest; no other value appears in a record
//! or a consent ledger. Rounds accumulate on the same data: `TUTELA_CRASH_ROUNDS`
//! (default 3). The log is verified again after a final graceful stop.
//!
//! Only the HTTP API and the CLI are used, so the test holds whatever the store is built
//! on. `TUTELA_TEST_DB=postgres` runs it on a fresh PostgreSQL database (under
//! `TUTELA_TEST_PG_URL`), as the rest of the suite does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation should panic with context"
)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tutela");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/statement.toml");
/// Concurrent writers; each owns one subject.
const TASKS: usize = 8;
/// The consent purpose the clients grant and withdraw.
const CONSENT_PURPOSE: &str = "marketing";
/// Generous bound for anything that should take a second or two.
const PATIENCE: Duration = Duration::from_secs(60);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many rounds of load, kill and restart (`TUTELA_CRASH_ROUNDS`, default 3).
fn rounds() -> usize {
    std::env::var("TUTELA_CRASH_ROUNDS").map_or(3, |v| {
        v.parse()
            .ok()
            .filter(|&n| n > 0)
            .expect("TUTELA_CRASH_ROUNDS is a positive number")
    })
}

/// Milliseconds of load after the warm-up before the kill: 300–1499, fixed per round
/// (splitmix64 of the round number) so a failing round can be re-run as it was.
fn load_ms(round: usize) -> u64 {
    let mut z = (round as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    300 + z % 1200
}

// ---------------------------------------------------------------------------------------
// The backend: SQLite in the data directory, or a fresh PostgreSQL database.

fn backend_is_postgres() -> bool {
    std::env::var("TUTELA_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// A throwaway PostgreSQL database, dropped with the test (the pattern of the server's
/// API tests: `t_<uuid>` under `TUTELA_TEST_PG_URL`, listed in `TUTELA_TEST_PG_MARKER`).
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create() -> Self {
        use sqlx::Connection as _;
        let admin_url = std::env::var("TUTELA_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        let mut c = sqlx::PgConnection::connect(&admin_url).await.expect(
            "TUTELA_TEST_DB=postgres but PostgreSQL is not reachable (set TUTELA_TEST_PG_URL)",
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let _ = c.close().await;
        if let Ok(marker) = std::env::var("TUTELA_TEST_PG_MARKER") {
            use std::io::Write as _;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(marker)
            {
                let _ = writeln!(f, "{name}");
            }
        }
        Self { admin_url, name }
    }

    fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Possibly inside the test's runtime: a fresh one on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Where the data lives: the data directory (inside a scratch root, so the master key
/// and the audit witness go beside it) and, on PostgreSQL, the database.
struct Data {
    data_dir: PathBuf,
    database_url: Option<String>,
}

impl Data {
    /// `--data-dir`, `--policy` and, on PostgreSQL, `--database-url`.
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_owned(),
            self.data_dir.to_str().unwrap().to_owned(),
            "--policy".to_owned(),
            POLICY.to_owned(),
        ];
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        args
    }

    /// `tutela audit verify` on this data; panics naming what it printed unless intact.
    fn audit_verify(&self, when: &str) {
        let out: Output = Command::new(BIN)
            .args(["audit", "verify"])
            .args(self.args())
            .env_remove("TUTELA_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.code() == Some(0) && text(&out.stdout).contains("audit log intact"),
            "{when}: `tutela audit verify` exited {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------
// The server process.

struct Server {
    child: Child,
    base: String,
    /// The demo tenant and its admin's bearer token, from the `--demo` banner.
    tenant: String,
    admin: String,
    /// Everything the process logged (stderr), for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// `tutela serve --demo` on a free loopback port; returns once `/healthz` answers.
    async fn start(data: &Data) -> Self {
        let port = free_port();
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--demo", "--log-format", "json"])
            .args(data.args())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("TUTELA_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let logger = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        // The banner ends with "try:" and its curl lines; the rest of stdout is drained
        // so the process never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<String>>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let mut banner = Vec::new();
            for line in lines.by_ref() {
                let done = line.starts_with("try:");
                banner.push(line);
                if done {
                    break;
                }
            }
            if banner.last().is_some_and(|l| l.starts_with("try:")) {
                let _ = tx.send(banner);
            }
            lines.for_each(drop);
        });
        let banner = match rx.recv_timeout(PATIENCE) {
            Ok(b) => b,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                let _ = logger.join();
                panic!(
                    "serve printed no demo banner ({e}; {status:?}); its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let field = |label: &str, col: usize| {
            banner
                .iter()
                .find(|l| l.contains(label))
                .and_then(|l| l.split_whitespace().nth(col).map(str::to_owned))
                .unwrap_or_else(|| panic!("no `{label}` in the demo banner:\n{banner:#?}"))
        };
        let server = Self {
            tenant: field("demo tenant", 3),
            admin: field("tenant_admin", 1),
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "serve did not answer /healthz; its log:\n{}",
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(40)..].join("\n")
    }

    /// SIGKILL (`Child::kill` on Unix): no shutdown path runs.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log_tail()
    }

    /// SIGTERM: the graceful shutdown, which exits 0.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert_eq!(exit.code(), Some(0), "{}", self.log_tail());
    }
}

// ---------------------------------------------------------------------------------------
// The clients and what they were told.

/// One write a client sends.
#[derive(Debug, Clone)]
enum Write {
    Subject,
    Record { value: String },
    Consent { granted: bool, reference: String },
    Request { details: String },
}

/// A consent entry the server acknowledged (or, after a restart, showed).
#[derive(Debug, Clone)]
struct AckedConsent {
    id: String,
    granted: bool,
    reference: String,
}

/// A data-subject request the server acknowledged.
#[derive(Debug, Clone)]
struct AckedRequest {
    id: String,
    details: String,
}

/// One client: its subject, its sequence of writes, and what must be found after a crash.
#[derive(Debug, Default)]
struct Client {
    index: usize,
    /// Sequence number of the next write (continues across rounds: values stay distinct).
    seq: u64,
    subject: Option<String>,
    /// The latest record value known durable, with its version.
    record: Option<(String, i64)>,
    /// Every consent entry known durable, oldest first.
    consents: Vec<AckedConsent>,
    requests: Vec<AckedRequest>,
    /// The write that was sent but not answered when the server died.
    in_flight: Option<Write>,
    /// Writes acknowledged in the current round.
    acked_this_round: usize,
}

impl Client {
    fn next_write(&mut self) -> Write {
        if self.subject.is_none() {
            return Write::Subject;
        }
        let (i, n) = (self.index, self.seq);
        self.seq += 1;
        match n % 3 {
            0 => Write::Record {
                value: format!("No. {n} Crash Road, Block {i}"),
            },
            1 => Write::Consent {
                // Alternates grant and withdrawal.
                granted: (n / 3) % 2 == 0,
                reference: format!("crash-form-{i}-{n}"),
            },
            _ => Write::Request {
                details: format!("crash complaint {i}-{n}"),
            },
        }
    }
}

/// What every client shares during a round.
struct Round {
    http: reqwest::Client,
    base: String,
    tenant: String,
    admin: String,
    statement_version: String,
    /// Set just before the kill: from then on a transport error is the crash, not a bug.
    killed: AtomicBool,
    /// Clients with at least one write acknowledged this round.
    warmed: AtomicUsize,
}

/// Sends one write. `Ok(Some(body))`: acknowledged (2xx). `Ok(None)`: no answer (the
/// server is gone). `Err`: a refusal or a transport error before the kill.
async fn send(round: &Round, client: &Client, write: &Write) -> Result<Option<Value>, String> {
    let subject = client.subject.clone().unwrap_or_default();
    let (method, path, body) = match write {
        Write::Subject => (
            reqwest::Method::POST,
            format!("/v1/tenants/{}/subjects", round.tenant),
            json!({"kind": "administrator"}),
        ),
        Write::Record { value } => (
            reqwest::Method::PUT,
            format!("/v1/subjects/{subject}/records/administrator"),
            json!({"purpose": "account_admin", "service": "azure", "fields": {"address": value}}),
        ),
        Write::Consent { granted, reference } => (
            reqwest::Method::POST,
            format!("/v1/subjects/{subject}/consents"),
            json!({
                "purpose": CONSENT_PURPOSE,
                "granted": granted,
                "statement_version": round.statement_version,
                "channel": "paper",
                "evidence": {"method": "signed_form", "reference": reference},
            }),
        ),
        Write::Request { details } => (
            reqwest::Method::POST,
            "/v1/requests".to_owned(),
            json!({"subject": subject, "type": "complaint", "details": details}),
        ),
    };
    let sent = round
        .http
        .request(method.clone(), format!("{}{path}", round.base))
        .bearer_auth(&round.admin)
        .json(&body)
        .send()
        .await;
    // The answer must arrive whole: headers alone could precede a lost body.
    let answer = match sent {
        Ok(r) => {
            let status = r.status();
            r.text().await.map(|body| (status, body))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok((status, text)) if status.is_success() => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{method} {path}: {status} with a non-JSON body ({e}): {text}")),
        Ok((status, text)) => Err(format!(
            "client {}: {method} {path} refused: {status} {text}",
            client.index
        )),
        Err(_) if round.killed.load(Ordering::SeqCst) => Ok(None),
        Err(e) => Err(format!(
            "client {}: {method} {path} failed before the kill: {e}",
            client.index
        )),
    }
}

/// Writes until the server dies; returns the client with what it was told.
async fn write_until_killed(round: Arc<Round>, mut client: Client) -> (Client, Result<(), String>) {
    client.acked_this_round = 0;
    loop {
        let write = client.next_write();
        let body = match send(&round, &client, &write).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                client.in_flight = Some(write);
                return (client, Ok(()));
            }
            Err(e) => return (client, Err(e)),
        };
        let id = || {
            body["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("client {}: no id in {body}", client.index))
        };
        let acked = match write {
            Write::Subject => id().map(|s| client.subject = Some(s)),
            Write::Record { value } => match body["version"].as_i64() {
                Some(v) => {
                    client.record = Some((value, v));
                    Ok(())
                }
                None => Err(format!("client {}: no version in {body}", client.index)),
            },
            Write::Consent { granted, reference } => id().map(|id| {
                client.consents.push(AckedConsent {
                    id,
                    granted,
                    reference,
                })
            }),
            Write::Request { details } => {
                id().map(|id| client.requests.push(AckedRequest { id, details }))
            }
        };
        if let Err(e) = acked {
            return (client, Err(e));
        }
        client.acked_this_round += 1;
        if client.acked_this_round == 1 {
            round.warmed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading everything back.

async fn get(http: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    let r = http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Checks one client's writes after a restart, adding what is wrong to `problems`. What
/// the restart settled (the in-flight write, landed or not) becomes part of what must
/// stay. Returns whether an in-flight record or consent write is found to have landed.
async fn check_client(
    http: &reqwest::Client,
    server: &Server,
    c: &mut Client,
    problems: &mut Vec<String>,
) -> bool {
    let in_flight = c.in_flight.take();
    let mut landed = false;
    let Some(subject) = c.subject.clone() else {
        // Never acknowledged: nothing was promised. The next round creates one.
        return landed;
    };
    let who = format!("client {} (subject {subject})", c.index);

    // The record: the latest acknowledged value, or the in-flight one, whole.
    let (status, body) = get(
        http,
        server,
        &format!("/v1/subjects/{subject}/records/administrator?purpose=account_admin"),
    )
    .await;
    let pending = match &in_flight {
        Some(Write::Record { value }) => Some(value.clone()),
        _ => None,
    };
    let acked_version = c.record.as_ref().map_or(0, |(_, v)| *v);
    match status {
        200 => {
            let value = body["fields"]["address"].as_str().unwrap_or_default();
            let version = body["version"].as_i64().unwrap_or_default();
            let fields = body["fields"].as_object().map_or(0, serde_json::Map::len);
            let as_acked = c
                .record
                .as_ref()
                .is_some_and(|(v, n)| v == value && *n == version);
            if fields != 1 {
                problems.push(format!("{who}: record has fields {}", body["fields"]));
            } else if as_acked {
                // The latest acknowledged write; the in-flight one, if any, did not land.
            } else if pending.as_deref() == Some(value) && version > acked_version {
                c.record = Some((value.to_owned(), version));
                landed = true;
            } else {
                problems.push(format!(
                    "{who}: record reads `{value}` version {version}; acknowledged {:?}, in flight {pending:?}",
                    c.record
                ));
            }
        }
        404 if c.record.is_none() => {}
        _ => problems.push(format!(
            "{who}: record read {status} {body}; acknowledged {:?}, in flight {pending:?}",
            c.record
        )),
    }

    // The consent ledger: every acknowledged entry, at most the in-flight one besides,
    // and the latest of them in force.
    let (status, body) = get(http, server, &format!("/v1/subjects/{subject}/consents")).await;
    if status != 200 {
        problems.push(format!("{who}: consents read {status} {body}"));
    } else {
        let history = body["history"].as_array().cloned().unwrap_or_default();
        let find = |id: &str| history.iter().find(|e| e["id"] == id);
        for a in &c.consents {
            match find(&a.id) {
                Some(e)
                    if e["granted"] == a.granted
                        && e["evidence_ref"] == a.reference.as_str()
                        && e["purpose"] == CONSENT_PURPOSE => {}
                Some(e) => problems.push(format!("{who}: consent {a:?} reads as {e}")),
                None => problems.push(format!("{who}: acknowledged consent {a:?} is missing")),
            }
        }
        let extra: Vec<&Value> = history
            .iter()
            .filter(|e| !c.consents.iter().any(|a| e["id"] == a.id.as_str()))
            .collect();
        match (extra.as_slice(), &in_flight) {
            ([], _) => {}
            ([e], Some(Write::Consent { granted, reference }))
                if e["granted"] == *granted
                    && e["evidence_ref"] == reference.as_str()
                    && e["purpose"] == CONSENT_PURPOSE =>
            {
                landed = true;
                c.consents.push(AckedConsent {
                    id: e["id"].as_str().unwrap_or_default().to_owned(),
                    granted: *granted,
                    reference: reference.clone(),
                });
            }
            _ => problems.push(format!(
                "{who}: unacknowledged consent entries {extra:?}; in flight {in_flight:?}"
            )),
        }
        let current: Vec<&Value> = body["current"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|e| e["purpose"] == CONSENT_PURPOSE)
                    .collect()
            })
            .unwrap_or_default();
        match (current.as_slice(), c.consents.last()) {
            ([], None) => {}
            ([e], Some(latest)) if e["id"] == latest.id.as_str() => {}
            (found, latest) => problems.push(format!(
                "{who}: consent in force {found:?}, but the latest written is {latest:?}"
            )),
        }
    }

    // Every acknowledged request, with its details.
    for r in &c.requests {
        let (status, body) = get(http, server, &format!("/v1/requests/{}", r.id)).await;
        let ok = status == 200
            && body["id"] == r.id.as_str()
            && body["subject"] == subject.as_str()
            && body["type"] == "complaint"
            && body["notes"]["details"] == r.details.as_str();
        if !ok {
            problems.push(format!(
                "{who}: acknowledged request {} ({:?}) reads {status} {body}",
                r.id, r.details
            ));
        }
    }
    landed
}

async fn statement_version(http: &reqwest::Client, server: &Server) -> String {
    let (status, policy) = get(http, server, "/v1/policy").await;
    assert_eq!(status, 200, "{policy}");
    policy["version"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------

#[test]
fn acknowledged_writes_survive_sigkill_and_the_audit_log_verifies() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(crash_rounds());
}

async fn crash_rounds() {
    // reqwest's rustls backend (the server enables it) uses the process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = tempfile::tempdir().unwrap();
    let pg = if backend_is_postgres() {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    let data = Data {
        data_dir: root.path().join("data"),
        database_url: pg.as_ref().map(PgDatabase::url),
    };
    let backend = if pg.is_some() { "PostgreSQL" } else { "SQLite" };
    let http = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let mut server = Server::start(&data).await;
    let tenant = server.tenant.clone();
    let admin = server.admin.clone();
    let version = statement_version(&http, &server).await;
    let mut clients: Vec<Client> = (0..TASKS)
        .map(|index| Client {
            index,
            ..Client::default()
        })
        .collect();
    let total = rounds();
    for round_no in 1..=total {
        // A fresh connection pool per round: nothing carries over from the dead process.
        let round = Arc::new(Round {
            http: reqwest::Client::builder()
                .timeout(PATIENCE)
                .build()
                .unwrap(),
            base: server.base.clone(),
            tenant: tenant.clone(),
            admin: admin.clone(),
            statement_version: version.clone(),
            killed: AtomicBool::new(false),
            warmed: AtomicUsize::new(0),
        });
        let handles: Vec<_> = clients
            .drain(..)
            .map(|c| tokio::spawn(write_until_killed(round.clone(), c)))
            .collect();
        // Under load: every client has been answered at least once, and none has failed.
        let started = Instant::now();
        while round.warmed.load(Ordering::SeqCst) < TASKS
            && !handles.iter().any(tokio::task::JoinHandle::is_finished)
        {
            assert!(
                started.elapsed() < PATIENCE,
                "round {round_no}: the clients got no answers; serve's log:\n{}",
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = load_ms(round_no);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        round.killed.store(true, Ordering::SeqCst);
        let log = server.kill();
        let mut failures = Vec::new();
        for h in handles {
            let (client, result) = h.await.unwrap();
            if let Err(e) = result {
                failures.push(e);
            }
            clients.push(client);
        }
        assert!(
            failures.is_empty(),
            "round {round_no} on {backend}: writes refused under load:\n{}\nserve's log:\n{log}",
            failures.join("\n")
        );
        let acked: usize = clients.iter().map(|c| c.acked_this_round).sum();
        let in_flight = clients.iter().filter(|c| c.in_flight.is_some()).count();
        eprintln!(
            "round {round_no}/{total} on {backend}: killed after {delay} ms of load; \
             {acked} writes acknowledged, {in_flight} in flight"
        );

        // What the crash left verifies, before anything else touches it.
        data.audit_verify(&format!("round {round_no} after SIGKILL"));

        // Restarted on the same data, every acknowledged write of every round is there.
        server = Server::start(&data).await;
        assert_eq!(
            server.tenant, tenant,
            "the restart found another demo tenant"
        );
        let mut problems = Vec::new();
        let mut landed = 0;
        for c in &mut clients {
            landed += usize::from(check_client(&http, &server, c, &mut problems).await);
        }
        assert!(
            problems.is_empty(),
            "round {round_no} on {backend} (after {delay} ms of load): {} problems after the restart:\n{}\nserve's log before the kill:\n{log}",
            problems.len(),
            problems.join("\n")
        );
        eprintln!(
            "round {round_no}/{total} on {backend}: restarted; every acknowledged write read back \
             ({landed} in-flight record or consent writes had landed)"
        );
    }
    server.stop();
    data.audit_verify("after the final graceful stop");
    let records = clients.iter().filter(|c| c.record.is_some()).count();
    let consents: usize = clients.iter().map(|c| c.consents.len()).sum();
    let requests: usize = clients.iter().map(|c| c.requests.len()).sum();
    assert!(
        records == TASKS && consents > 0 && requests > 0,
        "the load wrote too little to prove anything: {records} records, {consents} consents, {requests} requests"
    );
    drop(pg);
    drop(root);
}
