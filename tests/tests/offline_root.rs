//! An offline root (issue 14): the ceremony across three folders, the
//! intermediate signed by carried files, rotation while the CA serves,
//! revoking an intermediate, moving the root out of an all-in-one CA, and
//! every bad input refused without a change. OpenSSL checks each chain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::{Path, PathBuf};
use std::process::Output;

use fedpki_core::{Certificate, PrivateKey, SigningKey, issue};
use fedpki_tests::*;

/// A root folder, a CA folder and a password, side by side.
struct Site {
    tmp: tempfile::TempDir,
    pw: PathBuf,
    port: u16,
}

impl Site {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
        Self {
            tmp,
            pw,
            port: free_port(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// `fedpki pki ARGS --password-file PW`.
    fn pki(&self, args: &[&str]) -> Output {
        let mut all = vec!["pki"];
        all.extend_from_slice(args);
        let pw = self.pw.to_str().unwrap().to_owned();
        all.extend_from_slice(&["--password-file", &pw]);
        fedpki(self.tmp.path(), &all)
    }

    /// `pki root init`; the fingerprint it printed.
    fn root_init(&self, dir: &str) -> String {
        let out = ok(self.pki(&["root", "init", "-p", &self.arg(dir)]));
        let text = stderr(&out);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("Root fingerprint (SHA-256): "))
            .expect("fingerprint printed");
        line.trim().to_owned()
    }

    /// `pki root sign … --yes`.
    fn root_sign(&self, root: &str, req: &str, out: &str) -> Output {
        self.pki(&[
            "root",
            "sign",
            "-p",
            &self.arg(root),
            &self.arg(req),
            "-o",
            &self.arg(out),
            "--yes",
        ])
    }

    /// The CA at `dir`, as the test helpers drive one.
    fn ca(&self, dir: &str) -> TestCaView {
        TestCaView {
            dir: self.path(dir),
            port: self.port,
        }
    }

    fn serve(&self, dir: &str) -> Server {
        Server::start(
            self.tmp.path(),
            &[
                "pki",
                "run",
                "-p",
                &self.arg(dir),
                "--password-file",
                self.pw.to_str().unwrap(),
            ],
        )
    }

    /// `pki get-token` + `pki certify` of `name` into `<tmp>/<name>`.
    fn certify(&self, ca: &str, name: &str) -> PathBuf {
        let out = ok(self.pki(&["get-token", "-p", &self.arg(ca), "-n", name]));
        let token = stdout(&out).trim().to_owned();
        let dir = self.path(name);
        ok(fedpki(
            self.tmp.path(),
            &[
                "pki",
                "certify",
                "-n",
                name,
                "-t",
                &token,
                "-c",
                dir.to_str().unwrap(),
            ],
        ));
        dir
    }

    fn renew(&self, node: &Path, name: &str) -> Output {
        fedpki(
            self.tmp.path(),
            &["pki", "renew", "-n", name, "-c", node.to_str().unwrap()],
        )
    }
}

/// What a test reads of a CA folder.
struct TestCaView {
    dir: PathBuf,
    port: u16,
}

impl TestCaView {
    fn root_der(&self) -> Vec<u8> {
        let pem = std::fs::read_to_string(self.dir.join("certs/root_ca.crt")).unwrap();
        fedpki_core::encoding::pem_one(&pem, "CERTIFICATE").unwrap()
    }

    /// GET `path`: status and body bytes.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let resp = rt
            .block_on(fedpki::facade::https_request(
                "localhost",
                self.port,
                &self.root_der(),
                "GET",
                path,
                None,
            ))
            .unwrap();
        (resp.status, resp.body.to_vec())
    }

    /// `pki list --json`.
    fn list(&self, cwd: &Path) -> Vec<serde_json::Value> {
        let out = ok(fedpki(
            cwd,
            &["pki", "list", "-p", self.dir.to_str().unwrap(), "--json"],
        ));
        serde_json::from_str(&stdout(&out)).unwrap()
    }
}

