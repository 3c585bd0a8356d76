//! `pki list` as an operator reads it: what each certificate is (a node's,
//! the CA's own server's) and where it stands (a renewed one superseded by
//! its successor), the filters, the CSV form read by Python's csv module,
//! and a reader that goes away (`| head`) ending it quietly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::process::{Command, Stdio};

use fedpki_tests::site::{Site, cert_at, kid};
use fedpki_tests::*;

/// `pki list -p @ca ARGS` (no password needed): its standard output.
fn list(site: &Site, args: &str) -> String {
    let dir = site.path("ca");
    let mut all = vec!["pki", "list", "-p", dir.to_str().unwrap()];
    all.extend(args.split_whitespace());
    stdout(&ok(fedpki(site.tmp.path(), &all)))
}

fn rows(site: &Site, args: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&list(site, &format!("--json {args}"))).unwrap()
}

fn serial_of(path: &std::path::Path) -> String {
    fedpki_core::issue::serial_hex(&cert_at(path, 0))
}

#[test]
fn the_list_says_what_each_certificate_is_and_where_it_stands_and_filters() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let one = site.certify("ca", "node1");
    let old = serial_of(&one.join("node1.crt"));
    ok(site.renew(&one, "node1"));
    let new = serial_of(&one.join("node1.crt"));
    let two = site.certify("ca", "node2");
    let revoked = serial_of(&two.join("node2.crt"));
    ok(site.pki(&format!("revoke -p @ca --serial {revoked}")));
    drop(server);
    // A second start: the server takes a new certificate of its own.
    drop(site.serve("ca"));

    let all = rows(&site, "");
    let row = |serial: &str| all.iter().find(|r| r["serial"] == serial).unwrap();
    assert_eq!(row(&old)["status"], "superseded");
    assert_eq!(row(&old)["successor"], new.as_str());
    assert_eq!(row(&new)["status"], "valid");
    assert_eq!(row(&revoked)["status"], "revoked");
    for serial in [&old, &new, &revoked] {
        assert_eq!(row(serial)["kind"], "node");
    }
    // The CA's own HTTPS certificate is there, and says what it is.
    let servers: Vec<_> = all.iter().filter(|r| r["kind"] == "server").collect();
    assert!(!servers.is_empty(), "{all:?}");
    assert!(servers.iter().all(|r| r["subject"] == "localhost"));

    // Filters.
    let valid = rows(&site, "--status valid");
    assert!(valid.iter().all(|r| r["status"] == "valid"));
    assert!(valid.iter().any(|r| r["serial"] == new.as_str()));
    let either = rows(&site, "--status revoked --status superseded");
    let mut serials: Vec<_> = either
        .iter()
        .map(|r| r["serial"].as_str().unwrap())
        .collect();
    serials.sort_unstable();
    let mut want = vec![
        old.as_str(),
        revoked.as_str(),
        servers[0]["serial"].as_str().unwrap(),
    ];
    want.sort_unstable();
    assert_eq!(serials, want);
    let node1 = rows(&site, "--subject NODE1 --status valid");
    assert_eq!(node1.len(), 1);
    assert_eq!(node1[0]["serial"], new.as_str());
    // Only the CA's own server certificates (a day long) expire within a
    // day, and only the newest of them is in use.
    let soon = rows(&site, "--expiring 1d");
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert_eq!(soon[0]["kind"], "server");
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[0]["status"], "superseded");
    assert_eq!(servers[0]["successor"], servers[1]["serial"]);
    assert_eq!(servers[1]["status"], "valid");
    assert!(
        rows(&site, "--expiring 400d")
            .iter()
            .any(|r| r["serial"] == new.as_str())
    );
    let int = cert_at(&site.path("ca/certs/intermediate_ca.crt"), 0);
    let prefix = &kid(&int)[..8];
    assert_eq!(rows(&site, &format!("--issuer {prefix}")).len(), all.len());
    assert!(rows(&site, "--issuer 0000000000").is_empty());

    // CSV, as Python's csv module reads it: the same rows.
    let csv = list(&site, "--format csv");
    let script = "import csv, json, sys\nprint(json.dumps(list(csv.DictReader(sys.stdin))))";
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut py.stdin.take().unwrap(), csv.as_bytes()).unwrap();
    let parsed = py.wait_with_output().unwrap();
    assert!(parsed.status.success());
    let read: Vec<serde_json::Value> = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(read.len(), all.len());
    let csv_row = read.iter().find(|r| r["serial"] == old.as_str()).unwrap();
    assert_eq!(csv_row["status"], "superseded");
    assert_eq!(csv_row["successor"], new.as_str());
    assert_eq!(csv_row["sans"], "node1");

    // A reader that goes away: no error, exit 0.
    let dir = site.path("ca");
    let mut child = Command::new(bin())
        .args(["pki", "list", "-p", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}
