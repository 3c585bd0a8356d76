//! The server under hostile load: repeated token failures get 429 (for
//! that address only); 1,000 idle connections and clients dribbling bytes
//! do not keep new clients out, and are cut off by the timeouts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use fedpki_tests::{TestCa, fedpki, ok, request_from};

fn bad_sign_body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        "ott": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
    }))
    .unwrap()
}

#[test]
fn repeated_token_failures_from_one_address_get_429() {
    let ca = TestCa::install();
    let _server = ca.serve_with(&["--max-auth-failures", "5"]);
    let root = ca.root_der();
    let here: IpAddr = "127.0.0.1".parse().unwrap();
    for i in 0..5 {
        let (st, _, body) =
            request_from(here, ca.port, &root, "POST", "/1.0/sign", &bad_sign_body());
        assert_eq!(st, 401, "attempt {i}: {body}");
    }
    let (st, head, body) =
        request_from(here, ca.port, &root, "POST", "/1.0/sign", &bad_sign_body());
    assert_eq!(st, 429, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert!(body["message"].as_str().unwrap().contains("too many"));
    // Health still answers; another failure, of any route, waits.
    let (st, _, _) = request_from(here, ca.port, &root, "GET", "/health", b"");
    assert_eq!(st, 200);
    let revoke = serde_json::to_vec(&serde_json::json!({"serial": "19018", "ott": "x"})).unwrap();
    let (st, _, _) = request_from(here, ca.port, &root, "POST", "/1.0/revoke", &revoke);
    assert_eq!(st, 429);
    let (st, _, _) = request_from(here, ca.port, &root, "POST", "/1.0/renew", b"{}");
    assert_eq!(st, 429, "a renewal without a certificate is a failure too");
    // But a valid token from the same address is never locked out by them.
    let (st, _, resp) = request_from(
        here,
        ca.port,
        &root,
        "POST",
        "/1.0/sign",
        &sign_body(&ca, "here"),
    );
    assert_eq!(st, 201, "{resp}");
    // Another address is not affected either.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let (st, _, resp) = request_from(
        other,
        ca.port,
        &root,
        "POST",
        "/1.0/sign",
        &sign_body(&ca, "elsewhere"),
    );
    assert_eq!(st, 201, "{resp}");
}

/// A sign request with a real token for `name`.
fn sign_body(ca: &TestCa, name: &str) -> Vec<u8> {
    let token = ca.token(name, &[]);
    let (bundle, _, _) = fedpki_core::token::Bundle::parse(&token).unwrap();
    let key = fedpki_core::PrivateKey::generate(
        fedpki_core::KeyType::P256,
        &mut fedpki::facade::OsEntropy,
    )
    .unwrap();
    let csr = fedpki_core::csr::build(
        &key,
        &fedpki_core::name::Subject::new(name).unwrap(),
        &[fedpki_core::name::San::parse(name).unwrap()],
    )
    .unwrap();
    serde_json::to_vec(&serde_json::json!({"csr": csr.to_pem().unwrap(), "ott": bundle.jwt}))
        .unwrap()
}

/// Raise this process's open-file limit for a thousand sockets.
fn raise_limit() {
    let got = fedpki::facade::raise_fd_limit();
    assert!(got >= 1200, "this machine allows only {got} open files");
}

