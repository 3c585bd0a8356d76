//! The CA folder: its layout, its config, creating it (`pki install`) and
//! unlocking it.
//!
//! ```text
//! DIR/                       0700
//!   config/ca.json           CA URL, provisioner name and public key, lifetimes
//!   certs/root_ca.crt        root certificate (PEM)
//!   certs/intermediate_ca.crt   the first intermediate
//!   certs/intermediate_ca.crl   the active intermediate's last CRL
//!   certs/intermediates/KID.crt intermediates activated since (KID: hex key id)
//!   certs/crl/KID.crl           each intermediate's last CRL
//!   certs/root_ca.crl           the root's CRL, as `pki install --root-crl` gave it
//!   secrets/root_ca_key      encrypted PKCS#8 (PBES2), 0600; absent with an offline root
//!   secrets/intermediate_ca_key
//!   secrets/intermediates/KID_key
//!   secrets/next_intermediate_key  staged by `pki intermediate request` (or an
//!                            offline-root install), with config/next_intermediate.json
//!   secrets/provisioner_key  signs enrollment tokens
//!   secrets/tls_key          the HTTPS server's key, pinned by every token
//!   db/fedpki.redb           burnt token ids, issued certificates
//!   fedpki.lock              held (flock) by the running server, holds its pid
//! ```
//! The layout follows step-ca's, so an operator finds things where they
//! expect them.

mod adopt;
pub(crate) mod backup;
mod config;
pub(crate) mod guard;
mod install;
pub(crate) mod issuers;
mod lock;
pub(crate) mod offline_root;
pub(crate) mod passwd;
pub(crate) mod replica;
pub(crate) mod roster;

pub(crate) use self::adopt::adopt;
pub use self::config::CaConfig;
pub(crate) use self::config::{Adoption, ProvisionerConfig, RetiredIntermediate};
pub(crate) use self::install::{InstallOptions, install, install_awaiting_root};
pub(crate) use self::lock::FolderLock;
pub use self::lock::server_pid;

use std::path::{Path, PathBuf};

use fedpki_core::Certificate;
use fedpki_core::issue;
use fedpki_core::key::PBKDF2_ITERATIONS;
use fedpki_core::{KeyType, PrivateKey, SigningKey};

use crate::error::{CliError, Result};
use crate::platform::sys::{OsEntropy, read_text, write_atomic};

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
    /// `certs/intermediate_ca.crl`: the active intermediate's last CRL.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("certs").join("intermediate_ca.crl")
    }
    /// `certs/crl/KID.crl`: the last CRL of the intermediate with key id `kid`.
    pub fn crl_of(&self, kid: &str) -> PathBuf {
        self.dir
            .join("certs")
            .join("crl")
            .join(format!("{kid}.crl"))
    }
    /// `certs/intermediates/KID.crt`: an intermediate activated by rotation.
    pub fn rotated_cert(&self, kid: &str) -> PathBuf {
        self.dir
            .join("certs")
            .join("intermediates")
            .join(format!("{kid}.crt"))
    }
    /// `secrets/intermediates/KID_key`: its key.
    pub fn rotated_key(&self, kid: &str) -> PathBuf {
        self.dir
            .join("secrets")
            .join("intermediates")
            .join(format!("{kid}_key"))
    }
    /// `secrets/next_intermediate_key`: a staged intermediate's key.
    pub fn next_key(&self) -> PathBuf {
        self.dir.join("secrets").join("next_intermediate_key")
    }
    /// `config/next_intermediate.json`: the request it was staged with.
    pub fn next_request(&self) -> PathBuf {
        self.dir.join("config").join("next_intermediate.json")
    }
    /// `certs/root_ca.crl`: the offline root's CRL, as it was given.
    pub fn root_crl(&self) -> PathBuf {
        self.dir.join("certs").join("root_ca.crl")
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

/// The `aud` of a revoke token for a CA at `host_port`.
pub(crate) fn revoke_audience(host_port: &str) -> String {
    format!("https://{host_port}/1.0/revoke")
}

/// The cRLNumber of the CRL kept in `path` (the last one signed, or the
/// root's as given), if there is one: new CRLs are numbered above it.
pub(crate) fn crl_number_in(path: &Path) -> Option<u64> {
    let der = crate::platform::sys::read_bounded(path, crate::platform::sys::MAX_CRL).ok()?;
    fedpki_core::crl::Crl::parse(&der).ok()?.number()
}

/// Lifetime of the CA server's own TLS certificate; renewed at two thirds.
pub(crate) const TLS_CERT_LIFETIME_SECS: u64 = 24 * 3600;

/// The shortest certificate lifetime a CA may be installed with.
pub(crate) const MIN_LEAF_LIFETIME_SECS: u64 = 10;

/// A CA address's host and port (see [`crate::address::CaAddress`]).
pub fn parse_ca_url(url: &str) -> Result<(String, u16)> {
    let a = crate::address::CaAddress::parse(url)?;
    Ok((a.host, a.port))
}

/// The names the CA's own HTTPS server answers for, as its TLS certificate
/// carries them: its URL's host, and for `localhost` the loopback
/// addresses too.
pub(crate) fn ca_host_names(host: &str) -> Result<Vec<fedpki_core::name::San>> {
    use fedpki_core::name::San;
    let mut names = vec![San::parse(host)?];
    if host.eq_ignore_ascii_case("localhost") {
        names.push(San::parse("127.0.0.1")?);
        names.push(San::parse("::1")?);
    }
    Ok(names)
}

/// The pin of a TLS key (see [`fedpki_core::PublicKey::pin`]).
pub(crate) fn tls_key_pin(key: &PrivateKey) -> String {
    key.public_key().pin()
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
        let pin = tls_key_pin(&key);
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
    updated.tls_key_sha256 = Some(tls_key_pin(&key));
    updated.save(paths)?;
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
    /// Read the root and the active intermediate, and check the root
    /// against the config.
    pub fn load(paths: &CaPaths, config: &CaConfig) -> Result<Self> {
        let root_pem = read_text(&paths.root_cert())?;
        let intermediate_pem = read_text(&issuers::active_files(paths, config).cert)?;
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
