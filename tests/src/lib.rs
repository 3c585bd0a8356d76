//! Helpers for fedpki's end-to-end tests: run the real binary, start a real
//! CA server on loopback, check certificates with OpenSSL, and complete a
//! mutual-TLS handshake with issued files.

// Test support: a failed precondition should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod disk;
pub mod mtls;
pub mod postgres;
pub mod python;
pub mod replicas;
pub mod site;
pub mod step;
pub mod tokens;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The password every test CA uses.
pub const PASSWORD: &str = "test-password-1234";

/// The `fedpki` binary, built once per test run (cargo is fast when it is
/// up to date) so the tests never run a stale binary.
pub fn bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("target dir");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-q",
            // The selection of `cargo test --workspace --all-targets`: the
            // same features, so a test run finds the binary already built.
            "--workspace",
            "--bins",
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
        let bin = profile_dir.join("fedpki");
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Run `fedpki ARGS` in `cwd` and capture its output.
pub fn fedpki(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("FEDPKI_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run fedpki")
}

/// Run `fedpki ARGS` in `cwd` with extra environment `env`, which must
/// finish within `secs` seconds: one that hangs (on a FIFO, a hostile key)
/// is killed and fails the test with what it printed.
pub fn fedpki_within(cwd: &Path, args: &[&str], env: &[(&str, &str)], secs: u64) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("FEDPKI_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fedpki");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "fedpki {args:?} still ran after {secs} s: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Text of stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Text of stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Assert a command failed and said `needle` on stderr.
pub fn refused(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected a refusal mentioning {needle:?}"
    );
    assert!(
        stderr(o).contains(needle),
        "stderr should mention {needle:?}: {}",
        stderr(o)
    );
}

/// Assert a command succeeded, showing its stderr if not.
pub fn ok(o: Output) -> Output {
    assert!(o.status.success(), "fedpki failed: {}", stderr(&o));
    o
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A CA installed in a temporary folder.
#[derive(Debug)]
pub struct TestCa {
    /// Holds the folder until the test ends.
    pub tmp: tempfile::TempDir,
    /// The CA folder.
    pub dir: PathBuf,
    /// The password file.
    pub password_file: PathBuf,
    /// `localhost:<port>`.
    pub ca_url: String,
    /// The port.
    pub port: u16,
}

impl TestCa {
    /// `fedpki pki install` on a free port.
    pub fn install() -> Self {
        Self::install_in(&[])
    }

    fn install_in(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("ca");
        let password_file = tmp.path().join("pw");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("write pw");
        let port = free_port();
        let ca_url = format!("localhost:{port}");
        let mut args = vec![
            "pki",
            "install",
            "-p",
            dir.to_str().expect("utf-8 path"),
            "--ca-url",
            &ca_url,
            "--password-file",
            password_file.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        ok(fedpki(tmp.path(), &args));
        Self {
            tmp,
            dir,
            password_file,
            ca_url,
            port,
        }
    }

    /// The CA folder as a string argument.
    pub fn dir_arg(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    /// The password file as a string argument.
    pub fn pw_arg(&self) -> &str {
        self.password_file.to_str().expect("utf-8 path")
    }

    /// `fedpki pki get-token -n NAME` with extra arguments: the token.
    pub fn token(&self, name: &str, extra: &[&str]) -> String {
        let out = ok(self.get_token(name, extra));
        stdout(&out).trim().to_owned()
    }

    /// Run `fedpki pki get-token -n NAME` with extra arguments.
    pub fn get_token(&self, name: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "pki",
            "get-token",
            "-n",
            name,
            "-p",
            self.dir_arg(),
            "--password-file",
            self.pw_arg(),
        ];
        args.extend_from_slice(extra);
        fedpki(self.tmp.path(), &args)
    }

    /// Start `fedpki pki run` for this CA.
    pub fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// The root certificate's DER.
    pub fn root_der(&self) -> Vec<u8> {
        let pem = std::fs::read_to_string(self.dir.join("certs/root_ca.crt")).expect("root");
        fedpki_core::encoding::pem_one(&pem, "CERTIFICATE").expect("root PEM")
    }

    /// `fedpki pki install` on a free port, with extra arguments.
    pub fn install_with(extra: &[&str]) -> Self {
        Self::install_in(extra)
    }

    /// Start `fedpki pki run` for this CA, with extra arguments.
    pub fn serve_with(&self, extra: &[&str]) -> Server {
        let mut args = vec![
            "pki",
            "run",
            "-p",
            self.dir_arg(),
            "--password-file",
            self.pw_arg(),
        ];
        args.extend_from_slice(extra);
        Server::start(self.tmp.path(), &args)
    }

    /// `pki get-token` + `pki certify` for `name` into `<tmp>/<name>`; the
    /// certs folder.
    pub fn certify(&self, name: &str) -> PathBuf {
        let token = self.token(name, &[]);
        let dir = self.workdir(name);
        ok(fedpki(
            &dir,
            &[
                "pki",
                "certify",
                "-n",
                name,
                "-t",
                &token,
                "-c",
                dir.to_str().expect("utf-8 path"),
            ],
        ));
        dir
    }

    /// A request presenting a client certificate (mutual TLS).
    pub fn request_as(
        &self,
        auth: &fedpki::facade::ClientAuth,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, serde_json::Value), String> {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let resp = rt
            .block_on(fedpki::facade::https_request_as(
                "localhost",
                self.port,
                &self.root_der(),
                Some(auth),
                method,
                path,
                body,
            ))
            .map_err(|e| e.to_string())?;
        Ok((
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// A work folder for a client.
    pub fn workdir(&self, name: &str) -> PathBuf {
        let d = self.tmp.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    /// One HTTPS request to this CA's server as a raw client, pinned to
    /// this root; the status and the JSON body (`Null` if not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let resp = rt
            .block_on(fedpki::facade::https_request(
                "localhost",
                self.port,
                &self.root_der(),
                method,
                path,
                body,
            ))
            .expect("request");
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// POST a JSON body to `/1.0/sign`.
    pub fn post_sign(&self, body: Vec<u8>) -> (u16, serde_json::Value) {
        self.request("POST", "/1.0/sign", Some(body))
    }

    /// GET a path.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.request("GET", path, None)
    }
}

/// A running `fedpki pki run`; stopped with SIGTERM on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start and wait for `event=listening`.
    pub fn start(cwd: &Path, args: &[&str]) -> Self {
        Self::start_with_env(cwd, args, &[])
    }

    /// [`Server::start`] with environment variables set for it.
    pub fn start_with_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        let mut server = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        // logfmt, or `--log-format json`.
        while !server.logged("event=listening") && !server.logged("\"event\":\"listening\"") {
            if let Ok(Some(status)) = server.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50)); // let the log reader finish
                panic!("server exited with {status}: {:?}", server.lines());
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {:?}",
                server.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The server's log so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Whether any log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.lines().iter().any(|l| l.contains(needle))
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait; the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate()
    }

    /// SIGKILL and wait.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        self.child.wait().expect("wait for server")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.is_running() {
            self.terminate();
        }
    }
}

