//! The manual (aggregator-as-CA) flow and air-gapped signing (issue 3):
//! OpenFL's commands, paths and zip packages, request and signed files, and
//! every hostile input refused without writing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fedpki_tests::*;

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("FQDN", "agg.example")
        .env_remove("FEDPKI_PASSWORD")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// An aggregator workspace with its CA and certificate, and an empty
/// collaborator workspace, side by side in one temporary folder.
struct Federation {
    tmp: tempfile::TempDir,
    agg: PathBuf,
    col: PathBuf,
}

impl Federation {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let agg = tmp.path().join("aggregator");
        let col = tmp.path().join("collaborator");
        std::fs::create_dir_all(agg.join("plan")).unwrap();
        std::fs::create_dir_all(&col).unwrap();
        ok(run(&agg, &["workspace", "certify"]));
        ok(run(&agg, &["aggregator", "generate-cert-request"]));
        ok(run(&agg, &["aggregator", "certify", "-s"]));
        Self { tmp, agg, col }
    }

    /// A collaborator's request made on its side and carried over.
    fn request(&self, name: &str) -> PathBuf {
        ok(run(
            &self.col,
            &["collaborator", "generate-cert-request", "-n", name],
        ));
        let zip = format!("col_{name}_to_agg_cert_request.zip");
        std::fs::copy(self.col.join(&zip), self.agg.join(&zip)).unwrap();
        self.agg.join(zip)
    }
}

/// Zip entries: name and contents.
type Entries<'a> = Vec<(&'a str, &'a [u8])>;

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
}

fn openssl_csr(dir: &Path, name: &str) -> Vec<u8> {
    openssl_csr_asking(dir, name, name, &format!("DNS:{name}"))
}

