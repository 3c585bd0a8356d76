//! The step ecosystem, for real: smallstep's `step` 0.16.0 (OpenFL's pin)
//! and 0.19.0 against `fedpki pki run`, and fedpki's client against a real
//! step-ca 0.16.0. Every certificate is checked by `openssl verify
//! -x509_strict`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fedpki_tests::step::{Step, StepCa, VERSIONS, fingerprint, jwt_of};
use fedpki_tests::{TestCa, fedpki, node_serial, ok, openssl_verify, stderr, stdout};

fn text(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

fn status_in_list(ca: &TestCa, serial: &str) -> String {
    let out = ok(fedpki(
        ca.tmp.path(),
        &["pki", "list", "-p", ca.dir_arg(), "--json"],
    ));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == serial)
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{serial} not in pki list: {rows}"))
}

/// The CA's CRL, fetched with curl and printed by OpenSSL: an independent
/// reading of what the server publishes.
fn crl_text(ca: &TestCa, dir: &Path) -> String {
    let der = dir.join("crl.der");
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(ca.dir.join("certs/root_ca.crt"))
        .arg("-o")
        .arg(&der)
        .arg(format!("https://{}/crl", ca.ca_url))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl /crl: {out:?}");
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&der)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl crl: {out:?}");
    stdout(&out)
}

fn verify_leaf(ca: &TestCa, crt: &Path) {
    openssl_verify(&ca.dir.join("certs/root_ca.crt"), crt, Some("sslclient"))
        .unwrap_or_else(|e| panic!("{}: {e}", crt.display()));
}

fn serial_of(crt: &Path) -> String {
    let dir = crt.parent().unwrap();
    let name = crt.file_stem().unwrap().to_str().unwrap();
    node_serial(dir, name)
}

