//! Every profile fedpki issues, checked by pkilint (the DigiCert linter
//! for RFC 5280 certificates and CRLs): the root, the intermediate, a
//! node's certificate, the CA server's own, and a CRL listing a
//! revocation. No finding of WARNING or worse. Names are FQDNs here, as in
//! production: pkilint's name syntax wants a dot (OpenFL's single-label
//! collaborator names are reported as not domain names, by design of that
//! check, not of the profile).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::Path;
use std::process::Command;

use fedpki_tests::site::{self, Site};
use fedpki_tests::*;

/// pkilint's `tool` on `file` with `args`: its findings of WARNING or worse.
fn lint(tool: &str, args: &[&str], file: &Path) -> String {
    let bin = python::interpreter().with_file_name(tool);
    let out = Command::new(&bin)
        .args(["lint", "-s", "WARNING"])
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", bin.display()));
    let findings = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() || !findings.is_empty(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    findings
}

#[test]
fn pkilint_finds_nothing_in_any_profile_fedpki_issues() {
    let site = Site::new();
    let url = format!("ca.fedpki.test:{}", site.port);
    ok(site.pki(&format!("install -p @ca --ca-url {url}")));
    // The CA server's own certificate, made at its start.
    let bind = format!("127.0.0.1:{}", site.port);
    drop(site.serve_with("ca", &["--bind", &bind], &[]));
    // A node's, air-gapped (no name lookup needed).
    let node = site.path("node");
    std::fs::create_dir(&node).unwrap();
    let name = "node1.fedpki.test";
    ok(fedpki(&node, &["pki", "csr", "-n", name, "-o", "node.req"]));
    ok(site.pki("sign -p @ca @node/node.req -o @node/node.signed --yes"));
    let root_fp = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(
        &fedpki_core::encoding::pem_one(
            &std::fs::read_to_string(site.path("ca/certs/root_ca.crt")).unwrap(),
            "CERTIFICATE",
        )
        .unwrap(),
    ));
    ok(fedpki(
        &node,
        &[
            "pki",
            "import",
            "node.signed",
            "--root-fingerprint",
            &root_fp,
        ],
    ));
    let audit = std::fs::read_to_string(site.path("ca/db/audit.log")).unwrap();
    let server = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["subject"] == "ca.fedpki.test")
        .expect("the CA server's certificate in the audit log");
    let der = fedpki_core::encoding::unb64(server["der"].as_str().unwrap()).unwrap();
    std::fs::write(site.path("server.der"), der).unwrap();
    // A CRL with a revocation on it.
    let serial =
        fedpki_core::issue::serial_hex(&site::cert_at(&node.join(format!("cert/{name}.crt")), 0));
    ok(site.pki(&format!("revoke -p @ca --serial {serial}")));

    // The node's file holds its chain: the leaf alone.
    let leaf = site::cert_at(&node.join(format!("cert/{name}.crt")), 0);
    std::fs::write(
        site.path("node.der"),
        fedpki_core::issue::cert_der(&leaf).unwrap(),
    )
    .unwrap();
    for cert in [
        site.path("ca/certs/root_ca.crt"),
        site.path("ca/certs/intermediate_ca.crt"),
        site.path("node.der"),
        site.path("server.der"),
    ] {
        let findings = lint("lint_pkix_cert", &[], &cert);
        assert!(findings.is_empty(), "{}:\n{findings}", cert.display());
    }
    let crl = site.path("ca/certs/intermediate_ca.crl");
    assert!(
        site.crl_text(&std::fs::read(&crl).unwrap())
            .contains(&serial)
    );
    let findings = lint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &crl);
    assert!(findings.is_empty(), "{}:\n{findings}", crl.display());
}
