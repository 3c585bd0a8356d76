//! CA replicas on a shared PostgreSQL (issue 22), against a real server
//! the tests start: the ledger decides as the embedded store does, a token
//! works once across replicas, revocations and activations reach every
//! replica, the audit chain is one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki::facade::{Backend, Burn, CertRecord, Change, MemoryBackend, RevocationRecord};
use fedpki_tests::postgres::{PG_PASSWORD, Postgres};

/// A password file for the database, in `dir`.
fn pg_password_file(dir: &std::path::Path) -> std::path::PathBuf {
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
        issuer: format!("{:040x}", n % 2),
    }
}

fn token(jti: String) -> Burn {
    Burn {
        jti,
        until: 1_800_000_000,
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
        .map(|_| match d.roll(7) {
            0 | 1 => Change::Issue {
                token: Some(token(format!("t{}", d.roll(20)))),
                cert: cert(d, world, None),
                by: None,
                from: None,
            },
            2 => {
                let (old, key) = pick(d, &world.issued);
                let presented = match d.roll(2) {
                    0 => b"forged".to_vec(),
                    _ => old.clone().into_bytes(),
                };
                Change::Renew {
                    old,
                    presented,
                    cert: cert(d, world, Some(key)),
                    from: None,
                }
            }
            3 => Change::Burn {
                token: token(format!("t{}", d.roll(20))),
                at: 1_700_000_000,
                from: None,
            },
            4 => {
                // First sight of a certificate, or one recorded already.
                let mut rec = cert(d, world, None);
                if d.roll(2) == 0 && !world.issued.is_empty() {
                    rec.serial = pick(d, &world.issued).0;
                }
                Change::Record {
                    cert: rec,
                    by: "adopted".into(),
                }
            }
            _ => {
                let (serial, _) = pick(d, &world.issued);
                let reason = [0u8, 1, 4][d.roll(3) as usize];
                Change::Revoke {
                    record: RevocationRecord {
                        serial,
                        revoked_at: 1_700_000_100 + d.roll(100),
                        reason,
                    },
                    token: (d.roll(2) == 0).then(|| token(format!("r{}", d.roll(20)))),
                    by: "test".into(),
                    presented: None,
                    from: None,
                }
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

/// `pki audit` and `pki list` read a live shared ledger in one snapshot:
/// a writer commits batch after batch while the audit log is read again
/// and again, and every read ends exactly where its head says. (Read one
/// query at a time, a commit between the lines and the head made the log
/// look cut off: "the log ends at entry 491 but the CA's database records
/// 492 entries", seen in a failover test.)
#[test]
fn the_audit_log_and_its_head_are_read_as_of_one_moment_while_a_replica_writes() {
    let pg = Postgres::start();
    let tmp = tempfile::tempdir().unwrap();
    let pw = pg_password_file(tmp.path());
    pg.create_db("race");
    let url = pg.url("race");
    let mut writer = fedpki::facade::postgres_backend(&url, Some(&pw), "fp", true).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let committed = s.spawn(|| {
            let mut d = Dice(0x5eed);
            let mut world = World::default();
            let mut batches = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                writer.commit(&batch(&mut d, &mut world)).unwrap();
                batches += 1;
            }
            batches
        });
        // Read until done or a read disagrees; the writer is stopped
        // before anything is asserted, so a failure cannot leave it running.
        let mut reads = Vec::new();
        for _ in 0..200 {
            let (lines, head) = fedpki::facade::postgres_audit(&url, Some(&pw), "fp").unwrap();
            let entries = lines.iter().filter(|b| **b == b'\n').count() as u64;
            reads.push((entries, head));
            if entries != head {
                break;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let batches = committed.join().unwrap();
        (reads, batches)
    });
    let (reads, batches) = reads;
    let disagreeing: Vec<_> = reads.iter().filter(|(lines, head)| lines != head).collect();
    assert!(
        disagreeing.is_empty(),
        "read {} times while {batches} batches were committed; the lines and the head \
         disagreed: {disagreeing:?}",
        reads.len()
    );
    assert!(
        batches > 20,
        "the writer committed only {batches} batches meanwhile"
    );
    assert_eq!(reads.len(), 200);
    assert!(reads.last().is_some_and(|(lines, _)| *lines > 0));
}

/// Two replicas, each `pki run` on its own copy of the CA folder and its
/// own loopback address, on one database: a token works once whichever receives it, a
/// revocation answered by one is in the other's CRL within a second, `pki
/// list` and `pki audit` agree from either folder, and an intermediate
/// activated on one is issued from by the other.
#[test]
fn two_replicas_share_tokens_revocations_the_audit_chain_and_issuers() {
    use fedpki_tests::replicas::{Replicas, crl_serials};
    use fedpki_tests::site::{cert_at, kid};
    use fedpki_tests::tokens::{Provisioner, new_key};
    use fedpki_tests::*;
    let pg = Postgres::start();
    pg.create_db("ca");
    let r = Replicas::install(&pg.url("ca"), "");
    let (site, db) = (&r.site, &r.db_flag);
    // Moving the root out of one copy: no replica then holds it.
    ok(site.pki(&format!("root export -p @a -o @root --yes {db}")));
    std::fs::remove_file(site.path("b/secrets/root_ca_key")).unwrap();
    let (at_a, at_b) = (r.addr("a"), r.addr("b"));
    let _a = r.serve("a", &[]);
    let _b = r.serve("b", &[]);

    // One token, sent 32 times across both replicas at once: one certificate.
    let provisioner = Provisioner::of(&site.path("a"), &format!("localhost:{}", r.site.port));
    let body = provisioner.sign_body("node1", &new_key());
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (body, r) = (body.clone(), &r);
                let at = if i % 2 == 0 { at_a } else { at_b };
                s.spawn(move || r.request(at, "POST", "/1.0/sign", Some(body)).unwrap().0)
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
    let sign = |at: std::net::SocketAddr, name: &str| {
        let (status, issued) = r
            .request(
                at,
                "POST",
                "/1.0/sign",
                Some(provisioner.sign_body(name, &new_key())),
            )
            .unwrap();
        assert_eq!(status, 201, "{issued}");
        issued
    };
    let issued = sign(at_b, "node2");
    let leaf = fedpki_core::issue::parse_cert_pem(issued["crt"].as_str().unwrap()).unwrap();
    let serial = fedpki_core::issue::serial_hex(&leaf);
    let revoke = serde_json::json!({
        "serial": fedpki_core::serial::hex_to_decimal(&serial).unwrap(),
        "reasonCode": 1, "passive": true, "ott": provisioner.revoke_jwt(&serial),
    });
    let (status, answer) = r
        .request(
            at_a,
            "POST",
            "/1.0/revoke",
            Some(revoke.to_string().into_bytes()),
        )
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    let answered = std::time::Instant::now();
    while !crl_serials(&r.fetch(at_b, "/crl").1).contains(&serial) {
        assert!(
            answered.elapsed() < std::time::Duration::from_secs(1),
            "B's CRL lacks the revocation A answered a second ago"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // OpenSSL honours B's CRL for it.
    std::fs::write(site.path("b.crl"), r.fetch(at_b, "/crl").1).unwrap();
    let chain = format!(
        "{}{}",
        issued["crt"].as_str().unwrap(),
        issued["ca"].as_str().unwrap()
    );
    std::fs::write(site.path("node2.crt"), chain).unwrap();
    openssl(
        site.tmp.path(),
        &["crl", "-inform", "DER", "-in", "b.crl", "-out", "b-crl.pem"],
    );
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
    let list = |dir: &str| stdout(&ok(r.bare(&format!("pki list -p @{dir} --json {db}"))));
    assert_eq!(list("a"), list("b"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list("a")).unwrap();
    assert!(rows.iter().any(|row| row["subject"] == "node1"));
    let audit = |dir: &str| stdout(&ok(r.bare(&format!("pki audit -p @{dir} {db}"))));
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
    let new = cert_at(&site.signed_intermediate("next.signed"), 0);
    let started = std::time::Instant::now();
    while r.fetch(at_b, &format!("/crl/{}", kid(&new))).0 != 200 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "B did not take up the intermediate activated on A"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let issued = sign(at_b, "node3");
    let ca = fedpki_core::issue::parse_cert_pem(issued["ca"].as_str().unwrap()).unwrap();
    assert_eq!(ca, new, "B issues from the intermediate activated on A");
    assert!(
        site.path(&format!("b/certs/intermediates/{}.crt", kid(&new)))
            .exists()
    );

    // The ledger numbers every replica's CRLs, also one signed without a
    // server: with A's clock an hour ahead of B's (its CRLs numbered so),
    // `pki crl` on B's folder still numbers above them.
    drop((_a, _b));
    let ahead = pg.psql(
        "ca",
        "UPDATE fedpki_meta SET value = value + 3600000 WHERE key = 'crl_number' \
         RETURNING value",
    );
    let ahead: u64 = ahead.trim().parse().expect(&ahead);
    ok(site.pki(&format!("crl -p @b -o @offline.crl {db}")));
    let der = std::fs::read(site.path("offline.crl")).unwrap();
    let number = fedpki_core::crl::Crl::parse(&der)
        .unwrap()
        .number()
        .unwrap();
    assert!(
        number > ahead,
        "offline CRL {number}, the replicas' last {ahead}"
    );
}

/// An embedded CA with certificates, a renewal, revocations and burnt
/// tokens moves to PostgreSQL and back: the same `pki list`, the same audit
/// head, its spent tokens still refused; bad moves are refused and change
/// nothing.
#[test]
fn a_ca_moves_its_ledger_to_postgresql_and_back() {
    use fedpki_tests::tokens::{Provisioner, new_key};
    use fedpki_tests::*;
    let pg = Postgres::start();
    pg.create_db("ca");
    pg.create_db("taken");
    let ca = TestCa::install();
    let pgpw = pg_password_file(ca.tmp.path());
    let provisioner = Provisioner::of(&ca.dir, &ca.ca_url);
    let server = ca.serve();
    let spent: Vec<Vec<u8>> = (0..4)
        .map(|i| provisioner.sign_body(&format!("node{i}"), &new_key()))
        .collect();
    for body in &spent {
        assert_eq!(ca.post_sign(body.clone()).0, 201);
    }
    let renewed = ca.certify("renewed");
    ok(fedpki(
        &renewed,
        &[
            "pki",
            "renew",
            "-n",
            "renewed",
            "-c",
            renewed.to_str().unwrap(),
        ],
    ));
    let serial = node_serial(&renewed, "renewed");
    ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "revoke",
            "-p",
            ca.dir_arg(),
            "--serial",
            &serial,
            "--reason",
            "key-compromise",
            "--password-file",
            ca.pw_arg(),
        ],
    ));
    drop(server);
    let pw = pgpw.to_str().unwrap();
    let cmd = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--store-password-file", pw]);
        fedpki(ca.tmp.path(), &all)
    };
    let list = || stdout(&ok(cmd(&["pki", "list", "-p", ca.dir_arg(), "--json"])));
    let audit = || stdout(&ok(cmd(&["pki", "audit", "-p", ca.dir_arg()])));
    let (listed, head) = (list(), audit());

    // Refused, nothing changed: a database holding a ledger, one not there.
    let other = TestCa::install();
    let taken = pg.url("taken");
    ok(fedpki(
        other.tmp.path(),
        &[
            "pki",
            "store",
            "migrate",
            "-p",
            other.dir_arg(),
            "--to",
            &taken,
            "--store-password-file",
            pw,
        ],
    ));
    let before = snapshot(&ca.dir);
    let migrate = |to: &str| cmd(&["pki", "store", "migrate", "-p", ca.dir_arg(), "--to", to]);
    refused(&migrate(&taken), "already holds a fedpki ledger");
    let nowhere = format!(
        "postgresql://fedpki@127.0.0.1:{}/ca?sslmode=disable",
        free_port()
    );
    refused(&migrate(&nowhere), "cannot reach");
    assert!(
        snapshot(&ca.dir) == before,
        "a refused move changed the CA folder"
    );

    let out = ok(migrate(&pg.url("ca")));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    assert!(
        stdout(&out).contains(&format!("{} certificates, 2 revocations", rows.len())),
        "{}",
        stdout(&out)
    );
    assert_eq!(list(), listed);
    assert_eq!(audit(), head);
    let server = ca.serve_with(&["--store-password-file", pw]);
    for body in &spent {
        assert_eq!(
            ca.post_sign(body.clone()).0,
            401,
            "a spent token works again"
        );
    }
    let renewed_key_again = provisioner.sign_body("fresh", &new_key());
    assert_eq!(ca.post_sign(renewed_key_again).0, 201);
    refused(&migrate("embedded"), "is being served");
    drop(server);
    let (listed, head) = (list(), audit());
    ok(migrate("embedded"));
    assert_eq!(list(), listed);
    assert_eq!(audit(), head);
    let _server = ca.serve();
    for body in &spent {
        assert_eq!(
            ca.post_sign(body.clone()).0,
            401,
            "a spent token works again"
        );
    }
}

/// The database reached over TLS (rustls), its server checked against the
/// root given (`sslrootcert`) and, for verify-full, its name: another root
/// or another name is refused before anything is sent.
#[test]
fn the_database_is_reached_over_tls_checked_against_its_root() {
    use fedpki_tests::*;
    let pg = Postgres::start();
    let root = pg.with_tls();
    for db in ["tls1", "tls2", "tls3"] {
        pg.create_db(db);
    }
    let other = tempfile::tempdir().unwrap();
    let pgpw = pg_password_file(other.path());
    let url = |host: &str, db: &str, mode: &str, root: &std::path::Path| {
        format!(
            "postgresql://fedpki@{host}:{}/{db}?sslmode={mode}&sslrootcert={}",
            pg.port,
            root.display()
        )
    };
    let install = |url: &str| {
        TestCa::install_with(&[
            "--store",
            url,
            "--store-password-file",
            pgpw.to_str().unwrap(),
        ])
    };
    // The right root, the right name.
    let ca = install(&url("localhost", "tls1", "verify-full", &root));
    let _server = ca.serve_with(&["--store-password-file", pgpw.to_str().unwrap()]);
    let node = ca.certify("node1");
    assert!(node.join("node1.crt").exists());
    // verify-ca checks the chain, not the name.
    let _ca = install(&url("127.0.0.1", "tls2", "verify-ca", &root));
    // Another root, or another name under verify-full: refused.
    let foreign = other.path().join("foreign.pem");
    openssl(
        other.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "foreign.key",
            "-subj",
            "/CN=another root",
            "-days",
            "2",
            "-out",
            "foreign.pem",
        ],
    );
    let run = |url: &str| {
        let t = tempfile::tempdir().unwrap();
        let pw = t.path().join("pw");
        std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
        let out = fedpki(
            t.path(),
            &[
                "pki",
                "install",
                "-p",
                "ca",
                "--password-file",
                pw.to_str().unwrap(),
                "--store",
                url,
                "--store-password-file",
                pgpw.to_str().unwrap(),
            ],
        );
        assert!(
            !t.path().join("ca").exists(),
            "a refused install made nothing"
        );
        out
    };
    refused(
        &run(&url("localhost", "tls3", "verify-full", &foreign)),
        "cannot reach",
    );
    refused(
        &run(&url("127.0.0.1", "tls3", "verify-full", &root)),
        "cannot reach",
    );
}
