//! A certificate's life on a real server: revoke (token, holder, operator,
//! online and offline), the CRL checked by OpenSSL, renew over mutual TLS
//! (and `--watch`), `pki list`, `pki verify`, and the audit log.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fedpki_tests::{
    TestCa, fedpki, node_auth, node_serial, ok, openssl_verify, refused, stderr, stdout,
};

/// `openssl verify -crl_check` of `<dir>/<name>.crt` with the CRL.
fn openssl_crl_check(ca: &TestCa, dir: &Path, name: &str, crl_der: &Path) -> Result<(), String> {
    let crl_pem = dir.join("crl.pem");
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(crl_der)
        .arg("-out")
        .arg(&crl_pem)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl crl: {out:?}");
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-crl_check", "-CAfile"])
        .arg(ca.dir.join("certs/root_ca.crt"))
        .arg("-untrusted")
        .arg(ca.dir.join("certs/intermediate_ca.crt"))
        .arg("-CRLfile")
        .arg(&crl_pem)
        .arg(dir.join(format!("{name}.crt")))
        .output()
        .unwrap();
    fedpki_tests::verified(&out)
}

fn list(ca: &TestCa) -> Vec<serde_json::Value> {
    let out = ok(fedpki(
        ca.tmp.path(),
        &["pki", "list", "-p", ca.dir_arg(), "--json"],
    ));
    serde_json::from_str::<serde_json::Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn status_of(rows: &[serde_json::Value], serial: &str) -> String {
    rows.iter()
        .find(|r| r["serial"] == serial)
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{serial} not listed: {rows:?}"))
}

fn verify(dir: &Path, name: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["pki", "verify", "-n", name, "-c", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    fedpki(dir, &args)
}

/// A `/1.0/revoke` body for the serial fedpki shows in hex, sent in
/// decimal as step-ca's API (and the step CLI) writes it.
fn revoke_body(serial: &str, ott: Option<&str>, reason: Option<u8>) -> Vec<u8> {
    let decimal = fedpki_core::serial::hex_to_decimal(serial).unwrap();
    let mut v = serde_json::json!({ "serial": decimal, "passive": true });
    if let Some(o) = ott {
        v["ott"] = o.into();
    }
    if let Some(r) = reason {
        v["reasonCode"] = r.into();
    }
    serde_json::to_vec(&v).unwrap()
}

/// A revoke token for `serial` (hex), made as `pki revoke` and
/// `step ca token --revoke` make it (with the provisioner key, `sub` the
/// serial in decimal), for the raw API tests.
fn revoke_token(ca: &TestCa, serial: &str, aud_path: &str) -> String {
    let serial = &fedpki_core::serial::hex_to_decimal(serial).unwrap();
    let key = fedpki::facade::unlock_key(
        &ca.dir.join("secrets/provisioner_key"),
        fedpki_tests::PASSWORD,
    )
    .unwrap();
    let root_der = ca.root_der();
    let subject = fedpki_core::name::Subject::new(serial).unwrap();
    fedpki_core::token::sign(
        &fedpki_core::token::TokenRequest {
            issuer: "provisioner",
            subject: &subject,
            sans: &[fedpki_core::name::San::parse(serial).unwrap()],
            audience: &format!("https://{}{aud_path}", ca.ca_url),
            root_der: &root_der,
            now: fedpki::facade::now(),
            ttl_secs: 300,
            tls_key_sha256: None,
        },
        &key,
        &mut fedpki::facade::OsEntropy,
    )
    .unwrap()
}

#[test]
fn revoke_crl_renew_list_verify_and_audit() {
    let ca = TestCa::install();
    let server = ca.serve();
    let a = ca.certify("alpha");
    let b = ca.certify("beta");
    let c = ca.certify("gamma");
    let (sa, sb, sc) = (
        node_serial(&a, "alpha"),
        node_serial(&b, "beta"),
        node_serial(&c, "gamma"),
    );
    let rows = list(&ca);
    // The three, and the CA server's own TLS certificate.
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows.iter().filter(|r| r["subject"] == "localhost").count(),
        1
    );
    for s in [&sa, &sb, &sc] {
        assert_eq!(status_of(&rows, s), "valid");
    }
    let shown = ok(verify(&a, "alpha", &[]));
    assert_eq!(
        stdout(&shown).matches("ok ").count(),
        5,
        "{}",
        stdout(&shown)
    );

    // Operator revocation while the server runs (through its API).
    let out = ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "revoke",
            "-p",
            ca.dir_arg(),
            "--serial",
            &sa.to_uppercase(),
            "--reason",
            "key-compromise",
            "--password-file",
            ca.pw_arg(),
        ],
    ));
    assert!(
        stderr(&out).contains("Revoked certificate"),
        "{}",
        stderr(&out)
    );
    let crl_path = ca.tmp.path().join("crl.der");
    ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "crl",
            "-p",
            ca.dir_arg(),
            "-o",
            crl_path.to_str().unwrap(),
        ],
    ));
    // OpenSSL: the CRL is signed by the intermediate and honoured.
    let int = ca.dir.join("certs/intermediate_ca.crt");
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&crl_path)
        .arg("-CAfile")
        .arg(&int)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("Next Update"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains(&sa.to_uppercase()), "{text}");
    let err = openssl_crl_check(&ca, &a, "alpha", &crl_path).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    openssl_crl_check(&ca, &b, "beta", &crl_path).unwrap();

    // GET /crl: DER, application/pkix-crl, the same revocations.
    let (status, head, _) = fedpki_tests::request_from(
        "127.0.0.1".parse().unwrap(),
        ca.port,
        &ca.root_der(),
        "GET",
        "/crl",
        b"",
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/pkix-crl"),
        "{head}"
    );

    // pki verify: revoked fails with exit 1 and says why; others pass.
    let out = verify(&a, "alpha", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAILED  revocation: revoked at"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("keyCompromise"));
    ok(verify(&b, "beta", &[]));
    // … also against a CRL file, offline.
    let out = verify(&a, "alpha", &["--crl", crl_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // … and a wrong name, a foreign key, each named.
    let out = verify(&b, "beta", &[]);
    assert!(out.status.success());
    std::fs::copy(a.join("alpha.key"), b.join("beta.key")).unwrap();
    let out = verify(&b, "beta", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAILED  key"), "{}", stdout(&out));

    // Raw API: who may revoke what.
    let (st, body) = ca.request("POST", "/1.0/revoke", Some(revoke_body(&sb, None, None)));
    assert_eq!(st, 401, "{body}");
    let (st, _) = ca.request("POST", "/1.0/revoke", Some(revoke_body(&sb, None, Some(6))));
    assert_eq!(st, 400, "certificateHold is refused");
    let other = revoke_token(&ca, &sc, "/1.0/revoke");
    let (st, body) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&sb, Some(&other), None)),
    );
    assert_eq!(st, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not "),
        "the refusal names both serials: {body}"
    );
    // On the wire serials are decimal, as step-ca's: hex is refused and
    // says so, and so is a non-passive revocation (step-ca: 501).
    for serial in [sb.clone(), "4a:3b".into(), "-12".into(), String::new()] {
        let raw = serde_json::json!({ "serial": serial, "ott": other });
        let (st, body) = ca.request("POST", "/1.0/revoke", Some(raw.to_string().into_bytes()));
        assert_eq!(st, 400, "{serial:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("decimal"),
            "{body}"
        );
    }
    let raw = serde_json::json!({ "serial": "12", "ott": other, "passive": false });
    let (st, body) = ca.request("POST", "/1.0/revoke", Some(raw.to_string().into_bytes()));
    assert_eq!(st, 501, "{body}");
    let sign_aud = revoke_token(&ca, &sb, "/1.0/sign");
    let (st, _) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&sb, Some(&sign_aud), None)),
    );
    assert_eq!(st, 401, "a token for another audience is refused");
    let unknown = "4a".repeat(16);
    let t = revoke_token(&ca, &unknown, "/1.0/revoke");
    let (st, body) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&unknown, Some(&t), None)),
    );
    assert_eq!(st, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no certificate with serial"),
        "{body}"
    );
    // The refused revocation still spent its token: the exact outcome, not
    // just the absence of a row that never existed.
    let (st, body) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&unknown, Some(&t), None)),
    );
    assert_eq!(st, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the token was already used"),
        "{body}"
    );
    let (st, _) = ca.request("POST", "/1.0/revoke", Some(b"{not json".to_vec()));
    assert_eq!(st, 400);
    // The holder of gamma over mTLS: not beta, but itself.
    let gamma = node_auth(&c, "gamma");
    let (st, _) = ca
        .request_as(
            &gamma,
            "POST",
            "/1.0/revoke",
            Some(revoke_body(&sb, None, None)),
        )
        .unwrap();
    assert_eq!(
        st, 400,
        "as step-ca: the body's serial is not the presented one"
    );

    // Renewal over mTLS: same key and names, new serial and validity.
    let before = std::fs::read_to_string(c.join("gamma.crt")).unwrap();
    let out = ok(fedpki(
        &c,
        &["pki", "renew", "-n", "gamma", "-c", c.to_str().unwrap()],
    ));
    assert!(stderr(&out).contains("Renewed gamma"));
    let sc2 = node_serial(&c, "gamma");
    assert_ne!(sc, sc2);
    assert_ne!(
        before,
        std::fs::read_to_string(c.join("gamma.crt")).unwrap()
    );
    openssl_verify(
        &ca.dir.join("certs/root_ca.crt"),
        &c.join("gamma.crt"),
        Some("sslclient"),
    )
    .unwrap();
    ok(verify(&c, "gamma", &[]));
    // A revoked certificate is not renewed, and the files stay.
    let alpha_before = std::fs::read(a.join("alpha.crt")).unwrap();
    let out = fedpki(
        &a,
        &["pki", "renew", "-n", "alpha", "-c", a.to_str().unwrap()],
    );
    refused(&out, "revoked");
    assert_eq!(std::fs::read(a.join("alpha.crt")).unwrap(), alpha_before);
    // Renewal without a client certificate.
    let (st, _) = ca.request("POST", "/1.0/renew", Some(b"{}".to_vec()));
    assert_eq!(st, 401);

    // The new gamma revokes itself; a revoke token works once.
    let t = revoke_token(&ca, &sb, "/1.0/revoke");
    let (st, body) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&sb, Some(&t), Some(5))),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["alreadyRevoked"], false);
    let (st, _) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&sb, Some(&t), Some(5))),
    );
    assert_eq!(st, 401, "the revoke token was spent");
    let gamma2 = node_auth(&c, "gamma");
    let (st, body) = ca
        .request_as(
            &gamma2,
            "POST",
            "/1.0/revoke",
            Some(revoke_body(&sc2, None, Some(4))),
        )
        .unwrap();
    assert_eq!(st, 200, "{body}");
    let rows = list(&ca);
    assert_eq!(rows.len(), 5);
    assert_eq!(status_of(&rows, &sa), "revoked");
    assert_eq!(status_of(&rows, &sb), "revoked");
    assert_eq!(status_of(&rows, &sc), "valid");
    assert_eq!(status_of(&rows, &sc2), "revoked");

    // Offline: stop the server, revoke the old gamma, sign a CRL.
    drop(server);
    ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "revoke",
            "-p",
            ca.dir_arg(),
            "--serial",
            &sc,
            "--reason",
            "superseded",
            "--password-file",
            ca.pw_arg(),
        ],
    ));
    let out = fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "revoke",
            "-p",
            ca.dir_arg(),
            "--serial",
            "00zz",
            "--password-file",
            ca.pw_arg(),
        ],
    );
    refused(&out, "not a certificate serial");
    let offline_crl = ca.tmp.path().join("offline.der");
    ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "crl",
            "-p",
            ca.dir_arg(),
            "-o",
            offline_crl.to_str().unwrap(),
            "--password-file",
            ca.pw_arg(),
        ],
    ));
    let parsed = fedpki_core::crl::Crl::parse(&std::fs::read(&offline_crl).unwrap()).unwrap();
    assert_eq!(parsed.entries().len(), 4);
    let first = fedpki_core::crl::Crl::parse(&std::fs::read(&crl_path).unwrap()).unwrap();
    assert!(parsed.number() > first.number(), "CRL numbers grow");
    // The restarted server serves a CRL with all four.
    let _server = ca.serve();
    let (st, _, _) = fedpki_tests::request_from(
        "127.0.0.1".parse().unwrap(),
        ca.port,
        &ca.root_der(),
        "GET",
        "/crl",
        b"",
    );
    assert_eq!(st, 200);
    let crl_file = ca.dir.join("certs/intermediate_ca.crl");
    let served = fedpki_core::crl::Crl::parse(&std::fs::read(&crl_file).unwrap()).unwrap();
    assert_eq!(served.entries().len(), 4);

    // The audit log: the server's TLS certificates (two starts), 3 issued,
    // 1 renewed, 4 revoked, and the revoke token spent on an unknown
    // serial; intact.
    let out = ok(fedpki(ca.tmp.path(), &["pki", "audit", "-p", ca.dir_arg()]));
    assert!(
        stdout(&out).contains("intact: 11 entries"),
        "{}",
        stdout(&out)
    );
    let log_path = ca.dir.join("db/audit.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(log.matches("\"event\":\"issue\"").count(), 5);
    assert_eq!(log.matches("the CA's own HTTPS server").count(), 2);
    assert_eq!(log.matches("\"event\":\"renew\"").count(), 1);
    assert_eq!(log.matches("\"event\":\"revoke\"").count(), 4);
    assert_eq!(log.matches("\"event\":\"burn\"").count(), 1);
    // Tampered: one field of entry 2 altered.
    let lines: Vec<&str> = log.lines().collect();
    let mut altered = lines.clone();
    let evil = altered[2].replace("\"subject\":\"beta\"", "\"subject\":\"evil\"");
    assert_ne!(evil, altered[2]);
    altered[2] = &evil;
    std::fs::write(&log_path, altered.join("\n") + "\n").unwrap();
    let out = fedpki(ca.tmp.path(), &["pki", "audit", "-p", ca.dir_arg()]);
    assert_eq!(out.status.code(), Some(1));
    refused(&out, "entry 3: its content does not match its hash");
    // Tampered: the last entry removed (only the database's head shows it).
    std::fs::write(&log_path, lines[..10].join("\n") + "\n").unwrap();
    let out = fedpki(ca.tmp.path(), &["pki", "audit", "-p", ca.dir_arg()]);
    refused(&out, "entry 11");
    refused(&out, "the end of the log was removed");
    std::fs::write(&log_path, &log).unwrap();
    ok(fedpki(ca.tmp.path(), &["pki", "audit", "-p", ca.dir_arg()]));
}

