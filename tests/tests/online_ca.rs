//! The online CA end to end (issue 2): `fedpki pki install / run /
//! get-token / certify / uninstall`, the real binary against a real server
//! on loopback, every certificate checked by OpenSSL and by rustls/webpki.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, Bundle, TokenRequest};
use fedpki_core::{KeyType, PrivateKey, UnixTime};
use fedpki_tests::*;

fn certify(
    ca: &TestCa,
    name: &str,
    token: &str,
    dir: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "pki",
        "certify",
        "-n",
        name,
        "-t",
        token,
        "-c",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    fedpki(ca.tmp.path(), &args)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn now() -> u64 {
    fedpki::facade::now().0
}

/// Sign a token with the CA's own provisioner key, but with claims of the
/// test's choosing: the only way to make expired or future tokens without
/// waiting.
fn forge(ca: &TestCa, subject: &str, issuer: &str, audience: &str, at: u64, ttl: u64) -> String {
    let key =
        fedpki::facade::unlock_key(&ca.dir.join("secrets/provisioner_key"), PASSWORD).unwrap();
    forge_with(&key, &ca.root_der(), subject, issuer, audience, at, ttl)
}

fn forge_with(
    key: &PrivateKey,
    root_der: &[u8],
    subject: &str,
    issuer: &str,
    audience: &str,
    at: u64,
    ttl: u64,
) -> String {
    let subject = Subject::new(subject).unwrap();
    token::sign(
        &TokenRequest {
            issuer,
            subject: &subject,
            sans: &[],
            audience,
            root_der,
            now: UnixTime(at),
            ttl_secs: ttl,
            tls_key_sha256: None,
        },
        key,
        &mut fedpki::facade::OsEntropy,
    )
    .unwrap()
}

fn jwt_of(bundle: &str) -> String {
    Bundle::parse(bundle).unwrap().0.jwt
}

fn csr_pem(name: &str, sans: &[&str]) -> String {
    let key = PrivateKey::generate(KeyType::P256, &mut fedpki::facade::OsEntropy).unwrap();
    let sans: Vec<San> = sans.iter().map(|s| San::parse(s).unwrap()).collect();
    fedpki_core::csr::build(&key, &Subject::new(name).unwrap(), &sans)
        .unwrap()
        .to_pem()
        .unwrap()
}

fn sign_body(csr: &str, ott: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"csr": csr, "ott": ott})).unwrap()
}

