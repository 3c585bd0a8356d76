//! CA replicas on a shared PostgreSQL (issue 22), against a real server
//! the tests start: the ledger decides as the embedded store does, a token
//! works once across replicas, revocations and activations reach every
//! replica, the audit chain is one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::PathBuf;

use fedpki::facade::{
    Backend, CertRecord, Change, IssueCommit, MemoryBackend, RevocationRecord, RevokeCommit,
};
use fedpki_tests::postgres::{PG_PASSWORD, Postgres};

/// A password file for the database, in `dir`.
fn pg_password_file(dir: &std::path::Path) -> PathBuf {
    let f = dir.join("pg-pw");
    std::fs::write(&f, format!("{PG_PASSWORD}\n")).unwrap();
    f
}

/// Deterministic choices (xorshift).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A known serial with its key, or an unknown one.
fn pick(d: &mut Dice, issued: &[(String, String)]) -> (String, String) {
    let i = d.roll(issued.len() as u64 + 1) as usize;
    issued
        .get(i)
        .cloned()
        .unwrap_or_else(|| ("ffff".into(), String::new()))
}

/// The next certificate: over `key`, else one of five keys.
fn cert(d: &mut Dice, world: &mut World, key: Option<String>) -> CertRecord {
    world.next += 1;
    let n = world.next;
    let serial = format!("{n:016x}");
    let key = key.unwrap_or_else(|| format!("{:064x}", d.roll(5)));
    world.issued.push((serial.clone(), key.clone()));
    CertRecord {
        serial: serial.clone(),
        subject: format!("n{n}"),
        sans: vec![format!("n{n}")],
        not_after: 2_000_000_000,
        issued_at: 1_700_000_000,
        der: serial.into_bytes(),
        key,
    }
}

/// The certificates made so far, and their count.
#[derive(Default)]
struct World {
    issued: Vec<(String, String)>,
    next: u64,
}

/// A random batch of changes over a small world: tokens that repeat,
/// certificates over few keys, renewals and revocations of known and
/// unknown serials, presented certificates right and forged.
fn batch(d: &mut Dice, world: &mut World) -> Vec<Change> {
    let size = 1 + d.roll(6);
    (0..size)
        .map(|_| match d.roll(5) {
            0 | 1 => Change::Issue(IssueCommit {
                jti: Some(format!("t{}", d.roll(20))),
                burn_until: 1_800_000_000,
                cert: Some(cert(d, world, None)),
                renews: None,
                presented: None,
                at: 1_700_000_000,
                by: None,
            }),
            2 => {
                let (old, key) = pick(d, &world.issued);
                let presented = match d.roll(3) {
                    0 => Some(b"forged".to_vec()),
                    1 => Some(old.clone().into_bytes()),
                    _ => None,
                };
                Change::Issue(IssueCommit {
                    jti: None,
                    burn_until: 0,
                    cert: Some(cert(d, world, Some(key))),
                    renews: Some(old),
                    presented,
                    at: 1_700_000_000,
                    by: None,
                })
            }
            _ => {
                let (serial, _) = pick(d, &world.issued);
                let reason = [0u8, 1, 4][d.roll(3) as usize];
                Change::Revoke(RevokeCommit {
                    record: RevocationRecord {
                        serial,
                        revoked_at: 1_700_000_100 + d.roll(100),
                        reason,
                    },
                    jti: (d.roll(2) == 0).then(|| format!("r{}", d.roll(20))),
                    burn_until: 1_800_000_000,
                    by: "test".into(),
                    presented: None,
                })
            }
        })
        .collect()
}

