//! `pki run --metrics-bind`: the metrics a Prometheus server scrapes,
//! parsed by Prometheus's own Python parser (`prometheus_client`), scraped
//! while nodes certify, and counted against what the test did; and what a
//! refusal and a request leave in the log and the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fedpki_tests::site::{Site, cert_at};
use fedpki_tests::*;
use serde_json::Value;

/// Every sample of an OpenMetrics text, as Prometheus's parser reads it.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(samples))
"#;

/// `GET path` on the metrics address: status line, content type, body.
fn http_get(port: u16, path: &str) -> (String, String, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_owned();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

fn scrape(port: u16) -> Vec<Value> {
    let (status, content_type, body) = http_get(port, "/metrics");
    assert!(status.contains(" 200 "), "{status}: {body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    serde_json::from_str(&python::run(PARSE, body.as_bytes())).unwrap()
}

/// The one sample named `name` with (at least) `labels`.
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?} among {samples:#?}");
    found[0]["value"].as_f64().unwrap()
}

#[test]
fn metrics_scraped_under_load_count_what_the_ca_did() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let metrics = free_port();
    let bind = format!("127.0.0.1:{metrics}");
    let server = site.serve_with("ca", &["--metrics-bind", &bind], &[]);
    assert!(
        server.logged("event=metrics_listening"),
        "{:?}",
        server.lines()
    );

    // A scraper in a loop while eight nodes certify at once.
    let done = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let scraper = std::thread::spawn({
        let (done, scrapes) = (done.clone(), scrapes.clone());
        move || {
            while !done.load(Ordering::SeqCst) {
                let samples = scrape(metrics);
                assert!(value(&samples, "fedpki_build_info", &[]) == 1.0);
                scrapes.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let site = Arc::new(site);
    let nodes: Vec<_> = (0..8)
        .map(|i| {
            let site = site.clone();
            std::thread::spawn(move || site.certify("ca", &format!("node{i}")))
        })
        .collect();
    let dirs: Vec<_> = nodes.into_iter().map(|t| t.join().unwrap()).collect();
    // Two refusals: a token used again, twice.
    let spent = site.token("ca", "again");
    ok(site.certify_with("again", &spent, &[]));
    for _ in 0..2 {
        refused(
            &site.certify_with("again", &spent, &["--force"]),
            "already used",
        );
    }
    ok(site.renew(&dirs[1], "node1"));
    let serial = fedpki_core::issue::serial_hex(&cert_at(&dirs[2].join("node2.crt"), 0));
    ok(site.pki(&format!("revoke -p @ca --serial {serial}")));
    done.store(true, Ordering::SeqCst);
    scraper.join().unwrap();
    assert!(scrapes.load(Ordering::SeqCst) >= 1);

    let s = scrape(metrics);
    let counter = |name: &str, labels: &[(&str, &str)]| value(&s, name, labels);
    assert_eq!(
        counter("fedpki_certificates_issued_total", &[("how", "token")]),
        9.0
    );
    assert_eq!(
        counter("fedpki_certificates_issued_total", &[("how", "ca_server")]),
        1.0
    );
    assert_eq!(counter("fedpki_certificates_renewed_total", &[]), 1.0);
    assert_eq!(counter("fedpki_certificates_revoked_total", &[]), 1.0);
    assert_eq!(
        counter(
            "fedpki_requests_refused_total",
            &[("reason", "not_authorized")]
        ),
        2.0
    );
    let sign = [("route", "/1.0/sign")];
    assert_eq!(
        counter("fedpki_http_request_duration_seconds_count", &sign),
        11.0
    );
    assert!(counter("fedpki_http_request_duration_seconds_sum", &sign) > 0.0);
    assert_eq!(
        counter(
            "fedpki_http_responses_total",
            &[("route", "/1.0/sign"), ("code", "201")]
        ),
        9.0
    );
    assert_eq!(
        counter(
            "fedpki_http_responses_total",
            &[("route", "/1.0/sign"), ("code", "401")]
        ),
        2.0
    );
    assert_eq!(
        counter(
            "fedpki_http_responses_total",
            &[("route", "/1.0/renew"), ("code", "201")]
        ),
        1.0
    );
    // Every change made durable, whatever its outcome: 9 issued, 2 spent
    // tokens refused, the CA's own certificate, a renewal, a revocation.
    assert_eq!(counter("fedpki_store_commit_changes_sum", &[]), 14.0);
    let batches = counter("fedpki_store_commit_duration_seconds_count", &[]);
    assert!((1.0..=14.0).contains(&batches), "{batches}");
    // Signed at the start, and again for the revocation.
    assert!(counter("fedpki_crl_number", &[]) >= 2.0);
    assert!(counter("fedpki_crl_age_seconds", &[]) < 300.0);
    // As `pki status` counts them: 9 nodes' + the renewal + the CA's own,
    // less the revoked; the CA's own (a day long) expires within 30 days.
    assert_eq!(counter("fedpki_certificates_valid", &[]), 10.0);
    assert_eq!(counter("fedpki_certificates_expiring_30d", &[]), 1.0);
    assert_eq!(
        counter(
            "fedpki_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // The metrics are on their own address only.
    let (status, _) = site.get("ca", "/metrics");
    assert_eq!(status, 404);
    let (status, _, _) = http_get(metrics, "/health");
    assert!(status.contains(" 404 "), "{status}");
    drop(server);
}

#[test]
fn refusals_log_the_tokens_subject_and_id_and_audit_lines_the_client_address() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let spent = site.token("ca", "node1");
    ok(site.certify_with("node1", &spent, &[]));
    refused(
        &site.certify_with("node1", &spent, &["--force"]),
        "already used",
    );
    let (bundle, claims, _) = fedpki_core::token::Bundle::parse(&spent).unwrap();
    let jti = claims.jti;
    let line = server
        .lines()
        .into_iter()
        .find(|l| l.contains("event=refused"))
        .expect("the refusal is logged");
    assert!(line.contains("token_subject=node1"), "{line}");
    assert!(line.contains(&format!("token_jti={jti}")), "{line}");
    assert!(line.contains("peer=127.0.0.1"), "{line}");
    // Never the token itself: whoever reads the log must not be able to
    // spend it.
    let signature = bundle.jwt.rsplit('.').next().unwrap();
    assert!(!server.lines().iter().any(|l| l.contains(signature)));
    assert!(!server.lines().iter().any(|l| l.contains(&spent)));
    drop(server);

    let audit = std::fs::read_to_string(site.path("ca/db/audit.log")).unwrap();
    let entries: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let issued = entries
        .iter()
        .find(|e| e["event"] == "issue" && e["subject"] == "node1")
        .expect("the node's issue line");
    assert_eq!(issued["from"], "127.0.0.1", "{issued}");
    // The CA's own certificate was asked for by no client.
    let own = entries
        .iter()
        .find(|e| e["event"] == "issue" && e["subject"] == "localhost")
        .expect("the CA server's issue line");
    assert!(own.get("from").is_none(), "{own}");
}