/// An RSA-3072 CSR in `<stem>.csr` for `CN=cn` asking for `sans` (OpenSSL's
/// `subjectAltName` syntax).
fn openssl_csr_asking(dir: &Path, stem: &str, cn: &str, sans: &str) -> Vec<u8> {
    let name = stem;
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
            &format!("{name}.key"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={sans}"),
            "-sha384",
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::read(dir.join(format!("{name}.csr"))).unwrap()
}

#[test]
fn manual_flow_in_two_workspaces_with_packages_then_mutual_tls() {
    let f = Federation::new();
    let cert = f.agg.join("cert");
    for key in [
        "ca/root-ca/private/root-ca.key",
        "ca/signing-ca/private/signing-ca.key",
        "server/agg_agg.example.key",
    ] {
        assert_eq!(mode(&cert.join(key)), 0o600, "{key}");
    }
    let chain = std::fs::read_to_string(cert.join("cert_chain.crt")).unwrap();
    assert_eq!(
        chain,
        std::fs::read_to_string(cert.join("ca/root-ca.crt")).unwrap()
            + &std::fs::read_to_string(cert.join("ca/signing-ca.crt")).unwrap(),
        "cert_chain.crt is the root then the signing CA"
    );
    let root_text = openssl_text(&cert.join("ca/root-ca.crt"));
    assert!(root_text.contains("CA:TRUE, pathlen:1"), "{root_text}");
    let root = fedpki_core::issue::parse_cert_pem(
        &std::fs::read_to_string(cert.join("ca/root-ca.crt")).unwrap(),
    )
    .unwrap();
    assert!(
        fedpki_core::chain::lifetime_secs(&root) >= 10 * 365 * 86400,
        "the root outlives its leaves"
    );

    let zip = f.request("col1");
    let out = ok(run(
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
    ));
    assert!(stdout(&out).contains("The CSR Hash for file client/col_col1.csr = "));
    assert_eq!(
        std::fs::read_to_string(f.agg.join("plan/cols.yaml")).unwrap(),
        "collaborators:\n- col1\n"
    );
    let signed = "agg_to_col_col1_signed_cert.zip";
    std::fs::copy(f.agg.join(signed), f.col.join(signed)).unwrap();
    let out = ok(run(&f.col, &["collaborator", "certify", "-i", signed]));
    assert!(stdout(&out).contains("Certificate col_col1.crt installed to PKI directory"));

    // Both leaves, verified by OpenSSL against the root with the signing CA
    // untrusted, with the profile OpenFL's lack: the aggregator a TLS server
    // only, a collaborator a TLS client only (OpenFL's own CSRs ask for
    // exactly that), so neither can pass for the other.
    let ca_dir = f.tmp.path().join("check");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::copy(cert.join("ca/root-ca.crt"), ca_dir.join("root.crt")).unwrap();
    for (leaf, name, purpose, not_purpose, eku) in [
        (
            cert.join("server/agg_agg.example.crt"),
            "agg.example",
            "sslserver",
            "sslclient",
            "TLS Web Server Authentication\n",
        ),
        (
            f.col.join("cert/client/col_col1.crt"),
            "col1",
            "sslclient",
            "sslserver",
            "TLS Web Client Authentication\n",
        ),
    ] {
        let with_chain = ca_dir.join(format!("{name}.pem"));
        std::fs::write(
            &with_chain,
            std::fs::read_to_string(&leaf).unwrap()
                + &std::fs::read_to_string(cert.join("ca/signing-ca.crt")).unwrap(),
        )
        .unwrap();
        openssl_verify(&ca_dir.join("root.crt"), &with_chain, Some(purpose)).unwrap();
        let wrong = openssl_verify(&ca_dir.join("root.crt"), &with_chain, Some(not_purpose));
        assert!(
            wrong
                .unwrap_err()
                .contains("unsuitable certificate purpose"),
            "{name} must not verify as {not_purpose}"
        );
        let text = openssl_text(&leaf);
        assert!(
            text.contains(&format!(
                "X509v3 Subject Alternative Name: \n                DNS:{name}\n"
            )),
            "{name}: exactly one SAN\n{text}"
        );
        for needle in [
            "Digital Signature",
            eku,
            &format!("DNS:{name}"),
            "ecdsa-with-SHA384",
        ] {
            assert!(text.contains(needle), "{name}: {needle}\n{text}");
        }
    }

    // gRPC's setup: each side trusts cert_chain.crt.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = mtls::Identity {
        cert: &cert.join("server/agg_agg.example.crt"),
        key: &cert.join("server/agg_agg.example.key"),
        trust: &cert.join("cert_chain.crt"),
    };
    let client = mtls::Identity {
        cert: &f.col.join("cert/client/col_col1.crt"),
        key: &f.col.join("cert/client/col_col1.key"),
        trust: &f.col.join("cert/cert_chain.crt"),
    };
    let h = rt
        .block_on(mtls::handshake(server, client, "agg.example"))
        .unwrap();
    assert_eq!(
        (h.server_saw_client.as_str(), h.client_saw_server.as_str()),
        ("col1", "agg.example")
    );
}

