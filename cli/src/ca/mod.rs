//! The CA folder: its layout, its config, creating it (`pki install`) and
//! unlocking it.
//!
//! ```text
//! DIR/                       0700
//!   config/ca.json           CA URL, provisioner name and public key, lifetimes
//!   certs/root_ca.crt        root certificate (PEM)
//!   certs/intermediate_ca.crt
//!   secrets/root_ca_key      encrypted PKCS#8 (PBES2), 0600
//!   secrets/intermediate_ca_key
//!   secrets/provisioner_key  signs enrollment tokens
//!   secrets/tls_key          the HTTPS server's key, pinned by every token
//!   db/fedpki.redb           burnt token ids, issued certificates
//!   fedpki.lock              held (flock) by the running server, holds its pid
//! ```
//! The layout follows step-ca's, so an operator finds things where they
//! expect them.

pub(crate) mod guard;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::key::PBKDF2_ITERATIONS;
use fedpki_core::{KeyType, PrivateKey, SigningKey};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

use crate::error::{CliError, Result};
use crate::platform::sys::{OsEntropy, create_dir, now, read_text, write_atomic};

/// Default CA address, as OpenFL's.
pub(crate) const DEFAULT_CA_URL: &str = "localhost:9123";
/// Default provisioner name, as step's.
pub(crate) const DEFAULT_PROVISIONER: &str = "provisioner";

/// Paths inside a CA folder.
#[derive(Debug, Clone)]
pub struct CaPaths {
    /// The folder.
    pub dir: PathBuf,
}

impl CaPaths {
    /// The layout of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `config/ca.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config").join("ca.json")
    }
    /// `certs/root_ca.crt`.
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("certs").join("root_ca.crt")
    }
    /// `certs/intermediate_ca.crt`.
    pub fn intermediate_cert(&self) -> PathBuf {
        self.dir.join("certs").join("intermediate_ca.crt")
    }
    /// `secrets/root_ca_key`.
    pub fn root_key(&self) -> PathBuf {
        self.dir.join("secrets").join("root_ca_key")
    }
    /// `secrets/intermediate_ca_key`.
    pub fn intermediate_key(&self) -> PathBuf {
        self.dir.join("secrets").join("intermediate_ca_key")
    }
    /// `secrets/provisioner_key`.
    pub fn provisioner_key(&self) -> PathBuf {
        self.dir.join("secrets").join("provisioner_key")
    }
    /// `secrets/tls_key`: the CA server's TLS key, pinned by its tokens.
    pub fn tls_key(&self) -> PathBuf {
        self.dir.join("secrets").join("tls_key")
    }
    /// `db/fedpki.redb`.
    pub fn database(&self) -> PathBuf {
        self.dir.join("db").join("fedpki.redb")
    }
    /// `db/audit.log`.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("db").join("audit.log")
    }
    /// The store's files: the index and the audit log.
    pub fn store(&self) -> crate::store::StorePaths {
        crate::store::StorePaths {
            index: self.database(),
            log: self.audit_log(),
        }
    }
    /// `certs/intermediate_ca.crl`: the last CRL signed.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("certs").join("intermediate_ca.crl")
    }
    /// `fedpki.lock`.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("fedpki.lock")
    }
    /// Whether a CA lives here (its config exists).
    pub fn exists(&self) -> bool {
        self.config().is_file()
    }
}

/// `config/ca.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaConfig {
    /// Format version.
    pub version: u32,
    /// `HOST:PORT` clients reach the CA at; tokens' `aud` is built from it.
    pub ca_url: String,
    /// The provisioner (`iss` of tokens).
    pub provisioner: ProvisionerConfig,
    /// Leaf certificate lifetime, seconds.
    pub leaf_lifetime_secs: u64,
    /// Hex SHA-256 of the root certificate DER.
    pub root_fingerprint: String,
    /// The longest a token may live (`exp - nbf`), seconds.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_secs: u64,
    /// Hex SHA-256 of the SubjectPublicKeyInfo of `secrets/tls_key`, put in
    /// every token (`tlsKeySha256`). Absent in CAs made before it existed:
    /// `pki run` then creates the key and records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_sha256: Option<String>,
}

fn default_max_token_lifetime() -> u64 {
    fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS
}

/// The provisioner's public half.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionerConfig {
    /// Name.
    pub name: String,
    /// RFC 7638 thumbprint of its key (the tokens' `kid`).
    pub kid: String,
    /// Its public key, PEM SubjectPublicKeyInfo.
    pub public_key: String,
}

