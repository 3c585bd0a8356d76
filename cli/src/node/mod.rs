//! A node's certificate folder (`<name>.key`, `<name>.crt` holding the
//! leaf then the intermediate, `root_ca.crt`, `ca.json`) and the one rule
//! for taking a certificate into it: [`Answer::check`], then
//! [`NodeFiles::install`]. `pki certify`, `pki renew`, `pki import` and
//! the manual flow's import all go through that check.

mod answer;
mod config;
mod layout;

use std::path::{Path, PathBuf};

use fedpki_core::Certificate;
use fedpki_core::PrivateKey;
use fedpki_core::issue;

pub(crate) use self::answer::{Answer, Expected};
pub(crate) use self::config::NodeConfig;
pub(crate) use self::layout::Layout;
use crate::error::{CliError, Result};
use crate::platform::sys::{create_dir, read_text, write_atomic};

/// Where one node's files are in a certs folder.
#[derive(Debug, Clone)]
pub(crate) struct NodeFiles {
    /// The folder.
    pub dir: PathBuf,
    /// The node's name, as in its file names.
    pub name: String,
}

/// A node's files, read.
pub(crate) struct Node {
    /// The private key.
    pub key: PrivateKey,
    /// Its certificate.
    pub leaf: Certificate,
    /// The CA that signed it, when `<name>.crt` holds it.
    pub intermediate: Option<Certificate>,
    /// The root the node trusts.
    pub root: Certificate,
}

impl NodeFiles {
    /// `name`'s files in `dir`.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `<dir>/<name>.key`.
    pub(crate) fn key(&self) -> PathBuf {
        self.dir.join(format!("{}.key", self.name))
    }

    /// `<dir>/<name>.crt`.
    pub(crate) fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    /// `<dir>/root_ca.crt`.
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.join("root_ca.crt")
    }

    /// The private key, with the file named in the error.
    pub(crate) fn read_key(&self) -> Result<PrivateKey> {
        read_key_file(&self.key())
    }

    /// The root this folder trusts, if it has one yet.
    pub(crate) fn read_root(&self) -> Result<Option<Certificate>> {
        let path = self.root();
        if !path.exists() {
            return Ok(None);
        }
        issue::parse_cert_pem(&read_text(&path)?)
            .map(Some)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
    }

    /// Every file, read and parsed.
    pub(crate) fn load(&self) -> Result<Node> {
        let key = self.read_key()?;
        let cert_path = self.cert();
        let mut chain = issue::parse_certs_pem(&read_text(&cert_path)?)
            .map_err(|e| CliError::usage(format!("{}: {e}", cert_path.display())))?;
        if chain.is_empty() {
            return Err(CliError::usage(format!(
                "{} holds no certificate",
                cert_path.display()
            )));
        }
        let leaf = chain.remove(0);
        let root = self.read_root()?.ok_or_else(|| {
            CliError::usage(format!(
                "{} is missing: this folder trusts no root",
                self.root().display()
            ))
        })?;
        Ok(Node {
            key,
            leaf,
            intermediate: chain.into_iter().next(),
            root,
        })
    }

    /// Write a checked answer: the key first when it is new (0600), then
    /// `<name>.crt`, then `root_ca.crt` (unless it already holds that root),
    /// each replaced atomically, so an
    /// interrupted install never leaves a certificate without its key.
    pub(crate) fn install(&self, new_key: Option<&PrivateKey>, answer: &Answer) -> Result<()> {
        create_dir(&self.dir, false)?;
        if let Some(key) = new_key {
            write_atomic(&self.key(), key.to_pkcs8_pem()?.as_bytes(), 0o600)?;
        }
        let chain = issue::cert_pem(&answer.leaf)? + &issue::cert_pem(&answer.issuer)?;
        write_atomic(&self.cert(), chain.as_bytes(), 0o644)?;
        // A renewal's root is the one already here: leave the file alone.
        if self.read_root().ok().flatten().as_ref() == Some(&answer.root) {
            return Ok(());
        }
        write_atomic(
            &self.root(),
            issue::cert_pem(&answer.root)?.as_bytes(),
            0o644,
        )
    }
}

/// A node's own private key, in whatever form it already has (PKCS#8 as
/// fedpki writes it, SEC1 as step writes it, PKCS#1 as older OpenSSL does),
/// asking for the passphrase when it is encrypted. Errors name the file.
pub(crate) fn read_key_file(path: &Path) -> Result<PrivateKey> {
    let text = zeroize::Zeroizing::new(read_text(path)?);
    let passphrase = if PrivateKey::pem_is_encrypted(&text) {
        Some(crate::platform::password::key_passphrase(path)?)
    } else {
        None
    };
    PrivateKey::from_pem(&text, passphrase.as_ref().map(|p| p.as_bytes())).map_err(|e| match e {
        fedpki_core::Error::Decrypt => CliError::usage(format!(
            "{}: the passphrase does not decrypt this key",
            path.display()
        )),
        e => CliError::usage(format!("{}: {e}", path.display())),
    })
}
