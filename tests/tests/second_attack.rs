//! What a second attacker found (issue 21), one test per finding, each on
//! the real binary: a leaf forged with an intermediate's key is not
//! laundered, a key compromise is one intent even through `kill -9`, and
//! no revocation answer runs ahead of the CRL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::time::{Duration, Instant};

use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::name::{San, Subject};
use fedpki_core::profile::LeafUsage;
use fedpki_core::{Certificate, PrivateKey, SigningKey};
use fedpki_tests::disk::SmallDisk;
use fedpki_tests::site::{Site, cert_at, kid};
use fedpki_tests::tokens::{Provisioner, new_key};
use fedpki_tests::*;

/// A leaf for `name` signed with `key` as the intermediate `int`, valid
/// ten years, under `serial` (hex: a victim's) or a fresh one; its key.
fn forge(
    int: &Certificate,
    key: &PrivateKey,
    name: &str,
    serial: Option<&str>,
) -> (Certificate, PrivateKey) {
    let serial = match serial {
        Some(hex) => {
            let bytes = fedpki_core::encoding::unhex(hex).unwrap();
            Serial::from_bytes(bytes.try_into().unwrap()).unwrap()
        }
        None => Serial::random(&mut fedpki::facade::OsEntropy).unwrap(),
    };
    let holder = new_key();
    let now = fedpki::facade::now();
    let leaf = Issuer { cert: int, key }
        .leaf(
            &holder.public_key(),
            &Subject::new(name).unwrap(),
            &[San::parse(name).unwrap()],
            LeafUsage::Node,
            serial,
            now.minus(60),
            now.plus(10 * 365 * 86_400),
            &Default::default(),
        )
        .unwrap();
    (leaf, holder)
}

/// Mutual-TLS credentials: the leaf, its intermediate, its key.
fn presenting(
    leaf: &Certificate,
    int: &Certificate,
    key: &PrivateKey,
) -> fedpki::facade::ClientAuth {
    fedpki::facade::ClientAuth::new(&[leaf.clone(), int.clone()], key).unwrap()
}

/// A `/1.0/revoke` body for `serial` (hex), with a revoke token from
/// `provisioner` when given (else for the holder, over mutual TLS).
fn revoke_body_with(serial: &str, reason: u8, provisioner: Option<&Provisioner>) -> Vec<u8> {
    let decimal = fedpki_core::serial::hex_to_decimal(serial).unwrap();
    let mut body = serde_json::json!({"serial": decimal, "reasonCode": reason, "passive": true});
    if let Some(p) = provisioner {
        body["ott"] = p.revoke_jwt(serial).into();
    }
    serde_json::to_vec(&body).unwrap()
}

fn revoke_body(serial: &str, reason: u8) -> Vec<u8> {
    revoke_body_with(serial, reason, None)
}

fn listed<'a>(rows: &'a [serde_json::Value], serial: &str) -> Option<&'a serde_json::Value> {
    rows.iter().find(|r| r["serial"] == serial)
}

fn unlock(path: &std::path::Path) -> PrivateKey {
    fedpki::facade::unlock_key(path, PASSWORD).unwrap()
}

