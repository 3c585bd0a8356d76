//! The intermediates of a CA folder: the one that issues, the retired ones
//! (their certificates still renew and revoke, their CRLs are still
//! signed), and where each one's files are.
//!
//! The first intermediate lives where step-ca keeps it
//! (`certs/intermediate_ca.crt`); those activated later under their key
//! id. Which one issues is said by `config/ca.json` alone, so switching is
//! one atomic write.

use std::path::PathBuf;

use fedpki_core::crl::{Crl, Revoked};
use fedpki_core::{Certificate, PrivateKey, SigningKey, issue};

use super::{CaCerts, CaConfig, CaPaths, unlock_key};
use crate::error::{CliError, Result};
use crate::platform::sys::{MAX_INPUT, read_bounded, read_text};

/// Where one intermediate's certificate and key are.
#[derive(Debug, Clone)]
pub(crate) struct IntermediateFiles {
    /// Its certificate (PEM).
    pub cert: PathBuf,
    /// Its key (encrypted PKCS#8).
    pub key: PathBuf,
}

/// The files of the intermediate that issues.
pub(crate) fn active_files(paths: &CaPaths, config: &CaConfig) -> IntermediateFiles {
    match &config.active_intermediate {
        None => IntermediateFiles {
            cert: paths.intermediate_cert(),
            key: paths.intermediate_key(),
        },
        Some(kid) => rotated_files(paths, kid),
    }
}

/// The files of an intermediate activated by rotation.
pub(crate) fn rotated_files(paths: &CaPaths, kid: &str) -> IntermediateFiles {
    IntermediateFiles {
        cert: paths.rotated_cert(kid),
        key: paths.rotated_key(kid),
    }
}

/// The files of the intermediate whose key id is `kid`: the first one's
/// (known by its certificate) or a rotated one's.
fn files_of(paths: &CaPaths, kid: &str) -> IntermediateFiles {
    let first = read_text(&paths.intermediate_cert())
        .ok()
        .and_then(|pem| issue::parse_cert_pem(&pem).ok());
    match first {
        Some(cert) if key_id_hex(&cert) == kid => IntermediateFiles {
            cert: paths.intermediate_cert(),
            key: paths.intermediate_key(),
        },
        _ => rotated_files(paths, kid),
    }
}

/// Every intermediate the folder holds: the first one, then those
/// activated since that the config names (active or retired).
pub(crate) fn every_intermediate(paths: &CaPaths, config: &CaConfig) -> Result<Vec<Certificate>> {
    let mut all = vec![issue::parse_cert_pem(&read_text(
        &paths.intermediate_cert(),
    )?)?];
    let named = config
        .active_intermediate
        .iter()
        .chain(config.retired_intermediates.iter().map(|r| &r.key_id));
    for kid in named {
        let files = files_of(paths, kid);
        if files.cert != paths.intermediate_cert() {
            all.push(issue::parse_cert_pem(&read_text(&files.cert)?)?);
        }
    }
    Ok(all)
}

/// How fedpki names an intermediate: the hex of its key identifier (its
/// SKI, the AKI of what it signs), as in `GET /crl/KID` and `pki list`.
pub(crate) fn key_id_hex(cert: &Certificate) -> String {
    fedpki_core::encoding::hex(&cert.key_id())
}

/// An intermediate that no longer issues, unlocked to sign its CRLs.
pub(crate) struct RetiredIssuer {
    /// Its certificate.
    pub cert: Certificate,
    /// Its PEM, as sent in chains.
    pub pem: String,
    /// Its key.
    pub key: PrivateKey,
    /// Its CRL is signed until then (Unix seconds).
    pub crl_until: u64,
}

/// Everything an authority signs with: the root and the active
/// intermediate, its key, and the retired intermediates still in use.
pub(crate) struct IssuerKeys {
    /// The root and the active intermediate.
    pub certs: CaCerts,
    /// The active intermediate's key.
    pub key: PrivateKey,
    /// Retired intermediates whose last certificates have not all expired.
    pub retired: Vec<RetiredIssuer>,
    /// The offline root's CRL, as `pki install --root-crl` kept it.
    pub root_crl: Option<RootCrl>,
}

/// The offline root's CRL: which intermediates the root revoked.
#[derive(Debug, Clone)]
pub(crate) struct RootCrl {
    /// As kept and served (DER).
    pub der: Vec<u8>,
    /// Its entries.
    pub crl: Crl,
}