#[test]
fn an_openssl_rsa_csr_in_an_openfl_zip_is_signed_and_an_openfl_style_package_is_imported() {
    let f = Federation::new();
    // An RSA-3072 CSR as `fx` makes it, in the package `fx` makes.
    let csr = openssl_csr(f.tmp.path(), "rsa1");
    let zip = f.agg.join("col_rsa1_to_agg_cert_request.zip");
    write_zip(&zip, &[("col_rsa1.csr", &csr)]);
    ok(run(
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
    ));
    let leaf = f.agg.join("cert/client/col_rsa1.crt");
    let text = openssl_text(&leaf);
    assert!(
        text.contains("Key Encipherment") && text.contains("Public-Key: (3072 bit)"),
        "{text}"
    );
    let with_chain = f.tmp.path().join("rsa1.pem");
    std::fs::write(
        &with_chain,
        std::fs::read_to_string(&leaf).unwrap()
            + &std::fs::read_to_string(f.agg.join("cert/ca/signing-ca.crt")).unwrap(),
    )
    .unwrap();
    openssl_verify(
        &f.agg.join("cert/ca/root-ca.crt"),
        &with_chain,
        Some("sslclient"),
    )
    .unwrap();

    // The other direction: a package signed by an OpenFL-style CA (RSA-3072,
    // SHA-384, no key usages on the leaf) for a fedpki-made request.
    ok(run(
        &f.col,
        &["collaborator", "generate-cert-request", "-n", "col9", "-x"],
    ));
    let d = f.tmp.path().join("fx-ca");
    std::fs::create_dir_all(&d).unwrap();
    openssl(
        &d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:3072",
            "-nodes",
            "-sha384",
            "-days",
            "365",
            "-subj",
            "/CN=Simple Root CA",
            "-keyout",
            "root.key",
            "-out",
            "root.crt",
        ],
    );
    openssl(
        &d,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:3072",
            "-nodes",
            "-sha384",
            "-subj",
            "/CN=Simple Signing CA",
            "-keyout",
            "signing.key",
            "-out",
            "signing.csr",
        ],
    );
    std::fs::write(
        d.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            "signing.csr",
            "-CA",
            "root.crt",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-sha384",
            "-days",
            "365",
            "-extfile",
            "ca.ext",
            "-out",
            "signing.crt",
        ],
    );
    let col_csr = f.col.join("cert/client/col_col9.csr");
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            col_csr.to_str().unwrap(),
            "-CA",
            "signing.crt",
            "-CAkey",
            "signing.key",
            "-CAcreateserial",
            "-sha384",
            "-days",
            "365",
            "-out",
            "col9.crt",
        ],
    );
    let chain = std::fs::read_to_string(d.join("root.crt")).unwrap()
        + &std::fs::read_to_string(d.join("signing.crt")).unwrap();
    let pkg = f.col.join("agg_to_col_col9_signed_cert.zip");
    write_zip(
        &pkg,
        &[
            (
                "client/col_col9.crt",
                &std::fs::read(d.join("col9.crt")).unwrap(),
            ),
            ("cert_chain.crt", chain.as_bytes()),
        ],
    );
    let out = ok(run(
        &f.col,
        &["collaborator", "certify", "-i", pkg.to_str().unwrap()],
    ));
    assert!(stdout(&out).contains("Certificate col_col9.crt installed to PKI directory"));
    assert_eq!(
        std::fs::read_to_string(f.col.join("cert/cert_chain.crt")).unwrap(),
        chain
    );
}

/// Run `args` in the aggregator workspace, expect a refusal mentioning
/// `needle`, and check nothing at all changed in the whole temporary folder.
fn refused_untouched(f: &Federation, dir: &Path, args: &[&str], needle: &str) {
    let before = snapshot(f.tmp.path());
    let out = run(dir, args);
    refused(&out, needle);
    assert_eq!(before, snapshot(f.tmp.path()), "{args:?} changed files");
}

