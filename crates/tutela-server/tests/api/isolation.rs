//! The generated isolation matrix (issue 14, "Proof"; R2, R7, R29): every route of the
//! running server's OpenAPI document x every caller x own tenant / other tenant, each
//! cell checked against an expectation written down once in [`ROUTES`] and
//! [`RECORDS`].
//!
//! A cell passes when its status class is the expected one (`Allow`: 2xx or a domain
//! 409/422/423 that shows the caller was let in; `Deny`: 401/403/404, exactly 401 for
//! callers without a valid token and exactly 404 for another tenant's or subject's
//! resource the caller could use in its own scope; `Public`: let in without a token).
//! Every denied response is searched for the values planted in both tenants, and a
//! denied call must change no state: the whole database minus the audit log (which
//! records denials) is fingerprinted before and after it.
//!
//! Editing: one line per route in [`ROUTES`] (a route of the document without a line,
//! or a line without a route, fails the test); personal-data routes are expanded per
//! category from [`RECORDS`]. Caller codes in the `who` column:
//! `pub` anyone, even without a token; `any` every valid token; `sig` a
//! signature-authenticated route no caller here can sign for; `op` operator; `po`
//! privacy officer; `au` auditor; `svc` unscoped service; `svs` scoped service
//! (`provide_service,troubleshooting` x `customer,diagnostic`); `scn` China support
//! engineer without a grant; `sov` overseas engineer without a grant; `sog` the overseas
//! engineer holding the approved grant of tenant A (`customer`, `support`): allowed on
//! tenant A's targets only; `sx` another overseas engineer with no grant of its own;
//! `sup` every support engineer; `ta` a tenant admin, own tenant only; `eu` an end user,
//! own subject only (the requester of the tenant's request fixtures).

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tutela_core::{Region, Role, SubjectId, TenantId};

/// (method, path template, who may call it). Order matters only for state: routes that
/// end fixtures others need (closing the tenant) come last.
const ROUTES: &[(&str, &str, &str)] = &[
    // System and policy.
    ("GET", "/healthz", "pub"),
    ("GET", "/readyz", "pub"),
    ("GET", "/metrics", "pub"),
    ("GET", "/openapi.json", "pub"),
    ("GET", "/v1/policy", "any"),
    // Tenants and subjects (operator administers; the privacy officer and the tenant's
    // admin read).
    ("POST", "/v1/tenants", "op"),
    ("GET", "/v1/tenants/{tenant}", "op po ta"),
    ("POST", "/v1/tenants/{tenant}/subjects", "op ta"),
    ("GET", "/v1/tenants/{tenant}/subjects", "op po ta"),
    ("POST", "/v1/tenants/{tenant}/subjects/lookup", "op po ta"),
    ("GET", "/v1/subjects/{subject}", "op po ta eu"),
    ("GET", "/v1/tenants/{tenant}/announcements", "op po ta"),
    ("POST", "/v1/tenants/{tenant}/activate", "op"),
    // Consent and contact.
    ("POST", "/v1/subjects/{subject}/consents", "svc svs ta eu"),
    ("GET", "/v1/subjects/{subject}/consents", "po ta eu"),
    ("PUT", "/v1/subjects/{subject}/preferences", "ta eu"),
    ("GET", "/v1/subjects/{subject}/preferences", "po ta eu"),
    ("POST", "/v1/messages", "svc svs"),
    // Only a service scoped to service_communication (the delivery system) reads a
    // message: neither matrix service is.
    ("GET", "/v1/messages/{message}", ""),
    ("POST", "/v1/purpose-changes", "op po"),
    ("GET", "/v1/purpose-changes", "op po au"),
    ("POST", "/v1/cookie-consents", "pub"),
    ("POST", "/v1/cookie-consents/visitors", "pub"),
    ("GET", "/v1/cookie-consents/{visitor}", "po au"),
    // Sharing.
    ("POST", "/v1/storage-locations", "op"),
    ("GET", "/v1/storage-locations", "op po au"),
    ("POST", "/v1/recipients", "op"),
    ("GET", "/v1/recipients", "op po au svc svs"),
    ("POST", "/v1/recipients/{recipient}/webhook-secret", "op"),
    // A service transfers only categories and purposes in its token's scope (R29): the
    // matrix's scoped service is not scoped for the transfer it sends.
    ("POST", "/v1/transfers", "po"),
    ("GET", "/v1/transfers", "po au"),
    ("POST", "/v1/third-party-complaints", "op po"),
    // Support access (R7): grants bound to their engineer and tenant.
    ("POST", "/v1/grants", "sup"),
    ("GET", "/v1/grants/{grant}", "po au ta sog"),
    ("POST", "/v1/grants/{grant}/approve", "ta"),
    ("POST", "/v1/grants/{grant}/deny", "ta"),
    ("POST", "/v1/grants/{grant}/end", "po ta sog"),
    ("GET", "/v1/tenants/{tenant}/grants", "po ta"),
    ("POST", "/v1/incidents/{incident}/resolve", "po ta sog"),
    // PII tools.
    ("POST", "/v1/redact", "op po svc svs sup ta"),
    ("POST", "/v1/detokenize", "po ta"),
    // Data-subject requests.
    ("POST", "/v1/requests", "po ta eu"),
    ("GET", "/v1/requests", "po"),
    ("GET", "/v1/requests/{request}", "po ta eu"),
    ("POST", "/v1/requests/{request}/identity-code", "po ta eu"),
    ("POST", "/v1/requests/{request}/confirm", "eu"),
    ("POST", "/v1/requests/{request}/verify", "po"),
    ("POST", "/v1/requests/{request}/instruct", "ta"),
    ("POST", "/v1/requests/{request}/start", "po"),
    ("POST", "/v1/requests/{request}/extend", "po"),
    ("POST", "/v1/requests/{request}/complete", "po"),
    ("POST", "/v1/requests/{request}/refuse", "po"),
    ("POST", "/v1/requests/{request}/export", "po"),
    ("POST", "/v1/requests/{request}/erase", "po"),
    (
        "POST",
        "/v1/requests/{request}/deliveries/{recipient}/waive",
        "po",
    ),
    ("POST", "/v1/requests/{request}/acks", "sig"),
    ("POST", "/v1/acks", "sig"),
    // Audit log.
    ("GET", "/v1/audit/head", "po au"),
    ("GET", "/v1/audit/entries", "po au"),
    ("GET", "/v1/audit/proof", "po au"),
    ("GET", "/v1/audit/consistency", "po au"),
    // Personal data: expanded per category from RECORDS.
    (
        "GET",
        "/v1/subjects/{subject}/records/{category}",
        "@records",
    ),
    (
        "PUT",
        "/v1/subjects/{subject}/records/{category}",
        "@records",
    ),
    (
        "DELETE",
        "/v1/subjects/{subject}/records/{category}",
        "@records",
    ),
    // Last: these change the platform or end the tenant's business.
    ("POST", "/v1/services/{service}/terminate", "op"),
    ("POST", "/v1/retention/run", "op"),
    ("POST", "/v1/tenants/{tenant}/close", "op ta"),
];

