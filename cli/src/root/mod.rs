//! The offline root: a folder that holds only the root's key and
//! certificate and a ledger of what the root signed, on a host that never
//! serves. It signs intermediates carried to it by request file, revokes
//! them, and signs its CRL; nothing else.
//!
//! ```text
//! ROOT_DIR/                  0700
//!   config/root.json         the root's name and fingerprint
//!   certs/root_ca.crt        the root certificate (PEM)
//!   certs/root_ca.crl        the last CRL it signed (DER)
//!   secrets/root_ca_key      encrypted PKCS#8 (PBES2), 0600
//!   db/fedpki.redb, db/audit.log   the intermediates it signed, their revocations
//!   fedpki.lock              held while a command works on the folder
//! ```
//! The layout is a CA folder's, so the ledger, the audit log, the lock and
//! `pki audit` are the online CA's own.

mod export;
mod sign;

pub(crate) use self::export::{export, remove_root_key};
pub(crate) use self::sign::{NVFLARE_JOB_CA_URI, ROOT_CRL_LIFETIME_SECS, review, review_job_ca};

use std::path::{Path, PathBuf};

use fedpki_core::issue::{self, Serial};
use fedpki_core::key::PBKDF2_ITERATIONS;
use fedpki_core::{Certificate, KeyType, PrivateKey, SigningKey};
use serde::{Deserialize, Serialize};

use crate::ca::{CaPaths, FolderLock, unlock_key};
use crate::error::{CliError, Result};
use crate::platform::sys::{OsEntropy, create_dir, now, read_text, write_atomic};
use crate::store::{CertRecord, Change, Outcome, Store};

/// Paths inside a root folder (a CA folder's layout, with its own config).
#[derive(Debug, Clone)]
pub(crate) struct RootPaths {
    /// The layout it shares with a CA folder.
    pub ca: CaPaths,
}

impl RootPaths {
    /// The layout of `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            ca: CaPaths::new(dir),
        }
    }
    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.ca.dir
    }
    /// `config/root.json`.
    pub(crate) fn config(&self) -> PathBuf {
        self.ca.dir.join("config").join("root.json")
    }
}

/// `config/root.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RootConfig {
    /// Format version (1).
    pub version: u32,
    /// The root's common name.
    pub name: String,
    /// Hex SHA-256 of the root certificate's DER.
    pub fingerprint: String,
}

impl RootConfig {
    fn save(&self, paths: &RootPaths) -> Result<()> {
        crate::platform::sys::write_json(&paths.config(), self, 0o600)
    }
}

/// Refuse a folder that holds a root or an online CA already.
fn check_free(paths: &RootPaths) -> Result<()> {
    if paths.config().exists() {
        return Err(CliError::usage(format!(
            "a root already exists in {}; it was kept",
            paths.dir().display()
        )));
    }
    if paths.ca.exists() {
        return Err(CliError::usage(format!(
            "{} holds an online CA; an offline root gets a folder of its own",
            paths.dir().display()
        )));
    }
    Ok(())
}

/// A new root folder's layout, locked.
fn create_layout(paths: &RootPaths) -> Result<FolderLock> {
    create_dir(paths.dir(), true)?;
    crate::ca::guard::tighten(paths.dir())?;
    let lock = FolderLock::acquire(&paths.ca)?;
    for sub in ["config", "certs", "secrets", "db"] {
        create_dir(&paths.dir().join(sub), true)?;
    }
    Ok(lock)
}

/// `pki root init`: a root key (encrypted) and its certificate (10 years,
/// pathlen 1), and an empty ledger. The config is written last: a crash
/// leaves no root, and `init` can run again.
pub(crate) fn init(
    paths: &RootPaths,
    key_type: KeyType,
    name: &str,
    password: &str,
) -> Result<RootConfig> {
    check_free(paths)?;
    let _lock = create_layout(paths)?;
    let mut rng = OsEntropy;
    let key = PrivateKey::generate(key_type, &mut rng)?;
    let cert = issue::root_ca(&key, name, Serial::random(&mut rng)?, now())?;
    let pem = key.to_encrypted_pem(password.as_bytes(), PBKDF2_ITERATIONS, &mut rng)?;
    write_atomic(&paths.ca.root_key(), pem.as_bytes(), 0o600)?;
    write_atomic(
        &paths.ca.root_cert(),
        issue::cert_pem(&cert)?.as_bytes(),
        0o644,
    )?;
    // The empty ledger now, so that later commands that refuse change
    // nothing in the folder.
    Store::open(&paths.ca.store(), ())?.shutdown()?;
    let config = RootConfig {
        version: 1,
        name: name.to_owned(),
        fingerprint: issue::fingerprint(&cert)?,
    };
    config.save(paths)?;
    Ok(config)
}

/// A root folder opened to sign: locked, its key unlocked, its ledger open.
pub(crate) struct OpenRoot {
    /// Its layout.
    pub paths: RootPaths,
    /// Its config.
    pub config: RootConfig,
    /// The root certificate.
    pub cert: Certificate,
    /// Its PEM.
    pub cert_pem: String,
    /// The root's key.
    pub key: PrivateKey,
    /// The ledger of what it signed (holds the folder's lock).
    pub store: Store,
}

impl OpenRoot {
    /// Record an intermediate in the root's ledger and audit log, saying
    /// who asked. Recorded before is fine (an export run again).
    async fn record(&self, cert: &Certificate, issued_at: u64, by: String) -> Result<()> {
        let record = CertRecord::of(cert, issue::cert_der(cert)?, issued_at);
        let outcome = self
            .store
            .commit(Change::Record { cert: record, by })
            .await?;
        match outcome {
            Outcome::Done | Outcome::AlreadyRecorded => Ok(()),
            other => Err(CliError::Store(format!(
                "the root's ledger refused the intermediate: {other:?}"
            ))),
        }
    }
}

/// Open a root folder: its config, certificate and key must agree.
pub(crate) fn open(paths: &RootPaths, password: &str) -> Result<OpenRoot> {
    if !paths.config().exists() {
        return Err(CliError::usage(format!(
            "no offline root in {dir} (no config/root.json); create one with `fedpki pki root \
             init -p {dir}`, or move one out of a CA with `fedpki pki root export`",
            dir = paths.dir().display()
        )));
    }
    crate::ca::guard::check(paths.dir())?;
    let config: RootConfig = serde_json::from_str(&read_text(&paths.config())?).map_err(|e| {
        CliError::CorruptCa(format!(
            "{} is corrupt ({e}); restore the root folder from a backup",
            paths.config().display()
        ))
    })?;
    let cert_pem = read_text(&paths.ca.root_cert())?;
    let cert = issue::parse_cert_pem(&cert_pem)?;
    if issue::fingerprint(&cert)? != config.fingerprint {
        return Err(CliError::CorruptCa(format!(
            "{} is not the root config/root.json names; the root folder was altered",
            paths.ca.root_cert().display()
        )));
    }
    let lock = FolderLock::acquire(&paths.ca)?;
    let key = unlock_key(&paths.ca.root_key(), password)?;
    if &key.public_key() != cert.public_key() {
        return Err(CliError::CorruptCa(format!(
            "{} does not match {}; the root folder was altered",
            paths.ca.root_key().display(),
            paths.ca.root_cert().display()
        )));
    }
    let store = Store::open(&paths.ca.store(), lock)?;
    Ok(OpenRoot {
        paths: paths.clone(),
        config,
        cert,
        cert_pem,
        key,
        store,
    })
}