#[test]
fn watch_renews_at_two_thirds_and_runs_the_command_expired_is_refused() {
    // 12 s certificates: renewed 8 s after issue.
    let ca = TestCa::install_with(&["--cert-lifetime", "12s"]);
    let server = ca.serve();
    let dir = ca.certify("node");
    let old = ca.certify("old");
    let issued = Instant::now();
    let first = node_serial(&dir, "node");
    let marker = dir.join("reloaded");
    let mut watch = Command::new(fedpki_tests::bin())
        .args([
            "pki",
            "renew",
            "-n",
            "node",
            "-c",
            dir.to_str().unwrap(),
            "--watch",
            "--exec",
            &format!("echo reloaded >> {}", marker.display()),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !marker.exists() && Instant::now() < deadline {
        assert!(watch.try_wait().unwrap().is_none(), "watch exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let renewed_after = issued.elapsed();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(marker.exists(), "no renewal within 40 s");
    // Not before half of 12 s (a short lifetime), less the jitter (at most
    // 5 %) and the second granularity.
    assert!(
        renewed_after >= Duration::from_secs(4),
        "renewed too early: {renewed_after:?}"
    );
    assert_ne!(node_serial(&dir, "node"), first);
    ok(verify(&dir, "node", &[]));

    // An expired certificate: refused by the client before sending, and by
    // the server's TLS if sent anyway; its files stay.
    while issued.elapsed() < Duration::from_secs(14) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = std::fs::read(old.join("old.crt")).unwrap();
    let out = fedpki(
        &old,
        &["pki", "renew", "-n", "old", "-c", old.to_str().unwrap()],
    );
    refused(&out, "has expired");
    assert_eq!(std::fs::read(old.join("old.crt")).unwrap(), before);
    let auth = node_auth(&old, "old");
    // TLS 1.3 finishes the client's side first; the server refuses the
    // expired certificate in its handshake, so the client sees a closed
    // connection and the server's log says why.
    let refused_renewal = ca.request_as(&auth, "POST", "/1.0/renew", Some(b"{}".to_vec()));
    assert!(refused_renewal.is_err(), "{refused_renewal:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        server
            .lines()
            .iter()
            .any(|l| l.contains("tls_handshake_failed")
                && l.to_ascii_lowercase().contains("expired")),
        "the server did not refuse the expired certificate: {:?}",
        server.lines()
    );
    let out = verify(&old, "old", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("FAILED  validity"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn install_refuses_a_bad_lifetime_and_renew_needs_a_ca_address() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["5s", "9000h", "soon"] {
        let out = fedpki(
            tmp.path(),
            &[
                "pki",
                "install",
                "-p",
                "ca",
                "--cert-lifetime",
                bad,
                "--password-file",
                "/nonexistent",
            ],
        );
        refused(&out, "lifetime");
        assert_eq!(out.status.code(), Some(2), "a usage error");
        assert!(!tmp.path().join("ca").exists());
    }
    // Every flag is checked when the command line is read, before a file is
    // opened: the missing CA folder is never reached, the bad flag is named.
    for (args, flag) in [
        (
            &["pki", "revoke", "-p", "missing", "--serial", "xyz"][..],
            "--serial",
        ),
        (
            &[
                "pki", "revoke", "-p", "missing", "--serial", "0a", "--reason", "bored",
            ],
            "--reason",
        ),
        (
            &["pki", "get-token", "-p", "missing", "-n", "a", "--ttl", "0"],
            "--ttl",
        ),
        (
            &["pki", "certify", "-n", "a", "-t", "-", "--key-type", "rsa9"],
            "--key-type",
        ),
        (
            &["pki", "install", "-p", "missing", "--ca-url", "no port"],
            "--ca-url",
        ),
        (
            &[
                "pki",
                "import",
                "missing.signed",
                "--root-fingerprint",
                "abc",
            ],
            "--root-fingerprint",
        ),
    ] {
        let out = fedpki(tmp.path(), args);
        refused(&out, flag);
        assert_eq!(out.status.code(), Some(2), "{args:?}: a usage error");
        assert!(
            !stderr(&out).contains("missing"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = fedpki(tmp.path(), &["pki", "renew", "-n", "x", "-c", "."]);
    refused(&out, "give --ca-url");
}

/// Issue a certificate for `name` through the raw API; its serial (hex).
fn issue_raw(ca: &TestCa, key: &fedpki_core::PrivateKey, name: &str) -> String {
    let subject = fedpki_core::name::Subject::new(name).unwrap();
    let san = fedpki_core::name::San::parse(name).unwrap();
    let ott = fedpki_core::token::sign(
        &fedpki_core::token::TokenRequest {
            issuer: "provisioner",
            subject: &subject,
            sans: std::slice::from_ref(&san),
            audience: &format!("https://{}/1.0/sign", ca.ca_url),
            root_der: &ca.root_der(),
            now: fedpki::facade::now(),
            ttl_secs: 300,
            tls_key_sha256: None,
        },
        key,
        &mut fedpki::facade::OsEntropy,
    )
    .unwrap();
    let node_key = fedpki_core::PrivateKey::generate(
        fedpki_core::KeyType::P256,
        &mut fedpki::facade::OsEntropy,
    )
    .unwrap();
    let csr = fedpki_core::csr::build(&node_key, &subject, &[san])
        .unwrap()
        .to_pem()
        .unwrap();
    let body = serde_json::to_vec(&serde_json::json!({"csr": csr, "ott": ott})).unwrap();
    let (status, answer) = ca.post_sign(body);
    assert_eq!(status, 201, "{answer}");
    let cert = fedpki_core::issue::parse_cert_pem(answer["crt"].as_str().unwrap()).unwrap();
    fedpki_core::issue::serial_hex(&cert)
}

/// `GET /crl`: the DER the server serves now.
fn served_crl(ca: &TestCa) -> Vec<u8> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(fedpki::facade::https_request(
        "localhost",
        ca.port,
        &ca.root_der(),
        "GET",
        "/crl",
        None,
    ))
    .unwrap()
    .body
    .to_vec()
}

fn crl_serials(der: &[u8]) -> std::collections::BTreeSet<String> {
    fedpki_core::crl::Crl::parse(der)
        .unwrap()
        .entries()
        .into_iter()
        .map(|r| r.serial_hex)
        .collect()
}

#[test]
fn concurrent_revocations_are_all_in_the_crl_their_answers_promise() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let key = fedpki::facade::unlock_key(
        &ca.dir.join("secrets/provisioner_key"),
        fedpki_tests::PASSWORD,
    )
    .unwrap();
    let mut revoked = std::collections::BTreeSet::new();
    for round in 0..3 {
        let serials: Vec<String> = (0..48)
            .map(|i| issue_raw(&ca, &key, &format!("r{round}n{i}")))
            .collect();
        let tokens: Vec<String> = serials
            .iter()
            .map(|s| revoke_token(&ca, s, "/1.0/revoke"))
            .collect();
        // All at once: 48 revocations racing each other's CRL refreshes.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(serials.len()));
        std::thread::scope(|scope| {
            for (serial, ott) in serials.iter().zip(&tokens) {
                let barrier = barrier.clone();
                let ca = &ca;
                scope.spawn(move || {
                    barrier.wait();
                    let (status, answer) = ca.request(
                        "POST",
                        "/1.0/revoke",
                        Some(revoke_body(serial, Some(ott), Some(1))),
                    );
                    assert_eq!(status, 200, "{answer}");
                });
            }
        });
        revoked.extend(serials);
        // Every answer above was 200: the CRL served now, and the one on
        // disk, must hold every one of them.
        let served = served_crl(&ca);
        let on_disk = std::fs::read(ca.dir.join("certs/intermediate_ca.crl")).unwrap();
        for (what, der) in [("served", served), ("on disk", on_disk)] {
            let listed = crl_serials(&der);
            let missing: Vec<_> = revoked.difference(&listed).collect();
            assert!(
                missing.is_empty(),
                "round {round}: {what} CRL lacks {missing:?}"
            );
        }
    }
}

#[test]
fn key_compromise_revokes_every_certificate_of_that_key() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let dir = ca.certify("node1");
    let bystander = ca.certify("node2");
    let first = node_serial(&dir, "node1");
    let auth = node_auth(&dir, "node1");
    let renew = || {
        let (st, body) = ca
            .request_as(&auth, "POST", "/1.0/renew", Some(b"{}".to_vec()))
            .unwrap();
        assert_eq!(st, 201, "{body}");
        let cert = fedpki_core::issue::parse_cert_pem(body["crt"].as_str().unwrap()).unwrap();
        fedpki_core::issue::serial_hex(&cert)
    };
    // A certificate has one live successor: renewing it again answers the
    // same one (a client whose answer was lost gets it back)...
    let second = renew();
    assert_eq!(
        renew(),
        second,
        "a second renewal of one certificate made another"
    );
    // ...until that successor is revoked (superseded: about it alone).
    let ott = revoke_token(&ca, &second, "/1.0/revoke");
    let (st, body) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&second, Some(&ott), Some(4))),
    );
    assert_eq!(st, 200, "{body}");
    let third = renew();
    assert_ne!(third, second);
    let renewed = [third, second];
    let rows = list(&ca);
    // Renewed: its successor is the one in use (still unexpired, still not
    // revoked, so the key compromise below reaches it too).
    assert_eq!(status_of(&rows, &first), "superseded");
    assert_eq!(status_of(&rows, &renewed[0]), "valid");
    assert_eq!(status_of(&rows, &renewed[1]), "revoked");
    // keyCompromise of one is the compromise of them all.
    let ott = revoke_token(&ca, &first, "/1.0/revoke");
    let (st, body) = ca.request(
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&first, Some(&ott), Some(1))),
    );
    assert_eq!(st, 200, "{body}");
    let rows = list(&ca);
    for s in [&first, &renewed[0], &renewed[1]] {
        assert_eq!(status_of(&rows, s), "revoked", "{s}");
    }
    assert_eq!(status_of(&rows, &node_serial(&bystander, "node2")), "valid");
    let listed = crl_serials(&served_crl(&ca));
    for s in [&first, &renewed[0], &renewed[1]] {
        assert!(listed.contains(s.as_str()), "{s} not in the CRL");
    }
    // None of them renews any more.
    let (st, _) = ca
        .request_as(&auth, "POST", "/1.0/renew", Some(b"{}".to_vec()))
        .unwrap();
    assert_eq!(st, 401);
}
