//! What a CA's replicas share besides the ledger: the intermediates they
//! issue with (which one is active, which are retired, their certificates
//! and encrypted keys) and the root's CRL. The replica where `pki
//! intermediate activate` or `pki install --root-crl` ran publishes them
//! to the database and tells the others, which take them into their own
//! folders and start issuing from them, with no file copied by hand.
//!
//! The database is not trusted with the CA's identity. A replica takes an
//! intermediate only if it chains to its own root (the one its own config
//! pins), has fedpki's intermediate profile, and its key decrypts with the
//! CA password to the certificate's key; a root CRL only if that root
//! signed it and it is not older than the one held. Whoever can write the
//! database can at most choose among intermediates this CA's root signed.

use std::collections::BTreeMap;

use fedpki_core::{Certificate, SigningKey, chain, issue};
use serde::{Deserialize, Serialize};

use super::issuers::{key_id_hex, rotated_files};
use super::{CaCerts, CaConfig, CaPaths, RetiredIntermediate};
use crate::error::{CliError, Result};
use crate::platform::ring_backend::RING_PROVIDER;
use crate::platform::sys::{MAX_CRL, create_dir, read_bounded, read_text, write_atomic};
use crate::store::postgres::{self, PgLocation};

/// What the replicas issue with, as published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IssuerState {
    /// The active intermediate's key id (none: the first one).
    active: Option<String>,
    /// The retired ones.
    retired: Vec<RetiredIntermediate>,
    /// Every intermediate activated since the first: key id → its files.
    intermediates: BTreeMap<String, Files>,
    /// The root's CRL, base64 DER, if one was installed.
    root_crl: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Files {
    /// The certificate, PEM.
    crt: String,
    /// The key, encrypted PEM as stored.
    key: String,
}

/// Publish this folder's intermediates and root CRL to the shared ledger
/// and tell the replicas.
pub(crate) fn publish(paths: &CaPaths, config: &CaConfig, db: &PgLocation) -> Result<()> {
    let first = key_id_hex(&issue::parse_cert_pem(&read_text(
        &paths.intermediate_cert(),
    )?)?);
    let mut state = IssuerState {
        active: config.active_intermediate.clone(),
        retired: config.retired_intermediates.clone(),
        ..IssuerState::default()
    };
    let named = config
        .active_intermediate
        .iter()
        .chain(config.retired_intermediates.iter().map(|r| &r.key_id));
    for kid in named.filter(|k| **k != first) {
        let files = rotated_files(paths, kid);
        state.intermediates.insert(
            kid.clone(),
            Files {
                crt: read_text(&files.cert)?,
                key: read_text(&files.key)?,
            },
        );
    }
    if paths.root_crl().exists() {
        state.root_crl = Some(fedpki_core::encoding::b64(&read_bounded(
            &paths.root_crl(),
            MAX_CRL,
        )?));
    }
    let text = serde_json::to_string(&state).map_err(|e| CliError::Store(e.to_string()))?;
    off_runtime(|| postgres::publish_issuers(db, &config.root_fingerprint, &text))?;
    Ok(())
}

