//! The switches an answer from the root makes: completing a waiting
//! install, activating a new intermediate, taking the root's CRL. Each ends
//! with one atomic write of `config/ca.json` (or of the CRL file).

use std::path::Path;

use fedpki_core::crl::Crl;
use fedpki_core::{Certificate, issue};

use super::{ExpectedRoot, check_answer, remove_staged};
use crate::ca::issuers::key_id_hex;
use crate::ca::{CaCerts, CaConfig, CaPaths, FolderLock, RetiredIntermediate};
use crate::error::{CliError, Result};
use crate::platform::ring_backend::RING_PROVIDER;
use crate::platform::sys::{MAX_INPUT, create_dir, now, read_bounded, write_atomic};

/// `pki install --complete`: the root's answer makes a waiting CA whole,
/// if its root is the one `expected` pins.
pub(crate) fn complete(
    paths: &CaPaths,
    signed: &Path,
    password: &str,
    expected: ExpectedRoot<'_>,
) -> Result<CaConfig> {
    let mut config = CaConfig::load_any(paths)?;
    if !config.awaiting_root {
        return Err(CliError::usage(format!(
            "the CA in {} is complete already; a new intermediate comes with `fedpki pki \
             intermediate request` and `activate`",
            paths.dir.display()
        )));
    }
    let answer = check_answer(paths, signed, password, expected)?;
    let _lock = FolderLock::acquire(paths)?;
    write_atomic(&paths.root_cert(), answer.root_pem.as_bytes(), 0o644)?;
    write_atomic(
        &paths.intermediate_cert(),
        answer.intermediate_pem.as_bytes(),
        0o644,
    )?;
    write_atomic(&paths.intermediate_key(), answer.key_pem.as_bytes(), 0o600)?;
    config.root_fingerprint = issue::fingerprint(&answer.root)?;
    config.awaiting_root = false;
    config.save(paths)?;
    remove_staged(paths);
    Ok(config)
}

/// An intermediate activated: its key id, and the one it replaced.
#[derive(Debug)]
pub(crate) struct Activated {
    /// The new intermediate's key id.
    pub kid: String,
    /// The one that issued before.
    pub retired: RetiredIntermediate,
    /// The CA's config, as written.
    pub config: CaConfig,
}

/// `pki intermediate activate`: from now on the staged intermediate the
/// root signed issues; the one before is retired (its CRL still signed
/// until the last certificate it can have issued has expired).
pub(crate) fn activate(
    paths: &CaPaths,
    signed: &Path,
    password: &str,
    ledger: &crate::store::StoreLocation,
) -> Result<Activated> {
    let mut config = CaConfig::load(paths)?;
    let certs = CaCerts::load(paths, &config)?;
    let answer = check_answer(
        paths,
        signed,
        password,
        ExpectedRoot::Certificate(&certs.root),
    )?;
    let kid = key_id_hex(&answer.intermediate);
    let old = key_id_hex(&certs.intermediate);
    if kid == old || config.retired_intermediates.iter().any(|r| r.key_id == kid) {
        return Err(CliError::usage(format!(
            "the intermediate {kid} has issued here before; stage a new request"
        )));
    }
    for dir in [
        paths.rotated_cert(&kid).parent(),
        paths.rotated_key(&kid).parent(),
    ]
    .into_iter()
    .flatten()
    {
        create_dir(dir, true)?;
    }
    write_atomic(
        &paths.rotated_cert(&kid),
        answer.intermediate_pem.as_bytes(),
        0o644,
    )?;
    write_atomic(&paths.rotated_key(&kid), answer.key_pem.as_bytes(), 0o600)?;
    let t = now().0;
    let retired = RetiredIntermediate {
        key_id: old.clone(),
        retired_at: t,
        crl_until: last_expiry(ledger, &config, &certs.intermediate, &old, t)?,
    };
    config.retired_intermediates.push(retired.clone());
    config.active_intermediate = Some(kid.clone());
    config.save(paths)?;
    remove_staged(paths);
    Ok(Activated {
        kid,
        retired,
        config,
    })
}

/// When the last certificate the intermediate `kid` can have signed
/// expires: the latest in the ledger, or one issued until the server takes
/// up the new intermediate (now + the longest lifetime it issues), never
/// past the intermediate's own end.
fn last_expiry(
    ledger: &crate::store::StoreLocation,
    config: &CaConfig,
    intermediate: &Certificate,
    kid: &str,
    now: u64,
) -> Result<u64> {
    let ledger = crate::store::Ledger::read_at(ledger)?;
    let in_ledger = ledger
        .certificates
        .iter()
        .filter(|c| c.issuer == kid)
        .map(|c| c.not_after)
        .max()
        .unwrap_or(0);
    let still_issuing = now
        + config
            .leaf_lifetime_secs
            .max(crate::ca::TLS_CERT_LIFETIME_SECS);
    Ok(in_ledger.max(still_issuing).min(intermediate.not_after().0))
}

/// `pki install --root-crl`: keep the root's CRL, to serve it and to act
/// on it (the certificates of an intermediate it revokes are no longer
/// renewed). It must be signed by this CA's root, not older than the one
/// it replaces, and must not revoke the intermediate that issues.
pub(crate) fn install_root_crl(paths: &CaPaths, file: &Path) -> Result<Crl> {
    let config = CaConfig::load(paths)?;
    let certs = CaCerts::load(paths, &config)?;
    let der = read_bounded(file, MAX_INPUT)?;
    let refuse =
        |why: String| CliError::usage(format!("{}: {why}; nothing was changed", file.display()));
    let crl = Crl::parse(&der)
        .map_err(|e| refuse(format!("it is not a CRL (DER, or PEM `X509 CRL`): {e}")))?;
    crl.verify(&certs.root, RING_PROVIDER.verifier)
        .map_err(|e| refuse(format!("it is not signed by this CA's root: {e}")))?;
    if crl.next_update().is_some_and(|t| t < now()) {
        return Err(refuse(
            "it has expired (its nextUpdate is past); sign a fresh one with `fedpki pki root \
             crl` on the root's host"
                .into(),
        ));
    }
    if let Some(r) = crl.find(&issue::serial_hex(&certs.intermediate)) {
        return Err(refuse(format!(
            "it revokes the intermediate this CA issues from ({}, {}); activate a new one first \
             (`fedpki pki intermediate request`, `pki root sign`, `pki intermediate activate`), \
             then install this CRL",
            key_id_hex(&certs.intermediate),
            r.reason.name()
        )));
    }
    let old = crate::ca::crl_number_in(&paths.root_crl());
    if let (Some(old), Some(new)) = (old, crl.number())
        && new < old
    {
        return Err(refuse(format!(
            "its number {new} is older than the root CRL installed ({old})"
        )));
    }
    // Stored as DER, as it is served.
    write_atomic(&paths.root_crl(), &crl.to_der()?, 0o644)?;
    Ok(crl)
}
