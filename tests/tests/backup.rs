//! `pki backup` while the server answers sixteen certifies at once, and
//! `pki restore` of it: the restored CA's audit log verifies, its ledger
//! holds every certificate answered before the backup began, and it
//! serves. A damaged or foreign archive is refused with nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fedpki_tests::site::{Site, cert_at};
use fedpki_tests::*;

fn serial_of(dir: &std::path::Path, name: &str) -> String {
    fedpki_core::issue::serial_hex(&cert_at(&dir.join(format!("{name}.crt")), 0))
}

#[test]
fn a_backup_under_load_restores_to_a_ca_that_holds_every_answered_certificate() {
    let site = Arc::new(Site::new());
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    // Tokens first, so the certifies race the backup, not the token maker.
    let tokens: Vec<String> = (0..16)
        .map(|i| site.token("ca", &format!("node{i}")))
        .collect();
    let answered = Arc::new(Mutex::new(Vec::new()));
    let nodes: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (site, answered) = (site.clone(), answered.clone());
            std::thread::spawn(move || {
                let name = format!("node{i}");
                ok(site.certify_with(&name, &token, &[]));
                let serial = serial_of(&site.path(&name), &name);
                answered.lock().unwrap().push((Instant::now(), serial));
            })
        })
        .collect();
    // Once some are answered, back up while the rest are in flight.
    while answered.lock().unwrap().len() < 4 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let began = Instant::now();
    let out = ok(site.bare("backup -p @ca -o @ca.zip"));
    assert!(
        stdout(&out).starts_with("backup written to "),
        "{}",
        stdout(&out)
    );
    for n in nodes {
        n.join().unwrap();
    }
    let before: Vec<String> = answered
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, s)| s.clone())
        .collect();
    assert!(before.len() >= 4);
    let archive = site.path("ca.zip");
    assert_eq!(
        archive.metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(server);

    let out = ok(site.bare("restore @ca.zip -p @restored"));
    assert!(
        stdout(&out).contains("audit log intact"),
        "{}",
        stdout(&out)
    );
    ok(site.bare("audit -p @restored"));
    let held: Vec<String> = site
        .list("restored")
        .iter()
        .map(|r| r["serial"].as_str().unwrap().to_owned())
        .collect();
    for serial in &before {
        assert!(
            held.contains(serial),
            "{serial} answered before the backup, not restored"
        );
    }
    let key = site.path("restored/secrets/intermediate_ca_key");
    assert_eq!(key.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&key).unwrap().contains("ENCRYPTED"));
    // The restored CA serves: a new node certifies with it.
    let restored = site.serve("restored");
    site.certify("restored", "after");
    drop(restored);
}

/// Rewrite the archive with Python's zipfile, changing one entry.
fn tamper(archive: &std::path::Path, out: &std::path::Path, entry: &str, change: &str) {
    let script = format!(
        "import zipfile\n\
         src = zipfile.ZipFile({a:?})\n\
         dst = zipfile.ZipFile({o:?}, 'w')\n\
         for i in src.infolist():\n\
         \x20   data = src.read(i.filename)\n\
         \x20   if i.filename == {e:?}:\n\
         \x20       data = {change}\n\
         \x20   dst.writestr(i, data)\n\
         {extra}\
         dst.close()\n",
        a = archive.to_str().unwrap(),
        o = out.to_str().unwrap(),
        e = entry,
        extra = if entry == "extra" {
            "dst.writestr('secrets/planted', b'x')\n"
        } else {
            ""
        },
    );
    let status = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_damaged_or_foreign_archive_is_refused_and_nothing_is_restored() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    drop(site.serve("ca"));
    ok(site.bare("backup -p @ca -o @good.zip"));
    // A backup never replaces a file.
    let before = std::fs::read(site.path("good.zip")).unwrap();
    refused(
        &site.bare("backup -p @ca -o @good.zip"),
        "never replaces a file",
    );
    assert_eq!(std::fs::read(site.path("good.zip")).unwrap(), before);

    let good = site.path("good.zip");
    let cases = [
        (
            "config/ca.json",
            "data.replace(b'localhost', b'attacker')",
            "is damaged",
        ),
        ("db/audit.log", "data[:-40]", "is damaged"),
        ("extra", "data", "is not in its manifest"),
        (
            "manifest.json",
            "data.replace(b'fedpki-backup/1', b'fedpki-backup/9')",
            "this fedpki restores",
        ),
    ];
    for (i, (entry, change, why)) in cases.iter().enumerate() {
        let bad = site.path(&format!("bad{i}.zip"));
        tamper(&good, &bad, entry, change);
        let out = site.bare(&format!("restore @bad{i}.zip -p @r{i}"));
        refused(&out, why);
        assert!(
            !site.path(&format!("r{i}")).exists(),
            "{entry}: a folder was left"
        );
    }
    // A cut archive.
    std::fs::write(site.path("cut.zip"), &before[..before.len() / 2]).unwrap();
    refused(&site.bare("restore @cut.zip -p @rc"), "not a zip file");
    assert!(!site.path("rc").exists());
    // Never into a folder that holds something.
    refused(&site.bare("restore @good.zip -p @ca"), "is not empty");
    // No staging folder is left behind by any refusal.
    let left: Vec<_> = std::fs::read_dir(site.tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    ok(site.bare("restore @good.zip -p @fine"));
    // A manifest that says a key was world-readable does not make it so.
    tamper(
        &good,
        &site.path("loose.zip"),
        "manifest.json",
        "data.replace(b'\"mode\": 384', b'\"mode\": 420')",
    );
    ok(site.bare("restore @loose.zip -p @loose"));
    let key = site.path("loose/secrets/intermediate_ca_key");
    assert_eq!(key.metadata().unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_ca_killed_mid_flight_is_backed_up_from_its_log() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let node = site.certify("ca", "node1");
    let serial = serial_of(&node, "node1");
    // kill -9: the index is left unclosed, which redb will not open
    // read-only; the log holds everything answered.
    server.kill();
    ok(site.bare("backup -p @ca -o @crashed.zip"));
    ok(site.bare("restore @crashed.zip -p @restored"));
    let held: Vec<String> = site
        .list("restored")
        .iter()
        .map(|r| r["serial"].as_str().unwrap().to_owned())
        .collect();
    assert!(held.contains(&serial), "{held:?}");
}
