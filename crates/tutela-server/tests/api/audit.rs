//! The tamper-evident audit log: signed heads, inclusion and consistency proofs anyone
//! can check, and `verify` naming the first bad index after direct database edits (R29).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use tutela_app::audit_log::VerifyOptions;
use tutela_audit::{verify_consistency, verify_inclusion, HashAlg, SignedTreeHead, TreeHead};
use tutela_core::{Clock as _, Region, Role};
use tutela_server::Application;

fn h32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Makes `n` audited accesses and seals them.
async fn busy_app(n: usize) -> (TestApp, String) {
    busy_app_on(spawn_app().await, n).await
}

async fn busy_app_on(app: TestApp, n: usize) -> (TestApp, String) {
    let (_, subject, admin) = app.tenant_with_admin("Audit Co").await;
    let path = format!("/v1/subjects/{subject}/records/administrator");
    let r = app.request(Method::PUT, &path, Some(&admin), Some(json!({"purpose": "account_admin", "service": "azure", "fields": {"email": "a@example.cn"}}))).await;
    assert_eq!(r.status(), 200);
    for i in 1..n {
        app.clock.advance(time::Duration::milliseconds(1));
        let purpose = if i % 3 == 0 {
            "research"
        } else {
            "account_admin"
        };
        app.get(&format!("{path}?purpose={purpose}"), &admin).await;
    }
    app.state
        .audit
        .seal_once(&app.state.store, app.clock.now())
        .await
        .unwrap();
    (app, subject.to_string())
}

/// Tampers with the database behind tutela's back, on a connection of its own (the app's
/// server may be stopped).
async fn exec_sql(app: &TestApp, sql: &str) {
    let sql = sql.to_owned();
    let store = tutela_store::Store::connect(&app.state.config.effective_database_url())
        .await
        .unwrap();
    store
        .write(move |db| Box::pin(async move { db.execute_script(&sql).await }))
        .await
        .unwrap();
    store.close().await;
}

/// What `tutela audit verify` checks besides the database: the app's witness file and
/// grace period, as of the test clock.
fn options(app: &TestApp) -> VerifyOptions {
    VerifyOptions::from_config(&app.state.config, app.clock.now()).unwrap()
}

async fn verify(app: &TestApp) -> Option<(u64, String)> {
    tutela_app::audit_log::verify(
        &app.state.store,
        HashAlg::Sha256,
        app.state.audit.public_key(),
        &options(app),
    )
    .await
    .unwrap()
    .problem
}