/// Whether the server has closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a TLS alert or an HTTP error; read on to EOF
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_slow_connections_do_not_keep_new_clients_out() {
    raise_limit();
    let ca = TestCa::install();
    let mut server = ca.serve();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ca.port));
    let opened = Instant::now();
    // 1,000 connections that never say anything, from ten addresses (each
    // under the per-address cap, which has its own test below).
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|i| connect_from(&format!("127.0.1.{}", 10 + i % 10), addr))
        .collect();
    // 20 that dribble a TLS record header, one byte every 300 ms.
    let dribblers: Vec<std::thread::JoinHandle<bool>> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let started = Instant::now();
                for b in [0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]
                    .iter()
                    .cycle()
                    .take(200)
                {
                    if s.write_all(&[*b]).is_err() {
                        // Cut off: by the 10 s handshake timeout, not before.
                        return started.elapsed() >= Duration::from_secs(9);
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                false
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));

    // A new client is served at once, through the real CLI.
    let t = Instant::now();
    let dir = ca.certify("newcomer");
    assert!(dir.join("newcomer.crt").is_file());
    let (st, _) = ca.get("/health");
    assert_eq!(st, 200);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "a new client waited {:?} behind idle ones",
        t.elapsed()
    );

    // A client that completed TLS and then dribbles its HTTP request head.
    let root = ca.root_der();
    let slow_http = std::thread::spawn(move || {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(root))
            .unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let conn = rustls::ClientConnection::new(
            std::sync::Arc::new(cfg),
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let started = Instant::now();
        for b in b"POST /1.0/sign HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
            .iter()
            .chain(b"a".repeat(400).iter())
        {
            if tls.write_all(&[*b]).and_then(|()| tls.flush()).is_err() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    });

    // Every idle connection is closed by the server's handshake timeout.
    let mut closed = 0;
    for s in &mut idle {
        let left = Duration::from_secs(20).saturating_sub(opened.elapsed());
        if closed_within(s, left.max(Duration::from_millis(10))) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000, "idle connections left open after 20 s");
    let cut = dribblers
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|c| *c)
        .count();
    assert_eq!(cut, 20, "dribbling clients must be cut off by the timeout");
    let slow = slow_http.join().unwrap();
    assert!(
        slow.is_some_and(|d| d >= Duration::from_secs(9) && d < Duration::from_secs(30)),
        "a client dribbling its request head was not cut off by the header timeout: {slow:?}"
    );
    assert!(server.is_running());
    // And the server still serves.
    ok(fedpki(ca.tmp.path(), &["pki", "list", "-p", ca.dir_arg()]));
    let (st, _) = ca.get("/health");
    assert_eq!(st, 200);
}

/// A TCP connection to `addr` from the local address `source`.
fn connect_from(source: &str, addr: std::net::SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let tcp = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        sock.connect(addr).await.unwrap()
    });
    let std = tcp.into_std().unwrap();
    std.set_nonblocking(false).unwrap();
    std
}

#[test]
fn one_address_cannot_take_every_connection_and_its_refusals_are_not_all_logged() {
    let ca = TestCa::install();
    let server = ca.serve_with(&["--max-connections-per-address", "8"]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], ca.port));
    let hog = "127.0.2.5";
    let mut held: Vec<TcpStream> = (0..8).map(|_| connect_from(hog, addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    // The hog's slots are full: its next connections are closed at once...
    let mut extra: Vec<TcpStream> = (0..200).map(|_| connect_from(hog, addr)).collect();
    for s in &mut extra {
        assert!(
            closed_within(s, Duration::from_secs(2)),
            "a ninth connection was kept"
        );
    }
    // ...while the ones it holds stay open, and another host is served.
    for s in &mut held {
        assert!(!closed_within(s, Duration::from_millis(10)));
    }
    let root = ca.root_der();
    let (st, _, _) = request_from(
        "127.0.2.6".parse().unwrap(),
        ca.port,
        &root,
        "GET",
        "/health",
        b"",
    );
    assert_eq!(st, 200);
    let logged = server
        .lines()
        .iter()
        .filter(|l| l.contains("event=connection_refused_per_address"))
        .count();
    assert!(
        (1..=4).contains(&logged),
        "200 refusals in about a second: {logged} lines logged"
    );
}

#[test]
fn renewals_per_address_are_limited() {
    let ca = TestCa::install();
    let _server = ca.serve_with(&["--max-renewals", "3"]);
    let dir = ca.certify("node1");
    let auth = fedpki_tests::node_auth(&dir, "node1");
    for i in 0..3 {
        let (st, body) = ca
            .request_as(&auth, "POST", "/1.0/renew", Some(b"{}".to_vec()))
            .unwrap();
        assert_eq!(st, 201, "renewal {i}: {body}");
    }
    let (st, body) = ca
        .request_as(&auth, "POST", "/1.0/renew", Some(b"{}".to_vec()))
        .unwrap();
    assert_eq!(st, 429, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too many renewals")
    );
}
