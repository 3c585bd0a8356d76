//! `fedpki pki inspect`: a readable view of every kind of file fedpki
//! reads or writes (issue 5, point 4), never showing a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_tests::*;

fn inspect(dir: &std::path::Path, file: &str) -> String {
    stdout(&ok(fedpki(dir, &["pki", "inspect", file])))
}

#[test]
fn inspect_describes_tokens_requests_signed_files_certificates_csrs_and_keys() {
    let ca = TestCa::install();
    let node = ca.workdir("node");
    let token = ca.token("col1", &["--san", "col1.example"]);
    std::fs::write(node.join("token"), &token).unwrap();
    let text = inspect(&node, "token");
    for needle in [
        "Enrollment token",
        "subject:     col1",
        "col1.example",
        &format!("https://{}/1.0/sign", ca.ca_url),
        "not expired",
        "matches the token's sha",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }

    ok(fedpki(
        &node,
        &["pki", "csr", "-n", "col1", "-t", &token, "-o", "col1.req"],
    ));
    let text = inspect(&node, "col1.req");
    assert!(
        text.contains("Request file for \"col1\"")
            && text.contains("signature:   valid")
            && text.contains("carries a token"),
        "{text}"
    );
    let req: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.join("col1.req")).unwrap()).unwrap();
    assert!(
        text.contains(
            &fedpki_core::csr::Csr::from_pem(req["csr"].as_str().unwrap())
                .unwrap()
                .openfl_hash()
                .unwrap()
        )
    );

    ok(fedpki(
        &node,
        &[
            "pki",
            "sign",
            "-p",
            ca.dir_arg(),
            "col1.req",
            "-o",
            "col1.signed",
            "--password-file",
            ca.pw_arg(),
        ],
    ));
    let text = inspect(&node, "col1.signed");
    for needle in [
        "Signed file for \"col1\"",
        "subject:     CN=col1",
        "key usage:   digitalSignature",
        "ext. usage:  serverAuth, clientAuth",
        "(valid now)",
        "CA:          yes",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let text = inspect(&ca.dir, "certs/root_ca.crt");
    assert!(
        text.contains("key usage:   keyCertSign, cRLSign") && text.contains("ECDSA P-256"),
        "{text}"
    );

    // Keys: the kind, never the secret.
    let key_pem = std::fs::read_to_string(node.join("cert/col1.key")).unwrap();
    let text = inspect(&node, "cert/col1.key");
    assert!(
        text.contains("Private key: ECDSA P-256") && text.contains("not shown"),
        "{text}"
    );
    let secret_line = key_pem.lines().nth(1).unwrap();
    assert!(!text.contains(secret_line));
    assert!(inspect(&ca.dir, "secrets/root_ca_key").contains("encrypted with a password"));

    // An OpenSSL RSA CSR, and one whose signature was broken.
    openssl(
        &node,
        &[
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rsa", "-keyout",
            "rsa.key", "-out", "rsa.csr",
        ],
    );
    let text = inspect(&node, "rsa.csr");
    assert!(
        text.contains("RSA 2048 bits") && text.contains("signature:   valid"),
        "{text}"
    );
    let der = fedpki_core::encoding::pem_one(
        &std::fs::read_to_string(node.join("rsa.csr")).unwrap(),
        "CERTIFICATE REQUEST",
    )
    .unwrap();
    let mut bad = der.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    std::fs::write(
        node.join("bad.csr"),
        fedpki_core::encoding::pem("CERTIFICATE REQUEST", &bad).unwrap(),
    )
    .unwrap();
    assert!(inspect(&node, "bad.csr").contains("signature:   NOT VALID"));

    // Something else entirely.
    std::fs::write(node.join("junk"), "hello").unwrap();
    let out = fedpki(&node, &["pki", "inspect", "junk"]);
    assert_eq!(out.status.code(), Some(2));
    refused(
        &out,
        "not a certificate, CSR, key, token, request or signed file",
    );
}
