//! Crash safety (issue 5, point 6): `kill -9` in the middle of concurrent
//! certifies loses no certificate a client received and never makes a burnt
//! token usable again; the store opens cleanly afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_core::name::{San, Subject};
use fedpki_core::{KeyType, PrivateKey};
use fedpki_tests::*;

fn sign_body(name: &str, jwt: &str) -> Vec<u8> {
    let key = PrivateKey::generate(KeyType::P256, &mut fedpki::facade::OsEntropy).unwrap();
    let csr = fedpki_core::csr::build(
        &key,
        &Subject::new(name).unwrap(),
        &[San::parse(name).unwrap()],
    )
    .unwrap();
    serde_json::to_vec(&serde_json::json!({"csr": csr.to_pem().unwrap(), "ott": jwt})).unwrap()
}

#[test]
fn kill_9_during_concurrent_certifies_loses_nothing_a_client_received() {
    let ca = TestCa::install();
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 60;
    // Tokens made in-process with the CA's own provisioner key, as
    // `get-token` makes them, before the clock starts.
    let provisioner =
        fedpki::facade::unlock_key(&ca.dir.join("secrets/provisioner_key"), PASSWORD).unwrap();
    let root_der = ca.root_der();
    let audience = fedpki_core::token::sign_audience(&ca.ca_url);
    let jwts: Vec<Vec<String>> = (0..CLIENTS)
        .map(|c| {
            (0..PER_CLIENT)
                .map(|i| {
                    let subject = Subject::new(&format!("n{c}-{i}")).unwrap();
                    fedpki_core::token::sign(
                        &fedpki_core::token::TokenRequest {
                            issuer: "provisioner",
                            subject: &subject,
                            sans: &[],
                            audience: &audience,
                            root_der: &root_der,
                            now: fedpki::facade::now(),
                            ttl_secs: 3600,
                            tls_key_sha256: None,
                        },
                        &provisioner,
                        &mut fedpki::facade::OsEntropy,
                    )
                    .unwrap()
                })
                .collect()
        })
        .collect();
    let server = ca.serve();
    let root = ca.root_der();
    let port = ca.port;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answered_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (received, attempted) = rt.block_on(async {
        let mut tasks = Vec::new();
        for (c, mine) in jwts.iter().enumerate() {
            let (root, mine, counter) = (root.clone(), mine.clone(), answered_so_far.clone());
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                let mut tried = Vec::new();
                for (i, jwt) in mine.into_iter().enumerate() {
                    let body = sign_body(&format!("n{c}-{i}"), &jwt);
                    tried.push(jwt.clone());
                    match fedpki::facade::https_request(
                        "localhost",
                        port,
                        &root,
                        "POST",
                        "/1.0/sign",
                        Some(body),
                    )
                    .await
                    {
                        Ok(r) if r.status == 201 => {
                            let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                            let leaf =
                                fedpki_core::issue::parse_cert_pem(json["crt"].as_str().unwrap())
                                    .unwrap();
                            got.push((jwt, fedpki_core::issue::serial_hex(&leaf)));
                            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        // The server died under us: later requests fail.
                        _ => break,
                    }
                }
                (got, tried)
            }));
        }
        // Let some certificates through, then kill the server without warning.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while answered_so_far.load(std::sync::atomic::Ordering::SeqCst) < 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the server answered nothing"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        server.kill();
        let mut received = Vec::new();
        let mut attempted = Vec::new();
        for t in tasks {
            let (got, tried) = t.await.unwrap();
            received.extend(got);
            attempted.extend(tried);
        }
        (received, attempted)
    });
    assert!(
        !received.is_empty(),
        "some certificates were issued before the kill"
    );
    assert!(
        received.len() < CLIENTS * PER_CLIENT,
        "the kill happened mid-flight ({} of {})",
        received.len(),
        CLIENTS * PER_CLIENT
    );

    let mut recorded_subjects = std::collections::HashSet::new();
    // The store opens cleanly and holds every certificate a client
    // received: `pki list` (which recovers the database) shows each, and
    // the audit log has exactly one entry per certificate.
    {
        let out = ok(fedpki(
            ca.tmp.path(),
            &["pki", "list", "-p", ca.dir_arg(), "--json"],
        ));
        let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        let serials: std::collections::HashSet<String> = rows
            .iter()
            .map(|r| r["serial"].as_str().unwrap().to_owned())
            .collect();
        recorded_subjects.extend(
            rows.iter()
                .map(|r| r["subject"].as_str().unwrap().to_owned()),
        );
        for (_, serial) in &received {
            assert!(
                serials.contains(serial),
                "certificate {serial} was answered but is not in the ledger"
            );
        }
        let out = ok(fedpki(ca.tmp.path(), &["pki", "audit", "-p", ca.dir_arg()]));
        assert!(
            stdout(&out).contains(&format!("intact: {} entries", serials.len())),
            "{} for {} certificates",
            stdout(&out),
            serials.len()
        );
    }

    // After a restart, no token that was answered works again; the ones the
    // kill interrupted are either burnt (recorded) or still fresh, never both.
    let _server = ca.serve();
    for (jwt, _) in &received {
        let (status, json) = ca.post_sign(sign_body("x", jwt));
        assert_eq!(status, 401, "an answered token works again: {json}");
    }
    // An interrupted request either reached the log (its certificate is in
    // the ledger, its token burnt) or did not (its token still works).
    let answered: std::collections::HashSet<&String> = received.iter().map(|(j, _)| j).collect();
    let mut reusable = 0;
    for jwt in attempted.iter().filter(|j| !answered.contains(j)) {
        let name = fedpki_core::token::peek_claims(jwt).unwrap().sub;
        let recorded = recorded_subjects.contains(&name);
        let (status, json) = ca.post_sign(sign_body(&name, jwt));
        assert_eq!(
            status,
            if recorded { 401 } else { 201 },
            "{name} (in the ledger: {recorded}): {json}"
        );
        reusable += usize::from(!recorded);
    }
    eprintln!(
        "kill -9: {} answered and recorded, {} interrupted ({} of those never reached the disk and still work)",
        received.len(),
        attempted.len() - received.len(),
        reusable
    );
}

