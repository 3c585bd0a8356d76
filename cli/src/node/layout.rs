//! A framework's file names beside a node's own (`pki certify --layout`):
//! the certificate, key and root under the names Flower or NVFlare read,
//! as relative links to the node's files, so a renewal (which replaces
//! `<name>.crt`) reaches the framework with nothing copied; and, for a
//! Flower SuperNode, its key in OpenSSH's form, which is another file.
//!
//! | layout | what | files |
//! |---|---|---|
//! | flower | every node | `ca.crt` → `root_ca.crt` |
//! | flower | serverAuth (a SuperLink) | `server.pem` → `<name>.crt`, `server.key` → `<name>.key` |
//! | flower | clientAuth (a SuperNode) | `supernode.key` (OpenSSH, 0600), `supernode.pub` |
//! | nvflare | every node | `rootCA.pem` → `root_ca.crt` |
//! | nvflare | role `server` (or, without a role, serverAuth) | `server.crt`, `server.key` |
//! | nvflare | any other role | `client.crt`, `client.key` |

use std::path::{Path, PathBuf};

use fedpki_core::{KeyAlgorithm, KeyType};

use super::NodeFiles;
use crate::error::{CliError, Result};
use crate::platform::sys::write_atomic;

/// Whose file names a node's folder also has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// fedpki's own only (`<name>.key`, `<name>.crt`, `root_ca.crt`).
    Fedpki,
    /// Flower's SuperLink and SuperNode.
    Flower,
    /// An NVFlare startup kit's.
    Nvflare,
}

impl Layout {
    /// `--layout`'s values.
    pub(crate) fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fedpki" => Ok(Self::Fedpki),
            "flower" => Ok(Self::Flower),
            "nvflare" => Ok(Self::Nvflare),
            _ => Err(format!("{s:?}: fedpki, flower or nvflare")),
        }
    }

    /// Refuse, before anything is asked of the CA, what this layout cannot
    /// hold: a key Flower would not read, or one of its names taken by a
    /// file that is not fedpki's link.
    pub(crate) fn check(self, dir: &Path, key_type: KeyType) -> Result<()> {
        if self == Self::Flower && !matches!(key_type, KeyType::P256 | KeyType::P384) {
            return Err(CliError::usage(
                "--layout flower: a SuperNode's authentication key is ECDSA on a NIST curve \
                 (Flower refuses others): use --key-type p256 or p384",
            ));
        }
        for (name, _) in self.links("NAME") {
            let path = dir.join(name);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_symlink()) {
                return Err(CliError::usage(format!(
                    "{} exists and is not a link fedpki made: move it away, then certify again \
                     (the token was not used)",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Every link this layout may make: (its name, the node file it
    /// points to), for a node called `name`.
    fn links(self, name: &str) -> Vec<(&'static str, String)> {
        let (crt, key, root) = (
            format!("{name}.crt"),
            format!("{name}.key"),
            "root_ca.crt".to_owned(),
        );
        match self {
            Self::Fedpki => vec![],
            Self::Flower => vec![("ca.crt", root), ("server.pem", crt), ("server.key", key)],
            Self::Nvflare => vec![
                ("rootCA.pem", root),
                ("server.crt", crt.clone()),
                ("server.key", key.clone()),
                ("client.crt", crt),
                ("client.key", key),
            ],
        }
    }

    /// Write this layout's files for the node in `files`, whose
    /// certificate and key are installed. The paths written.
    pub(crate) fn write(self, files: &NodeFiles) -> Result<Vec<PathBuf>> {
        let node = files.load()?;
        let usages = node.leaf.extended_key_usage_names().unwrap_or_default();
        let serves = usages.iter().any(|u| u == "serverAuth");
        let is_client = usages.iter().any(|u| u == "clientAuth");
        let role = fedpki_core::chain::subject_role(&node.leaf);
        let wanted: Vec<&str> = match self {
            Self::Fedpki => vec![],
            Self::Flower if serves => vec!["ca.crt", "server.pem", "server.key"],
            Self::Flower => vec!["ca.crt"],
            Self::Nvflare => {
                let server = role.as_deref().map_or(serves, |r| r == "server");
                if server {
                    vec!["rootCA.pem", "server.crt", "server.key"]
                } else {
                    vec!["rootCA.pem", "client.crt", "client.key"]
                }
            }
        };
        let mut written = Vec::new();
        for (link, target) in self.links(&files.name) {
            if wanted.contains(&link) {
                written.push(relink(&files.dir, link, &target)?);
            }
        }
        if self == Self::Flower && is_client {
            written.extend(supernode_keys(files, &node.key)?);
        }
        Ok(written)
    }
}

/// `dir/link` → `target` (relative), replacing a link there in one rename.
fn relink(dir: &Path, link: &str, target: &str) -> Result<PathBuf> {
    let path = dir.join(link);
    if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_symlink()) {
        return Err(CliError::usage(format!(
            "{} exists and is not a link fedpki made: move it away, then run this again (the \
             node's own files are in place)",
            path.display()
        )));
    }
    let staged = dir.join(format!(".{link}.fedpki-link"));
    let _ = std::fs::remove_file(&staged);
    std::os::unix::fs::symlink(target, &staged)
        .map_err(|e| CliError::io("create the link", &staged, e))?;
    std::fs::rename(&staged, &path).map_err(|e| CliError::io("rename", &path, e))?;
    Ok(path)
}

/// A SuperNode's key pair in OpenSSH's forms, which Flower's
/// `--auth-supernode-private-key` and `flwr supernode register` read.
fn supernode_keys(files: &NodeFiles, key: &fedpki_core::PrivateKey) -> Result<Vec<PathBuf>> {
    let public = fedpki_core::SigningKey::public_key(key);
    if !matches!(public.algorithm(), KeyAlgorithm::P256 | KeyAlgorithm::P384) {
        return Err(CliError::usage(format!(
            "{}: a Flower SuperNode's key must be ECDSA P-256 or P-384",
            files.key().display()
        )));
    }
    let private = fedpki_core::key::openssh_private(key, &files.name)?;
    let (secret, shown) = (
        files.dir.join("supernode.key"),
        files.dir.join("supernode.pub"),
    );
    write_atomic(&secret, private.as_bytes(), 0o600)?;
    let line = fedpki_core::key::openssh_public(&public, &files.name)?;
    write_atomic(&shown, line.as_bytes(), 0o644)?;
    Ok(vec![secret, shown])
}
