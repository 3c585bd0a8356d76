//! The edges an operator trips on, on the real binary: certify does not
//! replace a node's key unasked (and spends no token refusing); a token
//! pasted with line breaks works, and a token file given without `@` is
//! named; a second revocation does not claim a new CRL; replacing a CA
//! says how many certificates stop being trusted; a CA waiting for its
//! root says the whole next command; results (the root fingerprint) go to
//! standard output; the manual flow keeps install's password policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_tests::site::{Site, cert_at};
use fedpki_tests::*;

fn certify(site: &Site, name: &str, token: &str, extra: &[&str]) -> std::process::Output {
    site.certify_with(name, token, extra)
}

#[test]
fn certify_keeps_a_nodes_key_unless_forced_and_takes_pasted_tokens() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let _server = site.serve("ca");

    // A token broken over lines, as a mail or a terminal leaves it.
    let first = site.token("ca", "node1");
    let wrapped: String = first
        .as_bytes()
        .chunks(64)
        .map(|c| format!("  {}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let file = site.path("wrapped.token");
    std::fs::write(&file, wrapped).unwrap();
    ok(certify(
        &site,
        "node1",
        &format!("@{}", file.display()),
        &[],
    ));
    let crt = site.path("node1/node1.crt");
    let key_before = std::fs::read(site.path("node1/node1.key")).unwrap();
    let serial = fedpki_core::issue::serial_hex(&cert_at(&crt, 0));

    // The same folder again: kept, and the new token not spent.
    let second = site.token("ca", "node1");
    let out = certify(&site, "node1", &second, &[]);
    refused(&out, "--force");
    refused(&out, "the token was not used");
    assert_eq!(
        std::fs::read(site.path("node1/node1.key")).unwrap(),
        key_before
    );
    assert_eq!(fedpki_core::issue::serial_hex(&cert_at(&crt, 0)), serial);
    ok(certify(&site, "node1", &second, &["--force"]));
    assert_ne!(
        std::fs::read(site.path("node1/node1.key")).unwrap(),
        key_before
    );

    // A token file named without `@`: said so, not sent as a token.
    let file = site.path("node2.token");
    std::fs::write(&file, site.token("ca", "node2")).unwrap();
    let out = certify(&site, "node2", file.to_str().unwrap(), &[]);
    refused(&out, &format!("did you mean -t @{}", file.display()));
    ok(certify(
        &site,
        "node2",
        &format!("@{}", file.display()),
        &[],
    ));
}

#[test]
fn a_second_revocation_and_a_replaced_ca_say_what_happened() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let node = site.certify("ca", "node1");
    let serial = fedpki_core::issue::serial_hex(&cert_at(&node.join("node1.crt"), 0));
    drop(server);

    let first = ok(site.pki(&format!("revoke -p @ca --serial {serial}")));
    assert!(
        stderr(&first).contains("Signed a new CRL"),
        "{}",
        stderr(&first)
    );
    let again = ok(site.pki(&format!("revoke -p @ca --serial {serial}")));
    let said = stderr(&again);
    assert!(said.contains("already revoked"), "{said}");
    assert!(!said.contains("Signed a new CRL"), "{said}");
    assert!(said.contains("lists it"), "{said}");

    // The CA's own server certificate is still valid: replacing the CA
    // says so.
    let out = ok(site.pki("install -p @ca --ca-url $URL --force"));
    let said = stderr(&out);
    assert!(
        said.contains("1 certificate it issued still valid, which nodes will no longer trust"),
        "{said}"
    );
}

#[test]
fn a_ca_waiting_for_its_root_names_the_whole_next_command() {
    let site = Site::new();
    site.root_init("root", "");
    ok(site.pki("install -p @ca --ca-url $URL --offline-root -o @req"));
    let out = site.pki("run -p @ca");
    refused(&out, "--complete SIGNED --root-fingerprint FINGERPRINT");
    refused(&out, "the file `pki install -o` wrote");
}

#[test]
fn verify_on_a_node_without_the_cas_address_offers_a_crl_file() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let node = site.certify("ca", "node1");
    drop(server);
    // As on an air-gapped node: nothing says where the CA is.
    std::fs::remove_file(node.join("ca.json")).unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["pki", "verify", "-n", "node1", "-c", node.to_str().unwrap()];
        args.extend_from_slice(extra);
        fedpki(site.tmp.path(), &args)
    };
    let out = verify(&[]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("--crl FILE"), "{}", stdout(&out));
    let crl = site.path("ca.crl");
    ok(site.pki(&format!("crl -p @ca -o {}", crl.display())));
    let out = ok(verify(&["--crl", crl.to_str().unwrap()]));
    assert!(stdout(&out).contains("not revoked"), "{}", stdout(&out));
}

#[test]
fn install_and_root_init_print_the_fingerprint_on_stdout_and_talk_on_stderr() {
    let site = Site::new();
    let out = ok(site.pki("install -p @ca --ca-url $URL"));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.path("ca/config/ca.json")).unwrap()).unwrap();
    let fingerprint = config["rootFingerprint"].as_str().unwrap();
    assert_eq!(
        stdout(&out),
        format!("Root fingerprint (SHA-256): {fingerprint}\n")
    );
    assert!(
        stderr(&out).contains("Next: fedpki pki run"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(fingerprint));
    // The offline root's, the same way.
    let printed = site.root_init("root", "");
    assert_eq!(printed.len(), 64);
}

#[test]
fn the_manual_flows_workspace_password_follows_the_install_policy() {
    let site = Site::new();
    let ws = site.path("ws");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(site.path("short"), "abc\n").unwrap();
    let short = site.path("short");
    let out = fedpki(
        &ws,
        &[
            "workspace",
            "certify",
            "--password-file",
            short.to_str().unwrap(),
        ],
    );
    refused(&out, "at least 8");
    assert_eq!(
        std::fs::read_dir(&ws).unwrap().count(),
        0,
        "something was written"
    );
}
