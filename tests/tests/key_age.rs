//! `pki install --max-key-age` on the real binary: a certificate is cut
//! short to its key's age limit, and a renewal that would leave the key
//! less than a day is refused with what to do. (The clock moved forward,
//! and a new token for an old key, are in the authority's unit tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_tests::site::{Site, cert_at};
use fedpki_tests::*;

#[test]
fn a_key_is_certified_up_to_its_age_limit_and_then_refused() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL --cert-lifetime 48h --max-key-age 1d"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.path("ca/config/ca.json")).unwrap()).unwrap();
    assert_eq!(config["maxKeyAgeSecs"], 86_400);
    let server = site.serve("ca");
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
    drop(server);
    // An existing CA takes a new limit without being replaced.
    ok(site.pki("install -p @ca --max-key-age 365d"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.path("ca/config/ca.json")).unwrap()).unwrap();
    assert_eq!(config["maxKeyAgeSecs"], 365 * 86_400);
    refused(&site.pki("install -p @ca --max-key-age 12h"), "at least 1d");
}
