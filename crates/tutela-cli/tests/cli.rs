//! The `tutela` binary as an operator uses it: exit codes, `policy check`, `token create`,
//! and `serve --demo` as a real process that answers HTTP and stops on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation should panic with context"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tutela");
const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/statement.toml");

fn tutela(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("TUTELA_DATABASE_URL")
        .output()
        .expect("tutela runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn policy_check_passes_on_the_shipped_statement() {
    let out = tutela(&["policy", "check", POLICY]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("policy OK"));
    assert!(stdout.contains("8 categories (5 sensitive)"));
    for id in ["R1 ", "R5 ", "R11 ", "R12 ", "R19 ", "R28 ", "R36 "] {
        assert!(
            stdout.contains(&format!("  {id}")),
            "{id} not in the table:\n{stdout}"
        );
    }
}

#[test]
fn policy_check_fails_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let shipped = std::fs::read_to_string(POLICY).unwrap();
    let line = shipped
        .lines()
        .position(|l| l.contains("{ id = \"fraud_prevention\", clause = \"R11\" }"))
        .unwrap()
        + 1;
    std::fs::write(
        &bad,
        shipped.replacen(
            "{ id = \"fraud_prevention\", clause = \"R11\" }",
            "{ id = \"fraud\", clause = \"R11\" }",
            1,
        ),
    )
    .unwrap();
    let out = tutela(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("bad.toml:{line}:")), "{stderr}");
    assert!(stderr.contains("categories.payment.purposes"), "{stderr}");
    assert!(stderr.contains("unknown purpose `fraud`"), "{stderr}");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory inside a scratch root: the master key and the audit witness go
    // beside it.
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    for args in [
        vec!["token", "create", "--role", "superuser", "--data-dir", d],
        vec!["token", "create", "--role", "tenant_admin", "--data-dir", d],
        vec![
            "token",
            "create",
            "--role",
            "operator",
            "--tenant",
            "ten_00000000000000000000000000000000",
            "--data-dir",
            d,
        ],
        vec![
            "token",
            "create",
            "--role",
            "support",
            "--region",
            "mars",
            "--data-dir",
            d,
        ],
        vec![
            "token",
            "create",
            "--role",
            "tenant_admin",
            "--tenant",
            "ten_00000000000000000000000000000000",
            "--data-dir",
            d,
        ],
        vec!["serve", "--listen", "not-an-address"],
        vec!["frobnicate"],
    ] {
        let out = tutela(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty());
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["token", "create", "--help"],
        vec!["policy", "check", "--help"],
        vec!["audit", "verify", "--help"],
    ] {
        let out = tutela(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
}

fn grep_dir(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(grep_dir(&path, needle));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn token_create_prints_once_and_stores_only_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory inside a scratch root: the master key and the audit witness go
    // beside it.
    let data = dir.path().join("data");
    let out = tutela(&[
        "token",
        "create",
        "--role",
        "operator",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    assert!(
        token.starts_with("tutela_") && token.len() == 7 + 32 + 1 + 64,
        "{token}"
    );
    let secret = token.rsplit('_').next().unwrap();
    assert!(
        grep_dir(&data, secret.as_bytes()).is_empty(),
        "the secret must not be stored"
    );
}

/// Service tokens name their data scope; support tokens their engineer; nobody else
/// takes a scope (issue 14; R7, R29).
#[test]
fn token_scopes_and_engineers_are_checked_at_creation_r7_r29() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let ok = tutela(&[
        "token",
        "create",
        "--role",
        "service",
        "--purposes",
        "transaction,fraud_prevention",
        "--categories",
        "payment",
        "--label",
        "billing",
        "--data-dir",
        d,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).trim().starts_with("tutela_"));
    for (args, needle) in [
        (vec!["--role", "support", "--region", "overseas"], "--label"),
        (
            vec![
                "--role",
                "operator",
                "--purposes",
                "transaction",
                "--categories",
                "payment",
            ],
            "only `service` tokens",
        ),
        (
            vec!["--role", "service", "--purposes", "transaction"],
            "both --purposes and --categories",
        ),
        (
            vec![
                "--role",
                "service",
                "--purposes",
                "spying",
                "--categories",
                "payment",
            ],
            "unknown purpose",
        ),
    ] {
        let mut all = vec!["token", "create", "--data-dir", d];
        all.extend(args.iter().copied());
        let out = tutela(&all);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serve_demo_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory inside a scratch root: the master key and the audit witness go
    // beside it.
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--demo",
            "--log-format",
            "json",
            "--data-dir",
            data.to_str().unwrap(),
            "--policy",
            POLICY,
        ])
        .env("TUTELA_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("TUTELA_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let stderr = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });

    let started = Instant::now();
    let health = loop {
        if let Some(r) = http_get(port, "/healthz") {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up"
        );
        std::thread::yield_now();
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("{\"status\":\"ok\"}"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");

    let printed = printed.join().unwrap().join("\n");
    assert!(printed.contains("tutela demo"), "{printed}");
    assert!(printed.contains("tenant_admin"), "{printed}");
    assert!(
        printed.contains(&format!("curl -s http://127.0.0.1:{port}/healthz")),
        "{printed}"
    );
    let logged = logged.join().unwrap();
    assert!(!logged.is_empty());
    for line in &logged {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
    assert!(logged
        .iter()
        .any(|l| l.contains("shutdown signal received")));
    // Start-up says where the audit witness is: by default beside the data directory.
    let witness = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("tutela-witness")
        .join("data.heads");
    assert!(
        logged
            .iter()
            .any(|l| l.contains("witnessed in this file") && l.contains(witness.to_str().unwrap())),
        "{logged:#?}"
    );

    // The same data directory verifies as an intact audit log.
    let out = tutela(&[
        "audit",
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--policy",
        POLICY,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("audit log intact"));
}

#[test]
fn audit_verify_without_a_signing_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory inside a scratch root: the master key goes beside it.
    let data = dir.path().join("data");
    let out = tutela(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no audit signing key"),
        "{}",
        text(&out.stderr)
    );
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn http(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// R29 and the brief: personal data values never reach the disk or the logs in clear.
/// Plants distinctive values through the API of a real server logging at debug level,
/// then greps the whole data directory (database, WAL, keys) and every log line.
#[test]
fn planted_values_never_reach_the_data_directory_or_logs_in_clear_r29() {
    const NAME: &str = "Zhugeplanted Kongming";
    const EMAIL: &str = "planted.kongming7731@example.cn";
    const PHONE: &str = "13912347731";
    const ADDRESS: &str = "Wolonggang Plantedroad 77";
    const CARD: &str = "6222020200112233446"; // Luhn-valid 19-digit UnionPay-style number
                                              // An individual tenant's display name is a person's name (issue 14).
    const TENANT_NAME: &str = "Plantedtenant Sunshangxiang";
    // Free text of a request: the requester's details and the officer's refusal.
    const DETAILS: &str = "complaint about Plantedclerk Luxun at the Jingzhou office";
    const REFUSAL: &str = "Plantedrefusal: the log reveals Huangyueying's trade secrets";
    let mut link_token: Option<String> = None;
    let dir = tempfile::tempdir().unwrap();
    // The data directory inside a scratch root: the master key and the audit witness go
    // beside it.
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--demo",
            "--log-format",
            "json",
            "--policy",
            POLICY,
        ])
        .args(["--data-dir", data.to_str().unwrap()])
        .env("TUTELA_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "debug")
        .env_remove("TUTELA_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    // The demo banner names the tenant admin's token and the administrator subject.
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "demo banner ended early"
        );
        let done = line.starts_with("try:");
        banner.push(line);
        if done {
            break;
        }
    }
    let printed =
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect::<Vec<_>>());
    let field = |label: &str, col: usize| {
        banner
            .iter()
            .find(|l| l.contains(label))
            .and_then(|l| l.split_whitespace().nth(col).map(str::to_owned))
            .unwrap()
    };
    let admin = field("tenant_admin", 1);
    let subject = field("(administrator)", 1);
    let tenant = field("demo tenant", 3);
    let started = Instant::now();
    while http_get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no server");
        std::thread::yield_now();
    }

    let record = format!(
        r#"{{"purpose":"account_admin","service":"azure","fields":{{"name":"{NAME}","email":"{EMAIL}","phone":"{PHONE}","address":"{ADDRESS}"}}}}"#
    );
    let path = format!("/v1/subjects/{subject}/records/administrator");
    let (status, body) = http(port, "PUT", &path, &admin, Some(&record));
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        port,
        "PUT",
        &format!("/v1/subjects/{subject}/records/payment"),
        &admin,
        Some(&format!(
            r#"{{"purpose":"transaction","service":"azure","fields":{{"card_number":"{CARD}","holder_name":"{NAME}"}}}}"#
        )),
    );
    assert_eq!(status, 200, "{body}");
    // Values come back to an allowed read, so they really were stored (encrypted).
    let (status, body) = http(
        port,
        "GET",
        &format!("{path}?purpose=account_admin"),
        &admin,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(EMAIL) && body.contains(NAME), "{body}");
    // The blind index finds the subject by a differently written e-mail address.
    let (status, body) = http(
        port,
        "POST",
        &format!("/v1/tenants/{tenant}/subjects/lookup"),
        &admin,
        Some(&format!(r#"{{"email":"  {}  "}}"#, EMAIL.to_uppercase())),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&subject), "{body}");
    // Refused input carrying a value: the value is not echoed into logs either.
    let (status, _) = http(
        port,
        "PUT",
        &path,
        &admin,
        Some(&format!(
            r#"{{"purpose":"account_admin","service":"azure","fields":{{"nickname":"{NAME}"}}}}"#
        )),
    );
    assert_eq!(status, 422);

    // A tenant named after a person, created by the operator; its name comes back.
    let operator = field("operator", 1);
    let officer = field("privacy_officer", 1);
    let (status, body) = http(
        port,
        "POST",
        "/v1/tenants",
        &operator,
        Some(&format!(
            r#"{{"name":"{TENANT_NAME}","kind":"individual"}}"#
        )),
    );
    assert_eq!(status, 201, "{body}");
    let individual: serde_json::Value = serde_json::from_str(&body).unwrap();
    let individual = individual["id"].as_str().unwrap().to_owned();
    let (status, body) = http(
        port,
        "GET",
        &format!("/v1/tenants/{individual}"),
        &operator,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(TENANT_NAME), "{body}");
    // A complaint with details, refused with a response text.
    let (status, body) = http(
        port,
        "POST",
        "/v1/requests",
        &admin,
        Some(&format!(
            r#"{{"subject":"{subject}","type":"complaint","details":"{DETAILS}"}}"#
        )),
    );
    assert_eq!(status, 201, "{body}");
    let request: serde_json::Value = serde_json::from_str(&body).unwrap();
    let request = request["id"].as_str().unwrap().to_owned();
    let (status, body) = http(
        port,
        "POST",
        &format!("/v1/requests/{request}/verify"),
        &officer,
        Some(r#"{"method":"callback","evidence":"call-1"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        port,
        "POST",
        &format!("/v1/requests/{request}/refuse"),
        &officer,
        Some(&format!(
            r#"{{"ground":"trade_secret","response":"{REFUSAL}"}}"#
        )),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(REFUSAL) && body.contains(DETAILS), "{body}");
    // An access request fulfilled by a download link: the link is a secret and never
    // reaches a log line, not even as the request path (issue 14).
    let (status, body) = http(
        port,
        "POST",
        "/v1/requests",
        &admin,
        Some(&format!(r#"{{"subject":"{subject}","type":"access"}}"#)),
    );
    assert_eq!(status, 201, "{body}");
    let access: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = access["id"].as_str().unwrap().to_owned();
    for (step, body) in [
        ("verify", r#"{"method":"callback","evidence":"call-2"}"#),
        ("start", "{}"),
        ("export", "{}"),
    ] {
        let (status, reply) = http(
            port,
            "POST",
            &format!("/v1/requests/{access}/{step}"),
            &officer,
            Some(body),
        );
        assert!(status == 200 || status == 201, "{step}: {status} {reply}");
        if step == "export" {
            let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
            let url = v["download_url"].as_str().unwrap().to_owned();
            let link_path = url.get(url.find("/d/").unwrap()..).unwrap().to_owned();
            let (status, export) = http(port, "GET", &link_path, &admin, None);
            assert_eq!(status, 200, "{export}");
            link_token.replace(link_path.trim_start_matches("/d/").to_owned());
        }
    }

    let planted = [
        NAME,
        EMAIL,
        PHONE,
        ADDRESS,
        CARD,
        TENANT_NAME,
        "Plantedclerk",
        "Plantedrefusal",
    ];
    let check_dir = |when: &str| {
        for value in planted {
            for needle in [value.to_owned(), value.to_lowercase()] {
                // The data directory and the key directory beside it.
                let hits = grep_dir(dir.path(), needle.as_bytes());
                assert!(
                    hits.is_empty(),
                    "{when}: `{needle}` found in clear in {hits:?}"
                );
            }
        }
    };
    check_dir("while serving (WAL present)");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    check_dir("after shutdown");
    let logged = logged.join().unwrap();
    let printed = printed.join().unwrap();
    assert!(
        logged.iter().any(|l| l.contains("DEBUG")),
        "debug logging was on"
    );
    let link_token = link_token.take().unwrap();
    for line in logged.iter().chain(printed.iter()) {
        for value in planted {
            assert!(
                !line.to_lowercase().contains(&value.to_lowercase()),
                "log line carries a planted value: {line}"
            );
        }
        assert!(
            !line.contains(&link_token),
            "log line carries a download link: {line}"
        );
    }
}

/// Seeds `n` subjects (support + administrator records) in a tenant closed long enough
/// ago that everything is due, through the store's import path.
fn seed_closed_tenant(data: &Path, n: usize) -> (String, Vec<tutela_core::SubjectId>) {
    use tutela_core::tenant::TenantState;
    use tutela_core::Category;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = tutela_app::Config {
            data_dir: data.to_owned(),
            policy: Some(POLICY.into()),
            ..tutela_app::Config::default()
        };
        let state = tutela_app::startup::open_state(
            config,
            std::sync::Arc::new(tutela_core::clock::SystemClock),
        )
        .await
        .unwrap();
        let closed = state.clock.now() - time::Duration::days(2000);
        let spec = tutela_app::seed::SeedSpec {
            subjects: n,
            state: TenantState::Closed,
            closed_at: Some(closed),
            frozen_until: Some(closed + time::Duration::days(1095)),
            records: vec![
                (
                    Category::Support,
                    "azure".into(),
                    [("description".to_owned(), "disk full".to_owned())].into(),
                ),
                (
                    Category::Administrator,
                    "azure".into(),
                    [("name".to_owned(), "王五".to_owned())].into(),
                ),
            ],
        };
        let (tenant, ids) = tutela_app::seed::tenant_with_subjects(&state, &spec)
            .await
            .unwrap();
        state.store.close().await;
        (tenant.to_string(), ids)
    })
}

/// For every subject: erased with no key and no records, or untouched (key and both
/// records). Returns how many are erased.
fn erased_count(data: &Path, ids: &[tutela_core::SubjectId]) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite:{}", data.join("tutela.db").display());
        let store = tutela_store::Store::connect(&url).await.unwrap();
        let mut erased = 0;
        for id in ids {
            let subject = store.subject(id).await.unwrap().unwrap();
            let key = store.subject_key(id).await.unwrap();
            let records = store.records_with_keys_of(id).await.unwrap().len();
            let rows = store
                .records_of_subjects(std::slice::from_ref(id))
                .await
                .unwrap()
                .len();
            match (subject.erased_at.is_some(), key.is_some(), records, rows) {
                (true, false, 0, 0) => erased += 1,
                (false, true, 2, 2) => {}
                other => panic!("{id} is half-deleted: {other:?}"),
            }
        }
        store.close().await;
        erased
    })
}

#[test]
fn a_killed_retention_run_leaves_no_half_deleted_subject_and_the_next_run_finishes_r19() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (tenant, ids) = seed_closed_tenant(&data, 20_000);
    let data_arg = data.to_str().unwrap();

    // A dry run reports and changes nothing.
    let out = tutela(&[
        "retention",
        "run",
        "--dry-run",
        "--data-dir",
        data_arg,
        "--policy",
        POLICY,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("would erase_subjects"), "{stdout}");
    assert!(stdout.contains("20000 subjects"), "{stdout}");
    assert!(stdout.contains("dry run, nothing changed"), "{stdout}");

    // A real run, killed with SIGKILL as soon as it reports progress.
    let mut child = Command::new(BIN)
        .args([
            "retention",
            "run",
            "--data-dir",
            data_arg,
            "--policy",
            POLICY,
        ])
        .env_remove("TUTELA_DATABASE_URL")
        .env("TUTELA_RETENTION__BATCH", "100")
        // The shortest lease: the batch the kill may leave claimed but not applied is
        // taken over by the next run once its lease ends.
        .env("TUTELA_RETENTION__LEASE_SECS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    loop {
        let line = lines
            .next()
            .expect("retention run ended before reporting progress")
            .unwrap();
        if line.contains("retention progress") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let erased = erased_count(&data, &ids);
    assert!(
        erased > 0 && erased < ids.len(),
        "killed mid-run: {erased} of {}",
        ids.len()
    );

    // The next run finishes the work and erases the tenant.
    let out = tutela(&[
        "retention",
        "run",
        "--data-dir",
        data_arg,
        "--policy",
        POLICY,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 tenants erased"), "{stdout}");
    assert!(
        stdout.contains(&format!("{} subjects erased", ids.len() - erased)),
        "{stdout}"
    );
    assert_eq!(erased_count(&data, &ids), ids.len());
    assert!(stdout.contains(&format!("tenant:{tenant}")));
}

#[test]
fn pii_scan_prints_spans_without_values_and_redact_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("support.log");
    std::fs::write(
        &file,
        "联系人：欧阳娜娜 手机13912345678\nno pii here v2.3.14\nmail li.lei@example.com.\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = tutela(&["pii", "scan", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let spans: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(spans.len(), 3, "{stdout}");
    assert_eq!(spans[1]["type"], "CN_MOBILE");
    assert_eq!(spans[2]["line"], 3);
    assert!(!stdout.contains("13912345678") && !stdout.contains("欧阳"));
    let out = tutela(&["pii", "redact", path, "--operator", "mask"]);
    assert_eq!(out.status.code(), Some(0));
    let redacted = text(&out.stdout);
    assert!(
        redacted.contains("*******5678") && !redacted.contains("欧阳娜娜"),
        "{redacted}"
    );
    assert!(redacted.contains("no pii here v2.3.14"));
    // Bad usage and invalid UTF-8 are clear errors.
    assert_eq!(
        tutela(&["pii", "redact", path, "--operator", "hash"])
            .status
            .code(),
        Some(2)
    );
    std::fs::write(&file, b"fine\n\xff\xfe broken\n").unwrap();
    let out = tutela(&["pii", "scan", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 2 is not valid UTF-8"),
        "{}",
        text(&out.stderr)
    );
}

/// Adds `subjects` subjects (one audited record each) through the import path and seals
/// them as the server's sealer does: a signed head, also written to the witness.
fn seed_and_seal(data: &Path, subjects: usize) {
    use tutela_core::tenant::TenantState;
    use tutela_core::Category;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = tutela_app::Config {
            data_dir: data.to_owned(),
            policy: Some(POLICY.into()),
            ..tutela_app::Config::default()
        };
        let state = tutela_app::startup::open_state(
            config,
            std::sync::Arc::new(tutela_core::clock::SystemClock),
        )
        .await
        .unwrap();
        let spec = tutela_app::seed::SeedSpec {
            subjects,
            state: TenantState::Active,
            closed_at: None,
            frozen_until: None,
            records: vec![(
                Category::Support,
                "azure".into(),
                [("description".to_owned(), "disk full".to_owned())].into(),
            )],
        };
        tutela_app::seed::tenant_with_subjects(&state, &spec)
            .await
            .unwrap();
        let sealed = state
            .audit
            .seal_once(&state.store, state.clock.now())
            .await
            .unwrap();
        assert_eq!(sealed, subjects);
        state.store.close().await;
    });
}

/// Copies the SQLite database files (`tutela.db*`) from `from` to `to`, replacing them.
fn copy_database(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(to).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("tutela.db") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("tutela.db") {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Issue 14 item 5 (R29): a log cut back to an earlier state (an older copy of the
/// database put back, its newest entries and heads gone) is consistent with itself, but
/// not with the witness `audit verify` reads by default beside the data directory.
#[test]
fn audit_verify_exits_1_naming_a_log_shorter_than_its_witness_r29() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let data_arg = data.to_str().unwrap();
    let verify = || {
        tutela(&[
            "audit",
            "verify",
            "--data-dir",
            data_arg,
            "--policy",
            POLICY,
        ])
    };

    seed_and_seal(&data, 4);
    copy_database(&data, &root.path().join("backup"));
    seed_and_seal(&data, 3);
    let witness = root.path().join("tutela-witness").join("data.heads");
    let lines = std::fs::read_to_string(&witness).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");

    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("audit log intact: 7 entries, 2 signed heads"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tutela-witness/data.heads: 2 heads, latest witnessed head 7 entries"),
        "{stdout}"
    );

    copy_database(&root.path().join("backup"), &data);
    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("audit log TAMPERED: first bad index 4: log truncated: the witness has 7 entries signed at "),
        "{stdout}"
    );
    assert!(stdout.contains("the database has 4"), "{stdout}");

    // A witness inside the data directory is refused, naming the key.
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir", data_arg])
        .env_remove("TUTELA_DATABASE_URL")
        .env("TUTELA_AUDIT__WITNESS_FILE", data.join("witness.heads"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("audit.witness_file"), "{stderr}");
    assert!(stderr.contains("inside the data directory"), "{stderr}");
}

/// Issue 15 (R29): `tutela keys rotate` beside a running server, then SIGHUP: the server
/// reloads its master keys from memory's provider and keeps reading and writing under the
/// re-wrapped tenant keys.
#[test]
fn a_running_server_reloads_rotated_master_keys_on_sighup_r29() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--demo",
            "--log-format",
            "json",
            "--policy",
            POLICY,
        ])
        .args(["--data-dir", data.to_str().unwrap()])
        .env("TUTELA_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("TUTELA_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "demo banner ended early"
        );
        let done = line.starts_with("try:");
        banner.push(line);
        if done {
            break;
        }
    }
    let _printed =
        std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect::<Vec<_>>());
    let field = |label: &str| {
        banner
            .iter()
            .find(|l| l.contains(label))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .unwrap()
    };
    let admin = field("tenant_admin");
    let subject = field("(administrator)");
    let started = Instant::now();
    while http_get(port, "/healthz").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no server");
        std::thread::yield_now();
    }
    let path = format!("/v1/subjects/{subject}/records/administrator");
    let put = |n: u32| {
        let body = format!(
            r#"{{"purpose":"account_admin","service":"azure","fields":{{"name":"Rotation Test {n}"}}}}"#
        );
        http(port, "PUT", &path, &admin, Some(&body))
    };
    let read = format!("{path}?purpose=account_admin");
    assert_eq!(put(1).0, 200);

    let out = tutela(&[
        "keys",
        "rotate",
        "--data-dir",
        data.to_str().unwrap(),
        "--policy",
        POLICY,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("SIGHUP"),
        "{}",
        text(&out.stdout)
    );

    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The signal is handled asynchronously: a write and a read under the re-wrapped keys
    // succeed once the keys are reloaded.
    let started = Instant::now();
    let mut n = 2;
    loop {
        let (written, _) = put(n);
        let (status, body) = http(port, "GET", &read, &admin, None);
        if written == 200 && status == 200 && body.contains(&format!("Rotation Test {n}")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no successful write and read after SIGHUP: {status} {body}"
        );
        n += 1;
        std::thread::yield_now();
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let logs = logged.join().unwrap();
    assert!(
        logs.iter()
            .any(|l| l.contains("master keys reloaded (SIGHUP)")),
        "{}",
        logs.join("\n")
    );
}
