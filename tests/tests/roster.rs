//! The federation roster (`config/federation.toml`) on the real binary:
//! the CA decides a participant's subject, names, usages and lifetime by
//! its role, whatever its CSR asks; a name not on the roster is refused,
//! at get-token and at the CA; `get-token --all` makes the tokens of those
//! not yet certified; a malformed roster stops the CA's start with the
//! line and the reason; an edited one is in force without a restart.
//! OpenSSL reads each certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::os::unix::fs::PermissionsExt;

use fedpki_tests::site::Site;
use fedpki_tests::*;

const ROSTER: &str = r#"
project = "demo"

[roles.server]
usages = ["server-auth"]
lifetime = "30d"

[roles.lead]
usages = ["client-auth"]
lifetime = "12h"
uris = ["https://nvidia.com/nvflare/v1/project/{project}/study/{study}"]

[[participants]]
name = "agg.example.org"
org = "Hospital_A"
role = "server"
sans = ["agg.example.org", "10.0.0.5"]

[[participants]]
name = "admin1"
org = "nvidia"
role = "lead"
studies = ["lung", "brain"]
"#;

fn write_roster(site: &Site, text: &str) {
    std::fs::write(site.path("ca/config/federation.toml"), text).unwrap();
}

/// POST /1.0/sign of a CSR OpenSSL made for `name`, asking for the
/// extensions `asks` (`-addext` values), with `token`.
fn sign_asking(site: &Site, name: &str, asks: &[&str], token: &str) -> (u16, serde_json::Value) {
    let (bundle, _, _) = fedpki_core::token::Bundle::parse(token).unwrap();
    let (key, csr) = (site.path("asking.key"), site.path("asking.csr"));
    let subject = format!("/CN={name}");
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        &subject,
        "-out",
        csr.to_str().unwrap(),
    ];
    for ext in asks {
        args.extend(["-addext", ext]);
    }
    openssl(site.tmp.path(), &args);
    let body = serde_json::json!({
        "csr": std::fs::read_to_string(&csr).unwrap(),
        "ott": bundle.jwt,
    });
    site.request_as(
        "ca",
        None,
        "POST",
        "/1.0/sign",
        Some(serde_json::to_vec(&body).unwrap()),
    )
}

/// `openssl x509 -text` of a PEM certificate.
fn text_of(site: &Site, pem: &str) -> String {
    let file = site.path("answer.crt");
    std::fs::write(&file, pem).unwrap();
    openssl_text(&file)
}

