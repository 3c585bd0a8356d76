//! PKCS#10 certificate signing requests: build, parse, verify.
//!
//! A parsed [`Csr`] is only data; [`Csr::verify`] turns it into a
//! [`VerifiedCsr`], the only form issuance accepts, after checking its
//! self-signature and that its key is one fedpki certifies.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use const_oid::db::rfc5912::ID_EXTENSION_REQ;
use der::asn1::SetOfVec;
use der::{Decode, Encode};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use crate::encoding::{hex, pem, pem_one, sha384};
use crate::error::malformed;
use crate::name::{San, Subject};
use crate::profile::{cn_name, general_name, san_of};
use crate::{Error, KeyAlgorithm, PublicKey, SignatureAlgorithm, SignatureVerifier, SigningKey};

/// Largest CSR fedpki parses: an RSA-4096 CSR with names is far smaller.
pub const MAX_CSR_DER: usize = 16 * 1024;

/// Build a CSR for `key` with `CN=subject` and the SANs in an
/// extensionRequest, signed by `key`.
pub fn build(key: &dyn SigningKey, subject: &Subject, sans: &[San]) -> Result<Csr, Error> {
    build_named(key, subject.as_str(), sans)
}

/// Build a CSR for a CA's key (an intermediate asking an offline root):
/// `CN=common_name` (any text of 1 to 64 characters), no names requested.
pub fn build_for_ca(key: &dyn SigningKey, common_name: &str) -> Result<Csr, Error> {
    crate::name::check_ca_name(common_name)?;
    build_named(key, common_name, &[])
}

fn build_named(key: &dyn SigningKey, common_name: &str, sans: &[San]) -> Result<Csr, Error> {
    let unsigned = Unsigned::named(key.public_key(), common_name, sans)?;
    let signature = key.sign(unsigned.to_be_signed())?;
    unsigned.finish(key.signature_algorithm(), &signature)
}

/// A CSR for a key held elsewhere (a browser's WebCrypto): the bytes to
/// sign, then [`Unsigned::finish`] with the signature. The same builder
/// as [`build`], so the page's CSR is the command line's.
#[derive(Debug, Clone)]
pub struct Unsigned {
    info: CertReqInfo,
    tbs: Vec<u8>,
    key: PublicKey,
}

impl Unsigned {
    /// The request of `public_key` for `subject` and `sans`.
    pub fn new(public_key: PublicKey, subject: &Subject, sans: &[San]) -> Result<Self, Error> {
        Self::named(public_key, subject.as_str(), sans)
    }

    fn named(public_key: PublicKey, common_name: &str, sans: &[San]) -> Result<Self, Error> {
        let info = request_info(&public_key, common_name, sans)?;
        let tbs = info.to_der().map_err(|e| malformed("CSR", e))?;
        Ok(Self {
            info,
            tbs,
            key: public_key,
        })
    }

    /// What the key signs (DER of the CertificationRequestInfo).
    pub fn to_be_signed(&self) -> &[u8] {
        &self.tbs
    }

    /// The CSR, with `signature` in X.509 form (DER for ECDSA) made by
    /// `algorithm`. Not checked here: the CA checks every CSR it signs.
    pub fn finish(self, algorithm: SignatureAlgorithm, signature: &[u8]) -> Result<Csr, Error> {
        let signature =
            der::asn1::BitString::from_bytes(signature).map_err(|e| malformed("signature", e))?;
        let req = CertReq {
            info: self.info,
            algorithm: algorithm.identifier(),
            signature,
        };
        let der = req.to_der().map_err(|e| malformed("CSR", e))?;
        Ok(Csr {
            req,
            der,
            key: self.key,
        })
    }
}

/// An ECDSA signature as WebCrypto gives it (`r || s`, IEEE P1363) in
/// X.509's DER form.
pub fn ecdsa_p1363_to_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = || Error::Malformed("an ECDSA signature that is not r || s".into());
    match raw.len() {
        64 => Ok(p256::ecdsa::Signature::from_slice(raw)
            .map_err(|_| bad())?
            .to_der()
            .as_bytes()
            .to_vec()),
        96 => Ok(p384::ecdsa::Signature::from_slice(raw)
            .map_err(|_| bad())?
            .to_der()
            .as_bytes()
            .to_vec()),
        _ => Err(bad()),
    }
}