/// Finding 1: after a rotation the root revokes the old intermediate for
/// key compromise and the CA takes the root's CRL; a leaf forged with the
/// old intermediate's key (a name of its own, ten years) was renewed onto
/// the new chain, and one carrying a victim's serial revoked the victim.
#[test]
fn a_leaf_forged_with_a_root_revoked_intermediates_key_is_not_laundered() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let _server = site.serve("ca");
    ok(site.pki("root export -p @ca -o @root --yes"));
    let victim = site.certify("ca", "victim");
    let victim_serial = node_serial(&victim, "victim");
    let old = cert_at(&site.path("ca/certs/intermediate_ca.crt"), 0);
    let old_key = unlock(&site.path("ca/secrets/intermediate_ca_key"));
    ok(site.pki("intermediate request -p @ca -o @next.req"));
    ok(site.pki("root sign -p @root @next.req -o @next.signed --yes"));
    ok(site.pki("intermediate activate -p @ca @next.signed"));
    let old_serial = issue::serial_hex(&old);
    ok(site.pki(&format!(
        "root revoke -p @root --serial {old_serial} --reason key-compromise"
    )));
    ok(site.pki("root crl -p @root -o @root.crl"));
    // The running CA takes it up before the command returns.
    let out = ok(site.pki("install -p @ca --root-crl @root.crl"));
    assert!(stderr(&out).contains("acts on it now"), "{}", stderr(&out));
    let (status, _) = site.request_as("ca", None, "GET", "/crl/root", None);
    assert_eq!(status, 200);

    let (forged, forged_key) = forge(&old, &old_key, "aggregator.example", None);
    let (status, body) = site.request_as(
        "ca",
        Some(&presenting(&forged, &old, &forged_key)),
        "POST",
        "/1.0/renew",
        Some(Vec::new()),
    );
    assert_eq!(status, 401, "{body}");
    let said = body["message"].as_str().unwrap();
    assert!(
        said.contains(&format!(
            "({}) was revoked by the root (keyCompromise",
            kid(&old)
        )),
        "{said}"
    );

    // The victim's serial on a forged leaf revokes nothing.
    let (twin, twin_key) = forge(&old, &old_key, "victim", Some(&victim_serial));
    let (status, body) = site.request_as(
        "ca",
        Some(&presenting(&twin, &old, &twin_key)),
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&victim_serial, 0)),
    );
    assert_eq!(status, 401, "{body}");
    // Nor is the forgery taken in on first sight.
    let (status, _) = site.request_as(
        "ca",
        Some(&presenting(&forged, &old, &forged_key)),
        "POST",
        "/1.0/revoke",
        Some(revoke_body(&issue::serial_hex(&forged), 0)),
    );
    assert_eq!(status, 401);
    let rows = site.list("ca");
    assert!(
        listed(&rows, &issue::serial_hex(&forged)).is_none(),
        "{rows:?}"
    );
    assert_eq!(listed(&rows, &victim_serial).unwrap()["status"], "valid");

    // What its holders see: their certificate no longer renews, and
    // `pki verify` says why; a new token gets them one on the new chain.
    refused(&site.renew(&victim, "victim"), "was revoked by the root");
    let out = fedpki(
        site.tmp.path(),
        &[
            "pki",
            "verify",
            "-n",
            "victim",
            "-c",
            victim.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains(&format!("its intermediate {old_serial}: revoked")),
        "{}",
        stdout(&out)
    );
    // A new token, over the old key and certificate.
    let token = stdout(&ok(site.pki("get-token -p @ca -n victim")));
    ok(site.certify_with("victim", token.trim(), &["--force"]));
    let again = site.path("victim");
    assert_ne!(cert_at(&again.join("victim.crt"), 1), old);

    // A CRL that revokes the intermediate the CA issues from is refused.
    let new = cert_at(&site.signed_intermediate("next.signed"), 0);
    ok(site.pki(&format!(
        "root revoke -p @root --serial {}",
        issue::serial_hex(&new)
    )));
    ok(site.pki("root crl -p @root -o @both.crl"));
    let before = snapshot(&site.path("ca"));
    refused(
        &site.pki("install -p @ca --root-crl @both.crl"),
        "revokes the intermediate this CA issues from",
    );
    assert_eq!(snapshot(&site.path("ca")), before);
}

