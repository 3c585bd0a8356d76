//! The online CA's side of an offline root: staging an intermediate key and
//! its request, checking the root's answer, completing an install that
//! waited for it, activating a new intermediate, taking the root's CRL.
//!
//! A staged intermediate is `secrets/next_intermediate_key` (encrypted like
//! every CA key) and `config/next_intermediate.json` (the request itself).
//! An answer is taken only for that request: same hash, same key, a chain
//! to the expected root. Every change ends with `config/ca.json`, written
//! atomically, so a crash leaves the CA as it was or as it is meant to be.

mod switch;

pub(crate) use self::switch::{activate, complete, install_root_crl};

use std::path::Path;

use fedpki_core::csr::{self, Csr};
use fedpki_core::package::{IntermediateRequest, SignedIntermediate};
use fedpki_core::{Certificate, KeyType, PrivateKey, SigningKey, chain, issue};

use super::issuers;
use super::{CaConfig, CaPaths, unlock_key};
use crate::error::{CliError, Result};
use crate::platform::ring_backend::RING_PROVIDER;
use crate::platform::sys::{OsEntropy, now, read_text, write_atomic};

/// The default common name of a CA's first intermediate.
pub(crate) const FIRST_INTERMEDIATE_NAME: &str = "fedpki Intermediate CA";

/// Make an intermediate key and its request, and stage both in `paths`
/// (the key encrypted with `password`).
pub(crate) fn stage_request(
    paths: &CaPaths,
    ca_url: &str,
    name: &str,
    password: &str,
) -> Result<IntermediateRequest> {
    let key = PrivateKey::generate(KeyType::P256, &mut OsEntropy)?;
    let request = IntermediateRequest::new(ca_url, &csr::build_for_ca(&key, name)?)?;
    let pem = key.to_encrypted_pem(
        password.as_bytes(),
        fedpki_core::key::PBKDF2_ITERATIONS,
        &mut OsEntropy,
    )?;
    write_atomic(&paths.next_key(), pem.as_bytes(), 0o600)?;
    write_atomic(&paths.next_request(), request.to_json()?.as_bytes(), 0o644)?;
    Ok(request)
}

/// `pki intermediate request`: stage a new intermediate beside the active one.
pub(crate) fn request_next(
    paths: &CaPaths,
    name: Option<&str>,
    password: &str,
    force: bool,
) -> Result<IntermediateRequest> {
    let config = CaConfig::load(paths)?;
    if paths.next_request().exists() && !force {
        return Err(CliError::usage(format!(
            "an intermediate request is already staged in {} (its hash: {}); carry it to the \
             root, or replace it with --force",
            paths.dir.display(),
            staged(paths)?.0.csr_sha256
        )));
    }
    // The password must be the CA's: the staged key is encrypted with it.
    unlock_key(&issuers::active_files(paths, &config).key, password)?;
    let default = format!(
        "{FIRST_INTERMEDIATE_NAME} {}",
        &crate::platform::sys::time_text(now().0)[..10]
    );
    stage_request(paths, &config.ca_url, name.unwrap_or(&default), password)
}

/// The staged request and its CSR.
fn staged(paths: &CaPaths) -> Result<(IntermediateRequest, Csr)> {
    let path = paths.next_request();
    if !path.exists() {
        return Err(CliError::usage(format!(
            "no intermediate request is staged in {} (make one with `fedpki pki intermediate \
             request -p {} -o NEXT.req`); nothing was changed",
            paths.dir.display(),
            paths.dir.display()
        )));
    }
    IntermediateRequest::parse(&read_text(&path)?).map_err(|e| {
        CliError::CorruptCa(format!(
            "{} is unreadable ({e}); stage a new request with --force",
            path.display()
        ))
    })
}

