//! Fulfilment through HTTP (issue 6; R19, R33, R34, R35): deletion with crypto-shredding
//! and legal holds, propagation to recipients through the durable outbox (a real HTTP
//! receiver; one recipient failing twice), acknowledgements, a restart mid-propagation,
//! one-time identity codes, and every request type end to end.

use crate::helpers::*;
use crate::receiver::{Behaviour, Receiver};
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Region, Role, SubjectId, TenantId};
use tutela_crypto::webhook::WebhookSecret;

const PLANTED_NAME: &str = "欧阳娜娜";
const PLANTED_EMAIL: &str = "ouyang.planted@example.cn";
const PLANTED_CARD: &str = "4111111111111111";

struct World {
    app: TestApp,
    tenant: TenantId,
    subject: SubjectId,
    admin: String,
    officer: String,
    operator: String,
    service: String,
}

async fn world(app: TestApp) -> World {
    let (tenant, subject, admin) = app.tenant_with_admin("Erase Co").await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let operator = app.operator().await;
    let service = app.service_all().await;
    World {
        app,
        tenant,
        subject,
        admin,
        officer,
        operator,
        service,
    }
}

/// The outbox polls fast and retries after a second, doubling, so tests move the clock
/// a little instead of waiting.
async fn fast_outbox() -> TestApp {
    spawn_app_with(|c| {
        c.outbox.poll_ms = 20;
        c.outbox.backoff_base_secs = 1;
        c.outbox.backoff_max_secs = 60;
    })
    .await
}

