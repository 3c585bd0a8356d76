//! Public keys and signature algorithms as core's own types, so callers
//! (the server, a faster crypto backend, the browser) never name the ASN.1
//! library's: a [`PublicKey`] is a parsed SubjectPublicKeyInfo kept with its
//! DER, a [`SignatureAlgorithm`] one of the X.509 algorithms fedpki checks.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::Error;
use crate::error::malformed;

/// A public key: what a certificate, a CSR or a provisioner carries.
/// Equal when their DER is equal.
#[derive(Clone)]
pub struct PublicKey {
    spki: SubjectPublicKeyInfoOwned,
    der: Vec<u8>,
}

/// What kind of key a [`PublicKey`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// Ed25519.
    Ed25519,
    /// RSA with a modulus of this many bits.
    Rsa {
        /// The modulus size.
        bits: usize,
    },
    /// Anything else (another curve, a malformed key, another algorithm).
    Other,
}

impl From<crate::KeyType> for KeyAlgorithm {
    fn from(t: crate::KeyType) -> Self {
        match t {
            crate::KeyType::P256 => Self::P256,
            crate::KeyType::P384 => Self::P384,
            crate::KeyType::Ed25519 => Self::Ed25519,
            #[cfg(feature = "rsa")]
            crate::KeyType::Rsa2048 => Self::Rsa { bits: 2048 },
        }
    }
}

impl PublicKey {
    /// From the DER of a SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let spki =
            SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| malformed("public key", e))?;
        Self::from_spki(spki)
    }

    /// From a `PUBLIC KEY` PEM (a provisioner's, in a CA's config).
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        Self::from_der(&crate::encoding::pem_one(text, "PUBLIC KEY")?)
    }

    pub(crate) fn from_spki(spki: SubjectPublicKeyInfoOwned) -> Result<Self, Error> {
        let der = spki
            .to_der()
            .map_err(|e| malformed("SubjectPublicKeyInfo", e))?;
        Ok(Self { spki, der })
    }

    pub(crate) fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// The DER of the SubjectPublicKeyInfo.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// `PUBLIC KEY` PEM.
    pub fn to_pem(&self) -> Result<String, Error> {
        crate::encoding::pem("PUBLIC KEY", &self.der)
    }

    /// The key's pin: lowercase hex SHA-256 of its SubjectPublicKeyInfo DER
    /// (the token's `tlsKeySha256`).
    pub fn pin(&self) -> String {
        crate::encoding::hex(&crate::encoding::sha256(&self.der))
    }

    /// The key in the subjectPublicKey BIT STRING: a SEC1 point, 32 Ed25519
    /// bytes, or a PKCS#1 RSAPublicKey (what ring's verifiers take).
    /// `None` when the BIT STRING is not whole bytes.
    pub fn key_bytes(&self) -> Option<&[u8]> {
        self.spki.subject_public_key.as_bytes()
    }

    /// Which algorithm, curve or size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        let alg = self.spki.algorithm.oid;
        if alg == rfc8410::ID_ED_25519 {
            return KeyAlgorithm::Ed25519;
        }
        if alg == rfc5912::RSA_ENCRYPTION {
            return match self.rsa_modulus_bits() {
                Some(bits) => KeyAlgorithm::Rsa { bits },
                None => KeyAlgorithm::Other,
            };
        }
        match self.named_curve() {
            Ok(c) if alg == rfc5912::ID_EC_PUBLIC_KEY && c == rfc5912::SECP_256_R_1 => {
                KeyAlgorithm::P256
            }
            Ok(c) if alg == rfc5912::ID_EC_PUBLIC_KEY && c == rfc5912::SECP_384_R_1 => {
                KeyAlgorithm::P384
            }
            _ => KeyAlgorithm::Other,
        }
    }

    /// The named curve of an EC key.
    pub(crate) fn named_curve(&self) -> Result<ObjectIdentifier, Error> {
        self.spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| Error::Malformed("EC key without a named curve".into()))
    }

    fn rsa_modulus_bits(&self) -> Option<usize> {
        #[derive(der::Sequence)]
        struct RsaPublicKey<'a> {
            modulus: der::asn1::UintRef<'a>,
            _exponent: der::asn1::UintRef<'a>,
        }
        let key = RsaPublicKey::from_der(self.key_bytes()?).ok()?;
        let m = key.modulus.as_bytes();
        let lead = m.first().copied().unwrap_or(0);
        Some(m.len() * 8 - lead.leading_zeros() as usize)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self}, sha256 {})", self.pin())
    }
}