impl CaConfig {
    /// Read and check `config/ca.json`.
    pub fn load(paths: &CaPaths) -> Result<Self> {
        if !paths.exists() {
            return Err(CliError::usage(format!(
                "no fedpki CA in {} (no config/ca.json); create one with `fedpki pki install -p {}`",
                paths.dir.display(),
                paths.dir.display()
            )));
        }
        crate::ca::guard::check(&paths.dir)?;
        let text = read_text(&paths.config())?;
        serde_json::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is corrupt ({e}); restore the CA folder from a backup",
                paths.config().display()
            ))
        })
    }

    /// The audiences this CA accepts in tokens.
    pub fn audiences(&self) -> Vec<String> {
        vec![
            fedpki_core::token::sign_audience(&self.ca_url),
            format!("https://{}/sign", self.ca_url),
        ]
    }

    /// The audiences this CA accepts in revoke tokens.
    pub fn revoke_audiences(&self) -> Vec<String> {
        vec![revoke_audience(&self.ca_url)]
    }

    /// The provisioner's verifying key.
    pub fn provisioner_key(&self) -> Result<p256::ecdsa::VerifyingKey> {
        use spki::DecodePublicKey;
        p256::ecdsa::VerifyingKey::from_public_key_pem(&self.provisioner.public_key).map_err(|e| {
            CliError::usage(format!(
                "the provisioner key in config/ca.json is corrupt: {e}"
            ))
        })
    }
}

/// The `aud` of a revoke token for a CA at `host_port`.
pub(crate) fn revoke_audience(host_port: &str) -> String {
    format!("https://{host_port}/1.0/revoke")
}

/// The shortest certificate lifetime a CA may be installed with.
pub(crate) const MIN_LEAF_LIFETIME_SECS: u64 = 10;

/// Check `HOST:PORT`.
pub fn parse_ca_url(url: &str) -> Result<(String, u16)> {
    let url = url
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let (host, port) = url.rsplit_once(':').ok_or_else(|| {
        CliError::usage(format!(
            "--ca-url {url:?} must be HOST:PORT, like localhost:9123"
        ))
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 =
        port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
            CliError::usage(format!("--ca-url {url:?}: the port must be 1 to 65535"))
        })?;
    fedpki_core::name::San::parse(host)
        .map_err(|e| CliError::usage(format!("--ca-url {url:?}: {e}")))?;
    Ok((host.to_owned(), port))
}

/// Create a CA in `paths.dir`. Stages everything in a temporary folder
/// inside it and moves it into place last, config file last of all: a crash
/// leaves either no CA or a whole one.
pub(crate) fn install(
    paths: &CaPaths,
    ca_url: &str,
    password: &str,
    force: bool,
    lifetimes: Lifetimes,
) -> Result<CaConfig> {
    let leaf_lifetime_secs = lifetimes.leaf_secs;
    parse_ca_url(ca_url)?;
    if !(MIN_LEAF_LIFETIME_SECS..=issue::YEAR_SECS).contains(&leaf_lifetime_secs) {
        return Err(CliError::usage(format!(
            "the certificate lifetime must be between {MIN_LEAF_LIFETIME_SECS} s and one year (8760h); {leaf_lifetime_secs} s was asked"
        )));
    }
    if paths.exists() {
        if !force {
            return Err(CliError::usage(format!(
                "a CA already exists in {}; keep it, or replace it with --force \
                 (this destroys its keys and every certificate's trust)",
                paths.dir.display()
            )));
        }
        if let Some(pid) = server_pid(paths)? {
            return Err(CliError::usage(format!(
                "the CA in {} is being served (pid {pid}); stop it before replacing it",
                paths.dir.display()
            )));
        }
    }
    create_dir(&paths.dir, true)?;
    crate::ca::guard::tighten(&paths.dir)?;
    // Held to the end: no server can start on the folder while it is
    // replaced (the pid check above only gives the friendlier message).
    let _lock = FolderLock::acquire(paths)?;
    let mut rng = OsEntropy;
    let stage_paths = CaPaths::new(paths.dir.join(format!(".install-{}", std::process::id())));
    let _ = fs::remove_dir_all(&stage_paths.dir);
    for sub in ["config", "certs", "secrets", "db"] {
        create_dir(&stage_paths.dir.join(sub), true)?;
    }
    let CaKeys {
        root_key,
        root,
        int_key,
        int,
        prov_key,
        tls_key,
    } = CaKeys::generate(&mut rng)?;
    let (x, y) = prov_key
        .p256_coordinates()
        .ok_or_else(|| CliError::Store("internal: the provisioner key is not P-256".into()))?;
    let prov_spki = fedpki_core::key::spki_der(&prov_key.public_key())?;

    let pw = password.as_bytes();
    for (key, path) in [
        (&root_key, stage_paths.root_key()),
        (&int_key, stage_paths.intermediate_key()),
        (&prov_key, stage_paths.provisioner_key()),
        (&tls_key, stage_paths.tls_key()),
    ] {
        let pem = key.to_encrypted_pem(pw, PBKDF2_ITERATIONS, &mut rng)?;
        write_atomic(&path, pem.as_bytes(), 0o600)?;
    }
    write_atomic(
        &stage_paths.root_cert(),
        issue::cert_pem(&root)?.as_bytes(),
        0o644,
    )?;
    write_atomic(
        &stage_paths.intermediate_cert(),
        issue::cert_pem(&int)?.as_bytes(),
        0o644,
    )?;
    let config = CaConfig {
        version: 1,
        ca_url: ca_url.trim().to_owned(),
        provisioner: ProvisionerConfig {
            name: DEFAULT_PROVISIONER.into(),
            kid: fedpki_core::token::jwk_thumbprint(&x, &y),
            public_key: fedpki_core::encoding::pem("PUBLIC KEY", &prov_spki)?,
        },
        leaf_lifetime_secs,
        root_fingerprint: issue::fingerprint(&root)?,
        max_token_lifetime_secs: lifetimes.max_token_secs,
        tls_key_sha256: Some(tls_key_pin(&tls_key)?),
    };
    let json = serde_json::to_vec_pretty(&config).map_err(|e| CliError::usage(e.to_string()))?;
    write_atomic(&stage_paths.config(), &json, 0o600)?;

    move_into_place(paths, &stage_paths)?;
    Ok(config)
}

