//! Account lifecycle and retention through HTTP (issue 7; R19, R20, R41): closing freezes,
//! categories fall due one by one, the last period erases the tenant, anonymization
//! leaves only aggregates, trials expire, terminated services lose their data, legal
//! holds end, and two replicas on one PostgreSQL database never process a subject twice.

use crate::helpers::*;
use crate::receiver::{Behaviour, Receiver};
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Region, Role, SubjectId, TenantId};

const NAME: &str = "司马相如";
const EMAIL: &str = "sima.planted@example.cn";
const CARD: &str = "4111111111111111";

struct World {
    app: TestApp,
    tenant: TenantId,
    subject: SubjectId,
    admin: String,
    operator: String,
    officer: String,
    service: String,
}

async fn world(app: TestApp, trial_days: Option<u32>) -> World {
    let operator = app.operator().await;
    let body = match trial_days {
        Some(d) => {
            json!({"name": "Lifecycle Co", "kind": "enterprise", "trial": true, "trial_days": d})
        }
        None => json!({"name": "Lifecycle Co", "kind": "enterprise"}),
    };
    let r = app.post("/v1/tenants", &operator, body).await;
    assert_eq!(r.status(), 201);
    let tenant = TenantId::parse(r.json::<Value>().await.unwrap()["id"].as_str().unwrap()).unwrap();
    let subject = app
        .create_subject(&tenant, json!({"kind": "administrator"}))
        .await;
    let admin = app
        .token(Role::TenantAdmin, Some(&tenant), None, Region::Cn)
        .await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let service = app.service_all().await;
    World {
        app,
        tenant,
        subject,
        admin,
        operator,
        officer,
        service,
    }
}

impl World {
    fn path(&self, category: &str) -> String {
        format!("/v1/subjects/{}/records/{category}", self.subject)
    }

    async fn put(&self, token: &str, category: &str, body: Value) -> reqwest::Response {
        self.app
            .request(Method::PUT, &self.path(category), Some(token), Some(body))
            .await
    }

