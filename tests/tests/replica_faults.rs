//! Replicas on a shared PostgreSQL through faults (issue 22): a replica
//! killed under load, the database stopped and started again, the primary
//! lost and its synchronous standby promoted, a standby or a newer schema
//! refused. Each time: nothing a client was answered is lost, no token
//! works twice, the audit chain verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fedpki_tests::postgres::Postgres;
use fedpki_tests::replicas::Replicas;
use fedpki_tests::tokens::{Provisioner, new_key};
use fedpki_tests::*;

/// What clients under load saw.
#[derive(Default)]
struct Seen {
    /// Serials a client holds (answered 201).
    held: Mutex<Vec<String>>,
    /// Sign bodies answered 201: their tokens must never work again.
    answered: Mutex<Vec<Vec<u8>>>,
    /// Statuses by count.
    statuses: Mutex<HashMap<u16, usize>>,
}

/// `clients` threads certifying (and renewing what they got, over mutual
/// TLS) through the replicas at `addrs` in turn, until `stop`.
fn load(r: &Replicas, addrs: &[SocketAddr], clients: usize, stop: &AtomicBool, seen: &Seen) {
    let provisioner = Provisioner::of(&r.site.path("a"), &format!("localhost:{}", r.site.port));
    std::thread::scope(|s| {
        for c in 0..clients {
            let provisioner = &provisioner;
            s.spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let at = addrs[(c + n) % addrs.len()];
                    let key = new_key();
                    let body = provisioner.sign_body(&format!("c{c}-{n}"), &key);
                    let answer = r.request(at, "POST", "/1.0/sign", Some(body.clone()));
                    let Ok((status, issued)) = answer else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    *seen.statuses.lock().unwrap().entry(status).or_default() += 1;
                    if status != 201 {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    let chain = fedpki_core::issue::parse_certs_pem(&format!(
                        "{}{}",
                        issued["crt"].as_str().unwrap(),
                        issued["ca"].as_str().unwrap()
                    ))
                    .unwrap();
                    seen.held
                        .lock()
                        .unwrap()
                        .push(fedpki_core::issue::serial_hex(&chain[0]));
                    seen.answered.lock().unwrap().push(body);
                    if n.is_multiple_of(3) {
                        let auth = fedpki::facade::ClientAuth::new(&chain, &key).unwrap();
                        let at = addrs[(c + n + 1) % addrs.len()];
                        if let Ok((201, renewed)) =
                            r.request_as(at, Some(&auth), "POST", "/1.0/renew", Some(Vec::new()))
                        {
                            let leaf = fedpki_core::issue::parse_cert_pem(
                                renewed["crt"].as_str().unwrap(),
                            )
                            .unwrap();
                            seen.held
                                .lock()
                                .unwrap()
                                .push(fedpki_core::issue::serial_hex(&leaf));
                        }
                    }
                }
            });
        }
    });
}

/// Everything a client holds is in the ledger, every answered token is
/// spent, no token issued twice, and the audit chain verifies.
fn nothing_lost(r: &Replicas, pg: &Postgres, at: SocketAddr, seen: &Seen) {
    let db = &r.db_flag;
    let listed = stdout(&ok(r.bare(&format!("pki list -p @b --json {db}"))));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap();
    let held = seen.held.lock().unwrap().clone();
    assert!(!held.is_empty(), "the load certified nothing");
    for serial in &held {
        assert!(
            rows.iter().any(|row| row["serial"] == serial.as_str()),
            "{serial} was answered but is not in the ledger"
        );
    }
    for body in seen.answered.lock().unwrap().iter().take(40) {
        let (status, _) = r
            .request(at, "POST", "/1.0/sign", Some(body.clone()))
            .unwrap();
        assert_eq!(status, 401, "an answered token worked again");
    }
    let mut issued_by_token: HashMap<String, usize> = HashMap::new();
    for line in pg
        .psql("ca", "SELECT line FROM fedpki_audit ORDER BY seq")
        .lines()
    {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        if entry["event"] == "issue"
            && let Some(jti) = entry["jti"].as_str()
        {
            *issued_by_token.entry(jti.to_owned()).or_default() += 1;
        }
    }
    assert!(
        issued_by_token.values().all(|n| *n == 1),
        "a token issued twice"
    );
    let audit = stdout(&ok(r.bare(&format!("pki audit -p @b {db}"))));
    assert!(audit.contains("audit log intact"), "{audit}");
}

#[test]
fn kill_9_of_one_replica_under_load_loses_nothing_a_client_holds() {
    let pg = Postgres::start();
    pg.create_db("ca");
    let r = Replicas::install(&pg.url("ca"), "");
    let many = [
        "--max-renewals",
        "1000000",
        "--max-auth-failures",
        "1000000",
    ];
    let a = r.serve("a", &many);
    let _b = r.serve("b", &many);
    let (stop, seen) = (AtomicBool::new(false), Seen::default());
    let addrs = [r.addr("a"), r.addr("b")];
    std::thread::scope(|s| {
        s.spawn(|| load(&r, &addrs, 16, &stop, &seen));
        std::thread::sleep(Duration::from_millis(2500));
        a.kill();
        std::thread::sleep(Duration::from_millis(2500));
        stop.store(true, Ordering::SeqCst);
    });
    nothing_lost(&r, &pg, r.addr("b"), &seen);
}

