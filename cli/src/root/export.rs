//! `pki root export`: move the root of an all-in-one CA into a root folder
//! of its own (for removable media), then take its key out of the CA.

use std::fs;

use fedpki_core::SigningKey;

use super::{OpenRoot, RootConfig, RootPaths, check_free, create_layout};
use crate::ca::{CaCerts, CaConfig, CaPaths, unlock_key};
use crate::error::{CliError, Result};
use crate::platform::sys::{read_text, write_atomic};

/// Create `root` from the CA in `ca`: the root's key (as it is stored,
/// encrypted), its certificate, and a ledger holding the CA's
/// intermediates, so the root can revoke them later. The CA is not changed;
/// the opened root is returned as the proof the copy reads back.
pub(crate) async fn export(ca: &CaPaths, root: &RootPaths, password: &str) -> Result<OpenRoot> {
    let config = CaConfig::load(ca)?;
    let certs = CaCerts::load(ca, &config)?;
    if !ca.root_key().exists() {
        return Err(CliError::usage(format!(
            "{} holds no root key (its root is offline already); nothing was exported",
            ca.dir.display()
        )));
    }
    let key = unlock_key(&ca.root_key(), password)?;
    if &key.public_key() != certs.root.public_key() {
        return Err(CliError::CorruptCa(format!(
            "{} does not match {}; the CA folder was altered",
            ca.root_key().display(),
            ca.root_cert().display()
        )));
    }
    check_free(root)?;
    drop(create_layout(root)?);
    let key_pem = read_text(&ca.root_key())?;
    write_atomic(&root.ca.root_key(), key_pem.as_bytes(), 0o600)?;
    write_atomic(&root.ca.root_cert(), certs.root_pem.as_bytes(), 0o644)?;
    RootConfig {
        version: 1,
        name: fedpki_core::chain::common_name(&certs.root).unwrap_or_default(),
        fingerprint: config.root_fingerprint.clone(),
    }
    .save(root)?;
    let opened = super::open(root, password)?;
    for intermediate in crate::ca::issuers::every_intermediate(ca, &config)? {
        let by = format!(
            "root export: signed before the root left {}",
            ca.dir.display()
        );
        opened
            .record(&intermediate, intermediate.not_before().0, by)
            .await?;
    }
    Ok(opened)
}

/// Remove the root's key from a CA folder (after `export` read it back).
pub(crate) fn remove_root_key(ca: &CaPaths) -> Result<()> {
    let path = ca.root_key();
    fs::remove_file(&path).map_err(|e| CliError::io("remove", &path, e))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