fn cert_at(path: &Path, index: usize) -> Certificate {
    issue::parse_certs_pem(&std::fs::read_to_string(path).unwrap()).unwrap()[index].clone()
}

fn kid(cert: &Certificate) -> String {
    fedpki_core::encoding::hex(&cert.key_id())
}

/// Every key file under `dir` that decrypts with the password, and whether
/// any of them is the root's key.
fn keys_under(dir: &Path, root: &Certificate) -> (usize, bool) {
    let mut decrypted = 0;
    let mut root_found = false;
    for (path, bytes) in snapshot(dir) {
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        if !text.contains("PRIVATE KEY") {
            continue;
        }
        let key = PrivateKey::from_pem(&text, Some(PASSWORD.as_bytes()))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        decrypted += 1;
        root_found |= &key.public_key() == root.public_key();
    }
    (decrypted, root_found)
}

fn crl_serials(cwd: &Path, der: &[u8]) -> String {
    let file = cwd.join("probe.crl");
    std::fs::write(&file, der).unwrap();
    let out = openssl(
        cwd,
        &[
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-in",
            file.to_str().unwrap(),
        ],
    );
    stdout(&out).to_ascii_lowercase()
}

#[test]
fn the_ceremony_in_three_folders_keeps_the_root_key_off_the_ca() {
    let site = Site::new();
    let fingerprint = site.root_init("root");
    let url = format!("localhost:{}", site.port);
    let out = ok(site.pki(&[
        "install",
        "-p",
        &site.arg("ca"),
        "--ca-url",
        &url,
        "--offline-root",
        "-o",
        &site.arg("int.req"),
    ]));
    let hash = stdout(&out)
        .trim()
        .trim_start_matches("The CSR Hash ")
        .to_owned();
    assert_eq!(hash.len(), 64, "{}", stdout(&out));

    // A pending CA is refused by everything that would use it.
    let pending = snapshot(&site.path("ca"));
    refused(
        &site.pki(&["run", "-p", &site.arg("ca")]),
        "is not complete",
    );
    refused(
        &site.pki(&["get-token", "-p", &site.arg("ca"), "-n", "node1"]),
        "is not complete",
    );
    refused(
        &site.pki(&["revoke", "-p", &site.arg("ca"), "--serial", "01"]),
        "is not complete",
    );
    assert_eq!(snapshot(&site.path("ca")), pending);

    // An edited request is refused by the root: the hash it states is not
    // its CSR's. (Another CA's CSR under this request's hash.)
    ok(site.pki(&[
        "install",
        "-p",
        &site.arg("other-ca"),
        "--ca-url",
        &url,
        "--offline-root",
        "-o",
        &site.arg("other.req"),
    ]));
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.path("int.req")).unwrap()).unwrap();
    let other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.path("other.req")).unwrap()).unwrap();
    edited["csr"] = other["csr"].clone();
    std::fs::write(site.path("edited.req"), edited.to_string()).unwrap();
    let root_before = snapshot(&site.path("root"));
    refused(
        &site.root_sign("root", "edited.req", "edited.signed"),
        "was altered",
    );
    assert!(!site.path("edited.signed").exists());
    assert_eq!(snapshot(&site.path("root")), root_before);

    // The root shows the hash, signs once; a second signing is refused.
    let out = ok(site.root_sign("root", "int.req", "int.signed"));
    assert!(stderr(&out).contains(&hash), "{}", stderr(&out));
    refused(
        &site.root_sign("root", "int.req", "again.signed"),
        "signed this request before",
    );
    assert!(!site.path("again.signed").exists());
    let shown = stdout(&ok(fedpki(site.tmp.path(), &["pki", "inspect", "int.req"])));
    assert!(
        shown.contains(&format!("Intermediate request from the CA at {url}")),
        "{shown}"
    );
    assert!(shown.contains(&hash), "{shown}");
    let shown = stdout(&ok(fedpki(
        site.tmp.path(),
        &["pki", "inspect", "int.signed"],
    )));
    assert!(
        shown.contains(&format!("Signed intermediate answering {hash}")),
        "{shown}"
    );

    // A signed file answering another request, and one from another root,
    // are refused by --complete; the CA folder is unchanged.
    ok(site.root_sign("root", "other.req", "other.signed"));
    refused(
        &site.pki(&[
            "install",
            "-p",
            &site.arg("ca"),
            "--complete",
            &site.arg("other.signed"),
        ]),
        "answers the request",
    );
    let other_fp = site.root_init("root2");
    assert_ne!(other_fp, fingerprint);
    ok(site.root_sign("root2", "int.req", "foreign.signed"));
    refused(
        &site.pki(&[
            "install",
            "-p",
            &site.arg("ca"),
            "--complete",
            &site.arg("foreign.signed"),
            "--root-fingerprint",
            &fingerprint,
        ]),
        "not the",
    );
    assert_eq!(snapshot(&site.path("ca")), pending);

    let out = ok(site.pki(&[
        "install",
        "-p",
        &site.arg("ca"),
        "--complete",
        &site.arg("int.signed"),
        "--root-fingerprint",
        &fingerprint,
    ]));
    assert!(stderr(&out).contains(&fingerprint));
    refused(
        &site.pki(&[
            "install",
            "-p",
            &site.arg("ca"),
            "--complete",
            &site.arg("int.signed"),
        ]),
        "complete already",
    );

    // No file of the CA folder holds the root key; its other keys decrypt.
    let root = cert_at(&site.path("root/certs/root_ca.crt"), 0);
    let (decrypted, root_found) = keys_under(&site.path("ca"), &root);
    assert!(
        decrypted >= 3,
        "the CA's own keys were not found ({decrypted})"
    );
    assert!(!root_found, "a file under the CA folder holds the root key");
    let (_, in_root) = keys_under(&site.path("root"), &root);
    assert!(in_root, "the probe must find the root key where it is");

    // Profiles: root pathlen 1, intermediate pathlen 0.
    assert!(openssl_text(&site.path("root/certs/root_ca.crt")).contains("CA:TRUE, pathlen:1"));
    let int_text = openssl_text(&site.path("ca/certs/intermediate_ca.crt"));
    assert!(int_text.contains("CA:TRUE, pathlen:0"), "{int_text}");
    assert!(
        int_text.contains("Certificate Sign, CRL Sign"),
        "{int_text}"
    );

    // The CA serves: nodes certify and verify with the root carried from
    // the root folder, and hold mutual TLS with each other.
    let server = site.serve("ca");
    let agg = site.certify("ca", "localhost");
    let col = site.certify("ca", "collaborator1");
    let root_file = site.path("root/certs/root_ca.crt");
    openssl_verify(&root_file, &agg.join("localhost.crt"), Some("sslserver")).unwrap();
    openssl_verify(
        &root_file,
        &col.join("collaborator1.crt"),
        Some("sslclient"),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt
        .block_on(mtls::handshake(
            mtls::Identity {
                cert: &agg.join("localhost.crt"),
                key: &agg.join("localhost.key"),
                trust: &root_file,
            },
            mtls::Identity {
                cert: &col.join("collaborator1.crt"),
                key: &col.join("collaborator1.key"),
                trust: &root_file,
            },
            "localhost",
        ))
        .unwrap();
    assert_eq!(h.server_saw_client, "collaborator1");
    // The certify page is served by this CA too.
    let (status, page) = site.ca("ca").get("/");
    assert_eq!(status, 200);
    assert!(!page.is_empty());
    drop(server);

    // The air-gapped node flow: a request file signed with the server
    // stopped, imported against the root's fingerprint.
    let node = site.path("airgapped");
    std::fs::create_dir_all(&node).unwrap();
    ok(fedpki(
        &node,
        &["pki", "csr", "-n", "col2", "-o", "col2.req"],
    ));
    ok(site.pki(&[
        "sign",
        "-p",
        &site.arg("ca"),
        node.join("col2.req").to_str().unwrap(),
        "-o",
        node.join("col2.signed").to_str().unwrap(),
        "--yes",
    ]));
    ok(fedpki(
        &node,
        &[
            "pki",
            "import",
            "col2.signed",
            "--root-fingerprint",
            &fingerprint,
        ],
    ));
    openssl_verify(&root_file, &node.join("cert/col2.crt"), Some("sslclient")).unwrap();
    // The root's ledger lists what it signed: the two intermediates.
    let root_ledger = site.ca("root").list(site.tmp.path());
    assert_eq!(root_ledger.len(), 2, "{root_ledger:?}");
}

