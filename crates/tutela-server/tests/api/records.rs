//! The vault through HTTP: purpose-checked reads and writes, field encryption, the audit
//! trail (R3, R4, R5, R7, R8, R11, R12, R29, R43).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use tutela_core::{Region, Role, SubjectId, TenantId};

struct World {
    app: TestApp,
    tenant: TenantId,
    subject: SubjectId,
    admin: String,
    service: String,
}

async fn world_with(app: TestApp) -> World {
    let (tenant, subject, admin) = app.tenant_with_admin("Vault Co").await;
    let service = app.service_all().await;
    World {
        app,
        tenant,
        subject,
        admin,
        service,
    }
}

async fn world() -> World {
    world_with(spawn_app().await).await
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

    async fn read(&self, token: &str, category: &str, purpose: &str) -> reqwest::Response {
        self.app
            .get(&format!("{}?purpose={purpose}", self.path(category)), token)
            .await
    }
}

fn admin_fields() -> Value {
    json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "张伟", "email": "zhang.wei.planted@example.cn", "phone": "13912345678"}})
}

#[tokio::test]
async fn write_then_read_for_a_declared_purpose_r8() {
    let w = world().await;
    let r = w.put(&w.admin, "administrator", admin_fields()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 1);
    let v: Value = w
        .read(&w.service, "administrator", "fraud_prevention")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["fields"]["email"], "zhang.wei.planted@example.cn");
    assert_eq!(v["fields"]["name"], "张伟");
    assert_eq!(v["clause"], "R8");
    let r = w.put(&w.admin, "administrator", admin_fields()).await;
    assert_eq!(r.json::<Value>().await.unwrap()["version"], 2);
    w.app.stop().await;
}

#[tokio::test]
async fn undeclared_and_prohibited_purposes_are_denied_with_the_clause_r4_r5_r11() {
    let w = world().await;
    w.put(&w.admin, "administrator", admin_fields()).await;
    assert_error(
        w.read(&w.service, "administrator", "research").await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;
    let r = w.put(&w.admin, "customer", json!({"purpose": "provide_service", "service": "azure", "fields": {"object_ref": "blob://x"}})).await;
    assert_eq!(r.status(), 200);
    assert_error(
        w.read(&w.service, "customer", "marketing").await,
        403,
        "purpose_prohibited",
        Some("R5"),
    )
    .await;
    assert_error(
        w.read(&w.service, "payment", "marketing").await,
        403,
        "purpose_prohibited",
        Some("R11"),
    )
    .await;
    assert_error(
        w.read(&w.service, "payment", "service_improvement").await,
        403,
        "purpose_not_declared",
        Some("R4"),
    )
    .await;
    assert_error(
        w.read(&w.service, "administrator", "nonsense").await,
        422,
        "invalid_purpose",
        Some("R4"),
    )
    .await;
    assert_error(
        w.app.get(&w.path("administrator"), &w.service).await,
        422,
        "purpose_required",
        Some("R4"),
    )
    .await;
    w.app.stop().await;
}

#[tokio::test]
async fn security_code_is_refused_and_cards_are_masked_r11_r12() {
    let w = world().await;
    let cvv = "7391";
    let r = w
        .put(&w.service, "payment", json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": "4111111111111111", "security_code": cvv}}))
        .await;
    assert_error(r, 422, "never_stored", Some("R12")).await;
    let r = w.put(&w.service, "payment", json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": "4111111111111112"}})).await;
    assert_error(r, 422, "invalid_card_number", Some("R11")).await;
    let r = w
        .put(&w.service, "payment", json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": "6011000990139424", "holder_name": "LI LEI"}}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = w
        .read(&w.service, "payment", "fraud_prevention")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["fields"]["card_number"], "************9424");
    let v: Value = w
        .read(&w.service, "payment", "transaction")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["fields"]["card_number"], "6011000990139424");
    w.app.stop().await;
}

#[tokio::test]
async fn invalid_writes_are_422_and_store_nothing_r1_r3() {
    let w = world().await;
    let cases = [
        (
            "administrator",
            json!({"purpose": "account_admin", "service": "azure", "fields": {"shoe_size": "42"}}),
            "undeclared_field",
            Some("R3"),
        ),
        (
            "administrator",
            json!({"purpose": "account_admin", "service": "xbox", "fields": {"name": "x"}}),
            "unknown_service",
            Some("R1"),
        ),
        (
            "health",
            json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "x"}}),
            "invalid_category",
            Some("R3"),
        ),
        (
            "administrator",
            json!({"purpose": "account_admin", "service": "azure", "fields": {}}),
            "no_fields",
            None,
        ),
        (
            "administrator",
            json!({"purpose": "account_admin", "service": "azure", "fields": {"name": 5}}),
            "invalid_body",
            None,
        ),
    ];
    for (category, body, code, clause) in cases {
        assert_error(w.put(&w.admin, category, body).await, 422, code, clause).await;
    }
    assert_error(
        w.read(&w.service, "administrator", "account_admin").await,
        404,
        "not_found",
        None,
    )
    .await;
    w.app.stop().await;
}

