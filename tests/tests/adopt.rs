//! Taking over an `fx pki install` CA: a step-ca 0.16.0 made as OpenFL
//! makes it, with nodes it certified, becomes a fedpki CA; the nodes keep
//! their root, renew (with fedpki and with `step ca renew`), are revoked,
//! and tokens of the old provisioner key keep working.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::path::{Path, PathBuf};

use fedpki_tests::step::{Step, StepCa, init_args, jwt_of};
use fedpki_tests::{
    PASSWORD, Server, fedpki, free_port, node_serial, ok, openssl_verify, refused, snapshot,
    stderr, stdout,
};

const VERSION: &str = "0.16.0";

/// OpenFL's `fx pki install`: `step ca init`, its provisioner replaced by
/// a JWK one from `step crypto jwk create`, 8760 h claims, the password in
/// `cert/pass_file`. Returns the folder and step with its STEPPATH.
fn fx_install(dir: &Path, port: u16) -> (PathBuf, Step) {
    let fx = dir.join("fx");
    std::fs::create_dir_all(fx.join("cert")).unwrap();
    let pass = fx.join("cert/pass_file");
    std::fs::write(&pass, "fx-pass-1234\n").unwrap();
    let mut step = Step::new(VERSION, &fx);
    step.home = fx.join("step_config");
    let ca_json = step.home.join("config/ca.json");
    let ca_config = format!("--ca-config={}", ca_json.display());
    let pass_arg = format!("--password-file={}", pass.display());
    step.ok(&fx, &init_args(port, "prov-tmp", &pass));
    step.ok(
        &fx,
        &[
            "crypto",
            "jwk",
            "create",
            "step_config/certs/pub.json",
            "step_config/secrets/priv.json",
            &pass_arg,
        ],
    );
    step.ok(
        &fx,
        &[
            "ca",
            "provisioner",
            "remove",
            "prov-tmp",
            "--all",
            &ca_config,
        ],
    );
    step.ok(
        &fx,
        &[
            "ca",
            "provisioner",
            "add",
            "provisioner",
            "step_config/certs/pub.json",
            &ca_config,
        ],
    );
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ca_json).unwrap()).unwrap();
    config["authority"]["provisioners"][0]["claims"] = serde_json::json!({
        "maxTLSCertDuration": "8760h", "defaultTLSCertDuration": "8760h"
    });
    std::fs::write(&ca_json, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    (fx, step)
}

/// `fx pki get-token`: `step ca token NAME --key priv.json`, against
/// whichever CA answers at `url`.
fn fx_token(step: &Step, fx: &Path, name: &str, url: &str) -> String {
    let out = step.ok(
        fx,
        &[
            "ca",
            "token",
            name,
            "--key",
            "step_config/secrets/priv.json",
            "--password-file",
            "cert/pass_file",
            "--ca-url",
            url,
            "--root",
            "step_config/certs/root_ca.crt",
        ],
    );
    stdout(&out).trim().to_owned()
}

/// `fx pki certify`: `step ca certificate` with the token only, P-384.
fn fx_certify(step: &Step, node: &Path, name: &str, token: &str) {
    std::fs::create_dir_all(node).unwrap();
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    step.ok(
        node,
        &[
            "ca",
            "certificate",
            name,
            &crt,
            &key,
            "--kty",
            "EC",
            "--curve",
            "P-384",
            "-f",
            "--token",
            token,
        ],
    );
}

fn listed(tmp: &Path, ca: &Path) -> String {
    stdout(&ok(fedpki(
        tmp,
        &["pki", "list", "-p", ca.to_str().unwrap()],
    )))
}