impl World {
    async fn put(&self, token: &str, category: &str, body: Value) {
        let r = self
            .app
            .request(
                Method::PUT,
                &format!("/v1/subjects/{}/records/{category}", self.subject),
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    async fn store_everything(&self) {
        self.put(&self.admin, "administrator", json!({"purpose": "account_admin", "service": "azure", "fields": {"name": PLANTED_NAME, "email": PLANTED_EMAIL, "phone": "13912345678"}})).await;
        self.put(&self.service, "payment", json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": PLANTED_CARD, "holder_name": PLANTED_NAME}})).await;
        self.put(&self.admin, "support", json!({"purpose": "support", "service": "azure", "fields": {"description": format!("{PLANTED_NAME} cannot log in")}})).await;
    }

    /// Registers a recipient with a webhook at `receiver`'s `name`; returns (id, secret).
    async fn recipient(&self, receiver: &Receiver, name: &str, body: Value) -> (String, String) {
        let mut body = body;
        body["webhook_url"] = json!(receiver.url(name));
        let r = self.app.post("/v1/recipients", &self.operator, body).await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        let secret = v["webhook_secret"].as_str().unwrap().to_owned();
        assert_eq!(secret.len(), 64, "32 bytes, hex");
        receiver.set_secret(name, &secret);
        // Shown once: listing never shows it again.
        let list: Value = self
            .app
            .get("/v1/recipients", &self.operator)
            .await
            .json()
            .await
            .unwrap();
        assert!(list.to_string().find(&secret).is_none());
        (v["id"].as_str().unwrap().to_owned(), secret)
    }

    async fn act(&self, token: &str, id: &str, step: &str, body: Value) -> reqwest::Response {
        self.app
            .post(&format!("/v1/requests/{id}/{step}"), token, body)
            .await
    }

    async fn ok(&self, token: &str, id: &str, step: &str, body: Value) -> Value {
        let r = self.act(token, id, step, body).await;
        assert_eq!(r.status(), 200, "{step}: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    /// Files a request as the tenant admin and takes it to `identity_verified` through
    /// the officer's recorded verification.
    async fn verified(&self, kind: &str, extra: Value) -> String {
        let mut body = json!({"subject": self.subject.to_string(), "type": kind});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                body[k] = v;
            }
        }
        let r = self.app.post("/v1/requests", &self.admin, body).await;
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.ok(
            &self.officer,
            &id,
            "verify",
            json!({"method": "document", "evidence": "ticket-9"}),
        )
        .await;
        id
    }

    async fn request(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/requests/{id}"), &self.officer)
            .await
            .json()
            .await
            .unwrap()
    }

    async fn delivery(&self, id: &str, recipient: &str) -> Value {
        let v = self.request(id).await;
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["recipient"] == recipient)
            .cloned()
            .unwrap_or_else(|| panic!("no delivery for {recipient}: {v}"))
    }

    /// Moves the test clock on until `recipient`'s notice reaches `status`.
    async fn until_status(&self, id: &str, recipient: &str, status: &str) -> Value {
        self.app
            .eventually(&format!("{recipient} to be {status}"), || async {
                self.app.clock.advance(time::Duration::seconds(5));
                let d = self.delivery(id, recipient).await;
                (d["status"] == status).then_some(d)
            })
            .await
    }

    /// A recipient's acknowledgement, signed with its secret at the server's clock.
    async fn ack(&self, id: &str, recipient: &str, key: &str, secret: &str) -> reqwest::Response {
        let body = json!({"recipient": recipient, "idempotency_key": key}).to_string();
        let ts = self.app.clock_now().unix_timestamp();
        let sig = WebhookSecret::from_hex(secret)
            .unwrap()
            .sign(ts, body.as_bytes());
        self.app
            .client
            .post(format!("{}/v1/requests/{id}/acks", self.app.base))
            .header("content-type", "application/json")
            .header("tutela-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    fn clock_now(&self) -> time::OffsetDateTime {
        use tutela_core::Clock as _;
        self.clock.now()
    }
}

#[tokio::test]
async fn a_deletion_shreds_keeps_what_the_law_requires_frozen_and_reaches_every_recipient_r19_r33_r34(
) {
    let w = world(fast_outbox().await).await;
    let rx = Receiver::start().await;
    rx.set("cards", Behaviour::Accept);
    rx.set("helpdesk", Behaviour::FailThenAck(2));
    w.store_everything().await;
    // Card Network got payment data (transfer register); the helpdesk is configured
    // for support data; the affiliate has no webhook.
    let (cards, cards_secret) = w.recipient(&rx, "cards", json!({"name": "Card Network", "kind": "payment_processor", "country": "CN", "purposes": ["transaction"], "categories": ["payment"], "commitment_ref": "pci-1"})).await;
    let (helpdesk, _) = w.recipient(&rx, "helpdesk", json!({"name": "Helpdesk Ltd", "kind": "subprocessor", "country": "CN", "purposes": ["support"], "categories": ["support"], "commitment_ref": "dpa-1"})).await;
    let r = w.app.post("/v1/recipients", &w.operator, json!({"name": "Sister Co", "kind": "affiliate", "country": "CN", "purposes": ["account_admin"], "categories": ["administrator"], "commitment_ref": "ica-1"})).await;
    assert_eq!(r.status(), 201);
    let sister = r.json::<Value>().await.unwrap();
    assert!(sister.get("webhook_secret").is_none());
    let sister = sister["id"].as_str().unwrap().to_owned();
    let r = w.app.post("/v1/transfers", &w.service, json!({"subject": w.subject.to_string(), "recipient": cards, "categories": ["payment"], "purpose": "transaction"})).await;
    assert_eq!(r.status(), 201);
    let old_key = w
        .app
        .state
        .store
        .subject_key(&w.subject)
        .await
        .unwrap()
        .unwrap();

    let id = w.verified("delete", json!({})).await;
    // Not before the consequences are confirmed and the work started.
    let r = w.act(&w.officer, &id, "erase", json!({})).await;
    assert_error(r, 409, "request_state", Some("R33")).await;
    w.ok(&w.admin, &id, "confirm", json!({})).await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    assert_error(
        w.act(&w.admin, &id, "erase", json!({})).await,
        403,
        "forbidden",
        None,
    )
    .await;
    let v = w.ok(&w.officer, &id, "erase", json!({})).await;

    // What the law keeps: payment (E-Commerce Law), frozen for three years (R19).
    let frozen_until = time::OffsetDateTime::parse(
        v["erasure"]["frozen_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(frozen_until - T0, time::Duration::days(1095));
    assert!(v["erasure"]["ground"]
        .as_str()
        .unwrap()
        .contains("E-Commerce Law"));
    let deliveries = v["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{v}");
    assert_error(
        w.act(&w.officer, &id, "erase", json!({})).await,
        409,
        "already_erased",
        Some("R33"),
    )
    .await;

    // The old key is shredded; a new one protects only what is kept.
    let new_key = w
        .app
        .state
        .store
        .subject_key(&w.subject)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(old_key, new_key);
    let categories: Vec<String> = w
        .app
        .state
        .store
        .records_with_keys_of(&w.subject)
        .await
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.category.to_string())
        .collect();
    assert_eq!(categories, ["payment"]);
    // Frozen: no business use (423, R19); the officer may read it for a legal obligation,
    // re-sealed under the new key.
    let base = format!("/v1/subjects/{}/records", w.subject);
    assert_error(
        w.app
            .get(&format!("{base}/payment?purpose=transaction"), &w.service)
            .await,
        423,
        "frozen",
        Some("R19"),
    )
    .await;
    let r = w
        .app
        .get(
            &format!("{base}/payment?purpose=legal_obligation&legal_ref=CSL-21"),
            &w.officer,
        )
        .await;
    assert_eq!(r.status(), 200);
    // Opened under the new key (and masked on display, R12).
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["card_number"],
        "************1111"
    );
    assert_error(
        w.app
            .request(
                Method::PUT,
                &format!("{base}/administrator"),
                Some(&w.admin),
                Some(json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "x"}})),
            )
            .await,
        423,
        "frozen",
        Some("R19"),
    )
    .await;
    // Nothing more leaves for this subject.
    let r = w.app.post("/v1/transfers", &w.service, json!({"subject": w.subject.to_string(), "recipient": cards, "categories": ["payment"], "purpose": "transaction"})).await;
    assert_error(r, 423, "subject_erased", Some("R19")).await;