fn assert_leaf_profile(cert: &Path, name: &str) {
    let text = openssl_text(cert);
    for needle in [
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        &format!("DNS:{name}"),
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        &format!("Subject: CN = {name}"),
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn whole_flow_aggregator_and_collaborator_then_mutual_tls() {
    let ca = TestCa::install_with(&["--node-on-ca-host", "allow"]);
    // The CA folder: 0700, keys 0600 and encrypted in a form OpenSSL reads.
    assert_eq!(mode(&ca.dir), 0o700);
    for key in ["root_ca_key", "intermediate_ca_key", "provisioner_key"] {
        let p = ca.dir.join("secrets").join(key);
        assert_eq!(mode(&p), 0o600, "{key}");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{key}"
        );
        openssl(
            ca.tmp.path(),
            &[
                "pkey",
                "-in",
                p.to_str().unwrap(),
                "-passin",
                &format!("pass:{PASSWORD}"),
                "-noout",
            ],
        );
    }
    // No password anywhere on disk.
    for (path, bytes) in snapshot(&ca.dir) {
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "{}",
            path.display()
        );
    }
    // The CA profiles, as OpenSSL sees them.
    let root_text = openssl_text(&ca.dir.join("certs/root_ca.crt"));
    assert!(
        root_text.contains("CA:TRUE, pathlen:1")
            && root_text.contains("Certificate Sign, CRL Sign"),
        "{root_text}"
    );
    let int_text = openssl_text(&ca.dir.join("certs/intermediate_ca.crt"));
    assert!(
        int_text.contains("CA:TRUE, pathlen:0")
            && int_text.contains("X509v3 Authority Key Identifier"),
        "{int_text}"
    );

    let server = ca.serve();
    let agg_token = ca.token("localhost", &[]);
    let col_token = ca.token("collaborator1", &["--ttl", "1h"]);
    assert_eq!(
        agg_token.matches('.').count(),
        1,
        "bundle = base64(JWT).base64(root)"
    );

    let agg = ca.workdir("aggregator");
    let col = ca.workdir("collaborator");
    ok(certify(
        &ca,
        "localhost",
        &agg_token,
        &agg.join("cert"),
        &[],
    ));
    ok(certify(
        &ca,
        "collaborator1",
        &col_token,
        &col.join("cert"),
        &["--key-type", "p384"],
    ));

    for (dir, name) in [
        (agg.join("cert"), "localhost"),
        (col.join("cert"), "collaborator1"),
    ] {
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        assert_eq!(mode(&key), 0o600);
        assert!(
            std::fs::read_to_string(&key)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert_eq!(
            std::fs::read_to_string(&crt)
                .unwrap()
                .matches("BEGIN CERTIFICATE")
                .count(),
            2,
            "leaf then intermediate"
        );
        assert_eq!(
            std::fs::read(dir.join("root_ca.crt")).unwrap(),
            std::fs::read(ca.dir.join("certs/root_ca.crt")).unwrap()
        );
        openssl_verify(&dir.join("root_ca.crt"), &crt, Some("sslserver")).unwrap();
        openssl_verify(&dir.join("root_ca.crt"), &crt, Some("sslclient")).unwrap();
        assert_leaf_profile(&crt, name);
        // OpenSSL agrees the key matches the certificate.
        let pub_from_key = openssl(&dir, &["pkey", "-in", key.to_str().unwrap(), "-pubout"]).stdout;
        let pub_from_crt = openssl(
            &dir,
            &["x509", "-in", crt.to_str().unwrap(), "-noout", "-pubkey"],
        )
        .stdout;
        assert_eq!(pub_from_key, pub_from_crt);
        // One year, backdated a minute.
        let leaf = fedpki_core::issue::parse_certs_pem(&std::fs::read_to_string(&crt).unwrap())
            .unwrap()
            .remove(0);
        assert_eq!(fedpki_core::chain::lifetime_secs(&leaf), 365 * 86400 + 60);
    }

    // webpki as server and as client certificate, in one real handshake.
    let agg_dir = agg.join("cert");
    let col_dir = col.join("cert");
    let server_id = mtls::Identity {
        cert: &agg_dir.join("localhost.crt"),
        key: &agg_dir.join("localhost.key"),
        trust: &agg_dir.join("root_ca.crt"),
    };
    let client_id = mtls::Identity {
        cert: &col_dir.join("collaborator1.crt"),
        key: &col_dir.join("collaborator1.key"),
        trust: &col_dir.join("root_ca.crt"),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt
        .block_on(mtls::handshake(server_id, client_id, "localhost"))
        .unwrap();
    assert_eq!(h.server_saw_client, "collaborator1");
    assert_eq!(h.client_saw_server, "localhost");
    // A name the aggregator's certificate does not carry is refused.
    assert!(
        rt.block_on(mtls::handshake(server_id, client_id, "other.example"))
            .is_err()
    );

    assert!(server.logged("event=issued"));
    assert!(
        !server
            .lines()
            .iter()
            .any(|l| l.contains(&jwt_of(&agg_token))),
        "the server never logs tokens"
    );
    assert!(server.stop().success(), "clean exit on SIGTERM");
}

#[test]
fn each_bad_request_is_refused_with_its_status_and_the_server_keeps_serving() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let aud = token::sign_audience(&ca.ca_url);
    let t = now();
    let health = |ca: &TestCa| {
        assert_eq!(
            ca.get("/health"),
            (
                200,
                serde_json::json!({"status": "ok", "store": "ok", "crl": "ok"})
            )
        )
    };

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "expired",
            sign_body(
                &csr_pem("a", &[]),
                &forge(&ca, "a", "provisioner", &aud, t - 7200, 300),
            ),
            401,
            "expired",
        ),
        (
            "not yet valid",
            sign_body(
                &csr_pem("a", &[]),
                &forge(&ca, "a", "provisioner", &aud, t + 7200, 300),
            ),
            401,
            "not valid yet",
        ),
        (
            "wrong aud",
            sign_body(
                &csr_pem("a", &[]),
                &forge(
                    &ca,
                    "a",
                    "provisioner",
                    "https://localhost:1/1.0/sign",
                    t,
                    300,
                ),
            ),
            401,
            "aud",
        ),
        (
            "wrong iss",
            sign_body(
                &csr_pem("a", &[]),
                &forge(&ca, "a", "intruder", &aud, t, 300),
            ),
            401,
            "provisioner",
        ),
        (
            "CN differs",
            sign_body(&csr_pem("b", &[]), &jwt_of(&ca.token("a", &[]))),
            403,
            "common name",
        ),
        (
            "SANs differ",
            sign_body(
                &csr_pem("a", &["a", "evil.example"]),
                &jwt_of(&ca.token("a", &[])),
            ),
            403,
            "SANs",
        ),
        ("invalid JSON", b"{not json".to_vec(), 400, "JSON"),
        (
            "missing ott",
            serde_json::to_vec(&serde_json::json!({"csr": csr_pem("a", &[])})).unwrap(),
            400,
            "JSON",
        ),
        (
            "non-PEM CSR",
            sign_body("hello", &jwt_of(&ca.token("a", &[]))),
            400,
            "not a valid CSR",
        ),
        ("1 MiB body", vec![b' '; 1024 * 1024], 413, "larger than"),
    ];
    for (what, body, status, text) in cases {
        let (got, json) = ca.post_sign(body);
        assert_eq!(got, status, "{what}: {json}");
        assert_eq!(json["status"], status, "{what}: error shape {json}");
        let message = json["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(text),
            "{what}: {message:?} should mention {text:?}"
        );
        health(&ca);
    }

    // Far past the linger limit the server may just close the connection;
    // either way it keeps serving.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let huge = rt.block_on(fedpki::facade::https_request(
        "localhost",
        ca.port,
        &ca.root_der(),
        "POST",
        "/1.0/sign",
        Some(vec![b' '; 3 * 1024 * 1024]),
    ));
    assert!(huge.map_or(true, |r| r.status == 413));
    health(&ca);

    // Tampered signature: flip the last signature character.
    let mut jwt = jwt_of(&ca.token("a", &[]));
    let last = jwt.pop().unwrap();
    jwt.push(if last == 'A' { 'B' } else { 'A' });
    let (status, json) = ca.post_sign(sign_body(&csr_pem("a", &[]), &jwt));
    assert_eq!(status, 401, "{json}");

    // A token of another CA: right shape, wrong key.
    let other = TestCa::install();
    let other_key =
        fedpki::facade::unlock_key(&other.dir.join("secrets/provisioner_key"), PASSWORD).unwrap();
    let foreign = forge_with(
        &other_key,
        &other.root_der(),
        "a",
        "provisioner",
        &aud,
        t,
        300,
    );
    let (status, json) = ca.post_sign(sign_body(&csr_pem("a", &[]), &foreign));
    assert_eq!(status, 401, "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("signature"),
        "{json}"
    );

    // A CSR whose signature is broken: 400, and the token is burnt anyway.
    let good = jwt_of(&ca.token("a", &[]));
    let csr = csr_pem("a", &[]);
    let der = fedpki_core::encoding::pem_one(&csr, "CERTIFICATE REQUEST").unwrap();
    let mut bad = der.clone();
    let n = bad.len();
    bad[n - 2] ^= 0x01;
    let bad_pem = fedpki_core::encoding::pem("CERTIFICATE REQUEST", &bad).unwrap();
    let (status, json) = ca.post_sign(sign_body(&bad_pem, &good));
    assert_eq!(status, 400, "{json}");
    let (status, json) = ca.post_sign(sign_body(&csr, &good));
    assert_eq!(
        status, 401,
        "a token that reached the CSR checks is spent: {json}"
    );

    // Same for a CSR that is not a CSR at all: the token is checked first.
    let good = jwt_of(&ca.token("a", &[]));
    assert_eq!(ca.post_sign(sign_body("garbage", &good)).0, 400);
    assert_eq!(ca.post_sign(sign_body(&csr_pem("a", &[]), &good)).0, 401);

    // Other routes: step's shapes.
    let (status, roots) = ca.get("/roots");
    assert_eq!(status, 200);
    assert_eq!(roots["crts"].as_array().unwrap().len(), 1);
    let sha = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&ca.root_der()));
    let (status, root) = ca.get(&format!("/root/{sha}"));
    assert_eq!(status, 200);
    assert_eq!(root["ca"], roots["crts"][0]);
    assert_eq!(ca.get(&format!("/root/{}", "0".repeat(64))).0, 404);
    assert_eq!(ca.get("/nope").0, 404);
    health(&ca);
}