#[test]
fn an_fx_pki_ca_is_adopted_without_reenrolling_anyone() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let port = free_port();
    let (fx, step) = fx_install(t, port);
    let url = format!("https://localhost:{port}");
    let root = fx.join("step_config/certs/root_ca.crt");

    // Two nodes certified by the real step-ca, as fx does it.
    let (n1, n2) = (t.join("n1"), t.join("n2"));
    // The token step-ca spent on col1: fedpki cannot know, so refuses any
    // token made before the adoption.
    let spent: String;
    {
        let pass = fx.join("cert/pass_file");
        let running = StepCa::serve(
            Step {
                bin: step.bin.clone(),
                home: step.home.clone(),
                version: VERSION,
            },
            pass,
            port,
        );
        spent = fx_token(&step, &fx, "col1", &running.url);
        fx_certify(&step, &n1, "col1", &spent);
        fx_certify(
            &step,
            &n2,
            "col2",
            &fx_token(&step, &fx, "col2", &running.url),
        );
    }
    std::fs::copy(&root, n1.join("root_ca.crt")).unwrap();
    let old1 = node_serial(&n1, "col1");
    // A second, non-JWK provisioner: not adopted, and the adoption says so.
    let ca_json = fx.join("step_config/config/ca.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ca_json).unwrap()).unwrap();
    cfg["authority"]["provisioners"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "ACME", "name": "acme"}));
    std::fs::write(&ca_json, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let before = snapshot(&fx);
    let pw = t.join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let ca = t.join("ca");
    let install = |extra: &[&str]| {
        let mut args = vec![
            "pki",
            "install",
            "-p",
            ca.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fedpki(t, &args)
    };

    // Refusals, each with nothing written.
    let bad_pw = t.join("bad-pw");
    std::fs::write(&bad_pw, "not-it\n").unwrap();
    let fx_arg = fx.to_str().unwrap();
    refused(
        &install(&[
            "--from-step-ca",
            fx_arg,
            "--step-password-file",
            bad_pw.to_str().unwrap(),
        ]),
        "wrong step-ca password",
    );
    assert!(!ca.exists(), "a wrong password wrote nothing");
    std::fs::create_dir_all(t.join("empty")).unwrap();
    refused(
        &install(&["--from-step-ca", t.join("empty").to_str().unwrap()]),
        "is not a step-ca CA",
    );
    let oidc = t.join("oidc");
    copy_dir(&fx, &oidc);
    let oidc_json = oidc.join("step_config/config/ca.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&oidc_json).unwrap()).unwrap();
    cfg["authority"]["provisioners"][0]["type"] = "OIDC".into();
    std::fs::write(&oidc_json, cfg.to_string()).unwrap();
    refused(
        &install(&["--from-step-ca", oidc.to_str().unwrap()]),
        "OIDC",
    );
    assert!(!ca.exists());

    // The adoption: OpenFL's pass_file is used, and flagged.
    let out = ok(install(&["--from-step-ca", fx_arg]));
    assert!(stderr(&out).contains("delete it"), "{}", stderr(&out));
    assert!(stderr(&out).contains("not carried over") && stderr(&out).contains("acme"));
    assert_eq!(
        snapshot(&fx),
        before,
        "nothing in the step-ca folder changed"
    );
    assert_eq!(
        std::fs::read(ca.join("certs/root_ca.crt")).unwrap(),
        std::fs::read(&root).unwrap()
    );
    refused(&install(&["--from-step-ca", fx_arg]), "already exists");
    // A token made in the adoption's own second is refused (step-ca may
    // have spent it just before): the tokens below are made after it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let pw_arg = pw.to_str().unwrap();
    let _server = Server::start(
        t,
        &[
            "pki",
            "run",
            "-p",
            ca.to_str().unwrap(),
            "--password-file",
            pw_arg,
        ],
    );
    let strict = |crt: &Path| openssl_verify(&root, crt, Some("sslclient")).unwrap();

    // fedpki renews the step-ca's certificate (SEC1 P-384 key), which is
    // recorded the first time it is seen.
    let out = ok(fedpki(
        t,
        &[
            "pki",
            "renew",
            "-n",
            "col1",
            "-c",
            n1.to_str().unwrap(),
            "--ca-url",
            &format!("localhost:{port}"),
        ],
    ));
    assert!(stderr(&out).contains("Renewed col1"), "{}", stderr(&out));
    strict(&n1.join("col1.crt"));
    let new1 = node_serial(&n1, "col1");
    let list = listed(t, &ca);
    assert!(list.contains(&old1) && list.contains(&new1), "{list}");

    // step ca renew of the other, then step revokes it over mutual TLS.
    let root_arg = root.to_str().unwrap();
    step.ok(
        &n2,
        &[
            "ca", "renew", "col2.crt", "col2.key", "--ca-url", &url, "--root", root_arg, "-f",
        ],
    );
    strict(&n2.join("col2.crt"));
    let new2 = node_serial(&n2, "col2");
    step.ok(
        &n2,
        &[
            "ca", "revoke", "--cert", "col2.crt", "--key", "col2.key", "--ca-url", &url, "--root",
            root_arg,
        ],
    );
    let list = listed(t, &ca);
    let row = list
        .lines()
        .find(|l| l.starts_with(&new2))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("revoked"), "{row}");
    let crl = t.join("crl.der");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--cacert",
            root_arg,
            "-o",
            crl.to_str().unwrap(),
            &format!("{url}/crl"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&fedpki_tests::openssl(
        t,
        &[
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-in",
            crl.to_str().unwrap(),
        ],
    ));
    assert!(text.contains(&new2.to_uppercase()), "{text}");

    // A token step-ca spent before the adoption is not taken again.
    let n5 = t.join("n5");
    let out = fedpki(
        t,
        &[
            "pki",
            "certify",
            "-n",
            "col1",
            "-t",
            &spent,
            "-c",
            n5.to_str().unwrap(),
        ],
    );
    refused(&out, "before this CA was adopted from its step-ca");
    assert!(!n5.join("col1.crt").exists());

    // The old provisioner key's tokens (`fx pki get-token`) made since
    // work, once.
    let n3 = t.join("n3");
    let token = fx_token(&step, &fx, "col3", &url);
    fx_certify(&step, &n3, "col3", &token);
    strict(&n3.join("col3.crt"));
    let again = step.run(
        &n3,
        &[
            "ca",
            "certificate",
            "col3",
            "x.crt",
            "x.key",
            "-f",
            "--token",
            &token,
        ],
    );
    assert!(!again.status.success());
    // And fedpki's tokens work with `fx pki certify`'s step call.
    let bundle = stdout(&ok(fedpki(
        t,
        &[
            "pki",
            "get-token",
            "-n",
            "col4",
            "-p",
            ca.to_str().unwrap(),
            "--password-file",
            pw_arg,
        ],
    )));
    let n4 = t.join("n4");
    fx_certify(&step, &n4, "col4", &jwt_of(&bundle));
    strict(&n4.join("col4.crt"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