#[test]
fn the_database_stopped_and_started_again_under_load() {
    let pg = Postgres::start();
    pg.create_db("ca");
    let r = Replicas::install(&pg.url("ca"), "");
    let _a = r.serve("a", &["--max-auth-failures", "1000000"]);
    let (stop, seen) = (AtomicBool::new(false), Seen::default());
    let at = r.addr("a");
    let health = || r.request(at, "GET", "/health", None).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| load(&r, &[at], 4, &stop, &seen));
        std::thread::sleep(Duration::from_millis(1500));
        pg.down();
        // The CA says so: 503 with Retry-After, and /health.
        let deadline = Instant::now() + Duration::from_secs(15);
        while health().0 != 503 {
            assert!(
                Instant::now() < deadline,
                "/health never said the database is away"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(health().1["store"], "database unavailable");
        let provisioner = Provisioner::of(&r.site.path("a"), &format!("localhost:{}", r.site.port));
        let body = provisioner.sign_body("during", &new_key());
        let (status, head, answer) = request_from(
            "127.0.0.9".parse().unwrap(),
            at.port(),
            &r.root,
            "POST",
            "/1.0/sign",
            &body,
        );
        assert_eq!(status, 503, "{head}{answer}");
        assert!(
            head.to_ascii_lowercase().contains("retry-after: 5"),
            "{head}"
        );
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("database is unavailable"),
            "{answer}"
        );
        std::thread::sleep(Duration::from_millis(1000));
        pg.up();
        // Service resumes by itself.
        let deadline = Instant::now() + Duration::from_secs(20);
        while health().0 != 200 {
            assert!(Instant::now() < deadline, "the CA did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
        let before = seen.held.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.held.lock().unwrap().len() == before {
            assert!(
                Instant::now() < deadline,
                "nothing certified after the restart"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert!(
        seen.statuses
            .lock()
            .unwrap()
            .get(&503)
            .copied()
            .unwrap_or(0)
            > 0
    );
    nothing_lost(&r, &pg, at, &seen);
}

#[test]
fn replicas_follow_a_failover_to_the_synchronous_standby() {
    let primary = Postgres::start();
    primary.create_db("ca");
    let standby = primary.standby();
    let url = format!(
        "postgresql://fedpki@127.0.0.1:{},127.0.0.1:{}/ca?sslmode=disable&target_session_attrs=read-write",
        primary.port, standby.port
    );
    let r = Replicas::install(&url, "");
    let many = ["--max-auth-failures", "1000000"];
    let _a = r.serve("a", &many);
    let _b = r.serve("b", &many);
    let (stop, seen) = (AtomicBool::new(false), Seen::default());
    let addrs = [r.addr("a"), r.addr("b")];
    std::thread::scope(|s| {
        s.spawn(|| load(&r, &addrs, 8, &stop, &seen));
        std::thread::sleep(Duration::from_millis(2000));
        primary.down();
        standby.promote();
        let before = seen.held.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.held.lock().unwrap().len() < before + 10 {
            assert!(
                Instant::now() < deadline,
                "the replicas did not carry on against the promoted standby"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
    });
    // The promoted standby holds everything the old primary answered.
    nothing_lost(&r, &standby, r.addr("b"), &seen);
}

#[test]
fn a_standby_another_cas_ledger_and_a_newer_schema_are_refused() {
    let primary = Postgres::start();
    primary.create_db("ca");
    let r = Replicas::install(&primary.url("ca"), "");
    let standby = primary.standby();
    let db = &r.db_flag;
    // A replica pointed at the standby alone refuses, changing nothing.
    let config = r.site.path("b/config/ca.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            &format!(":{}/", primary.port),
            &format!(":{}/", standby.port),
        ),
    )
    .unwrap();
    let before = snapshot(&r.site.path("b"));
    let out = r.site.pki(&format!("run -p @b {db}"));
    refused(&out, "is a read-only standby");
    assert_eq!(snapshot(&r.site.path("b")), before);
    // Another CA on the same database is refused at install.
    let out = r.site.pki(&format!(
        "install -p @other --ca-url $URL --store {} {db}",
        primary.url("ca")
    ));
    refused(&out, "already holds a fedpki ledger");
    assert!(!r.site.path("other").exists(), "nothing was made");
    // A schema newer than this fedpki's.
    primary.psql("ca", "UPDATE fedpki_schema SET version = 99");
    let out = r.site.pki(&format!("run -p @a {db}"));
    refused(&out, "schema version 99, newer than this fedpki's 2");
}