/// The same random workloads, committed to the in-memory store and to the
/// PostgreSQL ledger, get the same outcomes and leave the same state: the
/// database decides with the embedded store's rules, and reads all they ask.
#[test]
fn the_postgresql_ledger_decides_as_the_embedded_store_does() {
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let pw = pg_password_file(tmp.path());
    for seed in 1..=12u64 {
        let db = format!("eq{seed}");
        pg.create_db(&db);
        let mut shared =
            fedpki::facade::postgres_backend(&pg.url(&db), Some(&pw), "fp", true).unwrap();
        let mut memory = MemoryBackend::default();
        let mut d = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut world = World::default();
        for round in 0..40 {
            let changes = batch(&mut d, &mut world);
            let want = memory.commit(&changes).unwrap();
            let got = shared.commit(&changes).unwrap();
            assert_eq!(got, want, "seed {seed} round {round}: {changes:#?}");
        }
        let key = |c: &CertRecord| c.serial.clone();
        let mut want = memory.certificates().unwrap();
        let mut got = shared.certificates().unwrap();
        want.sort_by_key(key);
        got.sort_by_key(key);
        assert_eq!(got, want, "seed {seed}");
        let certificates = got.len();
        let mut want = memory.revocations().unwrap();
        let mut got = shared.revocations().unwrap();
        want.sort_by(|a, b| a.serial.cmp(&b.serial));
        got.sort_by(|a, b| a.serial.cmp(&b.serial));
        assert_eq!(got, want, "seed {seed}");
        // Reopened, it is the same ledger; another CA's root is refused.
        drop(shared);
        let mut again =
            fedpki::facade::postgres_backend(&pg.url(&db), Some(&pw), "fp", false).unwrap();
        assert_eq!(again.certificates().unwrap().len(), certificates);
        let other = fedpki::facade::postgres_backend(&pg.url(&db), Some(&pw), "other", false);
        let e = other.err().unwrap().to_string();
        assert!(e.contains("holds the ledger of another CA"), "{e}");
    }
}

/// One request to the replica on `port`: status and JSON body.
fn request(
    port: u16,
    root: &[u8],
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let resp = rt
        .block_on(fedpki::facade::https_request(
            "localhost",
            port,
            root,
            method,
            path,
            body,
        ))
        .unwrap();
    (
        resp.status,
        serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null),
    )
}

/// The serials (canonical hex) of a DER CRL.
fn crl_serials(der: &[u8]) -> Vec<String> {
    fedpki_core::crl::Crl::parse(der)
        .unwrap()
        .entries()
        .into_iter()
        .map(|e| e.serial_hex)
        .collect()
}

fn crl_of(port: u16, root: &[u8], path: &str) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let resp = rt
        .block_on(fedpki::facade::https_request(
            "localhost",
            port,
            root,
            "GET",
            path,
            None,
        ))
        .unwrap();
    (resp.status, resp.body.to_vec())
}

