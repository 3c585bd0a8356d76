//! An offline root (issue 14): the ceremony across three folders, the
//! intermediate signed by carried files, rotation while the CA serves and
//! while it is stopped, revoking an intermediate, moving the root out of an
//! all-in-one CA, and every bad input refused without a change. OpenSSL
//! checks each chain and CRL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::{Path, PathBuf};

use fedpki_core::{Certificate, PrivateKey, SigningKey, issue};
use fedpki_tests::site::{Site, cert_at, kid};
use fedpki_tests::*;

/// How many key files under `dir` decrypt with the password, and whether
/// one of them is the key of `root`.
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

/// A signed-intermediate file for the request `req` made with OpenSSL and
/// the root key of `root` (what an operator outside fedpki might do): a CA
/// with pathlen 5 and only digitalSignature. Its file name in the site.
fn loosely_signed(site: &Site, req: &str, root: &str) -> String {
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.path(req)).unwrap()).unwrap();
    std::fs::write(site.path("loose.csr"), request["csr"].as_str().unwrap()).unwrap();
    std::fs::write(
        site.path("loose.ext"),
        "basicConstraints=critical,CA:true,pathlen:5\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    let (root_crt, root_key) = (
        site.path(&format!("{root}/certs/root_ca.crt")),
        site.path(&format!("{root}/secrets/root_ca_key")),
    );
    let pass = format!("pass:{PASSWORD}");
    openssl(
        site.tmp.path(),
        &[
            "x509",
            "-req",
            "-in",
            "loose.csr",
            "-CA",
            root_crt.to_str().unwrap(),
            "-CAkey",
            root_key.to_str().unwrap(),
            "-passin",
            &pass,
            "-days",
            "30",
            "-set_serial",
            "7",
            "-extfile",
            "loose.ext",
            "-out",
            "loose.crt",
        ],
    );
    let signed = fedpki_core::package::SignedIntermediate::new(
        request["csrSha256"].as_str().unwrap(),
        std::fs::read_to_string(site.path("loose.crt")).unwrap(),
        std::fs::read_to_string(root_crt).unwrap(),
    );
    std::fs::write(site.path("loose.signed"), signed.to_json().unwrap()).unwrap();
    "loose.signed".into()
}