#[tokio::test]
async fn other_tenants_and_roles_are_kept_out_r2() {
    let w = world().await;
    w.put(&w.admin, "administrator", admin_fields()).await;
    let other = w.app.create_tenant("Other Co").await;
    let other_admin = w
        .app
        .token(Role::TenantAdmin, Some(&other), None, Region::Cn)
        .await;
    assert_error(
        w.read(&other_admin, "administrator", "account_admin").await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_error(
        w.put(&other_admin, "administrator", admin_fields()).await,
        404,
        "not_found",
        None,
    )
    .await;
    let auditor = w.app.token(Role::Auditor, None, None, Region::Cn).await;
    assert_error(
        w.read(&auditor, "administrator", "account_admin").await,
        403,
        "role_reads_no_personal_data",
        Some("R29"),
    )
    .await;
    let me = w
        .app
        .token(Role::EndUser, Some(&w.tenant), Some(&w.subject), Region::Cn)
        .await;
    assert_eq!(
        w.read(&me, "administrator", "account_admin").await.status(),
        200
    );
    w.app.stop().await;
}

#[tokio::test]
async fn overseas_support_is_denied_without_a_grant_r7() {
    let w = world().await;
    w.put(&w.admin, "support", json!({"purpose": "support", "service": "azure", "fields": {"description": "VM will not boot"}})).await;
    let overseas = w
        .app
        .token(Role::Support, None, None, Region::Overseas)
        .await;
    assert_error(
        w.read(&overseas, "support", "support").await,
        403,
        "overseas_access_needs_grant",
        Some("R7"),
    )
    .await;
    // Engineers in China need a grant of their own too (issue 14; R7, R29).
    let domestic = w.app.token(Role::Support, None, None, Region::Cn).await;
    assert_error(
        w.read(&domestic, "support", "support").await,
        403,
        "grant_required",
        Some("R7"),
    )
    .await;
    w.app.stop().await;
}

#[tokio::test]
async fn minors_data_is_not_stored_without_guardian_consent_r43() {
    let w = world().await;
    let minor = w
        .app
        .create_subject(
            &w.tenant,
            json!({"kind": "end_user", "birth_date": "2012-03-04"}),
        )
        .await;
    let r = w
        .app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{minor}/records/registration"),
            Some(&w.admin),
            Some(
                json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "小明"}}),
            ),
        )
        .await;
    assert_error(r, 403, "minor_needs_guardian_consent", Some("R43")).await;
    w.app.stop().await;
}

#[tokio::test]
async fn every_decision_is_audited_without_values_r29() {
    let w = world().await;
    w.put(&w.admin, "administrator", admin_fields()).await;
    w.read(&w.service, "administrator", "fraud_prevention")
        .await;
    w.read(&w.service, "administrator", "research").await;
    let r = w
        .app
        .request(
            Method::DELETE,
            &w.path("administrator"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_error(
        w.read(&w.service, "administrator", "account_admin").await,
        404,
        "not_found",
        None,
    )
    .await;
    let entries = w
        .app
        .state
        .store
        .audit_for_subject(w.subject.as_str())
        .await
        .unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.action.clone(),
                e.decision.clone(),
                e.clause.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("write".into(), "allow".into(), "R8".into()),
            ("read".into(), "allow".into(), "R8".into()),
            ("read".into(), "deny".into(), "R4".into()),
            ("delete".into(), "allow".into(), "R33".into()),
            ("read".into(), "allow".into(), "R8".into()),
        ]
    );
    let dump = format!("{entries:?}");
    for value in ["zhang.wei.planted", "13912345678", "张伟"] {
        assert!(!dump.contains(value), "audit must not hold {value}");
    }
    w.app.stop().await;
}