/// Two replicas, each `pki run` on its own copy of the CA folder and its
/// own port, on one database: a token works once whichever receives it, a
/// revocation answered by one is in the other's CRL within a second, `pki
/// list` and `pki audit` agree from either folder, and an intermediate
/// activated on one is issued from by the other.
#[test]
fn two_replicas_share_tokens_revocations_the_audit_chain_and_issuers() {
    use fedpki_tests::site::{Site, kid};
    use fedpki_tests::tokens::{Provisioner, new_key};
    use fedpki_tests::*;
    let pg = Postgres::start();
    pg.create_db("ca");
    let site = Site::new();
    let pgpw = pg_password_file(site.tmp.path());
    let db = format!("--store-password-file {}", pgpw.display());
    ok(site.pki(&format!(
        "install -p @a --ca-url $URL --store {} {db}",
        pg.url("ca")
    )));
    // Export the root first: no replica holds it.
    ok(site.pki(&format!("root export -p @a -o @root --yes {db}")));
    let status = std::process::Command::new("cp")
        .args(["-a"])
        .arg(site.path("a"))
        .arg(site.path("b"))
        .status()
        .unwrap();
    assert!(status.success());
    let run = |dir: &str, extra: &[&str]| {
        let d = site.path(dir);
        let mut args = vec![
            "pki",
            "run",
            "-p",
            d.to_str().unwrap(),
            "--password-file",
            site.pw.to_str().unwrap(),
            "--store-password-file",
            pgpw.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Server::start(site.tmp.path(), &args)
    };
    let port_b = free_port();
    let bind_b = format!("127.0.0.1:{port_b}");
    let _a = run("a", &[]);
    let _b = run("b", &["--bind", &bind_b]);
    let (port_a, root) = (site.port, {
        let pem = std::fs::read_to_string(site.path("a/certs/root_ca.crt")).unwrap();
        fedpki_core::encoding::pem_one(&pem, "CERTIFICATE").unwrap()
    });

    // One token, sent 32 times across both replicas at once: one certificate.
    let provisioner = Provisioner::of(&site.path("a"), &format!("localhost:{port_a}"));
    let body = provisioner.sign_body("node1", &new_key());
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (body, root) = (body.clone(), &root);
                let port = if i % 2 == 0 { port_a } else { port_b };
                s.spawn(move || request(port, root, "POST", "/1.0/sign", Some(body)).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 401),
        "{statuses:?}"
    );

    // A certificate issued through B, revoked through A: in B's CRL within 1 s.
    let (status, issued) = request(
        port_b,
        &root,
        "POST",
        "/1.0/sign",
        Some(provisioner.sign_body("node2", &new_key())),
    );
    assert_eq!(status, 201, "{issued}");
    let leaf = fedpki_core::issue::parse_cert_pem(issued["crt"].as_str().unwrap()).unwrap();
    let serial = fedpki_core::issue::serial_hex(&leaf);
    let decimal = fedpki_core::serial::hex_to_decimal(&serial).unwrap();
    let revoke = serde_json::json!({
        "serial": decimal, "reasonCode": 1, "passive": true,
        "ott": provisioner.revoke_jwt(&serial),
    });
    let (status, answer) = request(
        port_a,
        &root,
        "POST",
        "/1.0/revoke",
        Some(revoke.to_string().into_bytes()),
    );
    assert_eq!(status, 200, "{answer}");
    let answered = std::time::Instant::now();
    loop {
        let (_, der) = crl_of(port_b, &root, "/crl");
        if crl_serials(&der).contains(&serial) {
            break;
        }
        assert!(
            answered.elapsed() < std::time::Duration::from_secs(1),
            "B's CRL lacks the revocation A answered a second ago"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // OpenSSL honours B's CRL for it.
    let (_, der) = crl_of(port_b, &root, "/crl");
    std::fs::write(site.path("b.crl"), &der).unwrap();
    let chain = format!(
        "{}{}",
        issued["crt"].as_str().unwrap(),
        issued["ca"].as_str().unwrap()
    );
    std::fs::write(site.path("node2.crt"), chain).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in", "b.crl", "-out", "b-crl.pem"])
        .current_dir(site.tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = std::process::Command::new("openssl")
        .args([
            "verify",
            "-crl_check",
            "-CRLfile",
            "b-crl.pem",
            "-CAfile",
            "root/certs/root_ca.crt",
        ])
        .args(["-untrusted", "node2.crt", "node2.crt"])
        .current_dir(site.tmp.path())
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success() && said.contains("revoked"), "{said}");

    // The ledger and the audit chain, the same from either folder.
    let bare = |line: String| {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|w| match w.strip_prefix('@') {
                Some(name) => site.path(name).to_str().unwrap().to_owned(),
                None => w.to_owned(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(fedpki(site.tmp.path(), &args))
    };
    let list = |dir: &str| stdout(&bare(format!("pki list -p @{dir} --json {db}")));
    assert_eq!(list("a"), list("b"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list("a")).unwrap();
    assert!(rows.iter().any(|r| r["subject"] == "node1"));
    let audit = |dir: &str| stdout(&bare(format!("pki audit -p @{dir} {db}")));
    assert_eq!(audit("a"), audit("b"));
    assert!(audit("a").contains("audit log intact"), "{}", audit("a"));

    // An intermediate activated on A: B issues from it without a file
    // copied by hand.
    ok(site.pki(&format!("intermediate request -p @a -o @next.req {db}")));
    ok(site.pki("root sign -p @root @next.req -o @next.signed --yes"));
    let out = ok(site.pki(&format!("intermediate activate -p @a @next.signed {db}")));
    assert!(
        stderr(&out).contains("Published to the CA's replicas"),
        "{}",
        stderr(&out)
    );
    let new = fedpki_tests::site::cert_at(&site.signed_intermediate("next.signed"), 0);
    let started = std::time::Instant::now();
    while crl_of(port_b, &root, &format!("/crl/{}", kid(&new))).0 != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "B did not take up the intermediate activated on A"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, issued) = request(
        port_b,
        &root,
        "POST",
        "/1.0/sign",
        Some(provisioner.sign_body("node3", &new_key())),
    );
    assert_eq!(status, 201, "{issued}");
    let ca = fedpki_core::issue::parse_cert_pem(issued["ca"].as_str().unwrap()).unwrap();
    assert_eq!(ca, new, "B issues from the intermediate activated on A");
    assert!(
        site.path("b/certs/intermediates")
            .join(format!("{}.crt", kid(&new)))
            .exists()
    );
}
