//! `pki flower keys`: Flower's SuperNode registrations follow the CA's
//! ledger. Each SuperNode certificate in force gives `DIR/NAME.pub`, its
//! key in the OpenSSH form `flwr supernode register` reads; a certificate
//! revoked or expired takes its file away. Each change is printed, one per
//! line (`added NAME PATH`, `removed NAME PATH`), for a script to register
//! or unregister at the SuperLink.

use std::collections::BTreeMap;

use fedpki_core::{KeyAlgorithm, issue};

use crate::ca::CaConfig;
use crate::cmd::args::FlowerKeysArgs;
use crate::error::{CliError, Result};
use crate::platform::sys::{create_dir, now, read_text, write_atomic};

/// `pki flower keys -p CA -o DIR`
pub(crate) fn keys(a: &FlowerKeysArgs) -> Result<()> {
    let config = CaConfig::load(&a.ca.paths())?;
    let ledger = crate::cmd::lifecycle::read_ledger(&a.ca)?;
    let folder = crate::cmd::list::Folder::Ca(Box::new(config));
    let der: BTreeMap<&str, &[u8]> = ledger
        .certificates
        .iter()
        .map(|c| (c.serial.as_str(), c.der.as_slice()))
        .collect();
    // NAME → its key line, from the newest certificate in force.
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for row in crate::cmd::list::rows(&ledger, &folder, now().0) {
        if row.kind != "node" || row.status != "valid" {
            continue;
        }
        let Some(cert) = der
            .get(row.serial.as_str())
            .and_then(|d| issue::parse_cert_der(d).ok())
        else {
            continue;
        };
        let client = cert
            .extended_key_usage_names()
            .is_some_and(|u| u.iter().any(|u| u == "clientAuth"));
        let nist = matches!(
            cert.public_key().algorithm(),
            KeyAlgorithm::P256 | KeyAlgorithm::P384
        );
        if client && nist {
            let line = fedpki_core::key::openssh_public(cert.public_key(), &row.subject)?;
            wanted.insert(row.subject.clone(), line);
        }
    }
    create_dir(&a.out, true)?;
    let mut changes = Vec::new();
    for (name, line) in &wanted {
        let path = a.out.join(format!("{name}.pub"));
        if read_text(&path).ok().as_deref() != Some(line.as_str()) {
            write_atomic(&path, line.as_bytes(), 0o644)?;
            changes.push(format!("added {name} {}", path.display()));
        }
    }
    let entries = std::fs::read_dir(&a.out).map_err(|e| CliError::io("read", &a.out, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io("read", &a.out, e))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".pub") else {
            continue;
        };
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && !wanted.contains_key(name) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| CliError::io("remove", &path, e))?;
            changes.push(format!("removed {name} {}", path.display()));
        }
    }
    for change in &changes {
        println!("{change}");
    }
    eprintln!(
        "{} SuperNode keys in force in {} ({} changed). Register each added one with `flwr \
         supernode register PATH`, and unregister each removed one (`flwr supernode ls` gives \
         its node id) with `flwr supernode unregister NODE_ID`.",
        wanted.len(),
        a.out.display(),
        changes.len()
    );
    Ok(())
}