#[test]
fn the_ceremony_in_three_folders_keeps_the_root_key_off_the_ca() {
    let site = Site::new();
    let fingerprint = site.root_init("root", "--key-type p384 --name Example-Root");
    // The aggregator takes the CA's host name, as the demo's does.
    let out = ok(
        site.pki("install -p @ca --ca-url $URL --offline-root -o @int.req --node-on-ca-host allow")
    );
    assert!(
        stderr(&out).contains("--complete intermediate.signed --root-fingerprint"),
        "{}",
        stderr(&out)
    );
    let hash = stdout(&out)
        .trim()
        .trim_start_matches("Request SHA-256 ")
        .to_owned();
    assert_eq!(hash.len(), 64, "{}", stdout(&out));

    // A pending CA is refused by everything that would use it.
    let pending = snapshot(&site.path("ca"));
    refused(&site.pki("run -p @ca"), "is not complete");
    refused(&site.pki("get-token -p @ca -n node1"), "is not complete");
    refused(&site.pki("revoke -p @ca --serial 01"), "is not complete");
    assert_eq!(snapshot(&site.path("ca")), pending);

    // An edited request (another CA's CSR under this request's hash) is
    // refused by the root: the hash it states is not its CSR's.
    ok(site.pki("install -p @other-ca --ca-url $URL --offline-root -o @other.req"));
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(site.path(f)).unwrap()).unwrap()
    };
    let mut edited = read("int.req");
    edited["csr"] = read("other.req")["csr"].clone();
    std::fs::write(site.path("edited.req"), edited.to_string()).unwrap();
    let root_before = snapshot(&site.path("root"));
    refused(
        &site.pki("root sign -p @root @edited.req -o @edited.signed --yes"),
        "was altered",
    );
    assert!(!site.path("edited.signed").exists());
    assert_eq!(snapshot(&site.path("root")), root_before);

    // The root shows the hash and signs once; a second signing is refused.
    let out = ok(site.pki("root sign -p @root @int.req -o @int.signed --yes"));
    assert!(stderr(&out).contains(&hash), "{}", stderr(&out));
    refused(
        &site.pki("root sign -p @root @int.req -o @again.signed --yes"),
        "signed this request before",
    );
    assert!(!site.path("again.signed").exists());
    let shown = stdout(&ok(fedpki(site.tmp.path(), &["pki", "inspect", "int.req"])));
    let url = format!("localhost:{}", site.port);
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
    ok(site.pki("root sign -p @root @other.req -o @other.signed --yes"));
    refused(
        &site.pki("install -p @ca --complete @other.signed"),
        "answers the request",
    );
    let other_fp = site.root_init("root2", "");
    assert_ne!(other_fp, fingerprint);
    ok(site.pki("root sign -p @root2 @int.req -o @foreign.signed --yes"));
    refused(
        &site.pki(&format!(
            "install -p @ca --complete @foreign.signed --root-fingerprint {fingerprint}"
        )),
        "not the",
    );
    assert_eq!(snapshot(&site.path("ca")), pending);

    // Without the fingerprint and no terminal to compare it on, the root
    // (the one every node will trust) is not taken.
    let out = site.pki("install -p @ca --complete @int.signed");
    refused(
        &out,
        &format!("its root (SHA-256 {fingerprint}) was not confirmed"),
    );
    assert!(
        stderr(&out).contains("--root-fingerprint"),
        "{}",
        stderr(&out)
    );
    // An intermediate the root signed outside `pki root sign`, with
    // pathlen 5 and no keyCertSign, is not taken either.
    let loose = loosely_signed(&site, "int.req", "root");
    refused(
        &site.pki(&format!(
            "install -p @ca --complete @{loose} --root-fingerprint {fingerprint}"
        )),
        "pathlen 5, keyCertSign false",
    );
    assert_eq!(snapshot(&site.path("ca")), pending);

    let out = ok(site.pki(&format!(
        "install -p @ca --complete @int.signed --root-fingerprint {fingerprint}"
    )));
    assert!(stderr(&out).contains(&fingerprint));
    refused(
        &site.pki("install -p @ca --complete @int.signed"),
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
    assert!(
        keys_under(&site.path("root"), &root).1,
        "the probe finds the root key where it is"
    );

    // Profiles: root pathlen 1 (P-384 and the name asked), intermediate
    // pathlen 0.
    let root_text = openssl_text(&site.path("root/certs/root_ca.crt"));
    assert!(root_text.contains("CA:TRUE, pathlen:1"), "{root_text}");
    assert!(
        root_text.contains("secp384r1") && root_text.contains("Example-Root"),
        "{root_text}"
    );
    let int_text = openssl_text(&site.path("ca/certs/intermediate_ca.crt"));
    assert!(int_text.contains("CA:TRUE, pathlen:0"), "{int_text}");
    assert!(
        int_text.contains("Certificate Sign, CRL Sign"),
        "{int_text}"
    );

    // The CA serves: nodes certify and verify against the root carried
    // from the root folder, and hold mutual TLS with each other.
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
    let side = |dir: &Path, name: &str| {
        (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        )
    };
    let ((agg_crt, agg_key), (col_crt, col_key)) =
        (side(&agg, "localhost"), side(&col, "collaborator1"));
    let h = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(mtls::handshake(
            mtls::Identity {
                cert: &agg_crt,
                key: &agg_key,
                trust: &root_file,
            },
            mtls::Identity {
                cert: &col_crt,
                key: &col_key,
                trust: &root_file,
            },
            "localhost",
        ))
        .unwrap();
    assert_eq!(h.server_saw_client, "collaborator1");
    // The certify page is served by this CA too.
    let (status, page) = site.get("ca", "/");
    assert_eq!(status, 200);
    assert!(!page.is_empty());
    drop(server);

    // The air-gapped node flow: a request file signed with the server
    // stopped, imported against the root's fingerprint.
    let node = site.path("airgapped");
    std::fs::create_dir_all(&node).unwrap();
    let airgapped = |name: &str| {
        ok(fedpki(
            &node,
            &["pki", "csr", "-n", name, "-o", &format!("{name}.req")],
        ));
        ok(site.pki(&format!(
            "sign -p @ca @airgapped/{name}.req -o @airgapped/{name}.signed --yes"
        )));
        let signed = format!("{name}.signed");
        ok(fedpki(
            &node,
            &["pki", "import", &signed, "--root-fingerprint", &fingerprint],
        ));
        let crt = node.join(format!("cert/{name}.crt"));
        openssl_verify(&root_file, &crt, Some("sslclient")).unwrap();
        crt
    };
    airgapped("col2");
    // The root's ledger lists what it signed: the two intermediates.
    assert_eq!(site.list("root").len(), 2, "{:?}", site.list("root"));
    // ...and its audit log, hash-chained, records both signings.
    let root_dir = site.path("root");
    let audit = ok(fedpki(
        site.tmp.path(),
        &["pki", "audit", "-p", root_dir.to_str().unwrap()],
    ));
    assert!(
        stdout(&audit).contains("audit log intact: 2 entries"),
        "{}",
        stdout(&audit)
    );
    let log = std::fs::read_to_string(root_dir.join("db/audit.log")).unwrap();
    assert_eq!(
        log.matches("root sign: intermediate request").count(),
        2,
        "{log}"
    );

    // A rotation with the server stopped: the next signing comes from the
    // new intermediate.
    ok(site.pki("intermediate request -p @ca -o @next.req"));
    ok(site.pki("root sign -p @root @next.req -o @next.signed --yes"));
    let out = ok(site.pki("intermediate activate -p @ca @next.signed"));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    let next = cert_at(&site.signed_intermediate("next.signed"), 0);
    assert_eq!(cert_at(&airgapped("col3"), 1), next);
}

