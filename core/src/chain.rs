//! Checks on issued certificates, as a client does before it trusts an
//! answer: the chain leaf → intermediate → root, validity, CA flags, and that
//! the leaf is for our key and our names.

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::cert::Certificate;
use der::Encode;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};

use crate::name::{San, Subject};
use crate::profile::san_of;
use crate::{Error, PublicKey, SignatureAlgorithm, SignatureVerifier, UnixTime};

fn chain_err(what: impl Into<alloc::string::String>) -> Error {
    Error::Chain(what.into())
}

/// `Ok` when `child` names `parent` as its issuer and `parent`'s key signed it.
pub fn check_signed_by(
    child: &Certificate,
    parent: &Certificate,
    verifier: &dyn SignatureVerifier,
) -> Result<(), Error> {
    let tbs = child.x509().tbs_certificate();
    if tbs.issuer() != parent.x509().tbs_certificate().subject() {
        return Err(chain_err(alloc::format!(
            "{} was not issued by {}",
            named(child),
            named(parent)
        )));
    }
    let msg = tbs.to_der().map_err(|e| chain_err(e.to_string()))?;
    let sig = child
        .x509()
        .signature()
        .as_bytes()
        .ok_or_else(|| chain_err("signature is not whole bytes"))?;
    verifier
        .verify(
            SignatureAlgorithm::from_identifier(child.x509().signature_algorithm())?,
            parent.public_key(),
            &msg,
            sig,
        )
        .map_err(|_| {
            chain_err(alloc::format!(
                "the signature on {} does not verify with the key of {}",
                named(child),
                named(parent)
            ))
        })
}

/// `Ok` when `now` lies within the certificate's validity.
pub fn check_valid_at(cert: &Certificate, now: UnixTime) -> Result<(), Error> {
    let v = cert.x509().tbs_certificate().validity();
    let nb = v.not_before.to_unix_duration().as_secs();
    let na = v.not_after.to_unix_duration().as_secs();
    if now.0 < nb {
        return Err(chain_err(alloc::format!(
            "{} is not valid yet (notBefore {})",
            named(cert),
            v.not_before
        )));
    }
    if now.0 > na {
        return Err(chain_err(alloc::format!(
            "{} has expired (notAfter {})",
            named(cert),
            v.not_after
        )));
    }
    Ok(())
}

/// Whether basicConstraints marks the certificate as a CA.
pub fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.x509().tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

/// That `cert` is an intermediate as fedpki's profile makes one (SPEC §5):
/// a CA whose basicConstraints allow no CA below it (pathlen 0), with
/// keyUsage keyCertSign and cRLSign. What a CA takes from its root.
pub fn check_intermediate_profile(cert: &Certificate) -> Result<(), Error> {
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
    let tbs = cert.x509().tbs_certificate();
    let (ca, path_len) = match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) => (bc.ca, bc.path_len_constraint),
        _ => (false, None),
    };
    let usages = tbs
        .get_extension::<KeyUsage>()
        .ok()
        .flatten()
        .map(|(_, ku)| ku);
    let has = |u: KeyUsages| usages.as_ref().is_some_and(|ku| ku.0.contains(u));
    let (cert_sign, crl_sign) = (has(KeyUsages::KeyCertSign), has(KeyUsages::CRLSign));
    if ca && path_len == Some(0) && cert_sign && crl_sign {
        return Ok(());
    }
    Err(Error::Policy(alloc::format!(
        "the intermediate must be a CA certificate with pathlen 0 and keyUsage keyCertSign and \
         cRLSign, as `fedpki pki root sign` makes one; this one has CA {ca}, pathlen {}, \
         keyCertSign {}, cRLSign {}",
        path_len.map_or_else(|| "unlimited".into(), |n| alloc::format!("{n}")),
        cert_sign,
        crl_sign,
    )))
}