#[tokio::test]
async fn no_plaintext_reaches_the_data_directory_r12_r29() {
    for cipher in ["aes-256-gcm", "sm4-gcm"] {
        let w = world_with(spawn_app_with(|c| c.crypto.cipher = cipher.to_owned()).await).await;
        w.put(&w.admin, "administrator", admin_fields()).await;
        w.put(&w.service, "payment", json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": "6011000990139424"}})).await;
        w.put(&w.service, "payment", json!({"purpose": "transaction", "service": "azure", "fields": {"card_number": "4111111111111111", "security_code": "8642"}})).await;
        let v: Value = w
            .read(&w.service, "administrator", "account_admin")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["fields"]["phone"], "13912345678", "{cipher} round trip");
        for planted in [
            "zhang.wei.planted@example.cn",
            "13912345678",
            "张伟",
            "6011000990139424",
            "8642",
        ] {
            let hits = grep_dir(w.app.data_dir.path(), planted.as_bytes());
            assert!(
                hits.is_empty(),
                "{cipher}: `{planted}` found in clear in {hits:?}"
            );
        }
        w.app.stop().await;
    }
}

#[tokio::test]
async fn shredding_the_data_key_makes_records_unreadable() {
    let w = world().await;
    w.put(&w.admin, "administrator", admin_fields()).await;
    assert!(w
        .app
        .state
        .store
        .shred_subject_key(&w.subject)
        .await
        .unwrap());
    assert_error(
        w.read(&w.service, "administrator", "account_admin").await,
        404,
        "not_found",
        None,
    )
    .await;
    w.app.stop().await;
}

#[tokio::test]
async fn a_bad_cipher_setting_stops_startup() {
    let msg = startup_error(|c, _| c.crypto.cipher = "rot13".into()).await;
    assert!(msg.contains("crypto.cipher"), "{msg}");
}

#[tokio::test]
async fn master_key_rotation_rewraps_and_old_data_stays_readable() {
    let w = world().await;
    w.put(&w.admin, "administrator", admin_fields()).await;
    let key_file = w
        .app
        .state
        .config
        .master_key_location()
        .unwrap()
        .path()
        .to_owned();
    let report = tutela_app::keys::rotate_master(
        &w.app.state.store,
        &key_file,
        tutela_crypto::envelope::Cipher::Aes256Gcm,
    )
    .await
    .unwrap();
    assert_eq!(report.new_master_key_id, 2);
    assert_eq!(report.rewrapped, 1);
    let keys = w.app.state.store.all_tenant_keys().await.unwrap();
    assert!(
        keys.iter().all(|(_, id, _)| *id == 2),
        "every tenant key is on the new master key"
    );
    // A restarted process (new key file contents) still reads the old record.
    let restarted =
        tutela_app::startup::open_state((*w.app.state.config).clone(), w.app.clock.clone())
            .await
            .unwrap();
    let subject = restarted.store.subject(&w.subject).await.unwrap().unwrap();
    let key = restarted
        .vault
        .subject_key(&restarted.store, &subject.tenant, &subject.id, false)
        .await
        .unwrap()
        .unwrap();
    let rec = restarted
        .store
        .record(&w.subject, tutela_core::Category::Administrator)
        .await
        .unwrap()
        .unwrap();
    let fields = restarted
        .vault
        .open_fields(
            &key,
            &w.subject,
            tutela_core::Category::Administrator,
            rec.version,
            &rec.fields,
        )
        .unwrap();
    assert_eq!(fields["phone"], "13912345678");
    // Running it again rotates again and has nothing old left to re-wrap but the one key.
    let again = tutela_app::keys::rotate_master(
        &w.app.state.store,
        &key_file,
        tutela_crypto::envelope::Cipher::Aes256Gcm,
    )
    .await
    .unwrap();
    assert_eq!((again.new_master_key_id, again.rewrapped), (3, 1));
    w.app.stop().await;
}