/// An all-in-one CA whose root was moved out while it served, with nodes
/// certified before a rotation made while it served.
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
    ok(site.pki("install -p @ca --ca-url $URL"));
    let server = site.serve("ca");
    let root = cert_at(&site.path("ca/certs/root_ca.crt"), 0);
    assert!(keys_under(&site.path("ca"), &root).1);

    // Export while serving: the root leaves, the CA keeps serving.
    ok(site.pki("root export -p @ca -o @root --yes"));
    assert!(!site.path("ca/secrets/root_ca_key").exists());
    let (decrypted, found) = keys_under(&site.path("ca"), &root);
    assert!(
        decrypted >= 3 && !found,
        "{decrypted} keys, root among them: {found}"
    );
    assert!(keys_under(&site.path("root"), &root).1);
    refused(
        &site.pki("root export -p @ca -o @root3 --yes"),
        "holds no root key",
    );

    let before = site.certify("ca", "before");
    let stays = site.certify("ca", "stays");
    let old = cert_at(&site.path("ca/certs/intermediate_ca.crt"), 0);

    // Rotation, while serving.
    ok(site.pki("intermediate request -p @ca -o @next.req"));
    refused(
        &site.pki("intermediate request -p @ca -o @x.req"),
        "already staged",
    );
    // A certificate from another root is refused, changing nothing.
    site.root_init("root2", "");
    ok(site.pki("root sign -p @root2 @next.req -o @foreign.signed --yes"));
    let ca_before = snapshot(&site.path("ca"));
    refused(
        &site.pki("intermediate activate -p @ca @foreign.signed"),
        "another root",
    );
    assert_eq!(snapshot(&site.path("ca")), ca_before);
    ok(site.pki("root sign -p @root @next.req -o @next.signed --yes"));
    let out = ok(site.pki("intermediate activate -p @ca @next.signed"));
    assert!(
        stderr(&out).contains("issues from it now"),
        "{}",
        stderr(&out)
    );
    refused(
        &site.pki("intermediate activate -p @ca @next.signed"),
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
    let rows = site.list("ca");
    let issuer_of = |serial: &str| {
        let row = rows.iter().find(|r| r["serial"] == serial).unwrap();
        row["issuer"].as_str().unwrap().to_owned()
    };
    let stays_serial = node_serial(&r.stays, "stays");
    assert_eq!(issuer_of(&stays_serial), kid(&r.old));
    assert_eq!(issuer_of(&node_serial(&r.before, "before")), kid(&r.new));

    // A certificate of the old intermediate revoked after the rotation:
    // the old intermediate's CRL lists it, the active one's does not.
    ok(site.pki(&format!("revoke -p @ca --serial {stays_serial}")));
    let (status, old_crl) = site.get("ca", &format!("/crl/{}", kid(&r.old)));
    assert_eq!(status, 200);
    assert!(site.crl_text(&old_crl).contains(&stays_serial));
    let (status, active_crl) = site.get("ca", "/crl");
    assert_eq!(status, 200);
    assert!(!site.crl_text(&active_crl).contains(&stays_serial));
    assert_eq!(
        site.get("ca", &format!("/crl/{}", kid(&r.new))).1,
        active_crl
    );
    // Each is signed by its own intermediate (OpenSSL checks).
    for (der, int) in [(&old_crl, &r.old), (&active_crl, &r.new)] {
        std::fs::write(site.path("c.crl"), der).unwrap();
        std::fs::write(site.path("i.pem"), int.to_pem().unwrap()).unwrap();
        let args = [
            "crl", "-inform", "DER", "-in", "c.crl", "-noout", "-CAfile", "i.pem",
        ];
        let out = openssl(site.tmp.path(), &args);
        assert!(stderr(&out).contains("verify OK"), "{}", stderr(&out));
    }
    assert_eq!(site.get("ca", "/crl/00ff").0, 404);

    // After a restart the new intermediate still issues and the old CRL is
    // still served.
    drop(r.server);
    let server = site.serve("ca");
    assert_eq!(site.get("ca", &format!("/crl/{}", kid(&r.old))).0, 200);
    let late = site.certify("ca", "late");
    assert_eq!(cert_at(&late.join("late.crt"), 1), r.new);

    // Revoked with the server stopped: the old intermediate's CRL file in
    // the folder is re-signed too.
    drop(server);
    let replaced = issue::serial_hex(&cert_at(&r.before_old_chain, 0));
    ok(site.pki(&format!("revoke -p @ca --serial {replaced}")));
    let file = site.path(&format!("ca/certs/crl/{}.crl", kid(&r.old)));
    let listed = site.crl_text(&std::fs::read(file).unwrap());
    assert!(
        listed.contains(&replaced) && listed.contains(&stays_serial),
        "{listed}"
    );
}

