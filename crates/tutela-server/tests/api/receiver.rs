//! A real HTTP server standing in for recipients' webhook endpoints (R34). Each path is
//! one recipient with a behaviour; every call is recorded with whether its signature
//! verified, and processing is deduplicated by idempotency key, as a recipient should.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tutela_crypto::webhook::WebhookSecret;

/// What a recipient endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 `{"acknowledged": true}`.
    Ack,
    /// 202 with no acknowledgement (it acknowledges later through the API).
    Accept,
    /// 503 for the next `n` calls, then acknowledges.
    FailThenAck(u32),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub idempotency_key: String,
    pub body: serde_json::Value,
    pub signature_ok: bool,
}

#[derive(Default)]
struct Inner {
    behaviour: HashMap<String, Behaviour>,
    secrets: HashMap<String, WebhookSecret>,
    calls: HashMap<String, Vec<Call>>,
    /// Idempotency keys processed (deleted on our side), per endpoint.
    processed: HashMap<String, Vec<String>>,
    seen: HashSet<(String, String)>,
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/hook/{name}", post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, inner }
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/hook/{name}", self.base)
    }

    pub fn set(&self, name: &str, b: Behaviour) {
        self.inner
            .lock()
            .unwrap()
            .behaviour
            .insert(name.to_owned(), b);
    }

    pub fn set_secret(&self, name: &str, hex: &str) {
        self.inner
            .lock()
            .unwrap()
            .secrets
            .insert(name.to_owned(), WebhookSecret::from_hex(hex).unwrap());
    }

    pub fn calls(&self, name: &str) -> Vec<Call> {
        self.inner
            .lock()
            .unwrap()
            .calls
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    pub fn processed(&self, name: &str) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .processed
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut g = inner.lock().unwrap();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let signature_ok = match (
        g.secrets.get(&name),
        headers
            .get("tutela-signature")
            .and_then(|v| v.to_str().ok()),
    ) {
        (Some(secret), Some(sig)) => {
            // The server runs on a test clock: accept any timestamp, check the MAC.
            secret.verify(sig, &body, 0, i64::MAX / 4).is_ok()
        }
        _ => false,
    };
    g.calls.entry(name.clone()).or_default().push(Call {
        idempotency_key: key.clone(),
        body: serde_json::from_slice(&body).unwrap_or_default(),
        signature_ok,
    });
    if !signature_ok {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let behaviour = g.behaviour.get(&name).copied().unwrap_or(Behaviour::Ack);
    let answer = match behaviour {
        Behaviour::FailThenAck(n) if n > 0 => {
            g.behaviour
                .insert(name.clone(), Behaviour::FailThenAck(n - 1));
            return (StatusCode::SERVICE_UNAVAILABLE, String::new());
        }
        Behaviour::Accept => (StatusCode::ACCEPTED, "{}".to_owned()),
        Behaviour::Ack | Behaviour::FailThenAck(_) => (
            StatusCode::OK,
            serde_json::json!({"acknowledged": true, "idempotency_key": key}).to_string(),
        ),
    };
    // Process each deletion once, however often it arrives.
    if g.seen.insert((name.clone(), key.clone())) {
        g.processed.entry(name).or_default().push(key);
    }
    answer
}