    async fn store_everything(&self, service: &str) {
        for (token, category, body) in [
            (
                &self.admin,
                "administrator",
                json!({"purpose": "account_admin", "service": service, "fields": {"name": NAME, "email": EMAIL}}),
            ),
            (
                &self.service,
                "payment",
                json!({"purpose": "transaction", "service": service, "fields": {"card_number": CARD, "holder_name": NAME}}),
            ),
            (
                &self.admin,
                "support",
                json!({"purpose": "support", "service": service, "fields": {"description": format!("{NAME} reports a fault")}}),
            ),
        ] {
            let r = self.put(token, category, body).await;
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
    }

    async fn run(&self, dry: bool) -> Value {
        let path = if dry {
            "/v1/retention/run?dry_run=true"
        } else {
            "/v1/retention/run"
        };
        let r = self.app.post(path, &self.operator, json!({})).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn tenant(&self) -> Value {
        self.app
            .get(&format!("/v1/tenants/{}", self.tenant), &self.operator)
            .await
            .json()
            .await
            .unwrap()
    }

    async fn categories(&self) -> Vec<String> {
        self.app
            .state
            .store
            .records_with_keys_of(&self.subject)
            .await
            .unwrap()
            .into_iter()
            .map(|(r, _)| r.category.to_string())
            .collect()
    }

    fn advance_days(&self, days: i64) {
        self.app.clock.advance(time::Duration::days(days));
    }
}

#[tokio::test]
async fn a_closed_account_is_frozen_then_each_category_goes_when_its_period_ends_r19() {
    let w = world(spawn_app().await, None).await;
    let rx = Receiver::start().await;
    w.store_everything("azure").await;
    // A helpdesk that got support data hears of its removal.
    let r = w.app.post("/v1/recipients", &w.operator, json!({"name": "Helpdesk", "kind": "subprocessor", "country": "CN", "purposes": ["support"], "categories": ["support"], "commitment_ref": "dpa-1", "webhook_url": rx.url("helpdesk")})).await;
    let v: Value = r.json().await.unwrap();
    rx.set_secret("helpdesk", v["webhook_secret"].as_str().unwrap());
    rx.set("helpdesk", Behaviour::Ack);

    // Only the operator or that tenant's admin closes it.
    let other_admin = w
        .app
        .token(
            Role::TenantAdmin,
            Some(&w.app.create_tenant("Other").await),
            None,
            Region::Cn,
        )
        .await;
    assert_eq!(
        w.app
            .post(
                &format!("/v1/tenants/{}/close", w.tenant),
                &other_admin,
                json!({})
            )
            .await
            .status(),
        404
    );
    assert_error(
        w.app
            .post(
                &format!("/v1/tenants/{}/close", w.tenant),
                &w.service,
                json!({}),
            )
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    let r = w
        .app
        .post(
            &format!("/v1/tenants/{}/close", w.tenant),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["state"], "closed");
    let frozen_until = time::OffsetDateTime::parse(
        t["frozen_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(frozen_until - T0, time::Duration::days(1095));
    assert_error(
        w.app
            .post(
                &format!("/v1/tenants/{}/close", w.tenant),
                &w.admin,
                json!({}),
            )
            .await,
        409,
        "tenant_state",
        Some("R19"),
    )
    .await;

    // Frozen means frozen: business reads and writes get 423 citing R19.
    assert_error(
        w.app
            .get(
                &format!("{}?purpose=account_admin", w.path("administrator")),
                &w.admin,
            )
            .await,
        423,
        "frozen",
        Some("R19"),
    )
    .await;
    assert_error(
        w.put(
            &w.admin,
            "administrator",
            json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "x"}}),
        )
        .await,
        423,
        "frozen",
        Some("R19"),
    )
    .await;
    assert_error(
        w.app
            .get(
                &format!("{}?purpose=transaction", w.path("payment")),
                &w.service,
            )
            .await,
        423,
        "frozen",
        Some("R19"),
    )
    .await;
    // Only a legal obligation, by the privacy officer, is served, and it is audited.
    let r = w
        .app
        .get(
            &format!(
                "{}?purpose=legal_obligation&legal_ref=CSL-21",
                w.path("administrator")
            ),
            &w.officer,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_error(
        w.app
            .get(
                &format!("{}?purpose=legal_obligation", w.path("administrator")),
                &w.admin,
            )
            .await,
        423,
        "frozen",
        Some("R19"),
    )
    .await;
    let audit = w
        .app
        .state
        .store
        .audit_for_subject(w.subject.as_str())
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.purpose.as_deref() == Some("legal_obligation")
            && e.role == "privacy_officer"
            && e.decision == "allow"));

    // Nothing is due yet.
    let s = w.run(false).await;
    assert_eq!(s["subjects_due"], 0);

    // After 180 days: support (and other 180-day categories) go; the rest stays frozen,
    // re-sealed under a fresh key so backups of what went are unreadable.
    let key_before = w
        .app
        .state
        .store
        .subject_key(&w.subject)
        .await
        .unwrap()
        .unwrap();
    w.advance_days(180);
    let dry = w.run(true).await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["subjects_due"], 1);
    assert!(
        dry["plan"][0]["action"]
            .as_str()
            .unwrap()
            .contains("support"),
        "{dry}"
    );
    assert_eq!(w.categories().await.len(), 3, "a dry run changes nothing");
    let s = w.run(false).await;
    assert_eq!(
        (
            s["subjects_rekeyed"].as_u64(),
            s["records_deleted"].as_u64()
        ),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(w.categories().await, ["administrator", "payment"]);
    assert_ne!(
        w.app
            .state
            .store
            .subject_key(&w.subject)
            .await
            .unwrap()
            .unwrap(),
        key_before
    );
    let r = w
        .app
        .get(
            &format!(
                "{}?purpose=legal_obligation&legal_ref=CSL-21",
                w.path("administrator")
            ),
            &w.officer,
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"]["email"],
        EMAIL,
        "kept data still opens under the new key"
    );
    // The helpdesk is told (signed, acknowledged).
    let calls = w
        .app
        .eventually("the helpdesk notice", || async {
            let c = rx.calls("helpdesk");
            (!c.is_empty()).then_some(c)
        })
        .await;
    assert!(calls[0].signature_ok);
    assert_eq!(calls[0].body["subjects"], json!([w.subject.to_string()]));
    assert_eq!(
        w.run(false).await["subjects_due"],
        0,
        "idempotent: nothing left for 180 days"
    );

    // After three years everything is due: the subject is erased, payment anonymized
    // into aggregates, and the tenant erased.
    w.advance_days(1095 - 180);
    let s = w.run(false).await;
    assert_eq!(
        (
            s["subjects_erased"].as_u64(),
            s["records_anonymized"].as_u64(),
            s["tenants_erased"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{s}"
    );
    assert!(w.categories().await.is_empty());
    assert!(
        w.app
            .state
            .store
            .subject_key(&w.subject)
            .await
            .unwrap()
            .is_none(),
        "key shredded"
    );
    assert_eq!(w.tenant().await["state"], "erased");
    let aggregates = w.app.state.store.anonymized_aggregates().await.unwrap();
    assert!(
        aggregates
            .iter()
            .any(|a| a.0 == "payment" && a.3 == "card_brand" && a.4 == "visa" && a.5 == 1),
        "{aggregates:?}"
    );
    let dump = format!("{aggregates:?}");
    for planted in [
        NAME,
        EMAIL,
        CARD,
        "1111",
        &w.subject.to_string(),
        &w.tenant.to_string(),
    ] {
        assert!(!dump.contains(planted), "{planted} survived anonymization");
    }
    assert_error(
        w.app
            .get(
                &format!(
                    "{}?purpose=legal_obligation&legal_ref=CSL-21",
                    w.path("payment")
                ),
                &w.officer,
            )
            .await,
        403,
        "erased",
        Some("R19"),
    )
    .await;
    w.app.stop().await;
}

#[tokio::test]
async fn a_trial_expires_and_its_data_is_deleted_after_the_grace_period_r41() {
    let w = world(spawn_app().await, Some(10)).await;
    let t = w.tenant().await;
    assert_eq!(t["state"], "trial");
    assert!(t["trial_ends_at"].is_string());
    w.store_everything("azure").await;
    assert_error(
        w.app
            .post(
                "/v1/tenants",
                &w.operator,
                json!({"name": "X", "kind": "enterprise", "trial_days": 5}),
            )
            .await,
        422,
        "invalid_trial_days",
        None,
    )
    .await;
    w.advance_days(10);
    let s = w.run(false).await;
    assert_eq!(s["trials_expired"], 1);
    assert_eq!(w.tenant().await["state"], "expired");
    assert_error(
        w.app
            .get(
                &format!("{}?purpose=account_admin", w.path("administrator")),
                &w.admin,
            )
            .await,
        403,
        "trial_expired",
        Some("R41"),
    )
    .await;
    // Kept for 30 days after the trial, then deleted (the trial's action), all of it.
    w.advance_days(29);
    assert_eq!(w.run(false).await["subjects_erased"], 0);
    w.advance_days(1);
    let s = w.run(false).await;
    assert_eq!(
        (
            s["subjects_erased"].as_u64(),
            s["records_deleted"].as_u64(),
            s["records_anonymized"].as_u64()
        ),
        (Some(1), Some(3), Some(0)),
        "{s}"
    );
    assert!(w.categories().await.is_empty());
    assert_eq!(w.tenant().await["state"], "erased");
    // A trial that was bought keeps its data.
    let w2 = world(spawn_app().await, Some(10)).await;
    w2.store_everything("azure").await;
    let r = w2
        .app
        .post(
            &format!("/v1/tenants/{}/activate", w2.tenant),
            &w2.operator,
            json!({}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "active");
    w2.advance_days(100);
    assert_eq!(w2.run(false).await["trials_expired"], 0);
    assert_eq!(w2.categories().await.len(), 3);
    w.app.stop().await;
    w2.app.stop().await;
}

#[tokio::test]
async fn a_terminated_service_is_announced_then_its_data_removed_after_the_effective_date_r20() {
    let w = world(spawn_app().await, None).await;
    w.store_everything("azure").await;
    // Another tenant uses a different service only.
    let other = w.app.create_tenant("Unaffected Co").await;
    let other_subject = w
        .app
        .create_subject(&other, json!({"kind": "administrator"}))
        .await;
    let other_admin = w
        .app
        .token(Role::TenantAdmin, Some(&other), None, Region::Cn)
        .await;
    let r = w.app.request(Method::PUT, &format!("/v1/subjects/{other_subject}/records/administrator"), Some(&other_admin), Some(json!({"purpose": "account_admin", "service": "office365", "fields": {"name": "x"}}))).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let terminate = |body: Value| {
        w.app
            .post("/v1/services/azure/terminate", &w.operator, body)
    };
    assert_error(
        terminate(json!({"effective_at": "2026-01-01T00:00:00Z"})).await,
        422,
        "effective_in_past",
        Some("R20"),
    )
    .await;
    assert_error(
        w.app
            .post(
                "/v1/services/nope/terminate",
                &w.operator,
                json!({"effective_at": "2027-01-01T00:00:00Z"}),
            )
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_error(
        w.app
            .post(
                "/v1/services/azure/terminate",
                &w.admin,
                json!({"effective_at": "2027-01-01T00:00:00Z"}),
            )
            .await,
        403,
        "forbidden",
        None,
    )
    .await;
    let r = terminate(json!({"effective_at": "2026-12-28T09:00:00Z"})).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["tenants_notified"].as_u64(), v["notices"].as_u64()),
        (Some(1), Some(1))
    );
    assert_error(
        terminate(json!({"effective_at": "2026-12-28T09:00:00Z"})).await,
        409,
        "already_terminated",
        Some("R20"),
    )
    .await;
    // The portal announcement and the e-mail to the administrator.
    let ann: Value = w
        .app
        .get(&format!("/v1/tenants/{}/announcements", w.tenant), &w.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ann[0]["about"], "azure");
    let none: Value = w
        .app
        .get(&format!("/v1/tenants/{other}/announcements"), &other_admin)
        .await
        .json()
        .await
        .unwrap();
    assert!(none.as_array().unwrap().is_empty());
    let messages = w.app.state.store.messages_of(&w.subject).await.unwrap();
    assert!(messages
        .iter()
        .any(|m| m.template == "service-termination" && m.status == "queued"));

    // Before the effective date nothing happens; after it, the service's records go.
    assert_eq!(w.run(false).await["subjects_due"], 0);
    w.advance_days(31);
    let s = w.run(false).await;
    assert_eq!(s["services_finished"], 1, "{s}");
    assert!(w.categories().await.is_empty());
    let kept = w
        .app
        .state
        .store
        .records_with_keys_of(&other_subject)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "other services' data stays");
    // The person is not erased: only the service's data went (key shredded with it),
    // and data for another service can be stored again, under a new key.
    let subject = w
        .app
        .state
        .store
        .subject(&w.subject)
        .await
        .unwrap()
        .unwrap();
    assert!(subject.erased_at.is_none());
    assert!(w
        .app
        .state
        .store
        .subject_key(&w.subject)
        .await
        .unwrap()
        .is_none());
    let r = w
        .put(
            &w.admin,
            "administrator",
            json!({"purpose": "account_admin", "service": "office365", "fields": {"name": "x"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    w.app.stop().await;
}

#[tokio::test]
async fn what_a_deletion_kept_for_the_law_goes_when_the_hold_ends_r19_r33() {
    let w = world(spawn_app().await, None).await;
    w.store_everything("azure").await;
    let r = w
        .app
        .post(
            "/v1/requests",
            &w.admin,
            json!({"subject": w.subject.to_string(), "type": "delete"}),
        )
        .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (token, step, body) in [
        (
            &w.officer,
            "verify",
            json!({"method": "document", "evidence": "t-1"}),
        ),
        (&w.admin, "confirm", json!({})),
        (&w.officer, "start", json!({})),
        (&w.officer, "erase", json!({})),
    ] {
        let r = w
            .app
            .post(&format!("/v1/requests/{id}/{step}"), token, body)
            .await;
        assert_eq!(r.status(), 200, "{step}");
    }
    assert_eq!(w.categories().await, ["payment"]);
    w.advance_days(1094);
    assert_eq!(w.run(false).await["subjects_due"], 0);
    w.advance_days(1);
    let s = w.run(false).await;
    assert_eq!(
        (
            s["subjects_erased"].as_u64(),
            s["records_anonymized"].as_u64()
        ),
        (Some(1), Some(1)),
        "{s}"
    );
    assert!(w.categories().await.is_empty());
    let subject = w
        .app
        .state
        .store
        .subject(&w.subject)
        .await
        .unwrap()
        .unwrap();
    assert!(subject.frozen_until.is_none() && subject.erased_at.is_some());
    w.app.stop().await;
}

#[tokio::test]
async fn two_replicas_on_one_postgresql_database_never_process_a_subject_twice() {
    if !backend_is_postgres() {
        return; // replicas share a PostgreSQL database; SQLite has one writer process
    }
    let a = spawn_app_with(|c| c.retention.batch = 25).await;
    let url = a.state.config.database_url.clone().unwrap();
    let key_file = a
        .state
        .config
        .master_key_location()
        .unwrap()
        .path()
        .to_owned();
    let audit_key = a.state.config.effective_audit_key_file();
    let b = spawn_app_with(move |c| {
        c.database_url = Some(url);
        c.crypto.key_file = Some(key_file);
        c.crypto.audit_key_file = Some(audit_key);
        c.retention.batch = 25;
    })
    .await;
    let w = world(a, None).await;
    // 400 more subjects with a support record each, imported in bulk.
    let mut ids = vec![w.subject.clone()];
    w.store_everything("azure").await;
    for i in 0..400 {
        let s = w
            .app
            .create_subject(&w.tenant, json!({"kind": "end_user"}))
            .await;
        let r = w.app.request(Method::PUT, &format!("/v1/subjects/{s}/records/support"), Some(&w.admin), Some(json!({"purpose": "support", "service": "azure", "fields": {"description": format!("case {i}")}}))).await;
        assert_eq!(r.status(), 200);
        ids.push(s);
    }
    let r = w
        .app
        .post(
            &format!("/v1/tenants/{}/close", w.tenant),
            &w.admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    w.app.clock.advance(time::Duration::days(1095));
    b.clock.advance(time::Duration::days(1095));
    let op_b = b.operator().await;
    let (ra, rb) = tokio::join!(
        w.app.post("/v1/retention/run", &w.operator, json!({})),
        b.post("/v1/retention/run", &op_b, json!({}))
    );
    let (sa, sb): (Value, Value) = (ra.json().await.unwrap(), rb.json().await.unwrap());
    let erased = |s: &Value| {
        s["subjects_erased"]
            .as_u64()
            .unwrap_or_else(|| panic!("{sa} {sb}"))
    };
    let total = erased(&sa) + erased(&sb);
    assert_eq!(total, 401, "{sa} {sb}");
    for id in &ids {
        let n = w
            .app
            .state
            .store
            .audit_for_subject(id.as_str())
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "retention_erase")
            .count();
        assert_eq!(n, 1, "{id} processed {n} times");
    }
    b.stop().await;
    w.app.stop().await;
}
