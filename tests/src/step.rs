//! The real smallstep `step` CLI and `step-ca` server, as peers: found in
//! the cache `scripts/setup` fills (built from `../shared/peers/step-ca`
//! where that folder exists, else upstream's release binaries), or on PATH
//! when they are the version asked for. Never skipped: a missing binary
//! fails the test and says how to get it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The versions tested: OpenFL's pin, and a later one.
pub const VERSIONS: [&str; 2] = ["0.16.0", "0.19.0"];

/// `tool` (`step` or `step-ca`) at `version`.
pub fn binary(tool: &str, version: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME")
        .join(format!("fedpki-peers/step-{version}/bin/{tool}"));
    if cache.is_file() {
        return cache;
    }
    if let Ok(out) = Command::new(tool).arg("version").output() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains(&format!("/{version} ")) {
            return PathBuf::from(tool);
        }
    }
    panic!(
        "{tool} {version} is needed and was not found at {} or on PATH: run `bash scripts/setup` \
         (it builds them from ../shared/peers/step-ca when that folder exists, else downloads \
         smallstep's release binaries), or unpack step_linux_{version}_amd64.tar.gz and \
         step-ca_linux_{version}_amd64.tar.gz from github.com/smallstep/cli and \
         github.com/smallstep/certificates releases into that folder",
        cache.display()
    );
}

/// One version's `step` with its own `STEPPATH`, so nothing touches
/// `~/.step`.
#[derive(Debug)]
pub struct Step {
    /// The binary.
    pub bin: PathBuf,
    /// Its home (`STEPPATH`).
    pub home: PathBuf,
    /// The version.
    pub version: &'static str,
}

impl Step {
    /// `step` `version` with its home in `dir/steppath`.
    pub fn new(version: &'static str, dir: &Path) -> Self {
        let home = dir.join(format!("steppath-{version}"));
        std::fs::create_dir_all(&home).expect("STEPPATH");
        Self {
            bin: binary("step", version),
            home,
            version,
        }
    }

    /// `step ARGS` in `cwd`, with this home and no input.
    fn command<S: AsRef<std::ffi::OsStr>>(&self, cwd: &Path, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .current_dir(cwd)
            .env("STEPPATH", &self.home)
            .env("HOME", &self.home)
            .stdin(Stdio::null());
        cmd
    }

    /// Run `step ARGS` in `cwd`.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, cwd: &Path, args: &[S]) -> Output {
        self.command(cwd, args).output().expect("run step")
    }

    /// Run `step ARGS`; panic with its output unless it succeeds.
    pub fn ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
        &self,
        cwd: &Path,
        args: &[S],
    ) -> Output {
        let out = self.run(cwd, args);
        assert!(
            out.status.success(),
            "step {} {args:?} failed: {}{}",
            self.version,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Start `step ARGS` in the background (`step ca renew --daemon`),
    /// its output to `log`.
    pub fn spawn(&self, cwd: &Path, args: &[&str], log: &Path) -> Child {
        let file = std::fs::File::create(log).expect("log file");
        self.command(cwd, args)
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn step")
    }
}

/// A real step-ca, made as OpenFL's `fx pki install` makes it (`step ca
/// init` with a JWK provisioner), running on loopback; killed on drop.
#[derive(Debug)]
pub struct StepCa {
    /// The step CLI of the same version, with this CA's STEPPATH.
    pub step: Step,
    /// `https://localhost:PORT`.
    pub url: String,
    /// `localhost:PORT`.
    pub host_port: String,
    /// The CA's password file (and the provisioner's).
    pub password_file: PathBuf,
    /// `certs/root_ca.crt` in its STEPPATH, as an argument.
    pub root: String,
    child: Child,
}

impl StepCa {
    /// `step ca init` in `dir`, then `step-ca`, waiting until it is healthy.
    pub fn start(version: &'static str, dir: &Path) -> Self {
        let step = Step::new(version, dir);
        let password_file = dir.join("step-ca-password");
        std::fs::write(&password_file, "step-ca-pass-1234\n").expect("password");
        let port = crate::free_port();
        step.ok(dir, &init_args(port, "provisioner", &password_file));
        Self::serve(step, password_file, port)
    }

    /// Run the step-ca whose STEPPATH is `step.home`, listening on `port`.
    pub fn serve(step: Step, password_file: PathBuf, port: u16) -> Self {
        let child = Command::new(binary("step-ca", step.version))
            .arg("--password-file")
            .arg(&password_file)
            .arg(step.home.join("config/ca.json"))
            .env("STEPPATH", &step.home)
            .env("HOME", &step.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn step-ca");
        let root = step.home.join("certs/root_ca.crt");
        let ca = Self {
            url: format!("https://localhost:{port}"),
            host_port: format!("localhost:{port}"),
            password_file,
            root: root.to_str().expect("utf-8").to_owned(),
            child,
            step,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = ca.step.run(
                &ca.step.home,
                &["ca", "health", "--ca-url", &ca.url, "--root", &ca.root],
            );
            if out.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "step-ca did not become healthy: {out:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ca
    }

    /// A sign token for `name`, from `step ca token` (the JWT).
    pub fn token(&self, cwd: &Path, name: &str) -> String {
        let out = self.step.ok(
            cwd,
            &[
                "ca",
                "token",
                name,
                "--ca-url",
                &self.url,
                "--root",
                &self.root,
                "--password-file",
                self.password_file.to_str().expect("utf-8"),
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for StepCa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `step ca init`'s arguments for a CA on `127.0.0.1:port` named for
/// `localhost`, with a JWK provisioner `provisioner`.
pub fn init_args(port: u16, provisioner: &str, password_file: &Path) -> Vec<String> {
    [
        "ca",
        "init",
        "--name",
        "Federation",
        "--dns",
        "localhost,127.0.0.1",
        "--address",
        &format!("127.0.0.1:{port}"),
        "--provisioner",
        provisioner,
        "--password-file",
        password_file.to_str().expect("utf-8"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The JWT in a fedpki token (`base64(JWT) "." base64(root)`), which is
/// what `fx pki certify` hands to `step ca certificate --token`.
pub fn jwt_of(bundle: &str) -> String {
    let first = bundle.trim().split('.').next().expect("bundle");
    String::from_utf8(fedpki_core::encoding::unb64(first).expect("base64 JWT")).expect("utf-8")
}

/// Lowercase hex SHA-256 of a PEM certificate's DER: step's
/// `--fingerprint`.
pub fn fingerprint(pem_file: &Path) -> String {
    let pem = std::fs::read_to_string(pem_file).expect("root");
    let der = fedpki_core::encoding::pem_blocks(&pem).expect("PEM")[0]
        .der
        .clone();
    fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&der))
}