#[test]
fn a_revoked_intermediate_fails_crl_check_all_and_the_active_one_passes() {
    let r = exported_and_rotated();
    let site = &r.site;
    let old_serial = issue::serial_hex(&r.old);
    let root_ledger = site.list("root");
    assert!(
        root_ledger
            .iter()
            .any(|row| row["serial"] == old_serial.as_str()),
        "the exported root's ledger holds the first intermediate: {root_ledger:?}"
    );
    // `pki verify` of a node under the old intermediate reads that
    // intermediate's own CRL.
    let verify = |node: &Path, name: &str| {
        let dir = node.to_str().unwrap();
        fedpki(site.tmp.path(), &["pki", "verify", "-n", name, "-c", dir])
    };
    let shown = stdout(&ok(verify(&r.stays, "stays")));
    assert!(shown.contains(&format!("/crl/{}", kid(&r.old))), "{shown}");
    refused(
        &site.pki("root revoke -p @root --serial 0badc0de"),
        "signed no intermediate",
    );
    ok(site.pki(&format!(
        "root revoke -p @root --serial {old_serial} --reason superseded"
    )));
    ok(site.pki("root crl -p @root -o @root.crl"));
    let root_crl = std::fs::read(site.path("root.crl")).unwrap();
    let text = site.crl_text(&root_crl);
    assert!(text.contains(&old_serial), "{text}");
    assert!(text.contains("next update"), "{text}");

    // A CRL from another root (made in the setup) is refused; the root's
    // own is served.
    ok(site.pki("root crl -p @root2 -o @root2.crl"));
    refused(
        &site.pki("install -p @ca --root-crl @root2.crl"),
        "not signed by this CA's root",
    );
    // So is one of this root's that has expired (signed here with the
    // root's key, its nextUpdate past).
    let root_cert = cert_at(&site.path("root/certs/root_ca.crt"), 0);
    let key_pem = std::fs::read_to_string(site.path("root/secrets/root_ca_key")).unwrap();
    let root_key = PrivateKey::from_pem(&key_pem, Some(PASSWORD.as_bytes())).unwrap();
    let issuer = issue::Issuer {
        cert: &root_cert,
        key: &root_key,
    };
    let t = fedpki::facade::now();
    let expired = fedpki_core::crl::build(&issuer, &[], 1, t.minus(200 * 86_400), t.minus(86_400));
    std::fs::write(site.path("expired.crl"), expired.unwrap()).unwrap();
    refused(
        &site.pki("install -p @ca --root-crl @expired.crl"),
        "has expired",
    );
    assert_eq!(site.get("ca", "/crl/root").0, 404);
    ok(site.pki("install -p @ca --root-crl @root.crl"));
    assert_eq!(site.get("ca", "/crl/root"), (200, root_crl));
    // ...and with the root's CRL served, it fails once the intermediate is
    // revoked; a node under the active one passes, saying so.
    let out = verify(&r.stays, "stays");
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("its intermediate {old_serial}: revoked")),
        "{}",
        stdout(&out)
    );
    let shown = stdout(&ok(verify(&r.after, "after")));
    assert!(
        shown.contains("its intermediate not revoked, per https://"),
        "{shown}"
    );

    let old_crl = site.get("ca", &format!("/crl/{}", kid(&r.old))).1;
    std::fs::write(site.path("old-int.crl"), old_crl).unwrap();
    std::fs::write(site.path("new-int.crl"), site.get("ca", "/crl").1).unwrap();
    let check = |leaf: &Path| {
        std::process::Command::new("openssl")
            .args(["verify", "-x509_strict", "-crl_check_all", "-CAfile"])
            .arg(site.path("root/certs/root_ca.crt"))
            .args(["-CRLfile", "root.crl", "-CRLfile", "old-int.crl"])
            .args(["-CRLfile", "new-int.crl", "-untrusted"])
            .arg(leaf)
            .arg(leaf)
            .current_dir(site.tmp.path())
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

#[test]
fn bad_root_commands_are_refused_and_change_nothing() {
    let site = Site::new();
    let long = "x".repeat(65);
    let pw = site.pw.to_str().unwrap().to_owned();
    let raw = |args: &[&str]| {
        let all = [&["pki"][..], args, &["--password-file", pw.as_str()]].concat();
        fedpki(site.tmp.path(), &all)
    };
    let root = site.path("root");
    let root_arg = root.to_str().unwrap();
    // Refused by the flags' own checks, before any folder is made.
    let out = raw(&["root", "init", "-p", root_arg, "--key-type", "ed25519"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("p256 or p384"), "{}", stderr(&out));
    for args in [
        &["root", "init", "-p", root_arg, "--name", &long][..],
        &["root", "init", "-p", root_arg, "--name", ""][..],
        &[
            "install",
            "-p",
            root_arg,
            "--offline-root",
            "-o",
            "x.req",
            "--name",
            &long,
        ][..],
    ] {
        let out = raw(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("1 to 64"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!root.exists());
    refused(
        &site.pki("root sign -p @root @x.req -o @x.signed --yes"),
        "No such file",
    );
    std::fs::write(site.path("x.req"), "{}").unwrap();
    refused(
        &site.pki("root sign -p @root @x.req -o @x.signed --yes"),
        "not a fedpki intermediate request",
    );

    // A root is made once, and never in a CA's folder.
    site.root_init("root", "");
    // The root's files and ledger; redb's own file is left out, since
    // opening an index rewrites its header whatever it holds.
    let state = |site: &Site| {
        let files: Vec<_> = snapshot(&root)
            .into_iter()
            .filter(|(p, _)| !p.ends_with("db/fedpki.redb"))
            .collect();
        (files, site.list("root"))
    };
    let made = state(&site);
    refused(&site.pki("root init -p @root"), "already exists");
    assert_eq!(state(&site), made);
    ok(site.pki("install -p @ca --ca-url $URL"));
    refused(&site.pki("root init -p @ca"), "holds an online CA");
    refused(&site.pki("root crl -p @ca -o @c.crl"), "no offline root");

    // A node's request file is not an intermediate request; a wrong
    // password opens nothing.
    let node = site.path("node");
    std::fs::create_dir_all(&node).unwrap();
    ok(fedpki(
        &node,
        &["pki", "csr", "-n", "col1", "-o", "col1.req"],
    ));
    refused(
        &site.pki("root sign -p @root @node/col1.req -o @x.signed --yes"),
        "not a fedpki intermediate request",
    );
    std::fs::write(site.path("wrong-pw"), "not-the-password\n").unwrap();
    let wrong = site.path("wrong-pw");
    let out = fedpki(
        site.tmp.path(),
        &[
            "pki",
            "root",
            "crl",
            "-p",
            root_arg,
            "-o",
            "c.crl",
            "--password-file",
            wrong.to_str().unwrap(),
        ],
    );
    refused(&out, "wrong CA password");
    assert_eq!(state(&site), made);

    // --complete with a file that is not a signed intermediate (the
    // request itself), and --root-crl with a file that is not a CRL.
    ok(site.pki("install -p @pending --ca-url $URL --offline-root -o @p.req"));
    let pending = snapshot(&site.path("pending"));
    refused(
        &site.pki("install -p @pending --complete @p.req"),
        "not a fedpki signed intermediate",
    );
    refused(
        &site.pki("install -p @ca --root-crl @p.req"),
        "it is not a CRL",
    );
    assert_eq!(snapshot(&site.path("pending")), pending);
    // Not confirmed (no --yes, no terminal): nothing is signed.
    refused(
        &site.pki("root sign -p @root @p.req -o @p.signed"),
        "not confirmed",
    );
    assert!(!site.path("p.signed").exists());
    assert_eq!(state(&site), made);
}