/// Watch a `step ca renew --daemon` rewrite `crt` until two renewals, each
/// a valid certificate, within `secs`; then stop it.
fn renewals_seen(ca: &TestCa, daemon: &mut std::process::Child, crt: &Path, log: &Path, secs: u64) {
    let mut seen = vec![serial_of(crt)];
    let deadline = Instant::now() + Duration::from_secs(secs);
    while seen.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        // step rewrites the file in place: a read mid-write is retried, and
        // what was read is what is verified (the file may change again).
        let Some((pem, now)) = std::fs::read_to_string(crt).ok().and_then(|pem| {
            let chain = fedpki_core::issue::parse_certs_pem(&pem).ok()?;
            let serial = fedpki_core::issue::serial_hex(chain.first()?);
            Some((pem, serial))
        }) else {
            continue;
        };
        if !seen.contains(&now) {
            let copy = crt.with_extension("seen.crt");
            std::fs::write(&copy, pem).unwrap();
            verify_leaf(ca, &copy);
            seen.push(now);
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(
        seen.len(),
        3,
        "the daemon did not renew twice in {secs} s: {seen:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn step_0_16_0_against_fedpki() {
    step_client_against_fedpki(VERSIONS[0]);
}

#[test]
fn step_0_19_0_against_fedpki() {
    step_client_against_fedpki(VERSIONS[1]);
}

/// Each step command OpenFL and NVFlare use, against a fedpki CA.
fn step_client_against_fedpki(version: &'static str) {
    let ca = TestCa::install();
    let _server = ca.serve();
    let work = ca.workdir("step");
    let step = Step::new(version, &work);
    let url = format!("https://{}", ca.ca_url);
    let root = ca.dir.join("certs/root_ca.crt");
    let root_arg = root.to_str().unwrap();
    let fp = fingerprint(&root);

    // `fx pki certify`'s call: the token's JWT only, P-384.
    let bundle = ca.token("alpha", &[]);
    let jwt = jwt_of(&bundle);
    let certify = [
        "ca",
        "certificate",
        "alpha",
        "alpha.crt",
        "alpha.key",
        "--kty",
        "EC",
        "--curve",
        "P-384",
        "-f",
        "--token",
        &jwt,
    ];
    step.ok(&work, &certify);
    verify_leaf(&ca, &work.join("alpha.crt"));
    let alpha = serial_of(&work.join("alpha.crt"));
    assert_eq!(status_in_list(&ca, &alpha), "valid");
    // The same token again is refused: it works once.
    let out = step.run(&work, &certify);
    assert!(!out.status.success(), "a replayed token: {}", text(&out));

    // With --ca-url and --root, step's default key.
    let jwt = jwt_of(&ca.token("beta", &[]));
    step.ok(
        &work,
        &[
            "ca",
            "certificate",
            "beta",
            "beta.crt",
            "beta.key",
            "--ca-url",
            &url,
            "--root",
            root_arg,
            "-f",
            "--token",
            &jwt,
        ],
    );
    verify_leaf(&ca, &work.join("beta.crt"));

    // Renew over mutual TLS: a new serial, recorded.
    step.ok(
        &work,
        &[
            "ca",
            "renew",
            "alpha.crt",
            "alpha.key",
            "--ca-url",
            &url,
            "--root",
            root_arg,
            "-f",
        ],
    );
    verify_leaf(&ca, &work.join("alpha.crt"));
    let alpha2 = serial_of(&work.join("alpha.crt"));
    assert_ne!(alpha, alpha2);
    assert_eq!(status_in_list(&ca, &alpha2), "valid");

    // The renewal daemon: two renewals, each a valid certificate.
    let mut daemon = step.spawn(
        &work,
        &[
            "ca",
            "renew",
            "--daemon",
            "--renew-period",
            "2s",
            "beta.crt",
            "beta.key",
            "--ca-url",
            &url,
            "--root",
            root_arg,
        ],
        &work.join("daemon.log"),
    );
    renewals_seen(
        &ca,
        &mut daemon,
        &work.join("beta.crt"),
        &work.join("daemon.log"),
        30,
    );

    // root, roots, bootstrap, health.
    step.ok(
        &work,
        &[
            "ca",
            "root",
            "root.crt",
            "--ca-url",
            &url,
            "--fingerprint",
            &fp,
            "-f",
        ],
    );
    assert_eq!(fingerprint(&work.join("root.crt")), fp);
    step.ok(
        &work,
        &[
            "ca",
            "roots",
            "roots.crt",
            "--ca-url",
            &url,
            "--root",
            root_arg,
            "-f",
        ],
    );
    assert_eq!(fingerprint(&work.join("roots.crt")), fp);
    step.ok(
        &work,
        &[
            "ca",
            "bootstrap",
            "--ca-url",
            &url,
            "--fingerprint",
            &fp,
            "-f",
        ],
    );
    assert_eq!(fingerprint(&step.home.join("certs/root_ca.crt")), fp);
    // After bootstrap, step needs no flags at all.
    let out = step.ok(&work, &["ca", "health"]);
    assert_eq!(stdout(&out).trim(), "ok");
    let wrong = "00".repeat(32);
    let out = step.run(
        &work,
        &[
            "ca",
            "root",
            "x.crt",
            "--ca-url",
            &url,
            "--fingerprint",
            &wrong,
        ],
    );
    assert!(!out.status.success(), "a wrong fingerprint: {}", text(&out));

    // A certificate of another CA is not renewed here (step-ca refuses it
    // in the handshake too), and nothing is recorded.
    let other = TestCa::install();
    let other_node = other.workdir("stranger");
    {
        let _other_server = other.serve();
        let jwt = jwt_of(&other.token("stranger", &[]));
        step.ok(
            &other_node,
            &[
                "ca",
                "certificate",
                "stranger",
                "s.crt",
                "s.key",
                "-f",
                "--token",
                &jwt,
                // This step's defaults (bootstrapped above) name the first CA.
                "--ca-url",
                &format!("https://{}", other.ca_url),
                "--root",
                other.dir.join("certs/root_ca.crt").to_str().unwrap(),
            ],
        );
    }
    let out = step.run(
        &other_node,
        &[
            "ca", "renew", "s.crt", "s.key", "--ca-url", &url, "--root", root_arg, "-f",
        ],
    );
    assert!(
        !out.status.success(),
        "another CA's certificate renewed: {}",
        text(&out)
    );
    let stranger = serial_of(&other_node.join("s.crt"));
    let listing = stdout(&ok(fedpki(
        ca.tmp.path(),
        &["pki", "list", "-p", ca.dir_arg()],
    )));
    assert!(!listing.contains(&stranger), "{listing}");

    // Revoke over mutual TLS (step sends the serial in decimal).
    step.ok(
        &work,
        &[
            "ca",
            "revoke",
            "--cert",
            "alpha.crt",
            "--key",
            "alpha.key",
            "--ca-url",
            &url,
            "--root",
            root_arg,
        ],
    );
    assert!(status_in_list(&ca, &alpha2).starts_with("revoked"));

    // Revoke with a token from `fedpki pki get-token --revoke` (hex here,
    // decimal in the token and on the wire).
    let token_file = work.join("revoke.token");
    let colons: Vec<String> = alpha
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap().to_uppercase())
        .collect();
    ok(fedpki(
        &work,
        &[
            "pki",
            "get-token",
            "-p",
            ca.dir_arg(),
            "--password-file",
            ca.pw_arg(),
            "--revoke",
            &colons.join(":"),
            "-o",
            token_file.to_str().unwrap(),
        ],
    ));
    let jwt = jwt_of(&std::fs::read_to_string(&token_file).unwrap());
    let decimal = fedpki_core::serial::hex_to_decimal(&alpha).unwrap();
    let revoke = [
        "ca", "revoke", &decimal, "--token", &jwt, "--ca-url", &url, "--root", root_arg,
    ];
    step.ok(&work, &revoke);
    assert!(status_in_list(&ca, &alpha).starts_with("revoked"));
    let out = step.run(&work, &revoke);
    assert!(
        !out.status.success(),
        "a replayed revoke token: {}",
        text(&out)
    );

    // Both revocations are in the CRL the server publishes.
    let crl = crl_text(&ca, &work);
    for serial in [&alpha, &alpha2] {
        assert!(
            crl.contains(&serial.to_uppercase()),
            "{serial} not in the CRL:\n{crl}"
        );
    }
    assert!(!crl.contains(&serial_of(&work.join("beta.crt")).to_uppercase()));
}

/// `fedpki pki renew` of the node `name` in `dir` against `host_port`: it
/// says so and the serial changes.
fn renew_against(cwd: &Path, dir: &Path, name: &str, host_port: &str) {
    let before = node_serial(dir, name);
    let out = ok(fedpki(
        cwd,
        &[
            "pki",
            "renew",
            "-n",
            name,
            "-c",
            dir.to_str().unwrap(),
            "--ca-url",
            host_port,
        ],
    ));
    assert!(
        stderr(&out).contains(&format!("Renewed {name}")),
        "{}",
        text(&out)
    );
    assert_ne!(node_serial(dir, name), before);
}

/// fedpki's client against the CA OpenFL runs today.
#[test]
fn fedpki_against_step_ca_0_16_0() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = StepCa::start(VERSIONS[0], tmp.path());
    let strict = |crt: &Path| {
        openssl_verify(Path::new(&ca.root), crt, Some("sslclient"))
            .unwrap_or_else(|e| panic!("{}: {e}", crt.display()));
    };

    // certify with a token from `step ca token`, then renew.
    let a = tmp.path().join("a");
    let token = ca.token(tmp.path(), "alpha");
    let out = fedpki(
        tmp.path(),
        &[
            "pki",
            "certify",
            "-n",
            "omega",
            "-t",
            &token,
            "-c",
            a.to_str().unwrap(),
        ],
    );
    fedpki_tests::refused(&out, "this token is for \"alpha\"");
    assert!(
        !a.exists(),
        "nothing was written for a token of another name"
    );
    ok(fedpki(
        tmp.path(),
        &[
            "pki",
            "certify",
            "-n",
            "alpha",
            "-t",
            &token,
            "-c",
            a.to_str().unwrap(),
        ],
    ));
    strict(&a.join("alpha.crt"));
    renew_against(tmp.path(), &a, "alpha", &ca.host_port);
    strict(&a.join("alpha.crt"));

    // A key step made (SEC1 "EC PRIVATE KEY", P-384 as OpenFL asks).
    let b = tmp.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    let token = ca.token(tmp.path(), "beta");
    ca.step.ok(
        &b,
        &[
            "ca",
            "certificate",
            "beta",
            "beta.crt",
            "beta.key",
            "--kty",
            "EC",
            "--curve",
            "P-384",
            "--token",
            &token,
        ],
    );
    let key_before = std::fs::read(b.join("beta.key")).unwrap();
    assert!(String::from_utf8_lossy(&key_before).contains("BEGIN EC PRIVATE KEY"));
    std::fs::copy(&ca.root, b.join("root_ca.crt")).unwrap();
    renew_against(tmp.path(), &b, "beta", &ca.host_port);
    strict(&b.join("beta.crt"));
    assert_eq!(
        std::fs::read(b.join("beta.key")).unwrap(),
        key_before,
        "the key is kept as it was"
    );

    // The same key, encrypted (OpenSSL's legacy PEM encryption): renew
    // asks for its passphrase, here from FEDPKI_KEY_PASSWORD.
    let encrypted = fedpki_tests::openssl(
        &b,
        &[
            "ec",
            "-in",
            "beta.key",
            "-aes256",
            "-passout",
            "pass:node-pass",
            "-out",
            "beta.key",
        ],
    );
    assert!(encrypted.status.success(), "{encrypted:?}");
    let renew_with = |pass: Option<&str>| {
        let mut cmd = std::process::Command::new(fedpki_tests::bin());
        cmd.args([
            "pki",
            "renew",
            "-n",
            "beta",
            "-c",
            b.to_str().unwrap(),
            "--ca-url",
            &ca.host_port,
        ])
        .env_remove("FEDPKI_KEY_PASSWORD")
        .stdin(std::process::Stdio::null());
        if let Some(p) = pass {
            cmd.env("FEDPKI_KEY_PASSWORD", p);
        }
        cmd.output().unwrap()
    };
    fedpki_tests::refused(&renew_with(None), "is encrypted");
    fedpki_tests::refused(&renew_with(Some("wrong")), "passphrase does not decrypt");
    let out = renew_with(Some("node-pass"));
    assert!(stderr(&out).contains("Renewed beta"), "{}", text(&out));
    strict(&b.join("beta.crt"));

    // verify: step-ca 0.16 publishes no CRL; that fails, and says so,
    // unless --skip-revocation; every other check runs either way.
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "pki",
            "verify",
            "-n",
            "alpha",
            "-c",
            a.to_str().unwrap(),
            "--ca-url",
            &ca.host_port,
        ];
        args.extend_from_slice(extra);
        fedpki(tmp.path(), &args)
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains("revocation not checked: the CA publishes no CRL"),
        "{}",
        text(&out)
    );
    let out = verify(&["--skip-revocation"]);
    assert!(out.status.success(), "{}", text(&out));
    for check in [
        "ok      key",
        "ok      chain",
        "ok      validity",
        "ok      name",
    ] {
        assert!(stdout(&out).contains(check), "{check}: {}", text(&out));
    }
    assert!(
        stdout(&out).contains("skipped revocation"),
        "{}",
        text(&out)
    );
}