/// An all-in-one CA whose root was moved out while it served, with nodes
/// certified before a rotation.
struct Rotated {
    site: Site,
    server: Server,
    old: Certificate,
    new: Certificate,
    /// Certified before the rotation, renewed after.
    before: PathBuf,
    /// Its certificate file before the renewal.
    before_old_chain: PathBuf,
    /// Certified before the rotation, never renewed.
    stays: PathBuf,
    /// Certified after the rotation.
    after: PathBuf,
}

fn exported_and_rotated() -> Rotated {
    let site = Site::new();
    let url = format!("localhost:{}", site.port);
    ok(site.pki(&["install", "-p", &site.arg("ca"), "--ca-url", &url]));
    let server = site.serve("ca");
    let root = cert_at(&site.path("ca/certs/root_ca.crt"), 0);
    assert!(keys_under(&site.path("ca"), &root).1);

    // Export while serving: the root leaves, the CA keeps serving.
    ok(site.pki(&[
        "root",
        "export",
        "-p",
        &site.arg("ca"),
        "-o",
        &site.arg("root"),
        "--yes",
    ]));
    assert!(!site.path("ca/secrets/root_ca_key").exists());
    let (decrypted, found) = keys_under(&site.path("ca"), &root);
    assert!(
        decrypted >= 3 && !found,
        "{decrypted} keys, root among them: {found}"
    );
    assert!(keys_under(&site.path("root"), &root).1);
    refused(
        &site.pki(&[
            "root",
            "export",
            "-p",
            &site.arg("ca"),
            "-o",
            &site.arg("root3"),
            "--yes",
        ]),
        "holds no root key",
    );

    let before = site.certify("ca", "before");
    let stays = site.certify("ca", "stays");
    let old = cert_at(&site.path("ca/certs/intermediate_ca.crt"), 0);

    // Rotation, while serving.
    ok(site.pki(&[
        "intermediate",
        "request",
        "-p",
        &site.arg("ca"),
        "-o",
        &site.arg("next.req"),
    ]));
    refused(
        &site.pki(&[
            "intermediate",
            "request",
            "-p",
            &site.arg("ca"),
            "-o",
            &site.arg("x.req"),
        ]),
        "already staged",
    );
    // A certificate from another root is refused.
    site.root_init("root2");
    ok(site.root_sign("root2", "next.req", "foreign.signed"));
    let ca_before = snapshot(&site.path("ca"));
    refused(
        &site.pki(&[
            "intermediate",
            "activate",
            "-p",
            &site.arg("ca"),
            &site.arg("foreign.signed"),
        ]),
        "another root",
    );
    assert_eq!(snapshot(&site.path("ca")), ca_before);
    ok(site.root_sign("root", "next.req", "next.signed"));
    let out = ok(site.pki(&[
        "intermediate",
        "activate",
        "-p",
        &site.arg("ca"),
        &site.arg("next.signed"),
    ]));
    assert!(
        stderr(&out).contains("issues from it now"),
        "{}",
        stderr(&out)
    );
    refused(
        &site.pki(&[
            "intermediate",
            "activate",
            "-p",
            &site.arg("ca"),
            &site.arg("next.signed"),
        ]),
        "no intermediate request is staged",
    );
    let new = cert_at(&site.signed_intermediate("next.signed"), 0);
    assert_ne!(kid(&old), kid(&new));

    let before_old_chain = site.path("before-old.crt");
    std::fs::copy(before.join("before.crt"), &before_old_chain).unwrap();
    ok(site.renew(&before, "before"));
    let after = site.certify("ca", "after");
    Rotated {
        site,
        server,
        old,
        new,
        before,
        before_old_chain,
        stays,
        after,
    }
}

