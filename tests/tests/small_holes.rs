//! The smaller holes the second attacker found (issue 21, finding 7), each
//! on the real binary: special files as inputs and outputs, key files that
//! ask for hours of key derivation, clients that stop reading, refusals
//! that flood the log, and a server whose memory could be dumped.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fedpki_tests::*;

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// A character device like `/dev/null` (1, 3), made by the test: never
/// the host's.
fn null_device(path: &Path) {
    let status = Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success(), "mknod (the tests run as root)");
}

fn is_fifo(p: &Path) -> bool {
    std::fs::symlink_metadata(p).unwrap().file_type().is_fifo()
}

fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .unwrap()
        .file_type()
        .is_char_device()
}

/// `fedpki ARGS` in `cwd`, which must end within 15 s, refused for a file
/// that is not a regular one.
fn refused_as_special(cwd: &Path, args: &[&str], env: &[(&str, &str)]) {
    let out = fedpki_within(cwd, args, env, 15);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        stderr(&out).contains("is not a regular file"),
        "{args:?}: {}",
        stderr(&out)
    );
}

#[test]
fn special_files_are_refused_at_once_as_inputs_and_never_replaced_as_outputs() {
    let ca = TestCa::install();
    let server = ca.serve();
    let node = ca.certify("node1");
    drop(server);
    let t = ca.tmp.path().to_owned();
    let fifo = t.join("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let (dir, pw) = (ca.dir_arg(), ca.pw_arg());
    ok(fedpki(
        &t,
        &["pki", "root", "init", "-p", "root", "--password-file", pw],
    ));
    let ws = t.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let fqdn = [("FQDN", "agg.example")];
    ok(fedpki_within(&ws, &["workspace", "certify"], &fqdn, 60));
    let at_f = format!("@{f}");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "pki",
            "sign",
            "-p",
            dir,
            f,
            "-o",
            "x.signed",
            "--password-file",
            pw,
        ],
        vec!["pki", "import", f, "-c", node.to_str().unwrap()],
        vec!["pki", "inspect", f],
        vec![
            "pki",
            "root",
            "sign",
            "-p",
            "root",
            f,
            "-o",
            "x",
            "--password-file",
            pw,
        ],
        vec![
            "pki",
            "get-token",
            "-n",
            "x",
            "-p",
            dir,
            "--password-file",
            f,
        ],
        vec!["pki", "certify", "-n", "x", "-t", &at_f],
        vec!["pki", "install", "-p", dir, "--root-crl", f],
        vec!["pki", "install", "-p", dir, "--root-crl", "/dev/zero"],
    ];
    for args in &cases {
        refused_as_special(&t, args, &[]);
    }
    refused_as_special(&ws, &["collaborator", "certify", "-r", f], &fqdn);
    // A node's cert/ca.json as a FIFO, then as a link to /dev/zero.
    let node_config = node.join("ca.json");
    let renew = ["pki", "renew", "-n", "node1", "-c", node.to_str().unwrap()];
    std::fs::remove_file(&node_config).unwrap();
    mkfifo(&node_config);
    refused_as_special(&t, &renew, &[]);
    std::fs::remove_file(&node_config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &node_config).unwrap();
    refused_as_special(&t, &renew, &[]);
    // A step folder whose config/defaults.json is a FIFO.
    let step = t.join("step");
    std::fs::create_dir_all(step.join("config")).unwrap();
    std::fs::write(step.join("config/ca.json"), "{}").unwrap();
    mkfifo(&step.join("config/defaults.json"));
    let adopt = [
        "pki",
        "install",
        "-p",
        "adopted",
        "--from-step-ca",
        "step",
        "--step-password-file",
        pw,
        "--password-file",
        pw,
    ];
    refused_as_special(&t, &adopt, &[]);

    // Outputs: a device is written through (as `openssl -out` does), never
    // renamed over; a FIFO nobody reads is refused at once.
    let dev = t.join("null");
    null_device(&dev);
    let d = dev.to_str().unwrap();
    for args in [
        vec![
            "pki",
            "get-token",
            "-n",
            "x",
            "-p",
            dir,
            "--password-file",
            pw,
            "-o",
            d,
        ],
        vec!["pki", "crl", "-p", dir, "--password-file", pw, "-o", d],
    ] {
        ok(fedpki_within(&t, &args, &[], 30));
        assert!(is_char_device(&dev), "{args:?} replaced the device");
    }
    let out = fedpki_within(
        &t,
        &[
            "pki",
            "get-token",
            "-n",
            "x",
            "-p",
            dir,
            "--password-file",
            pw,
            "-o",
            f,
        ],
        &[],
        15,
    );
    refused(&out, "a pipe or socket that nothing is reading");
    assert!(is_fifo(&fifo));
}