#[test]
fn hostile_and_broken_packages_are_refused_and_write_nothing() {
    let f = Federation::new();
    let csr = {
        f.request("col1");
        std::fs::read(f.col.join("cert/client/col_col1.csr")).unwrap()
    };
    let other_csr = openssl_csr(f.tmp.path(), "col2");
    // A malicious collaborator asks for the aggregator's names beside its own.
    let greedy_csr = openssl_csr_asking(
        f.tmp.path(),
        "greedy",
        "col1",
        "DNS:col1,DNS:agg.example,DNS:localhost,IP:127.0.0.1",
    );
    let zipdir = f.tmp.path().join("zips");
    std::fs::create_dir_all(&zipdir).unwrap();
    let bomb = vec![0u8; 10 * 1024 * 1024];
    let big = vec![b'A'; 100 * 1024];
    // Every package is named for col1; what is inside varies.
    let cases: Vec<(Entries<'_>, &str)> = vec![
        (vec![("../col_col1.csr", &csr)], "parent (..)"),
        (vec![("/tmp/col_col1.csr", &csr)], "absolute"),
        (vec![("col_col1.csr", &bomb)], "unpacks to"),
        (vec![("col_col1.csr", &big)], "unpacks to"),
        (
            vec![("col_col1.csr", &csr), ("col_col2.csr", &other_csr)],
            "holds 2 CSRs",
        ),
        (vec![("col_col2.csr", &other_csr)], "is for \"col1\""),
        (
            vec![("col_col1.csr", &other_csr)],
            "the CSR asks for CN=col2 SANs=col2, but a collaborator here gets exactly CN=col1 SAN=col1",
        ),
        (
            vec![("col_col1.csr", &greedy_csr)],
            "the CSR asks for CN=col1 SANs=agg.example, col1, localhost, 127.0.0.1, but a \
             collaborator here gets exactly CN=col1 SAN=col1",
        ),
        (
            vec![("col_col1.csr", b"not a CSR at all")],
            "not a valid CSR",
        ),
        (vec![("readme.txt", b"hi")], "holds no CSR"),
    ];
    for (i, (entries, needle)) in cases.iter().enumerate() {
        let dir = zipdir.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("col_col1_to_agg_cert_request.zip");
        write_zip(&path, entries);
        refused_untouched(
            &f,
            &f.agg,
            &[
                "collaborator",
                "certify",
                "-r",
                path.to_str().unwrap(),
                "-s",
            ],
            needle,
        );
    }
    // A symbolic link entry.
    let link = zipdir.join("col_col1_to_agg_cert_request.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&link).unwrap());
        zip.add_symlink(
            "col_col1.csr",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.finish().unwrap();
    }
    refused_untouched(
        &f,
        &f.agg,
        &[
            "collaborator",
            "certify",
            "-r",
            link.to_str().unwrap(),
            "-s",
        ],
        "symbolic link",
    );
    // Not a zip at all.
    let corrupt = zipdir.join("corrupt.zip");
    std::fs::write(&corrupt, b"PK\x03\x04 definitely not a zip").unwrap();
    refused_untouched(
        &f,
        &f.agg,
        &[
            "collaborator",
            "certify",
            "-r",
            corrupt.to_str().unwrap(),
            "-s",
        ],
        "not a valid zip",
    );
    // Without -s and without a terminal nothing is signed.
    let zip = f.agg.join("col_col1_to_agg_cert_request.zip");
    refused_untouched(
        &f,
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap()],
        "not confirmed",
    );

    // Signed packages that do not fit this collaborator.
    ok(run(
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
    ));
    let good = f.agg.join("agg_to_col_col1_signed_cert.zip");
    let crt = std::fs::read(f.agg.join("cert/client/col_col1.crt")).unwrap();
    let chain = std::fs::read(f.agg.join("cert/cert_chain.crt")).unwrap();
    let other = Federation::new();
    let foreign_chain = std::fs::read(other.agg.join("cert/cert_chain.crt")).unwrap();
    let agg_crt = std::fs::read(f.agg.join("cert/server/agg_agg.example.crt")).unwrap();
    let signed_cases: Vec<(Entries<'_>, &str)> = vec![
        (
            vec![
                ("client/col_col1.crt", &crt),
                ("cert_chain.crt", &foreign_chain),
            ],
            "does not verify with the key",
        ),
        (
            vec![
                ("client/col_col1.crt", &agg_crt),
                ("cert_chain.crt", &chain),
            ],
            "not for the key",
        ),
        (vec![("client/col_col1.crt", &crt)], "no cert_chain.crt"),
        (
            vec![("../cert_chain.crt", &chain), ("client/col_col1.crt", &crt)],
            "parent (..)",
        ),
    ];
    for (i, (entries, needle)) in signed_cases.iter().enumerate() {
        let path = zipdir.join(format!("signed{i}.zip"));
        write_zip(&path, entries);
        refused_untouched(
            &f,
            &f.col,
            &["collaborator", "certify", "-i", path.to_str().unwrap()],
            needle,
        );
    }
    ok(run(
        &f.col,
        &["collaborator", "certify", "-i", good.to_str().unwrap()],
    ));
}