/// `step ca renew --daemon` with its own schedule (renew when a third of
/// notBefore..notAfter is left) against a CA issuing 36-second
/// certificates: backdated a minute, as step-ca's, each is due about 4 s
/// after it is issued. Two renewals, each certificate valid.
#[test]
fn step_renew_daemon_with_short_lifetimes() {
    for version in VERSIONS {
        // A CA per version: the per-address renewal limit counts per
        // server, so one daemon's renewals never spend the other's minute.
        let ca = TestCa::install_with(&["--cert-lifetime", "36s"]);
        let _server = ca.serve();
        let url = format!("https://{}", ca.ca_url);
        let root = ca.dir.join("certs/root_ca.crt");
        let work = ca.workdir(&format!("daemon-{version}"));
        let step = Step::new(version, &work);
        let jwt = jwt_of(&ca.token("short", &[]));
        step.ok(
            &work,
            &[
                "ca",
                "certificate",
                "short",
                "s.crt",
                "s.key",
                "-f",
                "--token",
                &jwt,
            ],
        );
        verify_leaf(&ca, &work.join("s.crt"));
        let log = work.join("daemon.log");
        // Flags first: step 0.16 reads `--daemon FILE …` as too many files.
        let args = [
            "ca",
            "renew",
            "--daemon",
            "--ca-url",
            &url,
            "--root",
            root.to_str().unwrap(),
            "s.crt",
            "s.key",
        ];
        let mut daemon = step.spawn(&work, &args, &log);
        renewals_seen(&ca, &mut daemon, &work.join("s.crt"), &log, 40);
    }
}

