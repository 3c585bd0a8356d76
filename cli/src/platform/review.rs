//! What an operator is shown before signing a request by hand (the manual
//! flow, `pki sign` without a token): the names and the key the CSR asks
//! for, printed escaped, so a hostile request cannot hide a name or rewrite
//! the terminal.

use fedpki_core::csr::Csr;
use fedpki_core::name::{San, escaped};

use crate::error::{CliError, Result};

/// The CN (as written, possibly not a valid name) and the SANs a CSR asks
/// for. A SAN fedpki never issues (email, URI, …) is an error.
pub(crate) fn asked_names(csr: &Csr) -> Result<(String, Vec<San>)> {
    let cn = csr.common_name()?.unwrap_or_default();
    let sans = csr
        .sans()
        .map_err(|e| CliError::usage(format!("the CSR for {:?}: {e}", escaped(&cn))))?;
    Ok((cn, sans))
}

/// SANs as `a, b`, or `(none)`.
pub(crate) fn san_list(sans: &[San]) -> String {
    if sans.is_empty() {
        return "(none)".into();
    }
    sans.iter()
        .map(|s| escaped(&s.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Print the CSR's CN, SANs and key type, one per line.
pub(crate) fn print_request(csr: &Csr) {
    let cn = csr.common_name().ok().flatten().unwrap_or_default();
    let sans = csr
        .sans()
        .map_or_else(|e| format!("unreadable ({e})"), |s| san_list(&s));
    println!("  Subject: CN={}", escaped(&cn));
    println!("  SANs:    {sans}");
    println!("  Key:     {}", csr.public_key());
}
