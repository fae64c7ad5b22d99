//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/v1/tenants/{tenant}`), never the concrete path.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The process's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `acknowledged`, `accepted` or `failed`.
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: HistogramFamily,
    pub policy_categories: Gauge,
    /// Open data-subject requests past their due time, as of the last listing (R35).
    pub requests_overdue: Gauge,
    /// Webhook attempts to recipients, by outcome (R34).
    pub webhook_attempts: Family<OutcomeLabels, Counter>,
    /// Audit group commits and the entries they carried (issue 3).
    audit_commits: Counter,
    audit_batch_size: Histogram,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tutela");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let policy_categories = Gauge::default();
        let requests_overdue = Gauge::default();
        registry.register(
            "requests_overdue",
            "Open data-subject requests past their due time (R35)",
            requests_overdue.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Deletion notices sent to recipients, by outcome (R34)",
            webhook_attempts.clone(),
        );
        let audit_commits = Counter::default();
        let audit_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "audit_group_commits",
            "Transactions the audit writer committed",
            audit_commits.clone(),
        );
        registry.register(
            "audit_group_commit_entries",
            "Audit entries per group commit",
            audit_batch_size.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register(
            "policy_categories",
            "Personal-information categories in the loaded policy",
            policy_categories.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            policy_categories,
            requests_overdue,
            webhook_attempts,
            audit_commits,
            audit_batch_size,
        }
    }

    /// Records one audit group commit of `entries` entries.
    pub fn observe_audit_batch(&self, entries: usize) {
        self.audit_commits.inc();
        #[expect(clippy::cast_precision_loss, reason = "batch sizes are far below 2^52")]
        self.audit_batch_size.observe(entries as f64);
    }

    /// Audit group commits so far.
    pub fn audit_batches(&self) -> u64 {
        self.audit_commits.get()
    }

    /// The registry in Prometheus text exposition format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