/// `openssl verify -x509_strict` of a leaf against a root, with the
/// intermediate as untrusted. Returns OpenSSL's output on failure.
pub fn openssl_verify(root: &Path, chain: &Path, purpose: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict", "-CAfile"])
        .arg(root)
        .arg("-untrusted")
        .arg(chain);
    if let Some(p) = purpose {
        cmd.args(["-purpose", p]);
    }
    let out = cmd
        .arg(chain)
        .output()
        .map_err(|e| format!("run openssl: {e}"))?;
    verified(&out)
}

/// `Ok` when an `openssl verify` run succeeded and said `: OK`; else its
/// output.
pub fn verified(out: &Output) -> Result<(), String> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains(": OK") {
        Ok(())
    } else {
        Err(text)
    }
}

/// `openssl x509 -text` of the first certificate in a file.
pub fn openssl_text(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run openssl with arguments in `cwd`; panic with its stderr on failure.
pub fn openssl(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file below `dir` with its contents, for "nothing changed" checks.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The client identity in `<dir>/<name>.crt` and `<dir>/<name>.key`.
pub fn node_auth(dir: &Path, name: &str) -> fedpki::facade::ClientAuth {
    let chain = fedpki_core::issue::parse_certs_pem(
        &std::fs::read_to_string(dir.join(format!("{name}.crt"))).expect("crt"),
    )
    .expect("chain");
    let key = fedpki_core::PrivateKey::from_pem(
        &std::fs::read_to_string(dir.join(format!("{name}.key"))).expect("key"),
        None,
    )
    .expect("key");
    fedpki::facade::ClientAuth::new(&chain, &key).expect("client auth")
}

/// The serial (hex) of the leaf in `<dir>/<name>.crt`.
pub fn node_serial(dir: &Path, name: &str) -> String {
    let chain = fedpki_core::issue::parse_certs_pem(
        &std::fs::read_to_string(dir.join(format!("{name}.crt"))).expect("crt"),
    )
    .expect("chain");
    fedpki_core::issue::serial_hex(&chain[0])
}

/// One HTTP/1.1 request over TLS to `127.0.0.1:port` from the local
/// address `source` (any 127.x.y.z works on Linux), trusting `root_der`;
/// the status, the raw head and the JSON body (`Null` if not JSON).
pub fn request_from(
    source: std::net::IpAddr,
    port: u16,
    root_der: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind(std::net::SocketAddr::new(source, 0)).expect("bind source");
        let tcp = sock
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connect");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(root_der.to_vec()))
            .expect("root");
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(
                rustls_pki_types::ServerName::try_from("localhost").expect("name"),
                tcp,
            )
            .await
            .expect("TLS");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.expect("write");
        tls.write_all(body).await.expect("write");
        let mut resp = Vec::new();
        let _ = tls.read_to_end(&mut resp).await;
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            head.to_owned(),
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    })
}