#[test]
fn the_roster_decides_each_certificate_whatever_the_csr_asks() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    // Made before the roster: a token for a stranger, and one for admin1
    // that names other SANs.
    let stranger = site.token("ca", "stranger");
    let wide = stdout(&ok(site.pki(
        "get-token -p @ca -n admin1 --san evil.example --san https://evil.example/x",
    )))
    .trim()
    .to_owned();
    write_roster(&site, ROSTER);
    let _server = site.serve("ca");

    // The CSR asks for a DNS name and a URI of its own, serverAuth and
    // CA:TRUE: the certificate has the roster's names, usages, subject
    // and lifetime.
    let (status, answer) = sign_asking(
        &site,
        "admin1",
        &[
            "subjectAltName=DNS:evil.example,URI:https://evil.example/x",
            "extendedKeyUsage=serverAuth",
            "basicConstraints=critical,CA:TRUE",
        ],
        &wide,
    );
    assert_eq!(status, 201, "{answer}");
    let text = text_of(&site, answer["crt"].as_str().unwrap());
    assert!(
        text.contains("Subject: CN = admin1, O = nvidia, unstructuredName = lead"),
        "{text}"
    );
    assert!(
        text.contains(
            "DNS:admin1, URI:https://nvidia.com/nvflare/v1/project/demo/study/brain, \
             URI:https://nvidia.com/nvflare/v1/project/demo/study/lung"
        ),
        "{text}"
    );
    assert!(!text.contains("evil"), "{text}");
    assert!(
        text.contains("TLS Web Client Authentication") && !text.contains("TLS Web Server"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    let cert = fedpki_core::issue::parse_cert_pem(answer["crt"].as_str().unwrap()).unwrap();
    let lifetime = cert.not_after().0 - cert.not_before().0;
    assert_eq!(lifetime, 12 * 3600 + 60, "12 h, from a minute back");

    // A name not on the roster: refused by the CA (its token spent) ...
    let (status, answer) = sign_asking(&site, "stranger", &[], &stranger);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("stranger is not in this federation's roster"),
        "{answer}"
    );
    // ... and by get-token, which also keeps --san from naming others.
    refused(
        &site.pki("get-token -p @ca -n stranger"),
        "\"stranger\" is not in the federation's roster",
    );
    refused(
        &site.pki("get-token -p @ca -n admin1 --san other.example"),
        "the roster decides admin1's names",
    );

    // The server role's certificate through the real client: serverAuth
    // only, its roster SANs, checked by OpenSSL as a TLS server.
    let agg = site.certify("ca", "agg.example.org");
    let crt = agg.join("agg.example.org.crt");
    let text = openssl_text(&crt);
    assert!(
        text.contains("Subject: CN = agg.example.org, O = Hospital_A, unstructuredName = server"),
        "{text}"
    );
    assert!(
        text.contains("DNS:agg.example.org, IP Address:10.0.0.5"),
        "{text}"
    );
    assert!(!text.contains("TLS Web Client"), "{text}");
    openssl_verify(&agg.join("root_ca.crt"), &crt, Some("sslserver")).unwrap();
    assert!(openssl_verify(&agg.join("root_ca.crt"), &crt, Some("sslclient")).is_err());
}

#[test]
fn get_token_all_makes_the_tokens_of_those_not_yet_certified() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    refused(
        &site.pki("get-token -p @ca --all -o @tokens"),
        "has none: write config/federation.toml",
    );
    write_roster(&site, ROSTER);
    let _server = site.serve("ca");
    ok(site.pki("get-token -p @ca --all -o @tokens"));
    let mut made: Vec<String> = std::fs::read_dir(site.path("tokens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    made.sort();
    assert_eq!(made, ["admin1.token", "agg.example.org.token"]);
    for name in &made {
        let mode = std::fs::metadata(site.path("tokens").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let token = std::fs::read_to_string(site.path("tokens/agg.example.org.token")).unwrap();
    ok(site.certify_with("agg.example.org", token.trim(), &[]));
    // Once agg.example.org holds a certificate, only admin1 is left.
    ok(site.pki("get-token -p @ca --all -o @again"));
    let again: Vec<_> = std::fs::read_dir(site.path("again")).unwrap().collect();
    assert_eq!(again.len(), 1);
    assert!(site.path("again/admin1.token").exists());
}

#[test]
fn a_malformed_roster_stops_the_start_and_an_edit_is_in_force_without_a_restart() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    write_roster(&site, &ROSTER.replace("role = \"lead\"", "role = \"leed\""));
    let dir = site.path("ca");
    let pw = site.path("pw");
    let args = [
        "pki",
        "run",
        "-p",
        dir.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ];
    let out = fedpki_within(site.tmp.path(), &args, &[], 30);
    refused(
        &out,
        "federation.toml: line 19: participant \"admin1\": role \"leed\" is not defined",
    );

    write_roster(&site, ROSTER);
    let _server = site.serve("ca");
    let token = site.token("ca", "admin1");
    refused(
        &site.pki("get-token -p @ca -n site-2"),
        "not in the federation's roster",
    );
    // Added while the CA runs: certified without a restart.
    let added = format!(
        "{ROSTER}\n[[participants]]\nname = \"site-2\"\norg = \"nvidia\"\nrole = \"server\"\n"
    );
    write_roster(&site, &added);
    let site2 = site.certify("ca", "site-2");
    assert!(openssl_text(&site2.join("site-2.crt")).contains("unstructuredName = server"));
    // An edit that does not parse leaves the roster in force as it was.
    write_roster(&site, &format!("{added}\n[roles.broken\n"));
    ok(site.certify_with("admin1", &token, &[]));
}