impl RootCrl {
    /// Read the root CRL kept in `paths`, if there is one: it must be
    /// signed by `root` (`--root-crl` checked it; the folder may since have
    /// been altered). Past its nextUpdate it still says what was revoked.
    pub(crate) fn load(paths: &CaPaths, root: &Certificate) -> Result<Option<Self>> {
        let path = paths.root_crl();
        if !path.exists() {
            return Ok(None);
        }
        let der = read_bounded(&path, MAX_INPUT)?;
        let crl = Crl::parse(&der)
            .and_then(|crl| {
                crl.verify(root, crate::platform::ring_backend::RING_PROVIDER.verifier)
                    .map(|()| crl)
            })
            .map_err(|e| {
                CliError::CorruptCa(format!(
                    "{} is not a CRL of this CA's root ({e}); install the root's CRL again with \
                     `fedpki pki install --root-crl FILE`",
                    path.display()
                ))
            })?;
        Ok(Some(Self { der, crl }))
    }

    /// The root's revocation of `intermediate`, if it revoked it.
    pub(crate) fn revocation_of(&self, intermediate: &Certificate) -> Option<Revoked> {
        self.crl.find(&issue::serial_hex(intermediate))
    }
}

impl IssuerKeys {
    /// A CA with one intermediate.
    pub(crate) fn single(certs: CaCerts, key: PrivateKey) -> Self {
        Self {
            certs,
            key,
            retired: Vec::new(),
            root_crl: None,
        }
    }

    /// Unlock a folder's intermediates (`certs` as [`CaCerts::load`] read
    /// them); each key must be its certificate's, each retired certificate
    /// must be the one its key id names. Retired intermediates whose CRL is
    /// no longer due are left. The root's CRL comes along; an active
    /// intermediate it revokes is refused.
    pub(crate) fn unlock(
        paths: &CaPaths,
        config: &CaConfig,
        certs: CaCerts,
        password: &str,
        now: u64,
    ) -> Result<Self> {
        let active = active_files(paths, config);
        if let Some(kid) = &config.active_intermediate {
            check_named(&certs.intermediate, kid, &active)?;
        }
        let root_crl = RootCrl::load(paths, &certs.root)?;
        if let Some(r) = root_crl
            .as_ref()
            .and_then(|c| c.revocation_of(&certs.intermediate))
        {
            return Err(CliError::usage(format!(
                "the root revoked the active intermediate {} ({}, {}): it must not issue. \
                 Activate a new one (`fedpki pki intermediate request`, `pki root sign`, \
                 `pki intermediate activate`) and start again",
                key_id_hex(&certs.intermediate),
                r.reason.name(),
                r.at
            )));
        }
        let key = unlock_key(&active.key, password)?;
        check_pair(&key, &certs.intermediate, &active)?;
        let mut retired = Vec::new();
        for r in config
            .retired_intermediates
            .iter()
            .filter(|r| r.crl_until > now)
        {
            let files = files_of(paths, &r.key_id);
            let pem = read_text(&files.cert)?;
            let cert = issue::parse_cert_pem(&pem)?;
            check_named(&cert, &r.key_id, &files)?;
            let key = unlock_key(&files.key, password)?;
            check_pair(&key, &cert, &files)?;
            retired.push(RetiredIssuer {
                cert,
                pem,
                key,
                crl_until: r.crl_until,
            });
        }
        Ok(Self {
            certs,
            key,
            retired,
            root_crl,
        })
    }
}

fn check_named(cert: &Certificate, kid: &str, files: &IntermediateFiles) -> Result<()> {
    if key_id_hex(cert) != kid {
        return Err(CliError::CorruptCa(format!(
            "{} is not the intermediate {kid} that config/ca.json names; the CA folder was \
             altered (restore it from a backup)",
            files.cert.display()
        )));
    }
    Ok(())
}

fn check_pair(key: &PrivateKey, cert: &Certificate, files: &IntermediateFiles) -> Result<()> {
    if &key.public_key() != cert.public_key() {
        return Err(CliError::CorruptCa(format!(
            "{} does not match {}; the CA folder was altered (restore it from a backup)",
            files.key.display(),
            files.cert.display()
        )));
    }
    Ok(())
}