/// For people: `ECDSA P-256`, `RSA 2048 bits`, `Ed25519`.
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = self.spki.algorithm.oid;
        match self.algorithm() {
            KeyAlgorithm::P256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::P384 => f.write_str("ECDSA P-384"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits} bits"),
            KeyAlgorithm::Other if alg == rfc5912::RSA_ENCRYPTION => f.write_str("RSA, malformed"),
            KeyAlgorithm::Other if alg == rfc5912::ID_EC_PUBLIC_KEY => match self.named_curve() {
                Ok(c) => write!(f, "EC, curve {c}"),
                Err(_) => f.write_str("EC, no named curve"),
            },
            KeyAlgorithm::Other => write!(f, "algorithm {alg}"),
        }
    }
}

/// The X.509 signature algorithms fedpki verifies (and, for the first,
/// second and last, makes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
    /// ecdsa-with-SHA512.
    EcdsaSha512,
    /// sha256WithRSAEncryption (PKCS#1 v1.5).
    RsaSha256,
    /// sha384WithRSAEncryption.
    RsaSha384,
    /// sha512WithRSAEncryption.
    RsaSha512,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl SignatureAlgorithm {
    const TABLE: [(Self, ObjectIdentifier); 7] = [
        (Self::EcdsaSha256, rfc5912::ECDSA_WITH_SHA_256),
        (Self::EcdsaSha384, rfc5912::ECDSA_WITH_SHA_384),
        (Self::EcdsaSha512, rfc5912::ECDSA_WITH_SHA_512),
        (Self::RsaSha256, rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
        (Self::RsaSha384, rfc5912::SHA_384_WITH_RSA_ENCRYPTION),
        (Self::RsaSha512, rfc5912::SHA_512_WITH_RSA_ENCRYPTION),
        (Self::Ed25519, rfc8410::ID_ED_25519),
    ];

    /// The algorithm an X.509 `AlgorithmIdentifier` names; anything else
    /// is refused here, once, for every backend.
    pub(crate) fn from_identifier(id: &AlgorithmIdentifierOwned) -> Result<Self, Error> {
        Self::TABLE
            .iter()
            .find(|(_, oid)| *oid == id.oid)
            .map(|(alg, _)| *alg)
            .ok_or_else(|| Error::Unsupported(alloc::format!("signature algorithm {}", id.oid)))
    }

    /// The `AlgorithmIdentifier` to write in a certificate, CSR or CRL
    /// (RFC 5758: no parameters for ECDSA; RFC 4055: NULL for RSA).
    pub(crate) fn identifier(self) -> AlgorithmIdentifierOwned {
        let oid = Self::TABLE
            .iter()
            .find(|(alg, _)| *alg == self)
            .map(|(_, oid)| *oid)
            .unwrap_or(rfc5912::ECDSA_WITH_SHA_256);
        let parameters = match self {
            Self::RsaSha256 | Self::RsaSha384 | Self::RsaSha512 => Some(der::Any::null()),
            _ => None,
        };
        AlgorithmIdentifierOwned { oid, parameters }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_and_others_are_named() {
        for (alg, _) in SignatureAlgorithm::TABLE {
            assert_eq!(
                SignatureAlgorithm::from_identifier(&alg.identifier()),
                Ok(alg)
            );
        }
        let md5 = AlgorithmIdentifierOwned {
            oid: rfc5912::MD_5_WITH_RSA_ENCRYPTION,
            parameters: None,
        };
        let err = SignatureAlgorithm::from_identifier(&md5).unwrap_err();
        assert!(alloc::format!("{err}").contains("1.2.840.113549.1.1.4"));
    }
}