/// The keys and certificates a new CA is made of.
struct CaKeys {
    root_key: PrivateKey,
    root: x509_cert::Certificate,
    int_key: PrivateKey,
    int: x509_cert::Certificate,
    prov_key: PrivateKey,
    tls_key: PrivateKey,
}

impl CaKeys {
    /// A root (10 years, pathlen 1), the intermediate it signs (pathlen 0),
    /// the provisioner's key and the HTTPS server's key, all P-256.
    fn generate(rng: &mut OsEntropy) -> Result<Self> {
        let t = now();
        let root_key = PrivateKey::generate(KeyType::P256, rng)?;
        let root = issue::root_ca(&root_key, "fedpki Root CA", Serial::random(rng)?, t)?;
        let int_key = PrivateKey::generate(KeyType::P256, rng)?;
        let int = Issuer {
            cert: &root,
            key: &root_key,
        }
        .intermediate_ca(
            int_key.public_key(),
            "fedpki Intermediate CA",
            Serial::random(rng)?,
            t,
        )?;
        Ok(Self {
            root_key,
            root,
            int_key,
            int,
            prov_key: PrivateKey::generate(KeyType::P256, rng)?,
            tls_key: PrivateKey::generate(KeyType::P256, rng)?,
        })
    }
}

/// Move a staged CA into `paths`: the old CA's config goes first (so a
/// crash from here on never shows an old config beside new keys), the new
/// config last.
fn move_into_place(paths: &CaPaths, stage_paths: &CaPaths) -> Result<()> {
    let _ = fs::remove_file(paths.config());
    for sub in ["certs", "secrets", "db"] {
        let target = paths.dir.join(sub);
        let _ = fs::remove_dir_all(&target);
        fs::rename(stage_paths.dir.join(sub), &target)
            .map_err(|e| CliError::io("move into place", &target, e))?;
    }
    create_dir(&paths.dir.join("config"), true)?;
    fs::rename(stage_paths.config(), paths.config())
        .map_err(|e| CliError::io("move into place", paths.config(), e))?;
    let _ = fs::remove_dir_all(&stage_paths.dir);
    if let Ok(d) = File::open(&paths.dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How long what a CA makes lives, as `pki install` was told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetimes {
    /// Leaf certificates.
    pub leaf_secs: u64,
    /// The longest token the CA accepts (`exp - nbf`).
    pub max_token_secs: u64,
}

/// The pin of a TLS key (see [`fedpki_core::key::spki_pin`]).
pub(crate) fn tls_key_pin(key: &PrivateKey) -> Result<String> {
    Ok(fedpki_core::key::spki_pin(&key.public_key())?)
}

/// The CA server's TLS key, unlocked, and the config that pins it. A CA
/// made before the key existed gets one now, recorded in its config (the
/// caller holds the folder's lock); a key that does not match its pin is
/// refused, since tokens would then be refused by every client.
pub(crate) fn server_tls_key(
    paths: &CaPaths,
    config: &CaConfig,
    password: &str,
) -> Result<(PrivateKey, CaConfig)> {
    let path = paths.tls_key();
    if path.exists() {
        let key = unlock_key(&path, password)?;
        let pin = tls_key_pin(&key)?;
        if config.tls_key_sha256.as_deref() != Some(pin.as_str()) {
            return Err(CliError::CorruptCa(format!(
                "{} does not match tlsKeySha256 in config/ca.json; the CA folder was altered \
                 (restore it from a backup)",
                path.display()
            )));
        }
        return Ok((key, config.clone()));
    }
    let key = PrivateKey::generate(KeyType::P256, &mut OsEntropy)?;
    let pem = key.to_encrypted_pem(password.as_bytes(), PBKDF2_ITERATIONS, &mut OsEntropy)?;
    write_atomic(&path, pem.as_bytes(), 0o600)?;
    let mut updated = config.clone();
    updated.tls_key_sha256 = Some(tls_key_pin(&key)?);
    let json = serde_json::to_vec_pretty(&updated).map_err(|e| CliError::usage(e.to_string()))?;
    write_atomic(&paths.config(), &json, 0o600)?;
    crate::platform::log::info("tls_key_created", &[("path", &path.display().to_string())]);
    Ok((key, updated))
}

/// The loaded public parts of a CA.
#[derive(Debug, Clone)]
pub struct CaCerts {
    /// Root certificate.
    pub root: Certificate,
    /// Root PEM.
    pub root_pem: String,
    /// Intermediate certificate.
    pub intermediate: Certificate,
    /// Intermediate PEM.
    pub intermediate_pem: String,
}

impl CaCerts {
    /// Read the certificates and check the root against the config.
    pub fn load(paths: &CaPaths, config: &CaConfig) -> Result<Self> {
        let root_pem = read_text(&paths.root_cert())?;
        let intermediate_pem = read_text(&paths.intermediate_cert())?;
        let root = issue::parse_cert_pem(&root_pem)?;
        let intermediate = issue::parse_cert_pem(&intermediate_pem)?;
        if issue::fingerprint(&root)? != config.root_fingerprint {
            return Err(CliError::CorruptCa(format!(
                "{} does not match the root fingerprint in config/ca.json; the CA folder was altered",
                paths.root_cert().display()
            )));
        }
        Ok(Self {
            root,
            root_pem,
            intermediate,
            intermediate_pem,
        })
    }
}

/// Decrypt one of the CA's keys.
pub fn unlock_key(path: &Path, password: &str) -> Result<PrivateKey> {
    let pem = read_text(path)?;
    PrivateKey::from_pem(&pem, Some(password.as_bytes())).map_err(|e| match e {
        fedpki_core::Error::Decrypt => CliError::usage(format!(
            "wrong CA password (could not decrypt {})",
            path.display()
        )),
        other => other.into(),
    })
}

/// A held lock on the CA folder: proof that this process is its only server.
#[derive(Debug)]
pub(crate) struct FolderLock {
    file: File,
}

impl FolderLock {
    /// Take the lock and write our pid into it, or say who holds it.
    pub(crate) fn acquire(paths: &CaPaths) -> Result<Self> {
        let path = paths.lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // A symbolic link here would make us truncate whatever it names.
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| CliError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = read_pid(&mut file)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                return Err(CliError::usage(format!(
                    "another fedpki server is already serving {}{pid}; stop it first \
                     (or use `fedpki pki uninstall` to remove the CA)",
                    paths.dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(CliError::io("lock", &path, e)),
        }
        file.set_len(0)
            .map_err(|e| CliError::io("write", &path, e))?;
        file.rewind().map_err(|e| CliError::io("write", &path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| CliError::io("write", &path, e))?;
        file.sync_all()
            .map_err(|e| CliError::io("write", &path, e))?;
        Ok(Self { file })
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// The pid of the server holding `paths`' lock, if one does.
pub fn server_pid(paths: &CaPaths) -> Result<Option<i32>> {
    let path = paths.lock();
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io("open", &path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // Trust the pid written in the file only if the kernel says that
            // process holds the lock.
            let holders = crate::ca::guard::lock_holders(&path);
            Ok(read_pid(&mut file)
                .filter(|p| holders.contains(p))
                .or(Some(0)))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(CliError::io("lock", &path, e)),
    }
}
