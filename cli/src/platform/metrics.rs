//! The CA's metrics, in the Prometheus (OpenMetrics) text format: counted
//! from the [`events`](super::events) reported, plus what the ledger holds
//! now, read at each scrape. Off unless `pki run --metrics-bind` turns them
//! on; then `api/metrics.rs` serves [`render`] at `GET /metrics`.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::events::{Event, Issuance};

/// Every reason a refusal is counted under (a label's values stay few).
pub(crate) const REFUSAL_REASONS: [&str; 8] = [
    "malformed",
    "not_authorized",
    "forbidden",
    "unknown_serial",
    "not_implemented",
    "unavailable",
    "internal",
    "rate_limited",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct How {
    how: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answer {
    route: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
}

struct Metrics {
    registry: Registry,
    issued: Family<How, Counter>,
    renewed: Counter,
    revoked: Counter,
    refused: Family<Reason, Counter>,
    latency: Family<Route, Histogram, fn() -> Histogram>,
    answers: Family<Answer, Counter>,
    commit_seconds: Histogram,
    commit_changes: Histogram,
    crl_number: Gauge,
    crl_signed_at: Gauge,
    crl_age: Gauge,
    valid: Gauge,
    expiring: Gauge,
    keys_near_age_limit: Gauge,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Request latencies: 0.5 ms to about 8 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Start counting (once; later calls change nothing).
pub(crate) fn enable() {
    METRICS.get_or_init(|| {
        let mut r = Registry::with_prefix("fedpki");
        let m = Metrics {
            issued: Family::default(),
            renewed: Counter::default(),
            revoked: Counter::default(),
            refused: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            answers: Family::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_changes: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            crl_number: Gauge::default(),
            crl_signed_at: Gauge::default(),
            crl_age: Gauge::default(),
            valid: Gauge::default(),
            expiring: Gauge::default(),
            keys_near_age_limit: Gauge::default(),
            registry: Registry::default(),
        };
        r.register(
            "certificates_issued",
            "Certificates issued, by how (token, confirmed, ca_server); renewals apart",
            m.issued.clone(),
        );
        r.register(
            "certificates_renewed",
            "Certificates renewed by their holders",
            m.renewed.clone(),
        );
        r.register(
            "certificates_revoked",
            "Revocations recorded (one a request, whatever else a key compromise revokes with it)",
            m.revoked.clone(),
        );
        r.register(
            "requests_refused",
            "Requests refused, by reason",
            m.refused.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            m.latency.clone(),
        );
        r.register(
            "http_responses",
            "Answers, by route and HTTP status",
            m.answers.clone(),
        );
        r.register(
            "store_commit_duration_seconds",
            "Time to make one batch of changes durable, its sync included",
            m.commit_seconds.clone(),
        );
        r.register(
            "store_commit_changes",
            "Changes made durable together in one batch",
            m.commit_changes.clone(),
        );
        r.register(
            "crl_number",
            "The cRLNumber of the CRLs served",
            m.crl_number.clone(),
        );
        r.register(
            "crl_signed_timestamp_seconds",
            "When the CRLs served were signed (thisUpdate), Unix seconds",
            m.crl_signed_at.clone(),
        );
        r.register(
            "crl_age_seconds",
            "Seconds since the CRLs served were signed",
            m.crl_age.clone(),
        );
        r.register(
            "certificates_valid",
            "Node certificates in the ledger neither expired nor revoked",
            m.valid.clone(),
        );
        r.register(
            "certificates_expiring_30d",
            "Of those, the ones that expire within 30 days",
            m.expiring.clone(),
        );
        r.register(
            "keys_near_age_limit_30d",
            "Keys whose age limit (pki install --max-key-age) falls within 30 days",
            m.keys_near_age_limit.clone(),
        );
        r.register(
            "build",
            "The fedpki build serving",
            Info::new(Build {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Metrics { registry: r, ..m }
    });
}

/// Count `event`, if metrics are on.
pub(crate) fn count(event: &Event<'_>) {
    let Some(m) = METRICS.get() else { return };
    match event {
        Event::Issued {
            how: Issuance::Renewal,
            ..
        } => {
            m.renewed.inc();
        }
        Event::Issued { how, .. } => {
            m.issued.get_or_create(&How { how: how.name() }).inc();
        }
        Event::Revoked { .. } => {
            m.revoked.inc();
        }
        Event::Refused { reason, .. } => {
            m.refused.get_or_create(&Reason { reason }).inc();
        }
        Event::Served {
            route,
            status,
            elapsed,
        } => {
            m.latency
                .get_or_create(&Route { route })
                .observe(elapsed.as_secs_f64());
            m.answers
                .get_or_create(&Answer {
                    route,
                    code: *status,
                })
                .inc();
        }
        Event::Committed { changes, elapsed } => {
            m.commit_seconds.observe(elapsed.as_secs_f64());
            m.commit_changes.observe(*changes as f64);
        }
        Event::CrlSigned { number, at } => {
            m.crl_number.set(i64::try_from(*number).unwrap_or(i64::MAX));
            m.crl_signed_at.set(i64::try_from(*at).unwrap_or(i64::MAX));
        }
    }
}

/// What the ledger holds at a scrape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LedgerNow {
    /// Node certificates neither expired nor revoked.
    pub valid: u64,
    /// Of those, the ones that expire within 30 days.
    pub expiring_30d: u64,
    /// Keys whose age limit falls within 30 days.
    pub keys_near_age_limit: u64,
    /// Now, Unix seconds.
    pub now: u64,
}

/// The metrics as a Prometheus scrape (OpenMetrics text), with the
/// ledger's figures as of `ledger`; `None` when metrics are off.
pub(crate) fn render(ledger: LedgerNow) -> Option<String> {
    let m = METRICS.get()?;
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    m.valid.set(gauge(ledger.valid));
    m.expiring.set(gauge(ledger.expiring_30d));
    m.keys_near_age_limit.set(gauge(ledger.keys_near_age_limit));
    let signed = u64::try_from(m.crl_signed_at.get()).unwrap_or(0);
    if signed > 0 {
        m.crl_age.set(gauge(ledger.now.saturating_sub(signed)));
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry).ok()?;
    Some(out)
}
