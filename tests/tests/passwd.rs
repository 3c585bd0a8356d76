//! `pki passwd`: every key of the folder under the new password and none
//! under the old, refused while the server runs or with a wrong password
//! (nothing changed), and killed at each of its steps, a folder whose keys
//! all open with one password (the old before the swap, the new after).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::{Path, PathBuf};

use fedpki_tests::site::Site;
use fedpki_tests::*;

const NEW: &str = "a-new-password-5678";

/// Every key file under the folder's `secrets/`.
fn keys(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("secrets"), &mut out);
    out.sort();
    out
}

/// The key files' contents.
fn key_bytes(dir: &Path) -> Vec<Vec<u8>> {
    keys(dir)
        .iter()
        .map(|k| std::fs::read(k).unwrap())
        .collect()
}

/// How many of the folder's keys `password` decrypts.
fn opened_by(dir: &Path, password: &str) -> usize {
    keys(dir)
        .iter()
        .filter(|k| {
            let pem = std::fs::read_to_string(k).unwrap();
            fedpki_core::PrivateKey::from_pem(&pem, Some(password.as_bytes())).is_ok()
        })
        .count()
}

fn passwd(site: &Site, from: &Path, to: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let dir = site.path("ca");
    fedpki_within(
        site.tmp.path(),
        &[
            "pki",
            "passwd",
            "-p",
            dir.to_str().unwrap(),
            "--password-file",
            from.to_str().unwrap(),
            "--new-password-file",
            to.to_str().unwrap(),
        ],
        env,
        120,
    )
}

fn files(site: &Site) -> (PathBuf, PathBuf) {
    let new = site.path("new-pw");
    std::fs::write(&new, format!("{NEW}\n")).unwrap();
    (site.path("pw"), new)
}

#[test]
fn every_key_takes_the_new_password_and_refusals_change_nothing() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let ca = site.path("ca");
    let (old, new) = files(&site);
    let all = keys(&ca).len();
    assert_eq!(
        all,
        4,
        "root, intermediate, provisioner, TLS: {:?}",
        keys(&ca)
    );
    let before = key_bytes(&ca);
    let server = site.serve("ca");
    refused(&passwd(&site, &old, &new, &[]), "stop it first");
    drop(server);
    std::fs::write(site.path("wrong"), "not-the-password\n").unwrap();
    refused(
        &passwd(&site, &site.path("wrong"), &new, &[]),
        "wrong CA password",
    );
    refused(
        &passwd(&site, &old, &old, &[]),
        "the new password is the old one",
    );
    std::fs::write(site.path("short"), "short\n").unwrap();
    refused(&passwd(&site, &old, &site.path("short"), &[]), "at least 8");
    assert!(key_bytes(&ca) == before, "a refusal changed the keys");
    assert!(!ca.join(".secrets.tmp-passwd").exists());

    let out = ok(passwd(&site, &old, &new, &[]));
    assert!(stdout(&out).contains("4 keys"), "{}", stdout(&out));
    assert_eq!(opened_by(&ca, NEW), all);
    assert_eq!(opened_by(&ca, PASSWORD), 0);
    for k in keys(&ca) {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(k.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The CA serves with the new password, and only with it.
    std::fs::copy(&new, &old).unwrap();
    let server = site.serve("ca");
    site.certify("ca", "node1");
    drop(server);
    assert!(!ca.join(".secrets.tmp-passwd").exists());
}

#[test]
fn killed_at_each_step_the_keys_all_open_with_one_password() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let ca = site.path("ca");
    let (old, new) = files(&site);
    let all = keys(&ca).len();
    for (step, swapped) in [
        ("passwd:unlocked", false),
        ("passwd:half-written", false),
        ("passwd:staged", false),
        ("passwd:exchanged", true),
    ] {
        let out = passwd(&site, &old, &new, &[("FEDPKI_CRASH_AT", step)]);
        assert!(!out.status.success(), "{step}: it did not stop");
        let (now, other) = if swapped {
            (NEW, PASSWORD)
        } else {
            (PASSWORD, NEW)
        };
        assert_eq!(opened_by(&ca, now), all, "{step}");
        assert_eq!(opened_by(&ca, other), 0, "{step}");
        // The real commands open it with that password.
        let pw = if swapped { &new } else { &old };
        ok(fedpki(
            site.tmp.path(),
            &[
                "pki",
                "get-token",
                "-n",
                "probe",
                "-p",
                ca.to_str().unwrap(),
                "--password-file",
                pw.to_str().unwrap(),
            ],
        ));
        if swapped {
            // Back to the old password, for the next step (and to show a
            // staging folder a crash left is no obstacle).
            ok(passwd(&site, &new, &old, &[]));
        }
    }
    assert!(!ca.join(".secrets.tmp-passwd").exists());
    assert_eq!(opened_by(&ca, PASSWORD), all);
}