async fn lookup(w: &World, token: &str, tenant: &TenantId, body: Value) -> reqwest::Response {
    w.app
        .post(
            &format!("/v1/tenants/{tenant}/subjects/lookup"),
            token,
            body,
        )
        .await
}

#[tokio::test]
async fn subjects_are_found_by_email_or_phone_through_the_blind_index_r29() {
    let w = world().await;
    assert_eq!(
        w.put(&w.admin, "administrator", admin_fields())
            .await
            .status(),
        200
    );
    let found = |r: Value| -> Vec<String> {
        r["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    // Written differently from the stored value: normalised before keying.
    for body in [
        json!({"email": " Zhang.Wei.Planted@EXAMPLE.cn"}),
        json!({"phone": "+86 139-1234-5678"}),
    ] {
        let r = lookup(&w, &w.admin, &w.tenant, body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(found(r.json().await.unwrap()), vec![w.subject.to_string()]);
    }
    let r = lookup(
        &w,
        &w.admin,
        &w.tenant,
        json!({"email": "someone.else@example.cn"}),
    )
    .await;
    assert!(found(r.json().await.unwrap()).is_empty());

    // Another tenant's admin cannot probe this tenant (404, not an empty answer).
    let (_, _, other_admin) = w.app.tenant_with_admin("Other Co").await;
    let r = lookup(
        &w,
        &other_admin,
        &w.tenant,
        json!({"email": "zhang.wei.planted@example.cn"}),
    )
    .await;
    assert_error(r, 404, "not_found", None).await;
    // Bad input: neither, both, or an invalid value.
    for body in [
        json!({}),
        json!({"email": "a@b.cn", "phone": "13912345678"}),
        json!({"email": "not-an-address"}),
    ] {
        let r = lookup(&w, &w.admin, &w.tenant, body).await;
        assert_error(r, 422, "invalid_lookup", None).await;
    }

    // A changed address replaces the old key; a deleted record takes its keys along.
    let mut changed = admin_fields();
    changed["fields"]["email"] = json!("new.address@example.cn");
    assert_eq!(
        w.put(&w.admin, "administrator", changed).await.status(),
        200
    );
    let r = lookup(
        &w,
        &w.admin,
        &w.tenant,
        json!({"email": "zhang.wei.planted@example.cn"}),
    )
    .await;
    assert!(found(r.json().await.unwrap()).is_empty());
    let r = lookup(
        &w,
        &w.admin,
        &w.tenant,
        json!({"email": "new.address@example.cn"}),
    )
    .await;
    assert_eq!(found(r.json().await.unwrap()).len(), 1);
    let r = w
        .app
        .request(
            Method::DELETE,
            &w.path("administrator"),
            Some(&w.admin),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = lookup(
        &w,
        &w.admin,
        &w.tenant,
        json!({"email": "new.address@example.cn"}),
    )
    .await;
    assert!(found(r.json().await.unwrap()).is_empty());

    // Every look-up is audited, without the value.
    let entries = w.app.state.store.unsealed_audit(1000).await.unwrap();
    let mut sealed: Vec<_> = w
        .app
        .state
        .store
        .sealed_audit(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    sealed.extend(entries);
    let lookups: Vec<_> = sealed
        .iter()
        .filter(|e| e.action.starts_with("lookup_"))
        .collect();
    assert!(lookups.len() >= 6, "{lookups:?}");
    assert!(lookups
        .iter()
        .any(|e| e.decision == "allow" && e.clause.as_deref() == Some("R29")));
    let dump = format!("{sealed:?}").to_lowercase();
    assert!(!dump.contains("zhang.wei.planted") && !dump.contains("13912345678"));
    w.app.stop().await;
}