#[tokio::test]
async fn head_is_signed_and_proofs_verify_with_a_few_lines_of_code() {
    let (app, subject) = busy_app(9).await;
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    let head: Value = app
        .get("/v1/audit/head", &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(head["size"], 9);
    let signed_at = time::OffsetDateTime::parse(
        head["signed_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let sth = SignedTreeHead {
        head: TreeHead {
            alg: HashAlg::Sha256,
            size: 9,
            root: h32(head["root_hash"].as_str().unwrap()),
            signed_at_micros: (signed_at.unix_timestamp_nanos() / 1000) as i64,
        },
        signature: hex::decode(head["signature"].as_str().unwrap()).unwrap(),
    };
    assert!(sth.verify(&hex::decode(head["public_key"].as_str().unwrap()).unwrap()));

    let entries: Vec<Value> = app
        .get(&format!("/v1/audit/entries?subject={subject}"), &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(entries.len(), 9);
    assert_eq!(entries[3]["decision"], "deny");
    assert_eq!(entries[3]["clause"], "R4");
    for i in 0..9u64 {
        let p: Value = app
            .get(&format!("/v1/audit/proof?index={i}"), &auditor)
            .await
            .json()
            .await
            .unwrap();
        let path: Vec<[u8; 32]> = p["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| h32(x.as_str().unwrap()))
            .collect();
        assert_eq!(p["root_hash"], head["root_hash"]);
        verify_inclusion(
            HashAlg::Sha256,
            i,
            9,
            &h32(p["leaf_hash"].as_str().unwrap()),
            &path,
            &h32(p["root_hash"].as_str().unwrap()),
        )
        .unwrap();
    }
    // The leaf is H(0x00 || canonical entry) of the entry at that index.
    let stored = app.state.store.audit_for_subject(&subject).await.unwrap();
    let p: Value = app
        .get("/v1/audit/proof?index=2", &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        p["leaf_hash"],
        hex::encode(HashAlg::Sha256.leaf(&tutela_app::audit_log::entry_bytes(&stored[2], 2)))
    );
    assert_error(
        app.get("/v1/audit/proof?index=9", &auditor).await,
        422,
        "invalid_proof_request",
        None,
    )
    .await;
    let service = app.token(Role::Service, None, None, Region::Cn).await;
    assert_error(
        app.get("/v1/audit/head", &service).await,
        403,
        "forbidden",
        None,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn consistency_between_two_heads_verifies() {
    let (app, _) = busy_app(5).await;
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    let first: Value = app
        .get("/v1/audit/head", &auditor)
        .await
        .json()
        .await
        .unwrap();
    // More traffic (the auditor's reads are not personal-data accesses; make some).
    let t = app.create_tenant("More").await;
    let s = app.create_subject(&t, json!({"kind": "contact"})).await;
    let svc = app.token(Role::Service, None, None, Region::Cn).await;
    for _ in 0..4 {
        app.get(
            &format!("/v1/subjects/{s}/records/registration?purpose=account_admin"),
            &svc,
        )
        .await;
    }
    app.state
        .audit
        .seal_once(&app.state.store, app.clock.now())
        .await
        .unwrap();
    let second: Value = app
        .get("/v1/audit/head", &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["size"], 9);
    let c: Value = app
        .get("/v1/audit/consistency?first=5&second=9", &auditor)
        .await
        .json()
        .await
        .unwrap();
    let path: Vec<[u8; 32]> = c["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| h32(x.as_str().unwrap()))
        .collect();
    verify_consistency(
        HashAlg::Sha256,
        5,
        9,
        &h32(first["root_hash"].as_str().unwrap()),
        &h32(second["root_hash"].as_str().unwrap()),
        &path,
    )
    .unwrap();
    app.stop().await;
}

#[tokio::test]
async fn verify_passes_on_an_intact_log() {
    let (app, _) = busy_app(6).await;
    assert_eq!(verify(&app).await, None);
    app.stop().await;
}

#[tokio::test]
async fn verify_names_a_changed_entry() {
    let (app, _) = busy_app(6).await;
    exec_sql(
        &app,
        "UPDATE audit_entries SET decision = 'allow', clause = 'R8' WHERE seq = 3",
    )
    .await;
    let (index, what) = verify(&app).await.expect("tampering must be found");
    assert_eq!(index, 3, "{what}");
    assert!(what.contains("changed"), "{what}");
    app.stop().await;
}

#[tokio::test]
async fn verify_names_a_removed_entry() {
    let (app, _) = busy_app(6).await;
    exec_sql(&app, "DELETE FROM audit_entries WHERE seq = 2").await;
    let (index, what) = verify(&app).await.expect("removal must be found");
    assert_eq!(index, 2, "{what}");
    assert!(what.contains("missing"), "{what}");
    app.stop().await;
}

#[tokio::test]
async fn verify_names_reordered_entries() {
    let (app, _) = busy_app(6).await;
    exec_sql(&app, "UPDATE audit_entries SET seq = 100 WHERE seq = 1; UPDATE audit_entries SET seq = 1 WHERE seq = 4; UPDATE audit_entries SET seq = 4 WHERE seq = 100;").await;
    let (index, what) = verify(&app).await.expect("reordering must be found");
    assert!(index <= 2, "{index}: {what}");
    assert!(what.contains("reordered"), "{what}");
    app.stop().await;
}

#[tokio::test]
async fn a_rewritten_entry_with_a_matching_leaf_hash_is_caught_by_the_signed_head() {
    let (app, _) = busy_app(6).await;
    let mut entries = app.state.store.sealed_audit(0, 100).await.unwrap();
    let (mut e, _) = entries.remove(3);
    e.decision = "allow".into();
    let leaf = hex::encode(HashAlg::Sha256.leaf(&tutela_app::audit_log::entry_bytes(&e, 3)));
    let blob = if backend_is_postgres() {
        format!("'\\x{leaf}'::bytea")
    } else {
        format!("X'{leaf}'")
    };
    exec_sql(
        &app,
        &format!("UPDATE audit_entries SET decision = 'allow', leaf_hash = {blob} WHERE seq = 3"),
    )
    .await;
    let (index, what) = verify(&app).await.expect("the head no longer matches");
    assert_eq!(index, 0, "{what}");
    assert!(what.contains("do not match the signed head"), "{what}");
    app.stop().await;
}

#[tokio::test]
async fn an_sm3_log_seals_verifies_and_cannot_be_continued_with_sha256() {
    let app = spawn_app_with(|c| c.audit.hash = "sm3".into()).await;
    let (app, _) = busy_app_on(app, 5).await;
    let auditor = app.token(Role::Auditor, None, None, Region::Cn).await;
    let head: Value = app
        .get("/v1/audit/head", &auditor)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(head["hash"], "sm3");
    assert_eq!(head["size"], 5);
    let report = tutela_app::audit_log::verify(
        &app.state.store,
        HashAlg::Sm3,
        app.state.audit.public_key(),
        &options(&app),
    )
    .await
    .unwrap();
    assert_eq!(report.problem, None);
    // The same entries checked as SHA-256 do not match: the hash really is SM3.
    assert!(verify(&app).await.is_some());
    let key = app.state.config.effective_audit_key_file();
    let witness = tutela_app::witness::Witness::from_config(&app.state.config).unwrap();
    let err =
        tutela_app::audit_log::AuditLog::open(&app.state.store, &key, HashAlg::Sha256, witness)
            .await
            .unwrap_err();
    assert!(
        format!("{err:#}").contains("started with the other hash"),
        "{err:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_audit_hash_is_a_startup_error() {
    let err = startup_error(|c, _| c.audit.hash = "md5".into()).await;
    assert!(
        err.contains("audit.hash must be `sha256` or `sm3`"),
        "{err}"
    );
}

fn test_entry(n: u32) -> tutela_store::AuditEntry {
    tutela_store::AuditEntry {
        id: format!("aud_replica_{n:04}"),
        at: T0,
        token_id: "tok_test".into(),
        role: "operator".into(),
        tenant: None,
        subject: None,
        category: None,
        purpose: None,
        action: "read".into(),
        decision: "allow".into(),
        reason: "test".into(),
        clause: Some("R29".into()),
        seq: None,
    }
}

/// DESIGN.md: one sealer per deployment, elected by a database lock; a replica that takes
/// over continues the same tree.
#[tokio::test]
async fn one_replica_holds_the_sealer_lease_and_a_successor_continues_the_tree() {
    use tutela_app::audit_log::AuditLog;
    use tutela_app::witness::Witness;
    use tutela_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let pg = if backend_is_postgres() {
        Some(fresh_pg_database().await)
    } else {
        None
    };
    let url = pg.as_ref().map_or_else(
        || format!("sqlite:{}", dir.path().join("tutela.db").display()),
        |db| db.url(),
    );
    let first = Store::open(&url, T0).await.unwrap();
    let second = Store::open(&url, T0).await.unwrap();

    let lease = first
        .try_sealer_lease()
        .await
        .unwrap()
        .expect("the first replica seals");
    if backend_is_postgres() {
        assert!(
            second.try_sealer_lease().await.unwrap().is_none(),
            "a second replica must not seal while the first holds the lease"
        );
        lease.release().await;
        assert!(second.try_sealer_lease().await.unwrap().is_some());
    } else {
        // SQLite has one writing process, which is always the sealer.
        assert!(second.try_sealer_lease().await.unwrap().is_some());
    }

    let key = dir.path().join("audit-signing.key");
    // Both replicas append to one witness file (a shared volume).
    let witness_dir = tempfile::tempdir().unwrap();
    let witness_file = witness_dir.path().join("audit.heads");
    let witness = || Witness::file(witness_file.clone()).unwrap();
    let log_a = AuditLog::open(&first, &key, HashAlg::Sha256, witness())
        .await
        .unwrap();
    first
        .append_audit_batch(&(0..3).map(test_entry).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(log_a.seal_once(&first, T0).await.unwrap(), 3);
    // The successor opens after three were sealed and seals the next two.
    second
        .append_audit_batch(&(3..5).map(test_entry).collect::<Vec<_>>())
        .await
        .unwrap();
    let log_b = AuditLog::open(&second, &key, HashAlg::Sha256, witness())
        .await
        .unwrap();
    assert_eq!(log_b.seal_once(&second, T0).await.unwrap(), 2);
    // The first, holding the lease again, catches up before extending the tree.
    first
        .append_audit_batch(&(5..7).map(test_entry).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(log_a.seal_once(&first, T0).await.unwrap(), 2);
    let options = VerifyOptions {
        witness_file: witness_file.clone(),
        head_grace: time::Duration::minutes(5),
        now: T0,
    };
    let report =
        tutela_app::audit_log::verify(&first, HashAlg::Sha256, log_a.public_key(), &options)
            .await
            .unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.entries, 7);
    assert_eq!(report.witnessed.map(|(size, _)| size), Some(7));
    first.close().await;
    second.close().await;
    drop(pg);
}

// ---- The witness outside the database (issue 14 item 5, R29) ----

fn witness_path(app: &TestApp) -> std::path::PathBuf {
    app.state.config.audit.witness_file.clone().unwrap()
}

fn witness_lines(app: &TestApp) -> Vec<tutela_app::witness::WitnessHead> {
    std::fs::read_to_string(witness_path(app))
        .unwrap()
        .lines()
        .map(|l| tutela_app::witness::WitnessHead::parse_line(l).unwrap())
        .collect()
}

/// `tutela audit verify` with the server stopped: a fresh connection to its database.
async fn verify_stopped(app: &TestApp) -> tutela_app::audit_log::VerifyReport {
    let store =
        tutela_store::Store::open(&app.state.config.effective_database_url(), app.clock.now())
            .await
            .unwrap();
    let report = tutela_app::audit_log::verify(
        &store,
        HashAlg::Sha256,
        app.state.audit.public_key(),
        &options(app),
    )
    .await
    .unwrap();
    store.close().await;
    report
}

/// Before the witness, cutting off the newest entries together with the heads that
/// signed them left a log that verified: what remains is consistent with itself.
#[tokio::test]
async fn verify_fails_when_the_newest_entries_and_their_heads_are_cut_off_r29() {
    let (app, _) = busy_app(6).await;
    app.clock.advance(time::Duration::seconds(1));
    let (app, _) = busy_app_on(app, 4).await;
    app.clock.advance(time::Duration::seconds(1));
    let (mut app, _) = busy_app_on(app, 3).await;
    // Every signed head also went to the witness, in order.
    let witnessed = witness_lines(&app);
    let heads = app.state.store.audit_heads().await.unwrap();
    assert!(heads.len() >= 3, "{heads:?}");
    assert_eq!(witnessed.len(), heads.len());
    for (w, h) in witnessed.iter().zip(&heads) {
        assert_eq!(w.size, h.size as u64);
        assert_eq!(w.root_hash, hex::encode(&h.root));
        let (sth, key) = w.decode().unwrap();
        assert_eq!(key, app.state.audit.public_key());
        assert!(sth.verify(&key));
    }
    assert_eq!(witnessed.last().unwrap().size, 13);
    assert_eq!(verify(&app).await, None);

    app.stop_server().await;
    let untouched = verify_stopped(&app).await;
    assert_eq!(untouched.problem, None);
    assert_eq!(untouched.witnessed.map(|(size, _)| size), Some(13));

    exec_sql(
        &app,
        "DELETE FROM audit_entries WHERE seq >= 10; DELETE FROM audit_heads WHERE size > 10",
    )
    .await;
    let report = verify_stopped(&app).await;
    assert_eq!(report.entries, 10, "the database alone is consistent");
    let (index, what) = report.problem.expect("the truncation must be found");
    assert_eq!(index, 10, "{what}");
    assert!(
        what.starts_with("log truncated: the witness has 13 entries signed at 2026-11-28T09:00:02"),
        "{what}"
    );
    assert!(what.ends_with("the database has 10"), "{what}");

    // The server refuses to continue a log shorter than its witness.
    let err = Application::build((*app.state.config).clone(), app.clock.clone())
        .await
        .err()
        .expect("a truncated log must not be continued");
    let err = format!("{err:#}");
    assert!(
        err.contains("does not extend the head its witness"),
        "{err}"
    );
    assert!(err.contains("log truncated"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn verify_fails_when_every_signed_head_is_deleted_r29() {
    let (mut app, _) = busy_app(6).await;
    app.stop_server().await;
    exec_sql(&app, "DELETE FROM audit_heads").await;
    let report = verify_stopped(&app).await;
    assert_eq!((report.entries, report.heads), (6, 0));
    let (index, what) = report.problem.expect("the deleted heads must be missed");
    assert_eq!(index, 0, "{what}");
    assert!(
        what.starts_with("signed heads missing: the witness has a head of size 6 signed at"),
        "{what}"
    );
    assert!(what.contains("the database has no signed head"), "{what}");

    // Even without the witness, entries no head signed are a failure once they are older
    // than the grace period: an empty set of heads is never "intact".
    std::fs::remove_file(witness_path(&app)).unwrap();
    assert_eq!(
        verify_stopped(&app).await.problem,
        None,
        "within the grace period"
    );
    app.clock.advance(time::Duration::seconds(301));
    let (index, what) = verify_stopped(&app)
        .await
        .problem
        .expect("unsigned entries past the grace period");
    assert_eq!(index, 0, "{what}");
    assert!(
        what.starts_with("6 entries are signed by no head"),
        "{what}"
    );
    assert!(what.contains("audit.head_grace_s = 300 s"), "{what}");
    app.stop().await;
}

#[tokio::test]
async fn unsigned_entries_pass_within_the_grace_period_and_fail_after_it_r29() {
    let mut app = spawn_app_with(|c| c.audit.head_grace_s = 60).await;
    app.stop_server().await;
    // Written while no sealer runs (a server that died before sealing them).
    let store = tutela_store::Store::open(&app.state.config.effective_database_url(), T0)
        .await
        .unwrap();
    store
        .append_audit_batch(&(0..3).map(test_entry).collect::<Vec<_>>())
        .await
        .unwrap();
    store.close().await;
    app.clock.advance(time::Duration::seconds(60));
    let report = verify_stopped(&app).await;
    assert_eq!(report.problem, None);
    assert_eq!(report.unsealed, 3);
    app.clock.advance(time::Duration::seconds(1));
    let (index, what) = verify_stopped(&app)
        .await
        .problem
        .expect("unsigned entries past the grace period");
    assert_eq!(index, 0, "{what}");
    assert!(
        what.starts_with(
            "3 entries are signed by no head, the oldest written at 2026-11-28T09:00:00Z"
        ),
        "{what}"
    );
    assert!(what.contains("audit.head_grace_s = 60 s"), "{what}");
    app.stop().await;
}

#[tokio::test]
async fn another_logs_witness_does_not_vouch_for_this_one_r29() {
    let (other, _) = busy_app(3).await;
    let (mut app, _) = busy_app(3).await;
    app.stop_server().await;
    std::fs::copy(witness_path(&other), witness_path(&app)).unwrap();
    let (_, what) = verify_stopped(&app)
        .await
        .problem
        .expect("a witness signed by another key");
    assert!(what.contains("signed by another key"), "{what}");
    other.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn signed_heads_are_posted_to_the_witness_webhook_and_a_refusal_is_retried_r29() {
    use axum::extract::State;
    use axum::http::StatusCode;
    use std::sync::{Arc, Mutex};
    type Calls = Arc<Mutex<Vec<Value>>>;
    let calls: Calls = Arc::default();
    let router = axum::Router::new()
        .route(
            "/witness",
            axum::routing::post(
                |State(calls): State<Calls>, axum::Json(v): axum::Json<Value>| async move {
                    let mut calls = calls.lock().unwrap();
                    calls.push(v);
                    if calls.len() == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/witness", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let app = spawn_app_with(|c| c.audit.witness_webhook = Some(url)).await;
    let (app, _) = busy_app_on(app, 3).await;
    app.eventually("the first post", || async {
        (!calls.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    // The refusal blocked nothing; the next head is posted.
    let (app, _) = busy_app_on(app, 2).await;
    let posted = app
        .eventually("the newest head posted", || async {
            calls
                .lock()
                .unwrap()
                .iter()
                .find(|v| v["size"] == 5)
                .cloned()
        })
        .await;
    let posted: tutela_app::witness::WitnessHead = serde_json::from_value(posted).unwrap();
    let (sth, key) = posted.decode().unwrap();
    assert_eq!(key, app.state.audit.public_key());
    assert!(sth.verify(&key));
    assert_eq!(witness_lines(&app).last(), Some(&posted));
    app.stop().await;
}

#[tokio::test]
async fn a_witness_inside_the_data_directory_is_a_startup_error_r29() {
    let err = startup_error(|c, _| {
        c.audit.witness_file = Some(c.data_dir.join("audit.heads"));
    })
    .await;
    assert!(err.contains("audit.witness_file"), "{err}");
    assert!(err.contains("inside the data directory"), "{err}");
    let err = startup_error(|c, dir| {
        c.audit.witness_file = Some(dir.join("witness/audit.heads"));
        c.audit.witness_webhook = Some("ftp://witness.example.cn/heads".into());
    })
    .await;
    assert!(
        err.contains("audit.witness_webhook must be an http"),
        "{err}"
    );
}