    // Cards accepts (202) without acknowledging; the helpdesk fails twice, then acks.
    let d = w.until_status(&id, &cards, "delivered").await;
    let cards_key = d["idempotency_key"].as_str().unwrap().to_owned();
    let d = w.until_status(&id, &helpdesk, "acknowledged").await;
    assert_eq!(d["attempts"], 3);
    let calls = rx.calls("helpdesk");
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c.signature_ok));
    assert!(calls
        .iter()
        .all(|c| c.idempotency_key == calls[0].idempotency_key));
    assert_eq!(rx.processed("helpdesk").len(), 1);
    // The notice carries ids and vocabulary only.
    let body = &calls[0].body;
    assert_eq!(body["type"], "deletion");
    assert_eq!(body["subject"], w.subject.to_string());
    assert_eq!(body["categories"], json!(["support"]));
    assert_eq!(body["idempotency_key"], calls[0].idempotency_key);
    for c in rx.calls("cards").iter().chain(&calls) {
        let text = c.body.to_string();
        assert!(!text.contains(PLANTED_NAME) && !text.contains(PLANTED_EMAIL));
    }
    assert_eq!(
        w.delivery(&id, &sister).await["status"],
        "manual",
        "no webhook: the officer settles it"
    );

    // Not complete while anyone has not acknowledged (R34).
    let r = w
        .act(&w.officer, &id, "complete", json!({"response": "deleted"}))
        .await;
    let e = assert_error(r, 409, "awaiting_acknowledgements", Some("R34")).await;
    assert!(e["error"]["message"].as_str().unwrap().contains(&cards));

    // Cards acknowledges through the API, signed. A forged or misdirected ack is refused.
    let forged = "00".repeat(32);
    assert_error(
        w.ack(&id, &cards, &cards_key, &forged).await,
        403,
        "invalid_signature",
        Some("R34"),
    )
    .await;
    assert_error(
        w.ack(&id, &helpdesk, &cards_key, &cards_secret).await,
        404,
        "not_found",
        None,
    )
    .await;
    // The operator rotates the recipient's secret: the old one stops working.
    assert_error(
        w.app
            .post(
                &format!("/v1/recipients/{cards}/webhook-secret"),
                &w.service,
                json!({}),
            )
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    assert_error(
        w.app
            .post(
                &format!("/v1/recipients/{sister}/webhook-secret"),
                &w.operator,
                json!({}),
            )
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    let r = w
        .app
        .post(
            &format!("/v1/recipients/{cards}/webhook-secret"),
            &w.operator,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let rotated = r.json::<Value>().await.unwrap()["webhook_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, cards_secret);
    assert_error(
        w.ack(&id, &cards, &cards_key, &cards_secret).await,
        403,
        "invalid_signature",
        Some("R34"),
    )
    .await;
    let r = w.ack(&id, &cards, &cards_key, &rotated).await;
    assert_eq!(r.status(), 200);
    assert_eq!(w.delivery(&id, &cards).await["status"], "acknowledged");
    // Acknowledging twice is harmless.
    assert_eq!(w.ack(&id, &cards, &cards_key, &rotated).await.status(), 200);

    // The officer records why the affiliate cannot acknowledge by webhook.
    assert_error(
        w.act(
            &w.officer,
            &id,
            &format!("deliveries/{sister}/waive"),
            json!({"reason": " "}),
        )
        .await,
        422,
        "invalid_text",
        None,
    )
    .await;
    const WAIVER: &str = "confirmed by signed letter ref L-2026-11 from Plantedwaiver Ouyang";
    let v = w
        .ok(
            &w.officer,
            &id,
            &format!("deliveries/{sister}/waive"),
            json!({"reason": WAIVER}),
        )
        .await;
    assert!(v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "acknowledged" || d["status"] == "waived"));
    // The officer's free text is shown to who may see the request, sealed at rest (R29).
    assert!(
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["waived_reason"] == WAIVER),
        "{v}"
    );
    let stored = w.app.state.store.deliveries_of(&id).await.unwrap();
    assert!(stored
        .iter()
        .all(|d| d.waived_reason.is_none() && !format!("{d:?}").contains("Plantedwaiver")));
    if !backend_is_postgres() {
        let hits = crate::helpers::grep_dir(w.app.data_dir.path(), b"Plantedwaiver");
        assert!(hits.is_empty(), "waiver reason in clear in {hits:?}");
    }
    let v = w
        .ok(
            &w.officer,
            &id,
            "complete",
            json!({"response": "deleted; payment records kept frozen as the law requires"}),
        )
        .await;
    assert_eq!(v["status"], "completed");

    // The audit trail names every step by id, never a value.
    let entries = w
        .app
        .state
        .store
        .audit_for_subject(w.subject.as_str())
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "erase_subject",
        "erase_category",
        "freeze_category",
        "deletion_notice_queued",
        "deletion_notice_attempt",
        "deletion_acknowledged",
        "deletion_notice_waived",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let dump = format!("{entries:?}");
    assert!(
        !dump.contains(PLANTED_NAME)
            && !dump.contains(PLANTED_EMAIL)
            && !dump.contains(PLANTED_CARD)
    );
    w.app.stop().await;
}

#[tokio::test]
async fn a_restart_mid_propagation_loses_nothing_and_sends_nothing_twice_r34() {
    let w = world(fast_outbox().await).await;
    let rx = Receiver::start().await;
    rx.set("fast", Behaviour::Ack);
    rx.set("down", Behaviour::FailThenAck(u32::MAX));
    w.store_everything().await;
    let (fast, _) = w.recipient(&rx, "fast", json!({"name": "Card Network", "kind": "payment_processor", "country": "CN", "purposes": ["transaction"], "categories": ["payment"], "commitment_ref": "pci-1"})).await;
    let (down, _) = w.recipient(&rx, "down", json!({"name": "Helpdesk Ltd", "kind": "subprocessor", "country": "CN", "purposes": ["support"], "categories": ["support"], "commitment_ref": "dpa-1"})).await;
    let id = w.verified("delete", json!({})).await;
    w.ok(&w.admin, &id, "confirm", json!({})).await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    w.ok(&w.officer, &id, "erase", json!({})).await;
    w.until_status(&id, &fast, "acknowledged").await;
    let failing = w
        .app
        .eventually("two failed attempts", || async {
            w.app.clock.advance(time::Duration::seconds(5));
            let d = w.delivery(&id, &down).await;
            (d["attempts"].as_u64().unwrap() >= 2).then_some(d)
        })
        .await;
    assert_eq!(failing["status"], "pending");
    assert_eq!(failing["last_error"], "http_503");

    // Restart: the outbox is in the database, so the retry resumes.
    let (tenant, subject, admin, officer, operator, service) = (
        w.tenant.clone(),
        w.subject.clone(),
        w.admin.clone(),
        w.officer.clone(),
        w.operator.clone(),
        w.service.clone(),
    );
    let app = w.app.restart().await;
    let w = World {
        app,
        tenant,
        subject,
        admin,
        officer,
        operator,
        service,
    };
    let after = w.delivery(&id, &down).await;
    assert_eq!(after["status"], "pending");
    assert!(after["attempts"].as_u64().unwrap() >= failing["attempts"].as_u64().unwrap());
    rx.set("down", Behaviour::Ack);
    w.until_status(&id, &down, "acknowledged").await;
    // Give the sender a few more rounds: nothing acknowledged is sent again.
    for _ in 0..10 {
        w.app.clock.advance(time::Duration::seconds(60));
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert_eq!(
        rx.calls("fast").len(),
        1,
        "an acknowledged notice is never resent"
    );
    let down_calls = rx.calls("down");
    assert!(down_calls
        .iter()
        .all(|c| c.idempotency_key == down_calls[0].idempotency_key));
    assert_eq!(rx.processed("fast").len(), 1);
    assert_eq!(
        rx.processed("down").len(),
        1,
        "processed once, however often sent"
    );
    let v = w
        .ok(&w.officer, &id, "complete", json!({"response": "deleted"}))
        .await;
    assert_eq!(v["status"], "completed");
    w.app.stop().await;
}

async fn code_of(w: &World, message: &str) -> String {
    let r = w
        .app
        .get(&format!("/v1/messages/{message}"), &w.service)
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["template"], "identity-code");
    v["params"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_one_time_code_through_the_send_gate_verifies_the_requester_r35() {
    let w = world(spawn_app().await).await;
    let r = w
        .app
        .post(
            "/v1/requests",
            &w.admin,
            json!({"subject": w.subject.to_string(), "type": "access"}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(
        w.act(&w.admin, &id, "identity-code", json!({"channel": "pigeon"}))
            .await,
        422,
        "invalid_channel",
        None,
    )
    .await;
    let r = w
        .act(&w.admin, &id, "identity-code", json!({"channel": "email"}))
        .await;
    assert_eq!(r.status(), 201);
    let sent: Value = r.json().await.unwrap();
    assert!(
        sent.get("code").is_none(),
        "the code is never in the answer"
    );
    let message = sent["message"].as_str().unwrap().to_owned();
    // Only the delivery system reads the code.
    assert_error(
        w.app
            .get(&format!("/v1/messages/{message}"), &w.admin)
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    let code = code_of(&w, &message).await;
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = w
        .act(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": wrong}),
        )
        .await;
    let e = assert_error(r, 422, "wrong_identity_code", Some("R35")).await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("4 attempt"));
    // Someone other than the requester cannot present it.
    let stranger = w.app.token(Role::Service, None, None, Region::Cn).await;
    assert_eq!(
        w.act(
            &stranger,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": code})
        )
        .await
        .status(),
        404
    );
    let v = w
        .ok(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": code}),
        )
        .await;
    assert_eq!(v["status"], "identity_verified");
    assert_eq!(v["verification_method"], "one_time_code");
    // Used: the same code does not verify twice.
    assert_error(
        w.act(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": code}),
        )
        .await,
        409,
        "request_state",
        Some("R35"),
    )
    .await;
    let dump = format!(
        "{:?}",
        w.app
            .state
            .store
            .audit_for_subject(w.subject.as_str())
            .await
            .unwrap()
    );
    assert!(!dump.contains(&format!("\"{code}\"")));

    // Expiry and exhaustion.
    let r = w
        .app
        .post(
            "/v1/requests",
            &w.admin,
            json!({"subject": w.subject.to_string(), "type": "complaint"}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = w
        .act(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": "123456"}),
        )
        .await;
    assert_error(r, 409, "no_identity_code", Some("R35")).await;
    let sent: Value = w
        .act(&w.admin, &id, "identity-code", json!({"channel": "sms"}))
        .await
        .json()
        .await
        .unwrap();
    let code = code_of(&w, sent["message"].as_str().unwrap()).await;
    w.app.clock.advance(time::Duration::minutes(11));
    let r = w
        .act(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": code}),
        )
        .await;
    assert_error(r, 410, "identity_code_expired", None).await;
    let sent: Value = w
        .act(&w.admin, &id, "identity-code", json!({"channel": "email"}))
        .await
        .json()
        .await
        .unwrap();
    let code = code_of(&w, sent["message"].as_str().unwrap()).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        let r = w
            .act(
                &w.admin,
                &id,
                "verify",
                json!({"method": "one_time_code", "code": wrong}),
            )
            .await;
        assert_eq!(r.status(), 422);
    }
    let r = w
        .act(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": wrong}),
        )
        .await;
    assert_error(r, 409, "identity_code_exhausted", Some("R35")).await;
    // Exhausted: even the right code no longer works; a new one must be sent.
    let r = w
        .act(
            &w.admin,
            &id,
            "verify",
            json!({"method": "one_time_code", "code": code}),
        )
        .await;
    assert_error(r, 409, "no_identity_code", Some("R35")).await;
    w.app.stop().await;
}

#[tokio::test]
async fn every_request_type_runs_end_to_end_r19_r32_r33_r35_r45() {
    let w = world(spawn_app().await).await;
    w.store_everything().await;
    let admin_path = format!("/v1/subjects/{}/records/administrator", w.subject);

    // Correct: the officer applies the correction, then answers.
    let id = w
        .verified(
            "correct",
            json!({"categories": ["administrator"], "details": "new e-mail"}),
        )
        .await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    w.put(&w.admin, "administrator", json!({"purpose": "account_admin", "service": "azure", "fields": {"name": PLANTED_NAME, "email": "new.address@example.cn"}})).await;
    let v = w
        .ok(
            &w.officer,
            &id,
            "complete",
            json!({"response": "corrected"}),
        )
        .await;
    assert_eq!(v["status"], "completed");
    let r = w
        .app
        .get(&format!("{admin_path}?purpose=account_admin"), &w.admin)
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["email"],
        "new.address@example.cn"
    );

    // Restrict: the authorization is narrowed (a consent withdrawn), after confirmation.
    let consent = |granted: bool| json!({"purpose": "research", "granted": granted, "statement_version": "2.0", "channel": "portal", "evidence": {"method": "signed_form", "reference": "scan-1"}});
    let consents = format!("/v1/subjects/{}/consents", w.subject);
    assert_eq!(
        w.app
            .post(&consents, &w.admin, consent(true))
            .await
            .status(),
        201
    );
    let research = format!("{admin_path}?purpose=research");
    assert_eq!(w.app.get(&research, &w.admin).await.status(), 200);
    let id = w
        .verified("restrict", json!({"details": "stop research use"}))
        .await;
    assert_error(
        w.act(&w.officer, &id, "start", json!({})).await,
        409,
        "request_state",
        Some("R33"),
    )
    .await;
    w.ok(&w.admin, &id, "confirm", json!({})).await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    assert_eq!(
        w.app
            .post(&consents, &w.admin, consent(false))
            .await
            .status(),
        201
    );
    w.ok(
        &w.officer,
        &id,
        "complete",
        json!({"response": "research use withdrawn"}),
    )
    .await;
    assert_error(
        w.app.get(&research, &w.admin).await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;

    // Complaint (R45) and account closure run the same verified, answered workflow.
    let id = w
        .verified("complaint", json!({"details": "slow answer"}))
        .await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    let v = w
        .ok(
            &w.officer,
            &id,
            "complete",
            json!({"response": "apologies; fixed"}),
        )
        .await;
    assert_eq!(v["notes"]["response"], "apologies; fixed");

    // A delete request cannot complete before the data is erased (R33).
    let id = w.verified("delete", json!({})).await;
    w.ok(&w.admin, &id, "confirm", json!({})).await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    let r = w
        .act(&w.officer, &id, "complete", json!({"response": "done"}))
        .await;
    assert_error(r, 409, "not_erased", Some("R33")).await;
    // With no recipient at all, erasure completes at once; the access export afterwards
    // shows only what the law keeps.
    let v = w.ok(&w.officer, &id, "erase", json!({})).await;
    assert!(v.get("deliveries").is_none());
    w.ok(&w.officer, &id, "complete", json!({"response": "done"}))
        .await;
    let r = w
        .app
        .get(
            &format!("{admin_path}?purpose=legal_obligation&legal_ref=CSL-21"),
            &w.officer,
        )
        .await;
    assert_eq!(r.status(), 404);

    // An administrator's account closure completes only once the tenant's account is
    // closed (R19): the answer never says "closed" while the data is still in use.
    let id = w.verified("close_account", json!({})).await;
    w.ok(&w.admin, &id, "confirm", json!({})).await;
    w.ok(&w.officer, &id, "start", json!({})).await;
    let r = w
        .act(&w.officer, &id, "complete", json!({"response": "closed"}))
        .await;
    assert_error(r, 409, "account_not_closed", Some("R19")).await;
    let r = w
        .app
        .post(
            &format!("/v1/tenants/{}/close", w.tenant),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        w.ok(&w.officer, &id, "complete", json!({"response": "closed"}))
            .await["status"],
        "completed"
    );
    w.app.stop().await;
}