/// Finding 1 on a CA that was never adopted: a leaf signed with its own
/// intermediate's key but never issued is not recorded on first sight,
/// and one under a victim's serial is not the victim's certificate.
#[test]
fn a_native_ca_never_takes_in_a_certificate_it_did_not_issue() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let victim = ca.certify("victim");
    let victim_serial = node_serial(&victim, "victim");
    let int = cert_at(&ca.dir.join("certs/intermediate_ca.crt"), 0);
    let int_key = unlock(&ca.dir.join("secrets/intermediate_ca_key"));

    let (stranger, stranger_key) = forge(&int, &int_key, "aggregator.example", None);
    let auth = presenting(&stranger, &int, &stranger_key);
    let (status, body) = ca
        .request_as(&auth, "POST", "/1.0/renew", Some(Vec::new()))
        .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not in this CA's ledger"),
        "{body}"
    );
    let (twin, twin_key) = forge(&int, &int_key, "victim", Some(&victim_serial));
    let auth = presenting(&twin, &int, &twin_key);
    for (path, body) in [
        ("/1.0/renew", Vec::new()),
        ("/1.0/revoke", revoke_body(&victim_serial, 1)),
    ] {
        let (status, answer) = ca.request_as(&auth, "POST", path, Some(body)).unwrap();
        assert_eq!(status, 401, "{path}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("not the one this CA issued"),
            "{answer}"
        );
    }
    let out = ok(fedpki(
        ca.tmp.path(),
        &["pki", "list", "-p", ca.dir_arg(), "--json"],
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        listed(&rows, &issue::serial_hex(&stranger)).is_none(),
        "{rows:?}"
    );
    assert_eq!(listed(&rows, &victim_serial).unwrap()["status"], "valid");
    // The genuine certificate still renews.
    ok(fedpki(
        &victim,
        &[
            "pki",
            "renew",
            "-n",
            "victim",
            "-c",
            victim.to_str().unwrap(),
        ],
    ));
}

/// How many of `serials` the CA's ledger holds as revoked for key compromise.
fn revoked_for_compromise(ca: &TestCa, serials: &[String]) -> usize {
    let out = ok(fedpki(
        ca.tmp.path(),
        &["pki", "list", "-p", ca.dir_arg(), "--json"],
    ));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    serials
        .iter()
        .filter(|s| {
            listed(&rows, s)
                .is_some_and(|r| r["status"] == "revoked" && r["reason"] == "keyCompromise")
        })
        .count()
}

/// The serials (canonical hex) the CA's active CRL lists.
fn crl_serials(ca: &TestCa) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let resp = rt
        .block_on(fedpki::facade::https_request(
            "localhost",
            ca.port,
            &ca.root_der(),
            "GET",
            "/crl",
            None,
        ))
        .unwrap();
    assert_eq!(resp.status, 200);
    fedpki_core::crl::Crl::parse(&resp.body)
        .unwrap()
        .entries()
        .into_iter()
        .map(|e| e.serial_hex)
        .collect()
}

/// Issue `n` certificates over one key; their serials.
fn certificates_of_one_key(ca: &TestCa, n: usize) -> Vec<String> {
    let provisioner = Provisioner::of(&ca.dir, &ca.ca_url);
    let key = new_key();
    (0..n)
        .map(|i| {
            let (status, body) = ca.post_sign(provisioner.sign_body(&format!("node{i}"), &key));
            assert_eq!(status, 201, "{body}");
            let leaf = issue::parse_cert_pem(body["crt"].as_str().unwrap()).unwrap();
            issue::serial_hex(&leaf)
        })
        .collect()
}