fn request_info(key: &PublicKey, common_name: &str, sans: &[San]) -> Result<CertReqInfo, Error> {
    let names = sans
        .iter()
        .map(general_name)
        .collect::<der::Result<Vec<_>>>()
        .map_err(|e| malformed("SAN", e))?;
    let mut attributes = SetOfVec::new();
    if !names.is_empty() {
        let ext = der::Encode::to_der(&SubjectAltName(names)).map_err(|e| malformed("SAN", e))?;
        let req = ExtensionReq(vec![x509_cert::ext::Extension {
            extn_id: <SubjectAltName as const_oid::AssociatedOid>::OID,
            critical: false,
            extn_value: der::asn1::OctetString::new(ext).map_err(|e| malformed("SAN", e))?,
        }]);
        let attr: Attribute = req
            .try_into()
            .map_err(|e| malformed("extensionRequest", e))?;
        attributes
            .insert(attr)
            .map_err(|e| malformed("attributes", e))?;
    }
    Ok(CertReqInfo {
        version: Version::V1,
        subject: cn_name(common_name).map_err(|e| malformed("name", e))?,
        public_key: key.spki().clone(),
        attributes,
    })
}

/// A decoded, not yet verified CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csr {
    req: CertReq,
    der: Vec<u8>,
    key: PublicKey,
}