#[test]
fn a_token_works_once_also_across_a_restart() {
    let ca = TestCa::install();
    let server = ca.serve();
    let tok = ca.token("col1", &[]);
    let work = ca.workdir("w");
    ok(certify(&ca, "col1", &tok, &work.join("a"), &[]));
    let again = certify(&ca, "col1", &tok, &work.join("b"), &[]);
    refused(&again, "already used");
    assert!(!work.join("b").exists(), "nothing written on refusal");
    assert!(server.stop().success());

    let _server = ca.serve();
    let after = certify(&ca, "col1", &tok, &work.join("c"), &[]);
    refused(&after, "already used");
}

#[test]
fn thirty_two_concurrent_requests_with_one_token_get_exactly_one_certificate() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let jwt = jwt_of(&ca.token("col1", &[]));
    let root = ca.root_der();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let body = sign_body(&csr_pem("col1", &[]), &jwt);
            let root = root.clone();
            let port = ca.port;
            tasks.push(tokio::spawn(async move {
                fedpki::facade::https_request(
                    "localhost",
                    port,
                    &root,
                    "POST",
                    "/1.0/sign",
                    Some(body),
                )
                .await
                .unwrap()
                .status
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        31,
        "{statuses:?}"
    );
}

#[test]
fn openssl_made_csrs_of_every_key_type_are_signed_and_verify() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let work = ca.workdir("openssl");
    std::fs::write(
        work.join("root.crt"),
        std::fs::read(ca.dir.join("certs/root_ca.crt")).unwrap(),
    )
    .unwrap();
    let keygen: [(&str, &[&str]); 4] = [
        (
            "rsa3072",
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:3072",
                "-out",
                "rsa3072.key",
            ],
        ),
        (
            "p256",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "p256.key",
            ],
        ),
        (
            "p384",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
                "p384.key",
            ],
        ),
        (
            "ed25519",
            &["genpkey", "-algorithm", "ED25519", "-out", "ed25519.key"],
        ),
    ];
    for (name, args) in keygen {
        openssl(&work, args);
        let subj = format!("/CN={name}");
        let san = format!("subjectAltName=DNS:{name}");
        openssl(
            &work,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &subj,
                "-addext",
                &san,
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let csr = std::fs::read_to_string(work.join(format!("{name}.csr"))).unwrap();
        let (status, json) = ca.post_sign(sign_body(&csr, &jwt_of(&ca.token(name, &[]))));
        assert_eq!(status, 201, "{name}: {json}");
        assert_eq!(json["certChain"].as_array().unwrap().len(), 2);
        let chain = format!(
            "{}{}",
            json["crt"].as_str().unwrap(),
            json["ca"].as_str().unwrap()
        );
        let crt = work.join(format!("{name}.crt"));
        std::fs::write(&crt, chain).unwrap();
        openssl_verify(&work.join("root.crt"), &crt, Some("sslserver"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = openssl_text(&crt);
        let rsa = name.starts_with("rsa");
        assert_eq!(
            text.contains("Key Encipherment"),
            rsa,
            "{name}: keyEncipherment only for RSA\n{text}"
        );
    }
}

#[test]
fn certify_refuses_a_server_with_another_root_before_sending_the_token() {
    let ca = TestCa::install();
    let impostor = TestCa::install();
    let tok = ca.token("col1", &[]);
    // The impostor CA answers on our CA's address.
    let bind = format!("127.0.0.1:{}", ca.port);
    let server = Server::start(
        impostor.tmp.path(),
        &[
            "pki",
            "run",
            "-p",
            impostor.dir_arg(),
            "--password-file",
            impostor.pw_arg(),
            "--bind",
            &bind,
        ],
    );
    let work = ca.workdir("w");
    let out = certify(&ca, "col1", &tok, &work.join("cert"), &[]);
    refused(&out, "did not prove it belongs to the token's CA");
    assert!(!work.join("cert").exists());
    drop(server);
    // No request reached it: its ledger holds only its own TLS certificate
    // (no issuance, no spent token).
    let log = std::fs::read_to_string(impostor.dir.join("db/audit.log")).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("\"by\":\"the CA's own HTTPS server\""),
        "{log}"
    );
    // The token was never spent: the real CA still takes it.
    let _real = ca.serve();
    ok(certify(&ca, "col1", &tok, &work.join("cert"), &[]));
}

#[test]
fn a_token_whose_root_was_swapped_is_refused_offline() {
    let ca = TestCa::install();
    let other = TestCa::install();
    let tok = ca.token("col1", &[]);
    let (bundle, _, _) = Bundle::parse(&tok).unwrap();
    let other_root = std::fs::read_to_string(other.dir.join("certs/root_ca.crt")).unwrap();
    let swapped = Bundle {
        jwt: bundle.jwt,
        root_pem: other_root,
    }
    .encode();
    let out = certify(&ca, "col1", &swapped, &ca.workdir("w").join("cert"), &[]);
    refused(&out, "does not match the token's sha");
    // And a token for another name.
    let out = certify(&ca, "col2", &tok, &ca.workdir("w").join("cert"), &[]);
    refused(&out, "this token is for \"col1\"");
}

#[test]
fn wrong_password_and_second_server_are_refused_and_change_nothing() {
    let ca = TestCa::install();
    let bad = ca.tmp.path().join("bad");
    std::fs::write(&bad, "not-the-password\n").unwrap();
    // (The lock file holds the pid of whoever last held it.)
    let before: Vec<_> = snapshot(&ca.dir)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("fedpki.lock"))
        .collect();
    for args in [
        vec![
            "pki",
            "run",
            "-p",
            ca.dir_arg(),
            "--password-file",
            bad.to_str().unwrap(),
        ],
        vec![
            "pki",
            "get-token",
            "-n",
            "x",
            "-p",
            ca.dir_arg(),
            "--password-file",
            bad.to_str().unwrap(),
        ],
    ] {
        let out = fedpki(ca.tmp.path(), &args);
        refused(&out, "wrong CA password");
        assert!(stdout(&out).is_empty());
    }
    let after: Vec<_> = snapshot(&ca.dir)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("fedpki.lock"))
        .collect();
    assert!(before == after, "nothing changed in the CA folder");

    let _server = ca.serve();
    let out = fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "run",
            "-p",
            ca.dir_arg(),
            "--password-file",
            ca.pw_arg(),
        ],
    );
    refused(&out, "already serving");
    assert_eq!(ca.get("/health").0, 200, "the first server is untouched");
}