/// Finding 2: a key-compromise revocation of one of 300 certificates over
/// one key, the server killed the moment the revocation reaches the audit
/// log. Before, the siblings were revoked one commit at a time and most
/// stayed valid; now the log line that records it revokes all 300, so
/// after the restart all are revoked and in the CRL, and a retry changes
/// nothing.
#[test]
fn kill_9_in_a_key_compromise_revocation_leaves_all_or_nothing() {
    let ca = TestCa::install();
    let server = ca.serve();
    let serials = certificates_of_one_key(&ca, 300);
    let log = ca.dir.join("db/audit.log");
    let revoking = {
        let (dir, pw, serial) = (
            ca.dir_arg().to_owned(),
            ca.pw_arg().to_owned(),
            serials[7].clone(),
        );
        let cwd = ca.tmp.path().to_owned();
        std::thread::spawn(move || {
            fedpki(
                &cwd,
                &[
                    "pki",
                    "revoke",
                    "-p",
                    &dir,
                    "--serial",
                    &serial,
                    "--reason",
                    "key-compromise",
                    "--password-file",
                    &pw,
                ],
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("\"reasonCode\":1")
    {
        assert!(
            Instant::now() < deadline,
            "the revocation never reached the log"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    server.kill();
    let _ = revoking.join();
    let after_crash = revoked_for_compromise(&ca, &serials);
    assert_eq!(after_crash, 300, "all or nothing, and the line was written");
    let _server = ca.serve();
    let in_crl = crl_serials(&ca);
    assert!(
        serials.iter().all(|s| in_crl.contains(s)),
        "every sibling is in the CRL"
    );
    // The retry finds it done.
    let out = ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "revoke",
            "-p",
            ca.dir_arg(),
            "--serial",
            &serials[7],
            "--reason",
            "key-compromise",
            "--password-file",
            ca.pw_arg(),
        ],
    ));
    assert!(stderr(&out).contains("already revoked"), "{}", stderr(&out));
}

/// Finding 2 without a crash: revoked as superseded first, a certificate
/// moves to keyCompromise (RFC 5280 allows it), its siblings with it, and
/// the CRL shows the new reason and date; the key is never certified again.
#[test]
fn a_revocation_moves_to_key_compromise_and_takes_the_key_with_it() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let provisioner = Provisioner::of(&ca.dir, &ca.ca_url);
    let key = new_key();
    let serials: Vec<String> = (0..3)
        .map(|i| {
            let (status, body) = ca.post_sign(provisioner.sign_body(&format!("n{i}"), &key));
            assert_eq!(status, 201, "{body}");
            issue::serial_hex(&issue::parse_cert_pem(body["crt"].as_str().unwrap()).unwrap())
        })
        .collect();
    let revoke = |reason: u8| {
        let body = revoke_body_with(&serials[0], reason, Some(&provisioner));
        ca.request("POST", "/1.0/revoke", Some(body))
    };
    let (status, first) = revoke(4);
    assert_eq!(
        (status, &first["alreadyRevoked"]),
        (200, &false.into()),
        "{first}"
    );
    assert_eq!(revoked_for_compromise(&ca, &serials), 0);
    std::thread::sleep(Duration::from_millis(1100));
    let (status, moved) = revoke(1);
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["reasonCode"], 1, "{moved}");
    assert!(
        moved["revokedAt"].as_u64() > first["revokedAt"].as_u64(),
        "{moved}"
    );
    assert_eq!(revoked_for_compromise(&ca, &serials), 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let der = rt
        .block_on(fedpki::facade::https_request(
            "localhost",
            ca.port,
            &ca.root_der(),
            "GET",
            "/crl",
            None,
        ))
        .unwrap()
        .body;
    let entries = fedpki_core::crl::Crl::parse(&der).unwrap().entries();
    for serial in &serials {
        let e = entries.iter().find(|e| &e.serial_hex == serial).unwrap();
        assert_eq!(e.reason, fedpki_core::crl::Reason::KeyCompromise);
        assert_eq!(Some(e.at.0), moved["revokedAt"].as_u64());
    }
    let (status, body) = ca.post_sign(provisioner.sign_body("n9", &key));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("revoked for key compromise"),
        "{body}"
    );
}

/// Finding 3: with the CRL folder full, a revocation is recorded but its
/// CRL cannot be written: the answer is an error, a retry is not
/// `alreadyRevoked` while the CRL lacks it, `/health` says the CRL is
/// stale, and once there is room the CA re-signs by itself.
#[test]
fn a_crl_that_cannot_be_written_is_reported_and_healed_without_another_revocation() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let node = ca.certify("node1");
    let serial = node_serial(&node, "node1");
    let disk = SmallDisk::mount_at(&ca.dir.join("certs/crl"), "64k");
    let filler = disk.fill();
    let provisioner = Provisioner::of(&ca.dir, &ca.ca_url);
    let revoke = || {
        let body = revoke_body_with(&serial, 0, Some(&provisioner));
        ca.request("POST", "/1.0/revoke", Some(body))
    };
    for _ in 0..2 {
        let (status, body) = revoke();
        assert_eq!(status, 500, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("could not be re-signed"),
            "{body}"
        );
    }
    assert_eq!(
        ca.get("/health"),
        (
            503,
            serde_json::json!({"status": "unavailable", "store": "ok", "crl": "stale"})
        )
    );
    assert!(!crl_serials(&ca).contains(&serial));
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ca.get("/health").0 != 200 {
        assert!(Instant::now() < deadline, "the CRL was never re-signed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(crl_serials(&ca).contains(&serial));
    let (status, body) = revoke();
    assert_eq!(
        (status, &body["alreadyRevoked"]),
        (200, &true.into()),
        "{body}"
    );
    drop(disk);
}

/// Finding 3: revocations of one serial at once, each answered only when
/// the CRL served lists it (before, `alreadyRevoked` came back while the
/// first revocation's CRL was still being signed).
#[test]
fn concurrent_revocations_of_one_serial_are_each_in_the_crl_when_answered() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let provisioner = Provisioner::of(&ca.dir, &ca.ca_url);
    for round in 0..10 {
        let (status, body) = ca.post_sign(provisioner.sign_body(&format!("r{round}"), &new_key()));
        assert_eq!(status, 201);
        let serial =
            issue::serial_hex(&issue::parse_cert_pem(body["crt"].as_str().unwrap()).unwrap());
        let bodies: Vec<Vec<u8>> = (0..8)
            .map(|_| revoke_body_with(&serial, 0, Some(&provisioner)))
            .collect();
        let misses: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = bodies
                .into_iter()
                .map(|b| {
                    let (ca, serial) = (&ca, &serial);
                    s.spawn(move || {
                        let (status, answer) = ca.request("POST", "/1.0/revoke", Some(b));
                        assert_eq!(status, 200, "{answer}");
                        (!crl_serials(ca).contains(serial)).then(|| answer.to_string())
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(
            misses.is_empty(),
            "round {round}: answered before the CRL held it: {misses:?}"
        );
    }
}

/// Finding 5: a bare step token does not pin the CA server's key, so it
/// goes to any server with a certificate from its root for the CA's host
/// name. A fedpki CA gives no node that name (nor the loopback addresses
/// of `localhost`) unless its operator allows it, so no node holds what
/// such an impostor needs; before, the demo's aggregator did.
#[test]
fn no_node_is_given_the_cas_host_name_unless_its_operator_allows_it() {
    let ca = TestCa::install();
    let server = ca.serve();
    let dir = ca.workdir("agg");
    let certify = |name: &str, token: &str| {
        fedpki(
            &dir,
            &[
                "pki",
                "certify",
                "-n",
                name,
                "-t",
                token,
                "-c",
                dir.to_str().unwrap(),
            ],
        )
    };
    let out = certify("localhost", &ca.token("localhost", &[]));
    refused(&out, "localhost is this CA's own host");
    assert!(
        stderr(&out).contains("--node-on-ca-host allow"),
        "{}",
        stderr(&out)
    );
    let out = certify(
        "agg",
        &ca.token("agg", &["--san", "agg", "--san", "127.0.0.1"]),
    );
    refused(&out, "127.0.0.1 is this CA's own host");
    // Through a bare step token, the same.
    let provisioner = Provisioner::of(&ca.dir, &ca.ca_url);
    refused(
        &certify("localhost", &provisioner.step_jwt("localhost")),
        "localhost is this CA's own host",
    );
    assert!(!dir.join("localhost.crt").exists());
    // Another name is certified; with a bare token the client says what it
    // could not check.
    let out = ok(certify("agg", &provisioner.step_jwt("agg")));
    assert!(
        stderr(&out).contains("did not pin the CA server's key"),
        "{}",
        stderr(&out)
    );
    // The operator may allow it (the server stopped), and the CA then
    // certifies its host's name.
    drop(server);
    let out = ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "install",
            "-p",
            ca.dir_arg(),
            "--node-on-ca-host",
            "allow",
        ],
    ));
    assert!(stderr(&out).contains("now gives nodes certificates for its own host name localhost"));
    let _server = ca.serve();
    ok(certify("localhost", &ca.token("localhost", &[])));
}
