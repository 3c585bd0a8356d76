//! `pki status` and `pki stop` on the real binary: the status of a stopped
//! and a running CA (exit 3 and 0, its counts, its health), and a stop
//! while certifies are in flight: the server exits 0 and every
//! certificate a client received is in the ledger; and a stop asked for
//! while the server is still opening is as graceful.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use fedpki_tests::site::{Site, cert_at, kid};
use fedpki_tests::*;

fn status(site: &Site) -> (Option<i32>, serde_json::Value) {
    let dir = site.path("ca");
    let out = fedpki(
        site.tmp.path(),
        &["pki", "status", "-p", dir.to_str().unwrap(), "--json"],
    );
    (
        out.status.code(),
        serde_json::from_str(&stdout(&out)).unwrap(),
    )
}

#[test]
fn status_says_whether_the_ca_runs_and_what_it_holds() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let (code, s) = status(&site);
    assert_eq!(code, Some(3), "{s}");
    assert_eq!(s["server"], "stopped");
    assert_eq!(s["certificates"]["issued"], 0);

    let server = site.serve("ca");
    site.certify("ca", "node1");
    let (code, s) = status(&site);
    assert_eq!(code, Some(0), "{s}");
    assert_eq!(s["server"], "running");
    assert_eq!(s["pid"], server.pid());
    assert_eq!(s["health"]["status"], "ok");
    // The node's and the CA server's own (a day long: expiring soon).
    assert_eq!(s["certificates"]["issued"], 2);
    assert_eq!(s["certificates"]["valid"], 2);
    assert_eq!(s["certificates"]["expiringIn30Days"], 1);
    let int = cert_at(&site.path("ca/certs/intermediate_ca.crt"), 0);
    assert_eq!(s["intermediate"], kid(&int));
    assert!(s["crl"]["number"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["addresses"][0] == format!("localhost:{}", site.port));
}

#[test]
fn stop_lets_requests_in_flight_finish_and_loses_nothing() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let tokens: Vec<String> = (0..8)
        .map(|i| site.token("ca", &format!("node{i}")))
        .collect();
    let answered = std::thread::scope(|s| {
        let clients: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| {
                let site = &site;
                s.spawn(move || {
                    let name = format!("node{i}");
                    let dir = site.path(&name);
                    let out = fedpki(
                        site.tmp.path(),
                        &[
                            "pki",
                            "certify",
                            "-n",
                            &name,
                            "-t",
                            token,
                            "-c",
                            dir.to_str().unwrap(),
                        ],
                    );
                    out.status.success().then(|| {
                        fedpki_core::issue::serial_hex(&cert_at(
                            &dir.join(format!("{name}.crt")),
                            0,
                        ))
                    })
                })
            })
            .collect();
        let dir = site.path("ca");
        let out = ok(fedpki(
            site.tmp.path(),
            &["pki", "stop", "-p", dir.to_str().unwrap()],
        ));
        assert!(
            stderr(&out).contains("Stopped the CA server"),
            "{}",
            stderr(&out)
        );
        clients
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect::<Vec<String>>()
    });
    assert!(server.stop().success(), "the server did not exit 0");
    let listed = site.list("ca");
    for serial in &answered {
        assert!(
            listed.iter().any(|r| r["serial"] == serial.as_str()),
            "{serial} was answered and is not in the ledger"
        );
    }
    let (code, s) = status(&site);
    assert_eq!(code, Some(3), "{s}");
    // Stopping what does not run: said, not an error.
    let dir = site.path("ca");
    let out = ok(fedpki(
        site.tmp.path(),
        &["pki", "stop", "-p", dir.to_str().unwrap()],
    ));
    assert!(stderr(&out).contains("nothing to stop"));
}

/// A SIGTERM that arrives while the server is still opening its CA (the
/// password, the keys, the ledger) stops it as gracefully as one that
/// arrives later: it exits 0 and says so, its ledger closed. (It used to
/// die of the signal, its index left unclosed, before its handler was
/// installed.)
#[test]
fn a_sigterm_while_the_ca_opens_is_a_graceful_stop() {
    use std::process::{Command, Stdio};
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let dir = site.path("ca");
    let child = Command::new(bin())
        .args(["pki", "run", "-p", dir.to_str().unwrap(), "--password-file"])
        .arg(site.path("pw"))
        .current_dir(site.tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The lock holds the server's pid from the moment it starts opening,
    // before it asks for the password.
    let lock = dir.join("fedpki.lock");
    let pid = child.id().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(&lock).map_or(true, |l| l.trim() != pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never took its lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let target = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(target, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{:?}: {said}", out.status);
    assert!(said.contains("event=stopped"), "{said}");
}