/// Rotating the intermediate behind an offline root changes nothing for a
/// step client but the chain it gets next: `step ca renew` of a
/// certificate from the old intermediate gets one from the new.
#[test]
fn step_renews_across_an_intermediate_rotation() {
    let ca = TestCa::install();
    let _server = ca.serve();
    let url = format!("https://{}", ca.ca_url);
    let root = ca.dir.join("certs/root_ca.crt");
    let root_arg = root.to_str().unwrap();
    let fedpki_ok = |args: &[&str]| {
        let pw = ["--password-file", ca.pw_arg()];
        ok(fedpki(ca.tmp.path(), &[args, &pw[..]].concat()))
    };
    let chain_of = |crt: &Path| {
        fedpki_core::issue::parse_certs_pem(&std::fs::read_to_string(crt).unwrap()).unwrap()
    };
    let mut clients = Vec::new();
    for version in VERSIONS {
        let work = ca.workdir(&format!("rotation-{version}"));
        let step = Step::new(version, &work);
        let jwt = jwt_of(&ca.token("node", &[]));
        let args = [
            "ca",
            "certificate",
            "node",
            "n.crt",
            "n.key",
            "-f",
            "--token",
        ];
        step.ok(&work, &[&args[..], &[jwt.as_str()]].concat());
        verify_leaf(&ca, &work.join("n.crt"));
        clients.push((step, work));
    }
    let old = chain_of(&clients[0].1.join("n.crt"))[1].clone();

    let (root_dir, next_req, next_signed) = (
        ca.tmp.path().join("root"),
        ca.tmp.path().join("next.req"),
        ca.tmp.path().join("next.signed"),
    );
    let [root_dir, next_req, next_signed] =
        [&root_dir, &next_req, &next_signed].map(|p| p.to_str().unwrap());
    fedpki_ok(&[
        "pki",
        "root",
        "export",
        "-p",
        ca.dir_arg(),
        "-o",
        root_dir,
        "--yes",
    ]);
    fedpki_ok(&[
        "pki",
        "intermediate",
        "request",
        "-p",
        ca.dir_arg(),
        "-o",
        next_req,
    ]);
    fedpki_ok(&[
        "pki",
        "root",
        "sign",
        "-p",
        root_dir,
        next_req,
        "-o",
        next_signed,
        "--yes",
    ]);
    fedpki_ok(&[
        "pki",
        "intermediate",
        "activate",
        "-p",
        ca.dir_arg(),
        next_signed,
    ]);

    let signed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(next_signed).unwrap()).unwrap();
    let new = fedpki_core::issue::parse_cert_pem(signed["crt"].as_str().unwrap()).unwrap();
    assert_ne!(new, old);
    for (step, work) in &clients {
        let args = [
            "ca", "renew", "n.crt", "n.key", "--ca-url", &url, "--root", root_arg, "-f",
        ];
        step.ok(work, &args);
        verify_leaf(&ca, &work.join("n.crt"));
        let chain = chain_of(&work.join("n.crt"));
        assert_eq!(chain.len(), 2, "step {}", step.version);
        assert_eq!(
            chain[1], new,
            "step {} did not get the new chain",
            step.version
        );
    }
}
