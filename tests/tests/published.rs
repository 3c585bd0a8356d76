//! What a leaf says about where its issuer publishes, read by OpenSSL: the
//! CRL Distribution Point and the authorityInfoAccess caIssuers are the
//! CA's `/crl/KID` and `/crt/KID`, both answer, and OpenSSL verifies the
//! leaf against the CRL fetched from there; no intermediate outlives its
//! root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_tests::site::{Site, cert_at, kid};
use fedpki_tests::*;

#[test]
fn a_leaf_names_its_issuers_crl_and_certificate_and_both_are_served() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let root = cert_at(&site.path("ca/certs/root_ca.crt"), 0);
    let int = cert_at(&site.path("ca/certs/intermediate_ca.crt"), 0);
    assert!(
        int.not_after() <= root.not_after(),
        "the intermediate outlives its root"
    );

    let _server = site.serve("ca");
    let node = site.certify("ca", "node1");
    let leaf = node.join("node1.crt");
    let text = openssl_text(&leaf);
    let base = format!("https://localhost:{}", site.port);
    let kid = kid(&int);
    for needle in [
        "X509v3 CRL Distribution Points".to_owned(),
        format!("URI:{base}/crl/{kid}"),
        "Authority Information Access".to_owned(),
        format!("CA Issuers - URI:{base}/crt/{kid}"),
    ] {
        assert!(text.contains(&needle), "{needle:?} missing from:\n{text}");
    }

    // The caIssuers URL answers with the intermediate that signed it.
    let (status, der) = site.get("ca", &format!("/crt/{kid}"));
    assert_eq!(status, 200);
    assert_eq!(der, fedpki_core::issue::cert_der(&int).unwrap());
    assert_eq!(site.get("ca", "/crt/00ff").0, 404);

    // OpenSSL checks the leaf against the CRL its distribution point serves.
    let (status, crl) = site.get("ca", &format!("/crl/{kid}"));
    assert_eq!(status, 200);
    let crl_file = site.path("published.crl");
    std::fs::write(&crl_file, &crl).unwrap();
    let crl_pem = site.path("published.crl.pem");
    openssl(
        site.tmp.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            crl_file.to_str().unwrap(),
            "-out",
            crl_pem.to_str().unwrap(),
        ],
    );
    openssl(
        site.tmp.path(),
        &[
            "verify",
            "-x509_strict",
            "-crl_check",
            "-CRLfile",
            crl_pem.to_str().unwrap(),
            "-CAfile",
            site.path("ca/certs/root_ca.crt").to_str().unwrap(),
            "-untrusted",
            site.path("ca/certs/intermediate_ca.crt").to_str().unwrap(),
            leaf.to_str().unwrap(),
        ],
    );
}