/// An EC key encrypted by OpenSSL with `args`, its DER patched by
/// replacing `from` with `to` (same length), as PEM.
fn patched_key(dir: &Path, args: &[&str], from: &[u8], to: &[u8]) -> String {
    let plain = dir.join("plain.pem");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            plain.to_str().unwrap(),
        ],
    );
    let der = dir.join("enc.der");
    let mut all = vec![
        "pkcs8",
        "-topk8",
        "-in",
        plain.to_str().unwrap(),
        "-passout",
        "pass:pw",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-outform", "DER", "-out", der.to_str().unwrap()]);
    openssl(dir, &all);
    let mut bytes = std::fs::read(&der).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the parameter to patch");
    bytes[at..at + to.len()].copy_from_slice(to);
    fedpki_core::encoding::pem("ENCRYPTED PRIVATE KEY", &bytes).unwrap()
}

#[test]
fn keys_that_ask_for_hours_or_gigabytes_of_kdf_are_refused_at_once() {
    let ca = TestCa::install();
    let server = ca.serve();
    let node = ca.certify("node1");
    drop(server);
    let t = ca.tmp.path();
    // 2^23 rounds made by OpenSSL, patched to 2^31 - 1.
    let rounds = patched_key(
        t,
        &["-v2", "aes-256-cbc", "-iter", "8388608"],
        &[0x02, 0x04, 0x00, 0x80, 0x00, 0x00],
        &[0x02, 0x04, 0x7f, 0xff, 0xff, 0xff],
    );
    // scrypt N = 2^14, r = 8, p = 1 patched to r = p = 127: 254 MiB, and
    // 2^28 blocks of work.
    let memory = patched_key(
        t,
        &[
            "-scrypt",
            "-scrypt_N",
            "16384",
            "-scrypt_r",
            "8",
            "-scrypt_p",
            "1",
        ],
        &[0x02, 0x02, 0x40, 0x00, 0x02, 0x01, 0x08, 0x02, 0x01, 0x01],
        &[0x02, 0x02, 0x40, 0x00, 0x02, 0x01, 0x7f, 0x02, 0x01, 0x7f],
    );
    let key_env = [("FEDPKI_KEY_PASSWORD", "pw")];
    let verify = ["pki", "verify", "-n", "node1", "-c", node.to_str().unwrap()];
    for (pem, said) in [
        (&rounds, "2147483647 PBKDF2 rounds"),
        (&memory, "scrypt N=16384, r=127, p=127"),
    ] {
        std::fs::write(node.join("node1.key"), pem).unwrap();
        let out = fedpki_within(t, &verify, &key_env, 15);
        assert!(!out.status.success());
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains(said), "{said}: {text}");
    }
    // A step-ca to adopt whose root key asks for 2^31 - 1 rounds.
    let step = t.join("step");
    for sub in ["config", "certs", "secrets"] {
        std::fs::create_dir_all(step.join(sub)).unwrap();
    }
    for (from, to) in [
        ("root_ca.crt", "root_ca.crt"),
        ("intermediate_ca.crt", "intermediate_ca.crt"),
    ] {
        std::fs::copy(ca.dir.join("certs").join(from), step.join("certs").join(to)).unwrap();
    }
    std::fs::write(step.join("secrets/root_ca_key"), &rounds).unwrap();
    std::fs::write(
        step.join("config/ca.json"),
        serde_json::json!({"address": "127.0.0.1:9000", "dnsNames": ["localhost"]}).to_string(),
    )
    .unwrap();
    std::fs::write(t.join("step-pw"), "pw\n").unwrap();
    let out = fedpki_within(
        t,
        &[
            "pki",
            "install",
            "-p",
            "adopted",
            "--from-step-ca",
            "step",
            "--step-password-file",
            "step-pw",
            "--password-file",
            ca.pw_arg(),
        ],
        &[],
        15,
    );
    refused(&out, "2147483647 PBKDF2 rounds");
    assert!(!t.join("adopted").exists());
}