/// A CA for the air-gapped tests, and a node folder.
fn offline_ca() -> (TestCa, PathBuf) {
    let ca = TestCa::install();
    let node = ca.workdir("node");
    (ca, node)
}

fn pki(ca: &TestCa, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["pki"];
    all.extend_from_slice(args);
    let _ = ca;
    fedpki(dir, &all)
}

#[test]
fn air_gapped_round_trip_with_a_token_burns_it_for_online_use_too() {
    let (ca, node) = offline_ca();
    let token = ca.token("col1", &[]);
    let out = ok(pki(
        &ca,
        &node,
        &["csr", "-n", "col1", "-t", &token, "-o", "col1.req"],
    ));
    assert!(stdout(&out).contains("The CSR Hash "));
    assert_eq!(mode(&node.join("cert/col1.key")), 0o600);
    let req = node.join("col1.req");
    let signed = node.join("col1.signed");
    let sign = |out: &Path| {
        pki(
            &ca,
            &node,
            &[
                "sign",
                "-p",
                ca.dir_arg(),
                req.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--password-file",
                ca.pw_arg(),
            ],
        )
    };
    ok(sign(&signed));
    ok(pki(&ca, &node, &["import", signed.to_str().unwrap()]));
    openssl_verify(
        &node.join("cert/root_ca.crt"),
        &node.join("cert/col1.crt"),
        Some("sslclient"),
    )
    .unwrap();

    // The token is spent: offline a second time, and online.
    // (Refused here, by the CA folder's own rules, not by a server.)
    let again = sign(&node.join("again.signed"));
    assert_eq!(again.status.code(), Some(3));
    refused(
        &again,
        "refused (by this CA's rules, here): the token was already used",
    );
    assert!(!node.join("again.signed").exists());
    let _server = ca.serve();
    let online = fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "certify",
            "-n",
            "col1",
            "-t",
            &token,
            "-c",
            node.join("online").to_str().unwrap(),
        ],
    );
    assert_eq!(online.status.code(), Some(4), "refused by the CA, remotely");
    refused(&online, "the CA refused the request (401)");
    refused(&online, "already used");
    // And while the server runs, the CA is not signed offline behind its back.
    let fresh = ca.token("col2", &[]);
    ok(pki(
        &ca,
        &node,
        &["csr", "-n", "col2", "-t", &fresh, "-o", "col2.req"],
    ));
    let out = pki(
        &ca,
        &node,
        &[
            "sign",
            "-p",
            ca.dir_arg(),
            "col2.req",
            "-o",
            "col2.signed",
            "--password-file",
            ca.pw_arg(),
        ],
    );
    refused(&out, "being served");
}

