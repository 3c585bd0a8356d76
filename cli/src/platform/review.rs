//! What an operator is shown before signing a request by hand (the manual
//! flow, `pki sign` without a token): the names and the key the CSR asks
//! for, printed escaped, so a hostile request cannot hide a name or rewrite
//! the terminal.

use fedpki_core::csr::Csr;
use fedpki_core::name::{San, escaped};
use spki::SubjectPublicKeyInfoOwned;

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
    println!("  Key:     {}", describe_key(csr.public_key()));
}

/// A key's algorithm and size, for people.
pub(crate) fn describe_key(spki: &SubjectPublicKeyInfoOwned) -> String {
    use const_oid::db::{rfc5912, rfc8410};
    let alg = spki.algorithm.oid;
    if alg == rfc8410::ID_ED_25519 {
        return "Ed25519".into();
    }
    if alg == rfc5912::RSA_ENCRYPTION {
        // A DER RSAPublicKey is about as long as its modulus.
        let bytes = spki.subject_public_key.raw_bytes().len();
        return format!(
            "RSA (about {} bits)",
            (bytes.saturating_sub(12)) * 8 / 256 * 256
        );
    }
    if alg == rfc5912::ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok());
        return match curve {
            Some(c) if c == rfc5912::SECP_256_R_1 => "ECDSA P-256".into(),
            Some(c) if c == rfc5912::SECP_384_R_1 => "ECDSA P-384".into(),
            Some(c) => format!("EC, curve {c}"),
            None => "EC, no named curve".into(),
        };
    }
    format!("algorithm {alg}")
}
