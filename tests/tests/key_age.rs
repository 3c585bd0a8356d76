//! `pki install --max-key-age` on the real binary: a certificate is cut
//! short to its key's age limit, and a renewal that would leave the key
//! less than a day is refused with what to do, and `pki status`, `pki
//! list` and the metrics show the keys near their limit; on replicas, the key's
//! birth is read from the shared PostgreSQL ledger, so a new token for the
//! same key does not make it young, and a database that cannot be read
//! is said to be unavailable. (The clock moved forward is in the
//! authority's unit tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_tests::site::{Site, cert_at};
use fedpki_tests::*;

/// The metrics' text, over plain HTTP.
fn scrape_metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_key_is_certified_up_to_its_age_limit_and_then_refused() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL --cert-lifetime 48h --max-key-age 1d"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.path("ca/config/ca.json")).unwrap()).unwrap();
    assert_eq!(config["maxKeyAgeSecs"], 86_400);
    let metrics = free_port();
    let bind = format!("127.0.0.1:{metrics}");
    let server = site.serve_with("ca", &["--metrics-bind", &bind], &[]);
    let node = site.certify("ca", "node1");
    let cert = cert_at(&node.join("node1.crt"), 0);
    // Cut short to one day (the lifetime asked for two), from the key's
    // first certificate: now.
    let lifetime = cert.not_after().0 - cert.not_before().0;
    assert!(
        (86_400..=86_400 + 120).contains(&lifetime),
        "notBefore..notAfter is {lifetime} s"
    );
    // A second later (the ledger counts whole seconds), a renewal would
    // leave the key less than a day: refused.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = site.renew(&node, "node1");
    refused(&out, "this key is 0 days old");
    assert!(stderr(&out).contains("make a new key"), "{}", stderr(&out));
    // The operator sees it coming: the node's key (not the CA's own TLS
    // key, which the limit does not bind) reaches its limit within 30 days.
    let dir = site.path("ca");
    let status = fedpki(
        site.tmp.path(),
        &["pki", "status", "-p", dir.to_str().unwrap(), "--json"],
    );
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(
        status["certificates"]["keysAtAgeLimitIn30Days"], 1,
        "{status}"
    );
    let scrape = scrape_metrics(metrics);
    assert!(
        scrape
            .lines()
            .any(|l| l == "fedpki_keys_near_age_limit_30d 1"),
        "{scrape}"
    );
    let near = fedpki(
        site.tmp.path(),
        &[
            "pki",
            "list",
            "-p",
            dir.to_str().unwrap(),
            "--json",
            "--key-limit-within",
            "30d",
        ],
    );
    let near: Vec<serde_json::Value> = serde_json::from_str(&stdout(&near)).unwrap();
    assert_eq!(near.len(), 1, "{near:?}");
    assert_eq!(near[0]["subject"], "node1");
    assert!(near[0]["keyLimit"].is_string(), "{near:?}");
    drop(server);
    // An existing CA takes a new limit without being replaced.
    ok(site.pki("install -p @ca --max-key-age 365d"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.path("ca/config/ca.json")).unwrap()).unwrap();
    assert_eq!(config["maxKeyAgeSecs"], 365 * 86_400);
    refused(&site.pki("install -p @ca --max-key-age 12h"), "at least 1d");
}

#[test]
fn a_replicas_shared_ledger_keeps_a_keys_birth_across_tokens() {
    use fedpki_tests::postgres::Postgres;
    use fedpki_tests::replicas::Replicas;
    use fedpki_tests::tokens::{Provisioner, new_key};
    let pg = Postgres::start();
    pg.create_db("ca");
    let r = Replicas::install(&pg.url("ca"), "--cert-lifetime 48h --max-key-age 1d");
    let _a = r.serve("a", &[]);
    let provisioner = Provisioner::of(&r.site.path("a"), &format!("localhost:{}", r.site.port));
    // A sign request with a new token for `key`: status and body.
    let sign = |key: &fedpki_core::PrivateKey| {
        let body = provisioner.sign_body("node1", key);
        r.request(r.addr("a"), "POST", "/1.0/sign", Some(body))
            .unwrap()
    };
    let key = new_key();
    assert_eq!(sign(&key).0, 201);
    // A new token for the same key, a second later: its birth is in the
    // database, so less than a day would be left.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (status, body) = sign(&key);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("make a new key"),
        "{body}"
    );
    // Another key is certified.
    assert_eq!(sign(&new_key()).0, 201);
    // The database away: the key's birth cannot be read, and the CA says
    // so as it does for a write (503, /health), not as a failure of its own.
    pg.down();
    let (status, body) = sign(&new_key());
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("database is unavailable"),
        "{body}"
    );
    let (status, health) = r.request(r.addr("a"), "GET", "/health", None).unwrap();
    assert_eq!(
        (status, &health["store"]),
        (503, &serde_json::json!("database unavailable"))
    );
}