#[test]
fn air_gapped_round_trip_without_a_token_asks_for_the_hash() {
    let (ca, node) = offline_ca();
    let out = ok(pki(
        &ca,
        &node,
        &[
            "csr",
            "-n",
            "edge.example",
            "--key-type",
            "ed25519",
            "-o",
            "edge.req",
        ],
    ));
    let hash = stdout(&out)
        .trim()
        .trim_start_matches("The CSR Hash ")
        .to_owned();
    assert_eq!(hash.len(), 96);
    let sign = |extra: &[&str]| {
        let mut args = vec![
            "sign",
            "-p",
            ca.dir_arg(),
            "edge.req",
            "-o",
            "edge.signed",
            "--password-file",
            ca.pw_arg(),
        ];
        args.extend_from_slice(extra);
        pki(&ca, &node, &args)
    };
    let out = sign(&[]);
    refused(&out, "not confirmed");
    assert!(stdout(&out).contains(&hash), "the CA shows the same hash");
    assert!(!node.join("edge.signed").exists());
    ok(sign(&["--yes"]));
    // The signed file came back by hand, so its root is not trusted by
    // itself: without a root_ca.crt beside the key, the operator's
    // fingerprint is needed, and a wrong one is refused.
    let out = pki(&ca, &node, &["import", "edge.signed"]);
    refused(&out, "there is no root to check it against");
    assert!(
        stderr(&out).contains("with --root-fingerprint"),
        "{}",
        stderr(&out)
    );
    assert!(!node.join("cert/edge.example.crt").exists());
    let fp = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&ca.root_der()));
    let wrong = "00".repeat(32);
    let out = pki(
        &ca,
        &node,
        &["import", "edge.signed", "--root-fingerprint", &wrong],
    );
    refused(&out, "not the");
    assert!(!node.join("cert/edge.example.crt").exists());
    // As OpenSSL prints fingerprints: upper case with colons.
    let openssl_style = fp
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    ok(pki(
        &ca,
        &node,
        &[
            "import",
            "edge.signed",
            "--root-fingerprint",
            &openssl_style,
        ],
    ));
    openssl_verify(
        &node.join("cert/root_ca.crt"),
        &node.join("cert/edge.example.crt"),
        Some("sslserver"),
    )
    .unwrap();
    // The ledger has it.
    let ledger =
        fedpki::facade::Ledger::read(&fedpki::facade::CaPaths::new(&ca.dir).store()).unwrap();
    assert!(
        ledger
            .certificates
            .iter()
            .any(|r| r.subject == "edge.example")
    );
}

#[test]
fn altered_requests_and_foreign_signed_files_are_refused() {
    let (ca, node) = offline_ca();
    let token = ca.token("col1", &[]);
    ok(pki(
        &ca,
        &node,
        &["csr", "-n", "col1", "-t", &token, "-o", "col1.req"],
    ));
    ok(pki(&ca, &node, &["csr", "-n", "col2", "-o", "col2.req"]));
    let req1: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.join("col1.req")).unwrap()).unwrap();
    let req2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.join("col2.req")).unwrap()).unwrap();
    let sign = |file: &str| {
        pki(
            &ca,
            &node,
            &[
                "sign",
                "-p",
                ca.dir_arg(),
                file,
                "-o",
                "out.signed",
                "--password-file",
                ca.pw_arg(),
                "--yes",
            ],
        )
    };

    // The CSR swapped for another name's, the name left alone.
    let mut edited = req1.clone();
    edited["csr"] = req2["csr"].clone();
    std::fs::write(
        node.join("edited.req"),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    refused(&sign("edited.req"), "it was altered");
    // Name and CSR both changed: the token's subject still holds.
    edited["name"] = "col2".into();
    std::fs::write(
        node.join("edited2.req"),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    refused(&sign("edited2.req"), "not the token's subject");
    // A token of another CA inside.
    let other = TestCa::install();
    let mut foreign = req1.clone();
    foreign["token"] = other.token("col1", &[]).into();
    std::fs::write(
        node.join("foreign.req"),
        serde_json::to_vec(&foreign).unwrap(),
    )
    .unwrap();
    refused(&sign("foreign.req"), "another CA");
    std::fs::write(node.join("junk.req"), b"{\"fedpki\": \"nope\"}").unwrap();
    refused(&sign("junk.req"), "not a fedpki request file");
    assert!(!node.join("out.signed").exists());

    // Signed files: for another key, or from another CA than the token's.
    let other_node = other.workdir("n");
    ok(fedpki(
        &other_node,
        &["pki", "csr", "-n", "col1", "-o", "o.req"],
    ));
    ok(fedpki(
        &other_node,
        &[
            "pki",
            "sign",
            "-p",
            other.dir_arg(),
            "o.req",
            "-o",
            "o.signed",
            "--password-file",
            other.pw_arg(),
            "--yes",
        ],
    ));
    let before = snapshot(&node);
    let out = pki(
        &ca,
        &node,
        &["import", other_node.join("o.signed").to_str().unwrap()],
    );
    refused(&out, "another root");
    std::fs::remove_file(node.join("cert/root_ca.crt")).unwrap();
    let other_fp = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&other.root_der()));
    let out = pki(
        &ca,
        &node,
        &[
            "import",
            other_node.join("o.signed").to_str().unwrap(),
            "--root-fingerprint",
            &other_fp,
        ],
    );
    refused(&out, "not for the key");
    let after: Vec<_> = snapshot(&node);
    assert_eq!(
        after.len(),
        before.len() - 1,
        "only the root we removed is gone: {after:?}"
    );
    // An existing key is not overwritten.
    refused(
        &pki(&ca, &node, &["csr", "-n", "col1", "-o", "x.req"]),
        "--force",
    );
}