/// A log that lost entries the ledger indexed (a restored backup, a cut
/// file) stops the CA from starting, and says how to repair; the repair
/// keeps every certificate and records the gap in the log.
#[test]
fn a_log_behind_the_ledger_refuses_to_start_until_repaired() {
    let ca = TestCa::install();
    {
        let _server = ca.serve();
        for name in ["one", "two", "three"] {
            ca.certify(name);
        }
    }
    let log_path = ca.dir.join("db/audit.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // The server's own TLS certificate, then the three.
    assert_eq!(lines.len(), 4);
    assert!(lines[0].contains("\"by\":\"the CA's own HTTPS server\""));
    std::fs::write(&log_path, lines[..3].join("\n") + "\n").unwrap();
    let run = [
        "pki",
        "run",
        "-p",
        ca.dir_arg(),
        "--password-file",
        ca.pw_arg(),
    ];
    let out = fedpki(ca.tmp.path(), &run);
    assert_eq!(out.status.code(), Some(7), "a damaged CA folder");
    refused(&out, "does not match the CA's ledger");
    refused(&out, "the end of the log was removed");
    refused(&out, "--repair");
    let audit = ["pki", "audit", "-p", ca.dir_arg()];
    let out = fedpki(ca.tmp.path(), &audit);
    assert_eq!(out.status.code(), Some(1), "the check failed");
    refused(&out, "the end of the log was removed");
    refused(&out, "--repair");
    let mut repair = audit.to_vec();
    repair.push("--repair");
    let out = ok(fedpki(ca.tmp.path(), &repair));
    assert!(
        stderr(&out).contains("repaired: the log held 3 good entries; the ledger had indexed 4"),
        "{}",
        stderr(&out)
    );
    let out = ok(fedpki(ca.tmp.path(), &audit));
    assert!(
        stdout(&out).contains("intact: 4 entries"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("entry 4 records a repair"),
        "{}",
        stderr(&out)
    );
    let _server = ca.serve();
    let out = ok(fedpki(
        ca.tmp.path(),
        &["pki", "list", "-p", ca.dir_arg(), "--json"],
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let mut subjects: Vec<&str> = rows
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    subjects.sort_unstable();
    // Two starts, two TLS certificates for the server's host.
    assert_eq!(subjects, ["localhost", "localhost", "one", "three", "two"]);
    ca.certify("four");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(log.lines().count(), 6);
    assert!(log.lines().nth(3).unwrap().contains("\"event\":\"repair\""));
}