#[test]
fn install_keeps_an_existing_ca_unless_forced() {
    let ca = TestCa::install();
    let before = snapshot(&ca.dir);
    let args = [
        "pki",
        "install",
        "-p",
        ca.dir_arg(),
        "--password-file",
        ca.pw_arg(),
    ];
    let out = fedpki(ca.tmp.path(), &args);
    assert_eq!(out.status.code(), Some(2));
    refused(&out, "already exists");
    assert!(before == snapshot(&ca.dir), "the CA was changed");
    let mut forced = args.to_vec();
    forced.push("--force");
    // Not while it is served: refused, nothing changed, still serving.
    {
        let _server = ca.serve();
        // What a forced install would replace (the server itself writes
        // db/ and its CRLs meanwhile: certs/intermediate_ca.crl and
        // certs/crl/KID.crl).
        let keys_and_config = || {
            let mut files = snapshot(&ca.dir);
            files.retain(|(p, _)| {
                !p.starts_with(ca.dir.join("db"))
                    && !p.starts_with(ca.dir.join("certs/crl"))
                    && !p.ends_with("fedpki.lock")
                    && !p.ends_with("intermediate_ca.crl")
                    // A CRL being written (the server's first one may be
                    // under way when it says it listens).
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().contains(".tmp-"))
            });
            files
        };
        let serving = keys_and_config();
        let out = fedpki(ca.tmp.path(), &forced);
        assert_eq!(out.status.code(), Some(2));
        refused(&out, "is being served");
        assert!(serving == keys_and_config(), "the served CA was changed");
        assert_eq!(ca.get("/health").0, 200);
    }
    ok(fedpki(ca.tmp.path(), &forced));
    assert_ne!(
        std::fs::read(ca.dir.join("certs/root_ca.crt")).unwrap(),
        before
            .iter()
            .find(|(p, _)| p.ends_with("root_ca.crt"))
            .unwrap()
            .1
    );
    // A short password and a bad URL are refused before anything is written.
    let short = ca.tmp.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let fresh = ca.tmp.path().join("fresh");
    let out = fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "install",
            "-p",
            fresh.to_str().unwrap(),
            "--password-file",
            short.to_str().unwrap(),
        ],
    );
    refused(&out, "at least 8");
    let out = fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "install",
            "-p",
            fresh.to_str().unwrap(),
            "--ca-url",
            "nocolon",
            "--password-file",
            ca.pw_arg(),
        ],
    );
    refused(&out, "HOST:PORT");
    assert!(!fresh.join("config").exists());
}