/// Take what the replicas issue with from the shared ledger into this
/// folder (checked as above), unlocking keys with `password`. Whether
/// anything changed.
pub(crate) fn sync(paths: &CaPaths, password: &str, db: &PgLocation) -> Result<bool> {
    let mut config = CaConfig::load(paths)?;
    let fingerprint = config.root_fingerprint.clone();
    let Some(text) = off_runtime(|| postgres::fetch_issuers(db, &fingerprint))? else {
        return Ok(false);
    };
    let state: IssuerState = serde_json::from_str(&text).map_err(|e| {
        CliError::CorruptCa(format!(
            "the issuers the database holds are unreadable: {e}"
        ))
    })?;
    let root = CaCerts::load(paths, &config)?.root;
    let refuse = |why: String| {
        CliError::CorruptCa(format!(
            "the database offers issuers this CA does not take: {why}; nothing was changed"
        ))
    };
    let mut writes: Vec<(std::path::PathBuf, String, u32)> = Vec::new();
    for (kid, files) in &state.intermediates {
        let cert = issue::parse_cert_pem(&files.crt).map_err(|e| refuse(format!("{kid}: {e}")))?;
        check_ours(&cert, &root, kid).map_err(refuse)?;
        let key = fedpki_core::PrivateKey::from_pem(&files.key, Some(password.as_bytes()))
            .map_err(|e| refuse(format!("{kid}'s key: {e}")))?;
        if &key.public_key() != cert.public_key() {
            return Err(refuse(format!("{kid}'s key is not its certificate's")));
        }
        let at = rotated_files(paths, kid);
        if read_text(&at.cert).ok().as_deref() != Some(files.crt.as_str()) {
            writes.push((at.cert, files.crt.clone(), 0o644));
        }
        if read_text(&at.key).ok().as_deref() != Some(files.key.as_str()) {
            writes.push((at.key, files.key.clone(), 0o600));
        }
    }
    let known = |kid: &String| {
        state.intermediates.contains_key(kid) || rotated_files(paths, kid).cert.exists() || {
            read_text(&paths.intermediate_cert())
                .ok()
                .and_then(|p| issue::parse_cert_pem(&p).ok())
                .is_some_and(|c| key_id_hex(&c) == *kid)
        }
    };
    for kid in state
        .active
        .iter()
        .chain(state.retired.iter().map(|r| &r.key_id))
    {
        if !known(kid) {
            return Err(refuse(format!(
                "the intermediate {kid} is named but not given"
            )));
        }
    }
    let crl = match &state.root_crl {
        Some(b64) => {
            let der = fedpki_core::encoding::unb64(b64).map_err(|e| refuse(e.to_string()))?;
            let crl = fedpki_core::crl::Crl::parse(&der).map_err(|e| refuse(e.to_string()))?;
            crl.verify(&root, RING_PROVIDER.verifier)
                .map_err(|e| refuse(format!("the root's CRL: {e}")))?;
            let held = super::crl_number_in(&paths.root_crl());
            let newer = match (held, crl.number()) {
                (Some(h), Some(n)) => n > h,
                (None, _) => true,
                (Some(_), None) => false,
            };
            newer.then_some(der)
        }
        None => None,
    };
    let moved =
        config.active_intermediate != state.active || config.retired_intermediates != state.retired;
    if writes.is_empty() && crl.is_none() && !moved {
        return Ok(false);
    }
    for (path, text, mode) in &writes {
        if let Some(dir) = path.parent() {
            create_dir(dir, true)?;
        }
        write_atomic(path, text.as_bytes(), *mode)?;
    }
    if let Some(der) = crl {
        write_atomic(&paths.root_crl(), &der, 0o644)?;
    }
    if moved {
        // Last: the switch, as `activate` makes it.
        config.active_intermediate = state.active;
        config.retired_intermediates = state.retired;
        config.save(paths)?;
    }
    crate::platform::log::info("issuers_taken_from_replicas", &[]);
    Ok(true)
}

/// An intermediate this CA's root signed, with fedpki's profile, named by
/// its own key id.
fn check_ours(
    cert: &Certificate,
    root: &Certificate,
    kid: &str,
) -> std::result::Result<(), String> {
    chain::check_signed_by(cert, root, RING_PROVIDER.verifier)
        .map_err(|_| format!("{kid} is not signed by this CA's root"))?;
    chain::check_intermediate_profile(cert).map_err(|e| format!("{kid}: {e}"))?;
    if key_id_hex(cert) != kid {
        return Err(format!("{kid} is another intermediate's certificate"));
    }
    Ok(())
}

/// Run `f` (which blocks on a runtime of its own) on a thread of its own,
/// so it works from async code's blocking pool too.
fn off_runtime<T: Send>(
    f: impl FnOnce() -> std::result::Result<T, crate::store::StoreError> + Send,
) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .map_err(|_| CliError::Store("the database client stopped".into()))?
            .map_err(CliError::from)
    })
}