/// Personal-data routes per (method, category), from ACCESS_MODEL.md. `po` on a read
/// means the officer naming a legal obligation (`purpose=legal_obligation&legal_ref=`);
/// the officer without a basis is always denied. `sog` is the overseas engineer under
/// its approved grant of tenant A (`customer`, `support`).
const RECORDS: &[(&str, &str, &str)] = &[
    ("GET", "customer", "po svs sog ta eu"),
    ("GET", "administrator", "op po ta eu"),
    ("GET", "real_name", "op po ta eu"),
    ("GET", "payment", "po ta eu"),
    ("GET", "support", "po sog ta eu"),
    ("GET", "registration", "op po ta eu"),
    ("GET", "diagnostic", "po svs ta eu"),
    ("GET", "cookie", "po ta eu"),
    ("PUT", "customer", "svs ta eu"),
    ("PUT", "administrator", "op ta eu"),
    ("PUT", "real_name", "ta eu"),
    ("PUT", "payment", "ta eu"),
    ("PUT", "support", "sog ta eu"),
    ("PUT", "registration", "op ta eu"),
    ("PUT", "diagnostic", "svs ta eu"),
    ("PUT", "cookie", "ta eu"),
    ("DELETE", "customer", "ta eu"),
    ("DELETE", "administrator", "ta eu"),
    ("DELETE", "real_name", "ta eu"),
    ("DELETE", "payment", "ta eu"),
    ("DELETE", "support", "ta eu"),
    ("DELETE", "registration", "ta eu"),
    ("DELETE", "diagnostic", "ta eu"),
    ("DELETE", "cookie", "ta eu"),
];

const CATEGORIES: [&str; 8] = [
    "customer",
    "administrator",
    "real_name",
    "payment",
    "support",
    "registration",
    "diagnostic",
    "cookie",
];

/// The callers. A new caller is one variant here plus one arm in `code`, `scope` and
/// `mint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoToken,
    Malformed,
    Revoked,
    Operator,
    PrivacyOfficer,
    Auditor,
    Service,
    ScopedService,
    SupportCn,
    SupportOverseas,
    SupportGranted,
    SupportOther,
    AdminA,
    AdminB,
    UserA1,
    UserA2,
    UserB1,
}

const CALLERS: [Who; 17] = [
    Who::NoToken,
    Who::Malformed,
    Who::Revoked,
    Who::Operator,
    Who::PrivacyOfficer,
    Who::Auditor,
    Who::Service,
    Who::ScopedService,
    Who::SupportCn,
    Who::SupportOverseas,
    Who::SupportGranted,
    Who::SupportOther,
    Who::AdminA,
    Who::AdminB,
    Who::UserA1,
    Who::UserA2,
    Who::UserB1,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    A,
    B,
}