impl Csr {
    /// Decode DER.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        if der.len() > MAX_CSR_DER {
            return Err(Error::Malformed(alloc::format!(
                "CSR of {} bytes is larger than the {MAX_CSR_DER} allowed",
                der.len()
            )));
        }
        let req = CertReq::from_der(der).map_err(|e| malformed("not a PKCS#10 CSR", e))?;
        let key = PublicKey::from_spki(req.info.public_key.clone())?;
        Ok(Self {
            req,
            der: der.to_vec(),
            key,
        })
    }

    /// Decode a PEM `CERTIFICATE REQUEST` (or OpenSSL's `NEW CERTIFICATE REQUEST`).
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        let der = pem_one(text, "CERTIFICATE REQUEST")
            .or_else(|e| pem_one(text, "NEW CERTIFICATE REQUEST").map_err(|_| e))?;
        Self::from_der(&der)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (64-column lines, LF).
    pub fn to_pem(&self) -> Result<String, Error> {
        pem("CERTIFICATE REQUEST", &self.der)
    }

    /// OpenFL's CSR hash: lowercase hex SHA-384 of the PEM text.
    pub fn openfl_hash(&self) -> Result<String, Error> {
        Ok(hex(&sha384(self.to_pem()?.as_bytes())))
    }

    /// The public key asked for.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The subject's common name, if any.
    pub fn common_name(&self) -> Result<Option<String>, Error> {
        match self.req.info.subject.common_name() {
            Ok(Some(cn)) => Ok(Some(String::from(cn))),
            Ok(None) => Ok(None),
            Err(e) => Err(malformed("subject common name", e)),
        }
    }

    /// The subject's organizationName, if any.
    pub fn organization(&self) -> Result<Option<String>, Error> {
        let o = const_oid::db::rfc4519::O;
        for atv in self.req.info.subject.iter() {
            if atv.oid == o {
                let text = atv
                    .value
                    .decode_as::<der::asn1::Utf8StringRef<'_>>()
                    .map(|s| String::from(s.as_str()))
                    .or_else(|_| {
                        atv.value
                            .decode_as::<der::asn1::PrintableStringRef<'_>>()
                            .map(|s| String::from(s.as_str()))
                    })
                    .map_err(|e| malformed("subject organization", e))?;
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    /// The SANs requested in the extensionRequest. Kinds fedpki never
    /// issues (email, directory names, …) are an error, not silently
    /// dropped.
    pub fn sans(&self) -> Result<Vec<San>, Error> {
        let mut out = Vec::new();
        for attr in self.req.info.attributes.iter() {
            if attr.oid != ID_EXTENSION_REQ {
                continue;
            }
            for value in attr.values.iter() {
                let der = value
                    .to_der()
                    .map_err(|e| malformed("extensionRequest", e))?;
                let req =
                    ExtensionReq::from_der(&der).map_err(|e| malformed("extensionRequest", e))?;
                for ext in req.0 {
                    if ext.extn_id != <SubjectAltName as const_oid::AssociatedOid>::OID {
                        continue;
                    }
                    let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| malformed("subjectAltName", e))?;
                    for name in &san.0 {
                        out.push(san_of(name).ok_or_else(|| {
                            Error::Policy(
                                "the CSR asks for a SAN that is not a DNS name or an IP address"
                                    .into(),
                            )
                        })?);
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Check the self-signature and that the key is one fedpki certifies
    /// (P-256, P-384, Ed25519, RSA 2048–4096).
    pub fn verify(self, verifier: &dyn SignatureVerifier) -> Result<VerifiedCsr, Error> {
        check_key_allowed(self.public_key())?;
        let tbs = self.req.info.to_der().map_err(|e| malformed("CSR", e))?;
        let sig = self
            .req
            .signature
            .as_bytes()
            .ok_or_else(|| Error::Malformed("CSR signature is not whole bytes".into()))?;
        verifier
            .verify(
                SignatureAlgorithm::from_identifier(&self.req.algorithm)?,
                self.public_key(),
                &tbs,
                sig,
            )
            .map_err(|e| match e {
                Error::BadSignature(_) => {
                    Error::BadSignature("the CSR's signature does not match its public key")
                }
                other => other,
            })?;
        Ok(VerifiedCsr(self))
    }
}

fn check_key_allowed(key: &PublicKey) -> Result<(), Error> {
    match key.algorithm() {
        // RSA's size is checked with the signature.
        KeyAlgorithm::P256
        | KeyAlgorithm::P384
        | KeyAlgorithm::Ed25519
        | KeyAlgorithm::Rsa { .. } => Ok(()),
        _ => Err(Error::Unsupported(alloc::format!(
            "a {key} key (use P-256, P-384, Ed25519 or RSA)"
        ))),
    }
}

/// A CSR whose self-signature verified. Only [`Csr::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCsr(Csr);

impl core::ops::Deref for VerifiedCsr {
    type Target = Csr;
    fn deref(&self) -> &Csr {
        &self.0
    }
}

impl VerifiedCsr {
    /// Check the CSR asks for exactly the token's names: its CN is the
    /// subject, and its SANs, if it lists any, are exactly `sans`. The
    /// certificate's names always come from the token; a CSR may leave SANs
    /// out but may not ask for others.
    pub fn check_names(&self, subject: &Subject, sans: &[San]) -> Result<(), Error> {
        match self.common_name()? {
            Some(cn) if cn == subject.as_str() => {}
            Some(cn) => {
                return Err(Error::Policy(alloc::format!(
                    "the CSR's common name {cn:?} is not the token's subject {:?}",
                    subject.as_str()
                )));
            }
            None => {
                return Err(Error::Policy(alloc::format!(
                    "the CSR has no common name; it must be the token's subject {:?}",
                    subject.as_str()
                )));
            }
        }
        let requested = self.sans()?;
        let mut allowed = sans.to_vec();
        allowed.sort();
        allowed.dedup();
        if !requested.is_empty() && requested != allowed {
            let show = |v: &[San]| v.iter().map(String::from).collect::<Vec<_>>().join(", ");
            return Err(Error::Policy(alloc::format!(
                "the CSR's SANs [{}] are not the token's SANs [{}]",
                show(&requested),
                show(&allowed)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::tests::TestEntropy;
    use crate::{KeyType, PrivateKey, RUST_CRYPTO};

    /// A key signing elsewhere (WebCrypto's `r || s`) gets the CSR the
    /// key itself would make: ECDSA here is deterministic (RFC 6979), so
    /// the two are byte for byte the same, and the signature verifies.
    #[test]
    fn a_csr_signed_elsewhere_is_the_one_the_key_makes() {
        for kt in [KeyType::P256, KeyType::P384] {
            let key = PrivateKey::generate(kt, &mut TestEntropy(7)).unwrap();
            let subject = Subject::new("node1.example.org").unwrap();
            let sans = San::for_subject("node1.example.org", &[] as &[String]).unwrap();
            let here = build(&key, &subject, &sans).unwrap();
            let unsigned = Unsigned::new(key.public_key(), &subject, &sans).unwrap();
            let sig = SigningKey::sign(&key, unsigned.to_be_signed()).unwrap();
            let raw = match kt {
                KeyType::P256 => p256::ecdsa::Signature::from_der(&sig)
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
                _ => p384::ecdsa::Signature::from_der(&sig)
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
            };
            let elsewhere = unsigned
                .finish(
                    key.signature_algorithm(),
                    &ecdsa_p1363_to_der(&raw).unwrap(),
                )
                .unwrap();
            assert_eq!(elsewhere.der(), here.der());
            Csr::from_der(elsewhere.der())
                .unwrap()
                .verify(&RUST_CRYPTO)
                .unwrap();
        }
        assert!(ecdsa_p1363_to_der(&[1u8; 63]).is_err());
    }
}
