//! A CSR as the authority takes it: decoded, self-signature checked, and
//! the names it asks for.

use fedpki_core::SignatureVerifier;
use fedpki_core::csr::{Csr, VerifiedCsr};
use fedpki_core::name::{San, Subject};

use super::{Refusal, Why};

/// Decode a PEM CSR and check its self-signature: 400 on failure.
pub(crate) fn verified_csr(
    csr_pem: &str,
    verifier: &dyn SignatureVerifier,
) -> Result<VerifiedCsr, Refusal> {
    let csr = Csr::from_pem(csr_pem).map_err(|e| {
        Refusal::new(
            Why::Malformed,
            format!("the csr field is not a valid CSR: {e}"),
        )
    })?;
    csr.verify(verifier).map_err(|e| match e {
        fedpki_core::Error::Unsupported(_) => Refusal::new(Why::Malformed, e.to_string()),
        _ => Refusal::new(
            Why::Malformed,
            format!("the CSR's signature is not valid: {e}"),
        ),
    })
}

/// The names a CSR asks for: its CN, and its SANs or else the CN as a SAN.
pub fn csr_names(csr: &VerifiedCsr) -> Result<(Subject, Vec<San>), Refusal> {
    let cn = csr
        .common_name()
        .ok()
        .flatten()
        .ok_or_else(|| Refusal::new(Why::Malformed, "the CSR has no common name"))?;
    let subject = Subject::new(&cn).map_err(|e| Refusal::new(Why::Malformed, e.to_string()))?;
    let sans = csr
        .sans()
        .map_err(|e| Refusal::new(Why::Forbidden, e.to_string()))?;
    let sans =
        San::or_subject(&cn, sans).map_err(|e| Refusal::new(Why::Malformed, e.to_string()))?;
    Ok((subject, sans))
}