/// A TLS connection to the CA from `source` whose client reads nothing: a
/// socket with a small receive buffer, and `requests` pipelined GETs of
/// `path` written at once.
async fn stalled_reader(
    source: &str,
    port: u16,
    root: &[u8],
    path: &str,
    requests: usize,
) -> impl Sized {
    use tokio::io::AsyncWriteExt;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = sock
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let mut tls = tls_connector(root)
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let one = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    tls.write_all(one.repeat(requests).as_bytes())
        .await
        .unwrap();
    tls.flush().await.unwrap();
    tls
}

fn tls_connector(root: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// `GET /health` from `source`: its status, or `None` when the server
/// closed the connection at once.
async fn health_from(source: &str, port: u16, root: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock = tokio::net::TcpSocket::new_v4().ok()?;
    sock.bind(format!("{source}:0").parse().ok()?).ok()?;
    let tcp = sock
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .ok()?;
    let name = rustls_pki_types::ServerName::try_from("localhost").ok()?;
    let mut tls = tls_connector(root).connect(name, tcp).await.ok()?;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
}

/// A client that asks for the page's WebAssembly and never reads holds
/// its connection no longer than the write timeout: with every slot of
/// its address taken by such clients, the address is served again soon.
#[test]
fn clients_that_stop_reading_are_cut_off_and_free_their_slots() {
    let ca = TestCa::install();
    let _server = ca.serve_with(&["--max-connections-per-address", "2"]);
    let root = ca.root_der();
    let (status, _) = ca.request("GET", "/fedpki_wasm_bg.wasm", None);
    assert_eq!(
        status, 200,
        "the page is built (scripts/build-wasm) before the tests"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hog = "127.0.3.7";
    let _held = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(stalled_reader(hog, ca.port, &root, "/fedpki_wasm_bg.wasm", 12).await);
        }
        held
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rt.block_on(health_from(hog, ca.port, &root)),
        None,
        "both slots of the address are held"
    );
    let started = Instant::now();
    loop {
        if rt.block_on(health_from(hog, ca.port, &root)) == Some(200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "clients that read nothing still hold every slot after 40 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Freed by the write timeout (10 s without progress), not by chance.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A thousand malformed requests on one connection write a line or two to
/// the log, not a thousand; the next line says how many were left out.
#[test]
fn refusals_are_logged_once_a_second_per_kind_with_a_count() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = TestCa::install();
    let server = ca.serve();
    let root = ca.root_der();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n = 1000;
    let answered = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ca.port))
            .await
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tls_connector(&root).connect(name, tcp).await.unwrap();
        let body = b"{not json";
        let one = format!(
            "POST /1.0/sign HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            String::from_utf8_lossy(body)
        );
        let last = one.replace(
            "Host: localhost\r\n",
            "Host: localhost\r\nConnection: close\r\n",
        );
        let mut all = one.repeat(n - 1);
        all.push_str(&last);
        tls.write_all(all.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer)
            .matches("HTTP/1.1 400")
            .count()
    });
    assert_eq!(answered, n);
    let refusals = || {
        server
            .lines()
            .into_iter()
            .filter(|l| l.contains("event=refused"))
            .collect::<Vec<_>>()
    };
    let logged = refusals().len();
    assert!((1..=3).contains(&logged), "{logged} lines for {n} refusals");
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _) = ca.post_sign(b"{not json".to_vec());
    assert_eq!(status, 400);
    let deadline = Instant::now() + Duration::from_secs(5);
    while refusals().len() == logged {
        assert!(Instant::now() < deadline, "the next refusal was not logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = refusals().pop().unwrap();
    let left_out: usize = last
        .split("not_logged_since=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap();
    assert!(left_out + logged >= n, "{last}");
}

/// The server holds the CA password and unlocked keys: its memory is kept
/// out of core dumps and away from other processes of its user. Run as an
/// unprivileged user, its /proc files (its memory among them) then belong
/// to root, and its core limit is 0, soft and hard.
#[test]
fn the_servers_memory_cannot_be_dumped() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("shared");
    std::fs::create_dir(&top).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&top, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let pw = top.join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let port = free_port();
    let ca_url = format!("localhost:{port}");
    let ca = top.join("ca");
    ok(fedpki(
        &top,
        &[
            "pki",
            "install",
            "-p",
            ca.to_str().unwrap(),
            "--ca-url",
            &ca_url,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    ));
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&top)
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin())
        .args([
            "pki",
            "run",
            "-p",
            ca.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ])
        .current_dir(&top)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(format!("/proc/{pid}/mem")).unwrap(),
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        owner, 0,
        "a dumpable process's /proc entries are its user's"
    );
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().collect::<Vec<_>>()[4..6],
        ["0", "0"],
        "{core}"
    );
}