#[test]
fn get_token_options_and_output() {
    let ca = TestCa::install();
    let out = ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "get-token",
            "-n",
            "agg",
            "-p",
            ca.dir_arg(),
            "--password-file",
            ca.pw_arg(),
            "--ttl",
            "90m",
            "--san",
            "agg.example",
            "--san",
            "10.0.0.7",
        ],
    ));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "only the token on stdout");
    let (_, claims, _) = Bundle::parse(text.trim()).unwrap();
    assert_eq!(claims.sub, "agg");
    assert_eq!(claims.sans, ["agg.example", "10.0.0.7"]);
    assert_eq!(claims.exp - claims.nbf, 5400);
    assert_eq!(claims.iss, "provisioner");
    assert_eq!(
        claims.aud,
        token::Audience::One(format!("https://{}/1.0/sign", ca.ca_url))
    );
    assert_eq!(claims.jti.len(), 64);
    assert!(stderr(&out).contains("fedpki pki certify -n agg"));
    // Default TTL: 24 h, as documented.
    let (_, claims, _) = Bundle::parse(&ca.token("agg", &[])).unwrap();
    assert_eq!(claims.exp - claims.nbf, 86400);
    for bad in [vec!["--ttl", "soon"], vec!["--san", "bad name"]] {
        let mut args = vec![
            "pki",
            "get-token",
            "-n",
            "agg",
            "-p",
            ca.dir_arg(),
            "--password-file",
            ca.pw_arg(),
        ];
        args.extend(bad);
        let out = fedpki(ca.tmp.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    }
}