impl Site {
    /// The intermediate of a signed file, written out as PEM.
    fn signed_intermediate(&self, signed: &str) -> PathBuf {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.path(signed)).unwrap()).unwrap();
        let out = self.path(&format!("{signed}.crt"));
        std::fs::write(&out, v["crt"].as_str().unwrap()).unwrap();
        out
    }
}

#[test]
fn rotation_renews_onto_the_new_chain_and_keeps_the_old_crl() {
    let r = exported_and_rotated();
    let site = &r.site;
    let root_file = site.path("root/certs/root_ca.crt");
    // The renewed node got the new chain; its old chain still verifies.
    assert_eq!(cert_at(&r.before.join("before.crt"), 1), r.new);
    assert_eq!(cert_at(&r.before_old_chain, 1), r.old);
    assert_eq!(cert_at(&r.after.join("after.crt"), 1), r.new);
    for chain in [
        r.before.join("before.crt"),
        r.before_old_chain.clone(),
        r.stays.join("stays.crt"),
        r.after.join("after.crt"),
    ] {
        openssl_verify(&root_file, &chain, Some("sslclient")).unwrap();
    }
    // The list says who issued what.
    let ca = site.ca("ca");
    let rows = ca.list(site.tmp.path());
    let issuer_of = |serial: &str| {
        rows.iter()
            .find(|r| r["serial"] == serial)
            .map(|r| r["issuer"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(issuer_of(&node_serial(&r.stays, "stays")), kid(&r.old));
    assert_eq!(issuer_of(&node_serial(&r.before, "before")), kid(&r.new));

    // A certificate of the old intermediate still renews... (the renewed
    // one above) ...and is revoked after the rotation: the old CRL lists it.
    let stays_serial = node_serial(&r.stays, "stays");
    ok(site.pki(&["revoke", "-p", &site.arg("ca"), "--serial", &stays_serial]));
    let (status, old_crl) = ca.get(&format!("/crl/{}", kid(&r.old)));
    assert_eq!(status, 200);
    assert!(crl_serials(site.tmp.path(), &old_crl).contains(&stays_serial));
    let (status, active_crl) = ca.get("/crl");
    assert_eq!(status, 200);
    assert!(!crl_serials(site.tmp.path(), &active_crl).contains(&stays_serial));
    assert_eq!(ca.get(&format!("/crl/{}", kid(&r.new))).1, active_crl);
    // Both are signed by their own intermediate (OpenSSL checks).
    for (der, int) in [(&old_crl, &r.old), (&active_crl, &r.new)] {
        let dir = site.tmp.path();
        std::fs::write(dir.join("c.crl"), der).unwrap();
        std::fs::write(dir.join("i.pem"), int.to_pem().unwrap()).unwrap();
        let out = openssl(
            dir,
            &[
                "crl", "-inform", "DER", "-in", "c.crl", "-noout", "-CAfile", "i.pem",
            ],
        );
        assert!(stderr(&out).contains("verify OK"), "{}", stderr(&out));
    }
    assert_eq!(ca.get("/crl/00ff").0, 404);

    // After a restart the new intermediate still issues and the old CRL is
    // still served.
    drop(r.server);
    let _server = site.serve("ca");
    assert_eq!(ca.get(&format!("/crl/{}", kid(&r.old))).0, 200);
    let late = site.certify("ca", "late");
    assert_eq!(cert_at(&late.join("late.crt"), 1), r.new);

    // Revoked with the server stopped: the old intermediate's CRL file in
    // the folder is re-signed too.
    drop(_server);
    let replaced = issue::serial_hex(&cert_at(&r.before_old_chain, 0));
    ok(site.pki(&["revoke", "-p", &site.arg("ca"), "--serial", &replaced]));
    let file = site.path(&format!("ca/certs/crl/{}.crl", kid(&r.old)));
    let listed = crl_serials(site.tmp.path(), &std::fs::read(file).unwrap());
    assert!(
        listed.contains(&replaced) && listed.contains(&stays_serial),
        "{listed}"
    );
}

#[test]
fn a_revoked_intermediate_fails_crl_check_all_and_the_active_one_passes() {
    let r = exported_and_rotated();
    let site = &r.site;
    let ca = site.ca("ca");
    let root_ledger = site.ca("root").list(site.tmp.path());
    let old_serial = issue::serial_hex(&r.old);
    assert!(
        root_ledger
            .iter()
            .any(|row| row["serial"] == old_serial.as_str()),
        "the exported root's ledger holds the first intermediate: {root_ledger:?}"
    );
    refused(
        &site.pki(&[
            "root",
            "revoke",
            "-p",
            &site.arg("root"),
            "--serial",
            "0badc0de",
        ]),
        "signed no intermediate",
    );
    ok(site.pki(&[
        "root",
        "revoke",
        "-p",
        &site.arg("root"),
        "--serial",
        &old_serial,
        "--reason",
        "superseded",
    ]));
    ok(site.pki(&[
        "root",
        "crl",
        "-p",
        &site.arg("root"),
        "-o",
        &site.arg("root.crl"),
    ]));
    let root_crl = std::fs::read(site.path("root.crl")).unwrap();
    let text = crl_serials(site.tmp.path(), &root_crl);
    assert!(text.contains(&old_serial), "{text}");
    assert!(text.contains("next update"), "{text}");

    // A CRL from another root (made in the setup) is refused; the root's
    // own is served.
    ok(site.pki(&[
        "root",
        "crl",
        "-p",
        &site.arg("root2"),
        "-o",
        &site.arg("root2.crl"),
    ]));
    refused(
        &site.pki(&[
            "install",
            "-p",
            &site.arg("ca"),
            "--root-crl",
            &site.arg("root2.crl"),
        ]),
        "not signed by this CA's root",
    );
    assert_eq!(ca.get("/crl/root").0, 404);
    ok(site.pki(&[
        "install",
        "-p",
        &site.arg("ca"),
        "--root-crl",
        &site.arg("root.crl"),
    ]));
    let (status, served) = ca.get("/crl/root");
    assert_eq!(status, 200);
    assert_eq!(served, root_crl);

    let dir = site.tmp.path();
    std::fs::write(
        dir.join("old-int.crl"),
        ca.get(&format!("/crl/{}", kid(&r.old))).1,
    )
    .unwrap();
    std::fs::write(dir.join("new-int.crl"), ca.get("/crl").1).unwrap();
    let check = |leaf: &Path| {
        std::process::Command::new("openssl")
            .args(["verify", "-x509_strict", "-crl_check_all", "-CAfile"])
            .arg(site.path("root/certs/root_ca.crt"))
            .args([
                "-CRLfile",
                "root.crl",
                "-CRLfile",
                "old-int.crl",
                "-CRLfile",
                "new-int.crl",
            ])
            .arg("-untrusted")
            .arg(leaf)
            .arg(leaf)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    // Under the revoked intermediate: refused.
    let out = check(&r.before_old_chain);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success() && said.contains("revoked"), "{said}");
    // Under the active one: accepted.
    verified(&check(&r.after.join("after.crt"))).unwrap();
    verified(&check(&r.before.join("before.crt"))).unwrap();
}
