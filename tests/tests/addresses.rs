//! A CA's address, on the real binary: every accepted form taken and
//! written back one way, anything else refused with nothing made; an IP
//! in the address the only one listened on; `--dns` names served and
//! tokens for them accepted, and a token for an address the CA does not
//! serve refused when it is made rather than at certify.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use fedpki_tests::site::Site;
use fedpki_tests::*;

fn config_url(site: &Site, dir: &str) -> String {
    let text = std::fs::read_to_string(site.path(dir).join("config/ca.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["caUrl"].as_str().unwrap_or_default().to_owned()
}

/// `get-token` for `name` with `--ca-url URL`, then `certify` with it.
fn certify_via(site: &Site, ca: &str, url: &str, name: &str) -> std::process::Output {
    let token = stdout(&ok(
        site.pki(&format!("get-token -p @{ca} -n {name} --ca-url {url}"))
    ));
    site.certify_with(name, token.trim(), &[])
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[test]
fn a_ca_address_in_any_accepted_form_is_written_one_way_and_works_at_certify() {
    let site = Site::new();
    let port = site.port;
    let out = ok(site.pki(&format!(
        "install -p @ca --ca-url https://localhost:{port}/"
    )));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("for https://localhost:{port} ")),
        "{said}"
    );
    assert!(!said.contains("https://https://"), "{said}");
    assert_eq!(config_url(&site, "ca"), format!("localhost:{port}"));

    let _server = site.serve("ca");
    for (i, url) in [
        format!("https://localhost:{port}"),
        format!("localhost:{port}/"),
        format!("HTTPS://LOCALHOST:{port}/"),
    ]
    .iter()
    .enumerate()
    {
        let out = certify_via(&site, "ca", url, &format!("node{i}"));
        assert!(out.status.success(), "{url}: {}", stderr(&out));
    }
}

#[test]
fn a_malformed_ca_address_is_refused_saying_the_forms_and_nothing_is_made() {
    let site = Site::new();
    for url in [
        "::1:9200",
        "https://https://ca.example.org:9123",
        "http://ca.example.org:9123",
        "ca.example.org",
        "ca.example.org:9123/1.0/sign",
    ] {
        let out = site.pki(&format!("install -p @ca --ca-url {url}"));
        assert!(!out.status.success(), "{url} was taken");
        let said = stderr(&out);
        assert!(said.contains("[IPv6]:PORT"), "{url}: {said}");
        assert!(!site.path("ca").exists(), "{url}: a CA folder was made");
    }
}

#[test]
fn an_ip_in_the_ca_address_is_the_only_one_listened_on_and_ipv6_is_served() {
    let site = Site::new();
    let port = site.port;
    ok(site.pki(&format!("install -p @v4 --ca-url 127.0.0.1:{port}")));
    {
        let _server = site.serve("v4");
        assert!(connects(SocketAddr::from(([127, 0, 0, 1], port))));
        assert!(
            !connects(SocketAddr::from(([127, 0, 0, 2], port))),
            "a CA at 127.0.0.1 listened on another address"
        );
    }

    ok(site.pki(&format!("install -p @v6 --ca-url [::1]:{port}")));
    assert_eq!(config_url(&site, "v6"), format!("[::1]:{port}"));
    let _server = site.serve("v6");
    let out = certify_via(&site, "v6", &format!("[::1]:{port}"), "node6");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !connects(SocketAddr::from(([127, 0, 0, 1], port))),
        "a CA at [::1] listened on IPv4"
    );
}

#[test]
fn a_ca_serves_its_dns_names_and_a_token_for_another_address_is_refused_when_made() {
    let site = Site::new();
    let port = site.port;
    ok(site.pki(&format!(
        "install -p @ca --ca-url localhost:{port} --dns 127.0.0.3"
    )));
    let bind = format!("0.0.0.0:{port}");
    let _server = site.serve_with("ca", &["--bind", &bind], &[]);
    // Another name of the CA: its certificate names it, its tokens work.
    let out = certify_via(&site, "ca", &format!("127.0.0.3:{port}"), "other");
    assert!(out.status.success(), "{}", stderr(&out));
    // And localhost's loopback address, which its certificate names too.
    let out = certify_via(&site, "ca", &format!("127.0.0.1:{port}"), "loop");
    assert!(out.status.success(), "{}", stderr(&out));

    // An address it does not serve: refused at once, no token made.
    let out = site.pki(&format!(
        "get-token -p @ca -n stray --ca-url 127.0.0.4:{port}"
    ));
    assert!(!out.status.success());
    assert!(stdout(&out).trim().is_empty(), "a token was printed");
    let said = stderr(&out);
    assert!(said.contains("--dns"), "{said}");
    assert!(said.contains(&format!("127.0.0.3:{port}")), "{said}");

    // Named later, on the stopped CA: taken up at the next start.
    drop(_server);
    ok(site.pki("install -p @ca --dns 127.0.0.4"));
    assert!(
        ok(site.pki(&format!(
            "get-token -p @ca -n stray --ca-url 127.0.0.4:{port}"
        )))
        .status
        .success()
    );
}