#[test]
fn certify_with_ed25519_and_p384_keys() {
    let ca = TestCa::install();
    let _server = ca.serve();
    for kt in ["ed25519", "p384"] {
        let name = format!("node-{kt}");
        let dir = ca.workdir(&name).join("cert");
        ok(certify(
            &ca,
            &name,
            &ca.token(&name, &[]),
            &dir,
            &["--key-type", kt],
        ));
        openssl_verify(
            &dir.join("root_ca.crt"),
            &dir.join(format!("{name}.crt")),
            None,
        )
        .unwrap();
    }
    let out = certify(
        &ca,
        "x",
        &ca.token("x", &[]),
        &ca.workdir("x"),
        &["--key-type", "dsa"],
    );
    refused(
        &out,
        "unsupported: key type \"dsa\" (choose p256, p384, ed25519 or rsa2048)",
    );
}

#[test]
fn uninstall_stops_only_its_own_server() {
    let a = TestCa::install();
    let b = TestCa::install();
    let mut server_a = a.serve();
    let _server_b = b.serve();
    let out = fedpki(a.tmp.path(), &["pki", "uninstall", "-p", a.dir_arg()]);
    assert!(
        !out.status.success(),
        "no confirmation without a terminal or --yes"
    );
    assert!(a.dir.exists());
    ok(fedpki(
        a.tmp.path(),
        &["pki", "uninstall", "-p", a.dir_arg(), "--yes"],
    ));
    assert!(!a.dir.exists());
    assert!(!server_a.is_running());
    assert_eq!(
        b.get("/health").0,
        200,
        "the other CA's server still serves"
    );
    // Not a CA folder: refused, nothing removed.
    let plain = b.workdir("plain");
    let out = fedpki(
        b.tmp.path(),
        &["pki", "uninstall", "-p", plain.to_str().unwrap(), "--yes"],
    );
    assert!(stderr(&out).contains("does not hold a fedpki CA"));
    assert!(plain.exists());
}