/// How a message names a certificate: `CN=…`. Not the full RFC 4514
/// subject, whose OID name table alone is a fifth of the certify page's
/// module; fedpki's certificates are named by their common name.
fn named(cert: &Certificate) -> alloc::string::String {
    match common_name(cert) {
        Some(cn) => alloc::format!("CN={}", crate::name::escaped(&cn)),
        None => "a certificate with no common name".into(),
    }
}

/// The certificate's subject common name.
pub fn common_name(cert: &Certificate) -> Option<alloc::string::String> {
    match cert.x509().tbs_certificate().subject().common_name() {
        Ok(Some(cn)) => Some(alloc::string::String::from(cn)),
        _ => None,
    }
}

/// The role a roster put in the certificate's subject (PKCS #9
/// unstructuredName, where NVFlare reads it), if any.
pub fn subject_role(cert: &Certificate) -> Option<alloc::string::String> {
    const UNSTRUCTURED_NAME: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.2");
    let subject = cert.x509().tbs_certificate().subject();
    subject.iter().find_map(|atv| {
        if atv.oid != UNSTRUCTURED_NAME {
            return None;
        }
        let value = &atv.value;
        value
            .decode_as::<der::asn1::Utf8StringRef<'_>>()
            .map(|s| alloc::string::String::from(s.as_str()))
            .or_else(|_| {
                value
                    .decode_as::<der::asn1::Ia5StringRef<'_>>()
                    .map(|s| alloc::string::String::from(s.as_str()))
            })
            .ok()
    })
}

/// The certificate's DNS and IP SANs, sorted.
pub fn sans(cert: &Certificate) -> Vec<San> {
    let mut out: Vec<San> = match cert
        .x509()
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
    {
        Ok(Some((_, san))) => san.0.iter().filter_map(san_of).collect(),
        _ => Vec::new(),
    };
    out.sort();
    out.dedup();
    out
}

/// Check leaf → intermediate → root at `now`: each signature, each validity,
/// the CA flags, and that `root` is self-signed.
pub fn verify_chain(
    leaf: &Certificate,
    intermediate: &Certificate,
    root: &Certificate,
    now: UnixTime,
    verifier: &dyn SignatureVerifier,
) -> Result<(), Error> {
    check_signed_by(root, root, verifier)
        .map_err(|_| chain_err("the root certificate is not self-signed"))?;
    check_signed_by(intermediate, root, verifier)?;
    check_signed_by(leaf, intermediate, verifier)?;
    for cert in [root, intermediate, leaf] {
        check_valid_at(cert, now)?;
    }
    if !is_ca(root) || !is_ca(intermediate) {
        return Err(chain_err(
            "a CA certificate in the chain is not marked as a CA",
        ));
    }
    if is_ca(leaf) {
        return Err(chain_err("the leaf certificate is marked as a CA"));
    }
    Ok(())
}

/// Check the leaf certifies `public_key` under `subject` with exactly `sans`.
pub fn check_leaf_is_ours(
    leaf: &Certificate,
    public_key: &PublicKey,
    subject: &Subject,
    sans: &[San],
) -> Result<(), Error> {
    if leaf.public_key() != public_key {
        return Err(chain_err(
            "the certificate is for a different public key than ours",
        ));
    }
    if common_name(leaf).as_deref() != Some(subject.as_str()) {
        return Err(chain_err(alloc::format!(
            "the certificate's name {:?} is not {:?}",
            common_name(leaf).unwrap_or_default(),
            subject.as_str()
        )));
    }
    let mut want = sans.to_vec();
    want.sort();
    want.dedup();
    if self::sans(leaf) != want {
        return Err(chain_err(
            "the certificate's SANs are not the ones asked for",
        ));
    }
    Ok(())
}

/// Seconds between notBefore and notAfter.
pub fn lifetime_secs(cert: &Certificate) -> u64 {
    let v = cert.x509().tbs_certificate().validity();
    v.not_after
        .to_unix_duration()
        .as_secs()
        .saturating_sub(v.not_before.to_unix_duration().as_secs())
}