#[test]
fn a_collaborator_cannot_take_the_aggregators_name_and_the_prompt_shows_what_is_signed() {
    let f = Federation::new();
    // A request for the aggregator's own name, made as OpenFL makes one.
    let zip = f.request("agg.example");
    refused_untouched(
        &f,
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
        "\"agg.example\" is this workspace's aggregator; a collaborator cannot have its name",
    );
    // An honest request: the operator sees the names and the key, escaped.
    let zip = f.request("col1");
    let out = ok(run(
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
    ));
    let text = stdout(&out);
    for line in [
        "The CSR Hash for file client/col_col1.csr = ",
        "  Subject: CN=col1\n",
        "  SANs:    col1\n",
        "  Key:     ECDSA P-384\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

#[test]
fn a_signed_package_from_another_root_does_not_replace_the_trusted_chain() {
    let f = Federation::new();
    let zip = f.request("col1");
    ok(run(
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
    ));
    let signed = "agg_to_col_col1_signed_cert.zip";
    std::fs::copy(f.agg.join(signed), f.col.join(signed)).unwrap();
    let out = ok(run(&f.col, &["collaborator", "certify", "-i", signed]));
    assert!(stdout(&out).contains("Trusted root: SHA-256 "));

    // Someone on the return path signs the same request under their own CA.
    let evil = Federation::new();
    let req = "col_col1_to_agg_cert_request.zip";
    std::fs::copy(f.col.join(req), evil.agg.join(req)).unwrap();
    ok(run(
        &evil.agg,
        &["collaborator", "certify", "-r", req, "-s"],
    ));
    std::fs::copy(evil.agg.join(signed), f.col.join(signed)).unwrap();
    let before = snapshot(&f.col);
    let out = run(&f.col, &["collaborator", "certify", "-i", signed]);
    refused(&out, "it chains to another root than ./cert/cert_chain.crt");
    assert!(stdout(&out).contains("this package brings another root"));
    assert!(before == snapshot(&f.col), "nothing was replaced");
}

#[test]
fn a_package_with_two_entries_of_one_name_is_refused() {
    let f = Federation::new();
    f.request("col1");
    let good = std::fs::read(f.col.join("cert/client/col_col1.csr")).unwrap();
    let other = openssl_csr(f.tmp.path(), "col1-other");
    // Python's zipfile writes duplicate names (with a warning); the zip
    // crate would keep only one of them, `unzip` shows the other.
    let zip = f.tmp.path().join("dup/col_col1_to_agg_cert_request.zip");
    std::fs::create_dir_all(zip.parent().unwrap()).unwrap();
    let script = "import sys, zipfile, warnings\nwarnings.simplefilter('ignore')\n\
                  z = zipfile.ZipFile(sys.argv[1], 'w')\n\
                  z.writestr('col_col1.csr', open(sys.argv[2], 'rb').read())\n\
                  z.writestr('col_col1.csr', open(sys.argv[3], 'rb').read())\nz.close()\n";
    let a = f.tmp.path().join("a.csr");
    let b = f.tmp.path().join("b.csr");
    std::fs::write(&a, &good).unwrap();
    std::fs::write(&b, &other).unwrap();
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .args([&zip, &a, &b])
        .status()
        .unwrap();
    assert!(status.success());
    refused_untouched(
        &f,
        &f.agg,
        &["collaborator", "certify", "-r", zip.to_str().unwrap(), "-s"],
        "two entries have the same name",
    );
}
