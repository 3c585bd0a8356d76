//! `pki sign`: sign a carried request file on a CA whose server is stopped.
//!
//! A request with a token is checked by exactly the server's pipeline and
//! burns the token in the same store, so a token works once whichever way
//! it travels. A request without one is signed only after the operator has
//! compared its hash, shown on both sides, as in OpenFL's manual flow.

use std::path::Path;

use fedpki_core::package::{RequestFile, SignedFile};
use fedpki_core::token::Bundle;

use crate::authority::verified_csr;
use crate::cmd::ca::{open_ca, runtime};
use crate::error::{CliError, Result};
use crate::platform::sys::{now, read_text, write_atomic};

/// `fedpki pki sign -p DIR REQ -o SIGNED [--yes]`
pub(crate) fn sign_request(
    ca: &crate::cmd::args::CaDir,
    request: &Path,
    out: &Path,
    yes: bool,
    password_file: Option<&Path>,
) -> Result<()> {
    let text = read_text(request)?;
    let (file, csr) = RequestFile::parse(&text)?;
    let cn = csr.common_name()?.unwrap_or_default();
    if cn != file.name {
        return Err(CliError::usage(format!(
            "the request file names {:?} but its CSR is for {cn:?}: it was altered; nothing was signed",
            file.name
        )));
    }
    let paths = ca.paths();
    if let Some(pid) = crate::ca::server_pid(&paths)? {
        return Err(CliError::usage(format!(
            "the CA in {} is being served (pid {pid}); certify online, or stop the server to sign offline",
            paths.dir.display()
        )));
    }
    let open = open_ca(ca, password_file, crate::cmd::ca::Purpose::Operate)?;
    let rt = runtime()?;
    let issued = match &file.token {
        Some(token) => {
            let (bundle, claims, _) = Bundle::parse(token)?;
            if claims.sha != open.config.root_fingerprint {
                return Err(CliError::usage(
                    "the request's token was made by another CA; nothing was signed",
                ));
            }
            rt.block_on(open.authority.sign(&file.csr, &bundle.jwt, now(), None))
        }
        None => {
            let verified = verified_csr(&file.csr, &fedpki_core::RUST_CRYPTO)
                .map_err(|r| CliError::usage(r.message))?;
            println!("The CSR Hash for file {} = {}", request.display(), verified.openfl_hash()?);
            crate::platform::review::print_request(&verified);
            if !yes {
                println!("Make sure it is the hash the requester sees.");
                if !crate::platform::password::confirm("Do you want to sign this certificate?") {
                    return Err(CliError::usage(
                        "not signed (not confirmed; after checking the hash, answer y or pass --yes)",
                    ));
                }
            }
            rt.block_on(open.authority.sign_confirmed(&verified, now()))
        }
    }
    .map_err(CliError::from)?;
    let signed = SignedFile::new(
        &issued.subject,
        issued.crt,
        issued.ca,
        open.authority.issuers().certs().root_pem.clone(),
    );
    write_atomic(out, signed.to_json()?.as_bytes(), 0o644)?;
    eprintln!(
        "Signed {} (serial {}); carry {} back.",
        issued.subject,
        issued.serial,
        out.display()
    );
    Ok(())
}