impl Who {
    fn code(self) -> &'static str {
        match self {
            Who::NoToken | Who::Malformed | Who::Revoked => "",
            Who::Operator => "op",
            Who::PrivacyOfficer => "po",
            Who::Auditor => "au",
            Who::Service => "svc",
            Who::ScopedService => "svs",
            Who::SupportCn => "scn",
            Who::SupportOverseas => "sov",
            Who::SupportGranted => "sog",
            Who::SupportOther => "sx",
            Who::AdminA | Who::AdminB => "ta",
            Who::UserA1 | Who::UserA2 | Who::UserB1 => "eu",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::NoToken => "no token",
            Who::Malformed => "malformed token",
            Who::Revoked => "revoked operator token",
            Who::Operator => "operator",
            Who::PrivacyOfficer => "privacy_officer",
            Who::Auditor => "auditor",
            Who::Service => "service (unscoped)",
            Who::ScopedService => "service (scoped)",
            Who::SupportCn => "support cn (no grant)",
            Who::SupportOverseas => "support overseas (no grant)",
            Who::SupportGranted => "support overseas (grant of A)",
            Who::SupportOther => "support overseas (no grant; another holds one)",
            Who::AdminA => "tenant_admin A",
            Who::AdminB => "tenant_admin B",
            Who::UserA1 => "end_user A/a1",
            Who::UserA2 => "end_user A/a2",
            Who::UserB1 => "end_user B/b1",
        }
    }

    fn authenticated(self) -> bool {
        !matches!(self, Who::NoToken | Who::Malformed | Who::Revoked)
    }

    /// (tenant, is the tenant's primary subject) for tenant-scoped callers.
    fn scope(self) -> Option<(Side, bool)> {
        match self {
            Who::AdminA => Some((Side::A, false)),
            Who::AdminB => Some((Side::B, false)),
            Who::UserA1 => Some((Side::A, true)),
            Who::UserA2 => Some((Side::A, false)),
            Who::UserB1 => Some((Side::B, true)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allow,
    Deny,
    Public,
}

/// Is `who` let in by a `who` column, for a target on `side` (None: no tenant target)?
fn allowed_by(column: &str, who: Who, side: Option<Side>) -> bool {
    let codes: BTreeSet<&str> = column.split_whitespace().collect();
    if codes.contains("any") {
        return who.authenticated();
    }
    let code = who.code();
    match who {
        Who::NoToken | Who::Malformed | Who::Revoked => false,
        Who::AdminA | Who::AdminB => {
            codes.contains("ta") && side.is_none_or(|s| Some(s) == who.scope().map(|x| x.0))
        }
        Who::UserA1 | Who::UserA2 | Who::UserB1 => {
            let (own, primary) = who.scope().unwrap();
            codes.contains("eu") && primary && side.is_none_or(|s| s == own)
        }
        Who::SupportGranted => {
            codes.contains("sup") || (codes.contains("sog") && side.is_none_or(|s| s == Side::A))
        }
        Who::SupportCn | Who::SupportOverseas | Who::SupportOther => {
            codes.contains("sup") || codes.contains(code)
        }
        _ => codes.contains(code),
    }
}

fn expectation(column: &str, who: Who, side: Option<Side>) -> Outcome {
    if column.split_whitespace().any(|c| c == "pub") {
        Outcome::Public
    } else if allowed_by(column, who, side) {
        Outcome::Allow
    } else {
        Outcome::Deny
    }
}

/// Values planted in a tenant's primary subject, by category.
fn planted(side: Side) -> BTreeMap<&'static str, Value> {
    let l = match side {
        Side::A => "A",
        Side::B => "B",
    };
    let card = match side {
        Side::A => "4111111111111111",
        Side::B => "5500005555555559",
    };
    let n = match side {
        Side::A => "1",
        Side::B => "2",
    };
    BTreeMap::from([
        (
            "customer",
            json!({"object_ref": format!("vm-matrix-{l}"), "content": format!("MATRIX-SECRET-{l}-7f3c9d")}),
        ),
        (
            "administrator",
            json!({"name": format!("MATRIX-ADMIN-NAME-{l}"), "address": format!("MATRIX-ADDRESS-{l} 1 Changan Ave"), "phone": format!("1391234560{n}"), "email": format!("admin-{l}@matrix.example").to_lowercase()}),
        ),
        (
            "real_name",
            json!({"id_number": "11010519491231002X", "legal_name": format!("MATRIX-LEGAL-NAME-{l}"), "mobile": format!("1380013800{n}")}),
        ),
        (
            "payment",
            json!({"card_number": card, "holder_name": format!("MATRIX-HOLDER-{l}"), "billing_address": format!("MATRIX-BILLING-{l}")}),
        ),
        (
            "support",
            json!({"description": format!("MATRIX-SUPPORT-{l} disk fails after patch"), "trace": format!("MATRIX-TRACE-{l}")}),
        ),
        (
            "registration",
            json!({"name": format!("MATRIX-REG-NAME-{l}"), "organization": format!("MATRIX-ORG-{l}")}),
        ),
        (
            "diagnostic",
            json!({"agent": format!("agent-{l}"), "payload": format!("MATRIX-DIAG-{l}-PAYLOAD")}),
        ),
        (
            "cookie",
            json!({"preferences": format!("MATRIX-PREFS-{l}"), "session": format!("MATRIX-SESSION-{l}")}),
        ),
    ])
}

/// Every planted value that must never appear in a denied response.
fn secrets() -> Vec<String> {
    let mut out = vec![
        "MATRIX-REQ-DETAILS-A".to_owned(),
        "MATRIX-REQ-DETAILS-B".to_owned(),
    ];
    for side in [Side::A, Side::B] {
        for fields in planted(side).values() {
            for v in fields.as_object().unwrap().values() {
                out.push(v.as_str().unwrap().to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The purpose a record is written with by the tenant (and read with by default).
fn default_purpose(category: &str) -> &'static str {
    match category {
        "customer" => "provide_service",
        "administrator" | "registration" => "account_admin",
        "real_name" => "real_name_verification",
        "payment" => "transaction",
        "support" => "support",
        "diagnostic" => "troubleshooting",
        _ => "preferences",
    }
}

/// The purpose a caller would use: the one its rule names where it has one, so that a
/// denial is the role's, not the purpose's.
fn purpose_for(who: Who, category: &str) -> &'static str {
    match (who, category) {
        (
            Who::SupportCn | Who::SupportOverseas | Who::SupportGranted | Who::SupportOther,
            "customer" | "diagnostic",
        ) => "troubleshooting",
        (Who::Operator, "administrator" | "registration") => "account_admin",
        (Who::ScopedService, "customer") => "provide_service",
        (Who::ScopedService, "diagnostic") => "troubleshooting",
        _ => default_purpose(category),
    }
}

/// One tenant's fixtures.
struct World {
    tenant: TenantId,
    subject: SubjectId,
    other_subject: SubjectId,
    admin: String,
    user: String,
    /// The overseas engineer whose grants of this tenant fixtures use.
    engineer: String,
    request: String,
    erased_request: String,
    grant: String,
    message: String,
}

struct Fixtures {
    a: World,
    b: World,
    operator: String,
    officer: String,
    service: String,
    recipient: String,
    /// A recipient with a webhook (its secret can be rotated); it holds no data.
    hooked: String,
    visitor: String,
    statement_version: String,
    tokens: BTreeMap<&'static str, String>,
    counter: std::cell::Cell<u32>,
}

impl Fixtures {
    fn world(&self, side: Side) -> &World {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    fn next(&self) -> u32 {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        n
    }
}

async fn created(r: reqwest::Response, what: &str) -> Value {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(
        (200..300).contains(&status),
        "fixture {what}: {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn plant(app: &TestApp, token: &str, subject: &SubjectId, category: &str, side: Side) {
    let fields = planted(side)[category].clone();
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{subject}/records/{category}"),
            Some(token),
            Some(
                json!({"purpose": default_purpose(category), "service": "azure", "fields": fields}),
            ),
        )
        .await;
    created(r, &format!("plant {category}")).await;
}

/// A grant of `side`'s tenant requested by its fixture engineer, approved unless
/// `pending`. Returns (grant id, incident).
async fn grant(app: &TestApp, fx: &Fixtures, side: Side, pending: bool) -> (String, String) {
    let w = fx.world(side);
    let incident = format!("INC-MATRIX-{}", fx.next());
    let v = created(
        app.post(
            "/v1/grants",
            &w.engineer,
            json!({"tenant": w.tenant.to_string(), "incident": incident, "categories": ["customer", "support"], "reason": "matrix fixture", "minutes": 480, "personal_information": true}),
        )
        .await,
        "grant",
    )
    .await;
    let id = id_of(&v);
    if !pending {
        created(
            app.post(&format!("/v1/grants/{id}/approve"), &w.admin, json!({}))
                .await,
            "approve grant",
        )
        .await;
    }
    (id, incident)
}

/// A request of `kind` filed by the tenant's end user about itself.
async fn request(app: &TestApp, w: &World, kind: &str, details: Option<&str>) -> String {
    let mut body = json!({"subject": w.subject.to_string(), "type": kind});
    if let Some(d) = details {
        body["details"] = json!(d);
    }
    id_of(&created(app.post("/v1/requests", &w.user, body).await, "request").await)
}

async fn world(
    app: &TestApp,
    side: Side,
    operator: &str,
    officer: &str,
    service: &str,
    recipient: &str,
    engineer: String,
) -> World {
    let (tenant, _, admin) = app.tenant_with_admin(&format!("Matrix {side:?} Co")).await;
    let subject = app
        .create_subject(&tenant, json!({"kind": "end_user"}))
        .await;
    let other_subject = app
        .create_subject(&tenant, json!({"kind": "end_user"}))
        .await;
    let user = app
        .token(Role::EndUser, Some(&tenant), Some(&subject), Region::Cn)
        .await;
    for c in CATEGORIES {
        plant(app, &admin, &subject, c, side).await;
    }
    let l = format!("{side:?}");
    let mut w = World {
        tenant,
        subject,
        other_subject,
        admin,
        user,
        engineer,
        request: String::new(),
        erased_request: String::new(),
        grant: String::new(),
        message: String::new(),
    };
    w.request = request(app, &w, "access", Some(&format!("MATRIX-REQ-DETAILS-{l}"))).await;
    // A subject whose data went to the recipient and was erased: its request has a
    // deletion notice to waive.
    let gone = app
        .create_subject(&w.tenant, json!({"kind": "end_user"}))
        .await;
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/subjects/{gone}/records/administrator"),
            Some(&w.admin),
            Some(
                json!({"purpose": "account_admin", "service": "azure", "fields": {"name": "gone"}}),
            ),
        )
        .await;
    created(r, "erased subject's record").await;
    created(
        app.post(
            "/v1/transfers",
            service,
            json!({"subject": gone.to_string(), "recipient": recipient, "categories": ["administrator"], "purpose": "account_admin"}),
        )
        .await,
        "transfer",
    )
    .await;
    let id = id_of(
        &created(
            app.post(
                "/v1/requests",
                &w.admin,
                json!({"subject": gone.to_string(), "type": "delete"}),
            )
            .await,
            "delete request",
        )
        .await,
    );
    for (token, step, body) in [
        (
            officer,
            "verify",
            json!({"method": "document", "evidence": "matrix-check"}),
        ),
        (w.admin.as_str(), "confirm", json!({})),
        (officer, "start", json!({})),
        (officer, "erase", json!({})),
    ] {
        created(
            app.post(&format!("/v1/requests/{id}/{step}"), token, body)
                .await,
            step,
        )
        .await;
    }
    w.erased_request = id;
    w.message = id_of(
        &created(
            app.post(
                "/v1/messages",
                service,
                json!({"subject": w.subject.to_string(), "kind": "service", "channel": "email", "template": "matrix_notice"}),
            )
            .await,
            "message",
        )
        .await,
    );
    let _ = operator;
    w
}

/// The scoped service token: `tutela token create --role service --purposes
/// provide_service,troubleshooting --categories customer,diagnostic`.
async fn scoped_service(app: &TestApp) -> Option<String> {
    use tutela_core::{Category, Purpose};
    Some(
        app.service_token(
            &[Purpose::ProvideService, Purpose::Troubleshooting],
            &[Category::Customer, Category::Diagnostic],
        )
        .await,
    )
}

async fn mint(app: &TestApp) -> BTreeMap<&'static str, String> {
    let mut t = BTreeMap::new();
    let revoked = app.operator().await;
    let id = tutela_core::TokenId::parse(&format!("tok_{}", &revoked[7..39])).unwrap();
    assert!(tutela_app::tokens::revoke(&app.state, &id).await.unwrap());
    t.insert("revoked", revoked);
    t.insert(
        "auditor",
        app.token(Role::Auditor, None, None, Region::Cn).await,
    );
    t.insert(
        "support_cn",
        app.token(Role::Support, None, None, Region::Cn).await,
    );
    t.insert(
        "support_overseas",
        app.token(Role::Support, None, None, Region::Overseas).await,
    );
    t.insert(
        "support_granted",
        app.token(Role::Support, None, None, Region::Overseas).await,
    );
    t.insert(
        "support_other",
        app.token(Role::Support, None, None, Region::Overseas).await,
    );
    t.insert(
        "holder_b",
        app.token(Role::Support, None, None, Region::Overseas).await,
    );
    if let Some(s) = scoped_service(app).await {
        t.insert("scoped_service", s);
    }
    t
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let operator = app.operator().await;
    let officer = app
        .token(Role::PrivacyOfficer, None, None, Region::Cn)
        .await;
    let service = app.token(Role::Service, None, None, Region::Cn).await;
    // The fixtures' own transfers and messages come from a service scoped to them.
    let fixture_service = app.service_all().await;
    let mut tokens = mint(app).await;
    let recipient = id_of(
        &created(
            app.post(
                "/v1/recipients",
                &operator,
                json!({"name": "Matrix Sister Co", "kind": "affiliate", "country": "CN", "purposes": ["account_admin"], "categories": ["administrator"], "commitment_ref": "ica-matrix"}),
            )
            .await,
            "recipient",
        )
        .await,
    );
    let hooked = id_of(
        &created(
            app.post(
                "/v1/recipients",
                &operator,
                json!({"name": "Matrix Card Network", "kind": "payment_processor", "country": "CN", "purposes": ["transaction"], "categories": ["payment"], "commitment_ref": "pci-matrix", "webhook_url": "http://127.0.0.1:9/matrix-hook"}),
            )
            .await,
            "recipient with a webhook",
        )
        .await,
    );
    let a = world(
        app,
        Side::A,
        &operator,
        &officer,
        &fixture_service,
        &recipient,
        tokens["support_granted"].clone(),
    )
    .await;
    let b = world(
        app,
        Side::B,
        &operator,
        &officer,
        &fixture_service,
        &recipient,
        tokens["holder_b"].clone(),
    )
    .await;
    let policy: Value = app.get("/v1/policy", &operator).await.json().await.unwrap();
    let statement_version = policy["version"].as_str().unwrap().to_owned();
    // Visitor ids are issued and signed by the server (R16).
    let issued = app
        .request(Method::POST, "/v1/cookie-consents/visitors", None, None)
        .await;
    let issued = created(issued, "visitor id").await;
    let visitor = issued["visitor_id"].as_str().unwrap().to_owned();
    let r = app
        .request(
            Method::POST,
            "/v1/cookie-consents",
            None,
            Some(json!({"visitor_id": visitor, "necessary": true, "preferences": true, "analytics": false, "fraud_prevention": true, "statement_version": statement_version})),
        )
        .await;
    created(r, "cookie consent").await;
    let user_a2 = app
        .token(
            Role::EndUser,
            Some(&a.tenant),
            Some(&a.other_subject),
            Region::Cn,
        )
        .await;
    tokens.insert("user_a2", user_a2);
    tokens.insert("operator", operator.clone());
    tokens.insert("officer", officer.clone());
    tokens.insert("service", service.clone());
    let mut fx = Fixtures {
        a,
        b,
        operator,
        officer,
        service,
        recipient,
        hooked,
        visitor,
        statement_version,
        tokens,
        counter: std::cell::Cell::new(0),
    };
    fx.a.grant = grant(app, &fx, Side::A, false).await.0;
    fx.b.grant = grant(app, &fx, Side::B, false).await.0;
    fx
}

fn token_of(fx: &Fixtures, who: Who) -> Option<&str> {
    let t = &fx.tokens;
    let token: &str = match who {
        Who::NoToken => return None,
        Who::Malformed => "tutela_not-a-token",
        Who::Revoked => &t["revoked"],
        Who::Operator => &fx.operator,
        Who::PrivacyOfficer => &fx.officer,
        Who::Auditor => &t["auditor"],
        Who::Service => &fx.service,
        Who::ScopedService => t.get("scoped_service")?,
        Who::SupportCn => &t["support_cn"],
        Who::SupportOverseas => &t["support_overseas"],
        Who::SupportGranted => &t["support_granted"],
        Who::SupportOther => &t["support_other"],
        Who::AdminA => &fx.a.admin,
        Who::AdminB => &fx.b.admin,
        Who::UserA1 => &fx.a.user,
        Who::UserA2 => &t["user_a2"],
        Who::UserB1 => &fx.b.user,
    };
    Some(token)
}

/// Does a route take a tenant's resource (path or body)? Such routes run once per
/// tenant.
fn targeted(path: &str, method: &str) -> bool {
    [
        "{tenant}",
        "{subject}",
        "{request}",
        "{grant}",
        "{incident}",
        "{message}",
    ]
    .iter()
    .any(|p| path.contains(p))
        || matches!(
            (method, path),
            (
                "POST",
                "/v1/messages"
                    | "/v1/transfers"
                    | "/v1/third-party-complaints"
                    | "/v1/grants"
                    | "/v1/redact"
                    | "/v1/detokenize"
                    | "/v1/requests"
            ) | ("GET", "/v1/audit/entries")
        )
}

/// One HTTP call of a cell.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// Builds the call for a non-record route, creating fresh fixtures for routes whose
/// allowed use would consume a shared one.
async fn prepare(
    app: &TestApp,
    fx: &Fixtures,
    method: &str,
    template: &str,
    side: Option<Side>,
) -> Call {
    let w = side.map(|s| fx.world(s));
    let mut params: BTreeMap<&str, String> = BTreeMap::new();
    if let Some(w) = w {
        params.insert("tenant", w.tenant.to_string());
        params.insert("subject", w.subject.to_string());
        params.insert("request", w.request.clone());
        params.insert("grant", w.grant.clone());
        params.insert("message", w.message.clone());
    }
    params.insert("recipient", fx.recipient.clone());
    params.insert("visitor", fx.visitor.clone());
    params.insert("service", "azure-preview".to_owned());
    let step = template
        .strip_prefix("/v1/requests/{request}/")
        .filter(|s| !s.contains('/'));
    match (template, step) {
        ("/v1/grants/{grant}/approve" | "/v1/grants/{grant}/deny", _) => {
            let (id, _) = grant(app, fx, side.unwrap(), true).await;
            params.insert("grant", id);
        }
        ("/v1/incidents/{incident}/resolve", _) => {
            let (_, incident) = grant(app, fx, side.unwrap(), false).await;
            params.insert("incident", incident);
        }
        ("/v1/recipients/{recipient}/webhook-secret", _) => {
            params.insert("recipient", fx.hooked.clone());
        }
        ("/v1/requests/{request}/deliveries/{recipient}/waive", _) => {
            params.insert("request", w.unwrap().erased_request.clone());
        }
        (_, Some(s)) if s != "acks" => {
            let kind = if matches!(s, "erase" | "confirm") {
                "delete"
            } else {
                "access"
            };
            params.insert("request", request(app, w.unwrap(), kind, None).await);
        }
        _ => {}
    }
    let mut path = template.to_owned();
    for (k, v) in &params {
        path = path.replace(&format!("{{{k}}}"), v);
    }
    let tenant = params.get("tenant").cloned().unwrap_or_default();
    let subject = params.get("subject").cloned().unwrap_or_default();
    let n = fx.next();
    let body = match (method, template) {
        ("GET" | "DELETE", "/v1/audit/entries") => {
            path.push_str(&format!("?subject={subject}"));
            None
        }
        ("GET", "/v1/audit/proof") => {
            path.push_str("?index=0");
            None
        }
        ("GET", "/v1/audit/consistency") => {
            path.push_str("?first=1&second=1");
            None
        }
        ("GET" | "DELETE", _) => None,
        ("POST", "/v1/tenants") => {
            Some(json!({"name": format!("Matrix New {n}"), "kind": "enterprise"}))
        }
        ("POST", "/v1/tenants/{tenant}/subjects") => Some(json!({"kind": "end_user"})),
        ("POST", "/v1/tenants/{tenant}/subjects/lookup") => {
            Some(json!({"email": "admin-a@matrix.example"}))
        }
        ("POST", "/v1/subjects/{subject}/consents") => Some(
            json!({"purpose": "marketing", "granted": true, "statement_version": fx.statement_version, "channel": "portal", "evidence_ref": "signed-form-matrix"}),
        ),
        ("PUT", "/v1/subjects/{subject}/preferences") => Some(json!({"surveys": true})),
        ("POST", "/v1/messages") => Some(
            json!({"subject": subject, "kind": "service", "channel": "email", "template": "matrix_notice"}),
        ),
        ("POST", "/v1/purpose-changes") => Some(
            json!({"purposes": ["research"], "controller": "Matrix Successor Ltd", "reason": "merger"}),
        ),
        ("POST", "/v1/cookie-consents") => Some(
            json!({"visitor_id": fx.visitor, "necessary": true, "preferences": false, "analytics": false, "fraud_prevention": false, "statement_version": fx.statement_version}),
        ),
        ("POST", "/v1/storage-locations") => Some(
            json!({"name": format!("matrix-dc-{n}"), "region": "cn", "country": "CN", "categories": ["customer"]}),
        ),
        ("POST", "/v1/recipients") => Some(
            json!({"name": format!("Matrix Recipient {n}"), "kind": "affiliate", "country": "CN", "purposes": ["account_admin"], "categories": ["administrator"], "commitment_ref": "ica-1"}),
        ),
        ("POST", "/v1/transfers") => Some(
            json!({"subject": subject, "recipient": fx.recipient, "categories": ["administrator"], "purpose": "account_admin"}),
        ),
        ("POST", "/v1/third-party-complaints") => {
            Some(json!({"tenant": tenant, "complaint_ref": format!("cmp-{n}")}))
        }
        ("POST", "/v1/grants") => Some(
            json!({"tenant": tenant, "incident": format!("INC-MATRIX-ASK-{n}"), "categories": ["customer"], "reason": "matrix", "minutes": 60}),
        ),
        ("POST", "/v1/incidents/{incident}/resolve") => Some(json!({"tenant": tenant})),
        ("POST", "/v1/redact") => Some(json!({"text": "call 13800138000", "tenant": tenant})),
        ("POST", "/v1/detokenize") => Some(
            json!({"tenant": tenant, "purpose": "support", "legal_ref": "MATRIX-LEGAL-REF-1", "tokens": [{"type": "CN_MOBILE", "token": "13911112222"}]}),
        ),
        ("POST", "/v1/requests") => Some(json!({"subject": subject, "type": "access"})),
        ("POST", "/v1/requests/{request}/identity-code") => Some(json!({"channel": "email"})),
        ("POST", "/v1/requests/{request}/verify") => {
            Some(json!({"method": "document", "evidence": "matrix-evidence"}))
        }
        ("POST", "/v1/requests/{request}/instruct") => {
            Some(json!({"instruction": "matrix instruction"}))
        }
        ("POST", "/v1/requests/{request}/extend") => Some(json!({"reason": "matrix", "days": 10})),
        ("POST", "/v1/requests/{request}/complete") => Some(json!({"response": "matrix done"})),
        ("POST", "/v1/requests/{request}/refuse") => {
            Some(json!({"ground": "abuse", "response": "matrix refused"}))
        }
        ("POST", "/v1/requests/{request}/deliveries/{recipient}/waive") => {
            Some(json!({"reason": "matrix: recipient unreachable"}))
        }
        ("POST", "/v1/requests/{request}/acks" | "/v1/acks") => {
            Some(json!({"recipient": fx.recipient, "idempotency_key": "matrix-key"}))
        }
        ("POST", "/v1/services/{service}/terminate") => {
            Some(json!({"effective_at": "2031-01-01T00:00:00Z"}))
        }
        ("POST", "/v1/retention/run") => {
            path.push_str("?dry_run=true");
            Some(json!({}))
        }
        _ => Some(json!({})),
    };
    Call {
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        path,
        body,
    }
}

/// The call for a personal-data route; `basis`: the privacy officer names a legal
/// obligation.
fn record_call(
    fx: &Fixtures,
    method: &str,
    category: &str,
    side: Side,
    who: Who,
    basis: bool,
) -> Call {
    let w = fx.world(side);
    let mut path = format!("/v1/subjects/{}/records/{category}", w.subject);
    let purpose = purpose_for(who, category);
    let body = match method {
        "GET" => {
            if basis {
                path.push_str("?purpose=legal_obligation&legal_ref=MATRIX-LEGAL-REF-1");
            } else {
                path.push_str(&format!("?purpose={purpose}"));
            }
            None
        }
        "PUT" => {
            Some(json!({"purpose": purpose, "service": "azure", "fields": planted(side)[category]}))
        }
        _ => None,
    };
    Call {
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        path,
        body,
    }
}

/// Everything but the audit log (denials are audited by design), as text per table.
struct Fingerprint {
    store: tutela_store::Store,
    query: String,
}

impl Fingerprint {
    async fn open(app: &TestApp) -> Self {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (t, c, ..) in app.state.store.schema_shape().await.unwrap().columns {
            tables.entry(t).or_default().push(c);
        }
        tables.retain(|t, _| {
            !t.starts_with('_') && !t.starts_with("sqlite") && !t.starts_with("audit_")
        });
        assert!(tables.contains_key("records"), "{tables:?}");
        let pg = app.state.store.backend() == tutela_store::Backend::Postgres;
        let parts: Vec<String> = tables
            .iter()
            .map(|(t, cols)| {
                if pg {
                    format!("SELECT '{t}'::text, (SELECT coalesce(string_agg(x::text, chr(30) ORDER BY x::text), '') FROM \"{t}\" x)")
                } else {
                    let row = cols
                        .iter()
                        .map(|c| format!("quote(\"{c}\")"))
                        .collect::<Vec<_>>()
                        .join("||char(31)||");
                    format!("SELECT '{t}', (SELECT coalesce(group_concat(r, char(30)), '') FROM (SELECT {row} AS r FROM \"{t}\" ORDER BY 1))")
                }
            })
            .collect();
        let query = parts.join(" UNION ALL ");
        Fingerprint {
            store: app.state.store.clone(),
            query,
        }
    }

    async fn take(&mut self) -> BTreeMap<String, String> {
        let query = self.query.clone();
        let rows: Vec<(String, Option<String>)> = self
            .store
            .read(|db| Box::pin(async move { db.fetch_all(&query, &[]).await }))
            .await
            .unwrap();
        rows.into_iter()
            .map(|(t, v)| (t, v.unwrap_or_default()))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Allow,
    Deny,
    Other,
}

/// The class of an answer. A 422 from the body or query extractor (`invalid_body`,
/// `invalid_query`) never reached the access decision: it proves nothing either way.
fn class(status: u16, body: &str) -> Class {
    let extractor =
        status == 422 && (body.contains("\"invalid_body\"") || body.contains("\"invalid_query\""));
    match status {
        _ if extractor => Class::Other,
        200..=299 | 409 | 422 | 423 => Class::Allow,
        401 | 403 | 404 => Class::Deny,
        _ => Class::Other,
    }
}

/// One cell to run.
struct Cell {
    method: &'static str,
    route: String,
    who: Who,
    label: String,
    side: Option<Side>,
    expected: Outcome,
    /// Deny must be exactly this status.
    exact: Option<u16>,
    record: Option<(&'static str, bool)>,
}

fn label(who: Who, basis: bool, side: Option<Side>) -> String {
    let mut s = who.name().to_owned();
    if who == Who::PrivacyOfficer && basis {
        s.push_str(" +legal basis");
    }
    match side {
        Some(side) => format!("{s} -> tenant {side:?}"),
        None => s,
    }
}

/// The exact denial status, where one is owed: 401 without a valid token; 404 for a
/// tenant-scoped caller on another tenant's or subject's resource it could use in its
/// own scope (existence never leaks, R2).
fn exact_denial(column: &str, who: Who, side: Option<Side>) -> Option<u16> {
    if !who.authenticated() {
        return (!column.contains("sig")).then_some(401);
    }
    let (own, _) = who.scope()?;
    let side = side?;
    let own_allowed = match who {
        Who::UserA2 => allowed_by(column, Who::UserA1, Some(Side::A)),
        _ => allowed_by(column, who, Some(own)),
    };
    let foreign = side != own || who == Who::UserA2;
    (foreign && own_allowed).then_some(404)
}

fn cells(doc_routes: &BTreeSet<(String, String)>) -> Vec<Cell> {
    let mut out = Vec::new();
    for &(method, path, column) in ROUTES {
        assert!(doc_routes.contains(&(method.to_owned(), path.to_owned())));
        let sides: Vec<Option<Side>> = if targeted(path, method) {
            vec![Some(Side::A), Some(Side::B)]
        } else {
            vec![None]
        };
        if column == "@records" {
            for &(m, category, col) in RECORDS.iter().filter(|r| r.0 == method) {
                for side in [Side::A, Side::B] {
                    for who in CALLERS {
                        let variants: &[bool] = if who == Who::PrivacyOfficer && m == "GET" {
                            &[true, false]
                        } else {
                            &[false]
                        };
                        for &basis in variants {
                            let col = if who == Who::PrivacyOfficer && m == "GET" && !basis {
                                ""
                            } else {
                                col
                            };
                            out.push(Cell {
                                method,
                                route: format!("{path} [{category}]"),
                                who,
                                label: label(who, basis, Some(side)),
                                side: Some(side),
                                expected: expectation(col, who, Some(side)),
                                exact: exact_denial(col, who, Some(side)),
                                record: Some((category, basis)),
                            });
                        }
                    }
                }
            }
            continue;
        }
        for &side in &sides {
            for who in CALLERS {
                out.push(Cell {
                    method,
                    route: path.to_owned(),
                    who,
                    label: label(who, false, side),
                    side,
                    expected: expectation(column, who, side),
                    exact: exact_denial(column, who, side),
                    record: None,
                });
            }
        }
    }
    out
}

/// Routes (method, path) in the served OpenAPI document.
async fn document_routes(app: &TestApp) -> BTreeSet<(String, String)> {
    let doc: Value = app
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_of_the_openapi_document_admits_exactly_the_callers_written_down_r2_r7_r29() {
    let started = std::time::Instant::now();
    let app = spawn_app().await;
    let mut problems: Vec<String> = Vec::new();

    // The table and the document name the same routes.
    let doc = document_routes(&app).await;
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        table.len(),
        ROUTES.len(),
        "a route is listed twice in ROUTES"
    );
    for (m, p) in doc.difference(&table) {
        problems.push(format!(
            "route {m} {p} is in the OpenAPI document but has no line in ROUTES: decide who may call it"
        ));
    }
    for (m, p) in table.difference(&doc) {
        problems.push(format!(
            "ROUTES names {m} {p}, which the OpenAPI document lacks"
        ));
    }
    if !problems.is_empty() {
        panic!("{}", problems.join("\n"));
    }
    for &(m, c, _) in RECORDS {
        assert!(CATEGORIES.contains(&c) && ["GET", "PUT", "DELETE"].contains(&m));
    }
    assert_eq!(
        RECORDS.len(),
        3 * CATEGORIES.len(),
        "one RECORDS line per method and category"
    );

    let all = cells(&doc);
    // Tenant-scoped roles never reach another tenant, whatever the table says.
    for c in &all {
        if let (Some((own, _)), Some(side)) = (c.who.scope(), c.side) {
            assert!(
                !(side != own && c.expected == Outcome::Allow),
                "the table lets {} into tenant {side:?} on {} {}",
                c.label,
                c.method,
                c.route
            );
        }
    }

    let fx = fixtures(&app).await;
    let secrets = secrets();
    let mut fp = Fingerprint::open(&app).await;
    let mut last: Option<BTreeMap<String, String>> = None;
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut skipped = 0u32;
    let mut checked = 0u32;
    let mut by_route: BTreeMap<String, u32> = BTreeMap::new();
    let mut domain: Vec<String> = Vec::new();

    for c in &all {
        let token = match c.who {
            Who::NoToken => None,
            w => match token_of(&fx, w) {
                Some(t) => Some(t.to_owned()),
                None => {
                    skipped += 1;
                    continue;
                }
            },
        };
        let call = match c.record {
            Some((category, basis)) => {
                record_call(&fx, c.method, category, c.side.unwrap(), c.who, basis)
            }
            None => prepare(&app, &fx, c.method, &c.route, c.side).await,
        };
        if c.record.is_none() && call.path.contains('{') {
            failures.push(format!(
                "{} {} : unfilled path {}",
                c.method, c.route, call.path
            ));
            continue;
        }
        let denied_expected = c.expected == Outcome::Deny;
        // Fresh fixtures were made for this cell: the previous fingerprint is stale.
        let fresh = c.record.is_none()
            && (c.route.contains("/approve")
                || c.route.contains("/deny")
                || c.route.contains("/resolve")
                || (c.route.starts_with("/v1/requests/{request}/")
                    && !c.route.ends_with("/acks")
                    && !c.route.contains("/waive")));
        if fresh {
            last = None;
        }
        let before = if denied_expected {
            match last.take() {
                Some(f) => Some(f),
                None => Some(fp.take().await),
            }
        } else {
            None
        };
        let auth = token.as_deref();
        let r = app
            .request(call.method.clone(), &call.path, auth, call.body.clone())
            .await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        checked += 1;
        *by_route
            .entry(format!("{} {}", c.method, c.route))
            .or_default() += 1;
        let got = class(status, &text);
        let mut why: Vec<String> = Vec::new();
        match c.expected {
            Outcome::Public => {
                *counts.entry("public").or_default() += 1;
                if !(200..300).contains(&status) {
                    why.push("public route did not answer 2xx".into());
                }
            }
            Outcome::Allow => {
                *counts.entry("allow").or_default() += 1;
                if got != Class::Allow {
                    why.push("expected the caller to be let in".into());
                }
            }
            Outcome::Deny => {
                *counts.entry("deny").or_default() += 1;
                if got != Class::Deny {
                    why.push("expected a denial".into());
                } else if let Some(e) = c.exact {
                    if status != e {
                        why.push(format!("denial must be {e}"));
                    }
                }
            }
        }
        if got == Class::Other && c.expected != Outcome::Allow {
            why.push("status is neither a denial nor a domain answer".into());
        }
        if c.expected == Outcome::Allow && got == Class::Allow && !(200..300).contains(&status) {
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            domain.push(format!(
                "{} {} | {} | {status} {code}",
                c.method, c.route, c.label
            ));
        }
        if c.expected == Outcome::Deny || got == Class::Deny {
            let leaked: Vec<&String> = secrets
                .iter()
                .filter(|s| text.contains(s.as_str()))
                .collect();
            if !leaked.is_empty() {
                why.push(format!(
                    "LEAK: denied body contains planted values {leaked:?}"
                ));
            }
        }
        if let Some(before) = before {
            let after = fp.take().await;
            let changed: Vec<&String> = after
                .iter()
                .filter(|(t, v)| before.get(*t) != Some(v))
                .map(|(t, _)| t)
                .collect();
            if !changed.is_empty() {
                why.push(format!("STATE CHANGED in tables {changed:?}"));
            }
            last = Some(after);
        } else {
            last = None;
        }
        if !why.is_empty() {
            let snippet: String = text.chars().take(160).collect();
            failures.push(format!(
                "{} {} | {} | expected {:?}{} | got {} | {} | {}",
                c.method,
                c.route,
                c.label,
                c.expected,
                c.exact.map(|e| format!(" ({e})")).unwrap_or_default(),
                status,
                why.join("; "),
                snippet
            ));
        }
        // An allowed deletion is put back so later cells find the planted record.
        if let (Some((category, _)), "DELETE", 204) = (c.record, c.method, status) {
            let side = c.side.unwrap();
            let w = fx.world(side);
            plant(&app, &w.admin, &w.subject, category, side).await;
            last = None;
        }
    }

    println!(
        "isolation matrix: {checked} cells checked ({} allow, {} deny, {} public), {skipped} skipped (callers not available yet), {} routes, {} failing, {:.1}s",
        counts.get("allow").unwrap_or(&0),
        counts.get("deny").unwrap_or(&0),
        counts.get("public").unwrap_or(&0),
        by_route.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    // Let in, but answered with a domain status: worth a look when a body goes stale.
    println!(
        "allowed cells answered with a domain status ({}):",
        domain.len()
    );
    for d in &domain {
        println!("  . {d}");
    }
    if !failures.is_empty() {
        println!("failing cells (method route | caller | expected | got | why | body):");
        for f in &failures {
            println!("  {f}");
        }
    }
    app.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {checked} cells failed (listed above)",
        failures.len()
    );
}
