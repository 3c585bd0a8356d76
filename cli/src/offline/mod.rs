//! Air-gapped signing by carrying files: `pki csr` makes a key and a request
//! file, `pki sign` signs it on a CA with no network (the server stopped;
//! see `cmd::sign`), `pki import` checks the signed file and installs the
//! certificate.
//!
//! A request with a token is checked by exactly the server's pipeline and
//! burns the token in the same store, so a token works once whichever way
//! it travels. A request without one is signed only after the operator has
//! compared its hash, shown on both sides, as in OpenFL's manual flow.

use std::path::Path;

use fedpki_core::csr;
use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::package::{RequestFile, SignedFile, TrustedRoot, check_returned_root};
use fedpki_core::token::Bundle;
use fedpki_core::{KeyType, PrivateKey, SigningKey};

use crate::error::{CliError, Result};
use crate::node::{Answer, Expected, NodeFiles};
use crate::platform::sys::{OsEntropy, create_dir, now, read_text, write_atomic};

/// `fedpki pki csr -n NAME [-t TOKEN] [-c DIR] [--key-type] -o REQ [--force]`
pub(crate) fn make_request(
    name: &str,
    token: Option<&str>,
    dir: &Path,
    key_type: KeyType,
    out: &Path,
    force: bool,
) -> Result<()> {
    let files = NodeFiles::new(dir, name);
    let key_path = files.key();
    if key_path.exists() && !force {
        return Err(CliError::usage(format!(
            "{} exists; move it away or pass --force to replace it",
            key_path.display()
        )));
    }
    let (subject, sans, root_pem) = match token {
        Some(t) => {
            let (bundle, claims, _) = Bundle::parse(t)?;
            if claims.sub != name {
                return Err(CliError::usage(format!(
                    "this token is for {:?}, not {name:?}",
                    claims.sub
                )));
            }
            let sans = San::for_subject(name, &claims.sans)?;
            (Subject::new(name)?, sans, Some(bundle.root_pem))
        }
        None => (
            Subject::new(name)?,
            San::for_subject(name, &[] as &[&str])?,
            None,
        ),
    };
    let key = PrivateKey::generate(key_type, &mut OsEntropy)?;
    let request = csr::build(&key, &subject, &sans)?;
    let file = RequestFile::new(name, &request, token.map(|t| t.trim().to_owned()))?;
    create_dir(dir, false)?;
    write_atomic(&key_path, key.to_pkcs8_pem()?.as_bytes(), 0o600)?;
    if let Some(root) = &root_pem {
        // The root the token vouched for: `pki import` will insist on it.
        write_atomic(&files.root(), root.as_bytes(), 0o644)?;
    }
    // A request that carries a token carries a bearer secret.
    let mode = if token.is_some() { 0o600 } else { 0o644 };
    write_atomic(out, file.to_json()?.as_bytes(), mode)?;
    eprintln!(
        "Key written to {} (keep it here). Carry {} to the CA{}.",
        key_path.display(),
        out.display(),
        if token.is_some() {
            ""
        } else {
            "; the operator will compare this hash"
        }
    );
    println!("The CSR Hash {}", request.openfl_hash()?);
    Ok(())
}

/// `fedpki pki import SIGNED [-c DIR] [--root-fingerprint SHA256]`. The
/// signed file came back over an untrusted path, so the root it names is
/// trusted only if it is the one the node already holds (`root_ca.crt`,
/// saved from its token) or the one the operator vouched for by its
/// fingerprint ([`check_returned_root`], as the page); it never replaces
/// either.
pub(crate) fn import(
    signed: &Path,
    dir: &Path,
    root_fingerprint: Option<&str>,
) -> Result<NodeFiles> {
    let file = SignedFile::parse(&read_text(signed)?)?;
    let refuse = |why: String| {
        CliError::usage(format!(
            "{}: {why}; nothing was installed",
            signed.display()
        ))
    };
    let answer =
        Answer::parse(&file.crt, &file.ca, &file.root).map_err(|e| refuse(e.to_string()))?;
    let files = NodeFiles::new(dir, &file.name);
    let root_fp = issue::fingerprint(&answer.root)?;
    let held = files.read_root()?;
    let mut trusted = Vec::new();
    if let Some(fp) = root_fingerprint {
        trusted.push(TrustedRoot::Fingerprint(fp));
    }
    if let Some(ours) = &held {
        trusted.push(TrustedRoot::Held(ours));
    }
    check_returned_root(&answer.root, &trusted).map_err(|e| {
        refuse(match held {
            None => format!(
                "{e}, with --root-fingerprint SHA256 ({} holds no root_ca.crt)",
                dir.display()
            ),
            Some(_) => e.to_string(),
        })
    })?;
    let key = files.read_key()?;
    let expected = Expected {
        key: &key.public_key(),
        key_file: &files.key(),
        subject: &Subject::new(&file.name)?,
        sans: None,
    };
    answer
        .check(&expected, now())
        .map_err(|e| refuse(e.to_string()))?;
    files.install(None, &answer)?;
    eprintln!(
        "Installed {} and {} (root SHA-256 {root_fp}).",
        files.cert().display(),
        files.root().display()
    );
    Ok(files)
}