/// What the answer's root must be.
pub(crate) enum ExpectedRoot<'a> {
    /// This CA's own root (rotation).
    Certificate(&'a Certificate),
    /// The fingerprint its operator gave (completing an install).
    Fingerprint(&'a str),
    /// One its operator confirms when shown its fingerprint (completing an
    /// install without `--root-fingerprint`, on a terminal).
    Confirmed(&'a dyn Fn(&str) -> bool),
}

/// A signed intermediate checked against the staged request.
pub(crate) struct Answer {
    /// The intermediate.
    pub intermediate: Certificate,
    /// Its PEM.
    pub intermediate_pem: String,
    /// The root that signed it.
    pub root: Certificate,
    /// Its PEM.
    pub root_pem: String,
    /// The staged key, as stored (encrypted).
    pub key_pem: String,
}

/// Check a signed file answers the staged request: the same hash, the
/// staged key, a CA certificate signed by `expected` root, valid now.
pub(crate) fn check_answer(
    paths: &CaPaths,
    signed: &Path,
    password: &str,
    expected: ExpectedRoot<'_>,
) -> Result<Answer> {
    let (request, csr) = staged(paths)?;
    let refuse =
        |why: String| CliError::usage(format!("{}: {why}; nothing was changed", signed.display()));
    let file = SignedIntermediate::parse(&read_text(signed)?).map_err(|e| refuse(e.to_string()))?;
    if file.request_sha256 != request.csr_sha256 {
        return Err(refuse(format!(
            "it answers the request {}, not the one staged here ({})",
            file.request_sha256, request.csr_sha256
        )));
    }
    let parse = |pem: &str, what: &str| {
        issue::parse_cert_pem(pem).map_err(|e| refuse(format!("its {what} is unreadable: {e}")))
    };
    let intermediate = parse(&file.crt, "intermediate")?;
    let root = parse(&file.root, "root")?;
    check_chain(&intermediate, &root).map_err(refuse)?;
    if intermediate.public_key() != csr.public_key() {
        return Err(refuse(
            "it certifies another key than the one staged here".into(),
        ));
    }
    let fingerprint = issue::fingerprint(&root)?;
    match expected {
        ExpectedRoot::Certificate(ours) if ours != &root => {
            return Err(refuse(format!(
                "it was signed by another root (SHA-256 {fingerprint}) than this CA's ({}); \
                 every node trusts this CA's root only",
                issue::fingerprint(ours)?
            )));
        }
        ExpectedRoot::Fingerprint(fp) if fp != fingerprint => {
            return Err(refuse(format!(
                "it chains to the root with SHA-256 {fingerprint}, not the {fp} you gave"
            )));
        }
        ExpectedRoot::Confirmed(confirm) if !confirm(&fingerprint) => {
            return Err(refuse(format!(
                "its root (SHA-256 {fingerprint}) was not confirmed; compare it with the \
                 fingerprint `pki root init` printed, or give that with --root-fingerprint"
            )));
        }
        _ => {}
    }
    let key_pem = read_text(&paths.next_key())?;
    let key = unlock_key(&paths.next_key(), password)?;
    if &key.public_key() != csr.public_key() {
        return Err(CliError::CorruptCa(format!(
            "{} does not match the staged request; stage a new one with --force",
            paths.next_key().display()
        )));
    }
    Ok(Answer {
        intermediate_pem: file.crt,
        intermediate,
        root_pem: file.root,
        root,
        key_pem,
    })
}

/// A root that signed itself and `intermediate`, a CA and an intermediate
/// of fedpki's profile (pathlen 0, keyCertSign and cRLSign), valid now.
fn check_chain(intermediate: &Certificate, root: &Certificate) -> std::result::Result<(), String> {
    let verifier = RING_PROVIDER.verifier;
    chain::check_signed_by(root, root, verifier)
        .map_err(|_| "its root is not self-signed".to_owned())?;
    chain::check_signed_by(intermediate, root, verifier).map_err(|e| e.to_string())?;
    if !chain::is_ca(root) {
        return Err("its root is not a CA certificate".into());
    }
    chain::check_intermediate_profile(intermediate).map_err(|e| e.to_string())?;
    for cert in [root, intermediate] {
        chain::check_valid_at(cert, now()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Forget the staged request and key (answered).
fn remove_staged(paths: &CaPaths) {
    let _ = std::fs::remove_file(paths.next_request());
    let _ = std::fs::remove_file(paths.next_key());
}
