//! Signature verification behind a small trait, so the server can use a
//! faster backend while the browser keeps the portable one.

use alloc::vec::Vec;
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::Encode;
use signature::Verifier;
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, DecodePublicKey, SubjectPublicKeyInfoOwned};

use crate::Error;
use crate::encoding::{sha256, sha384};

/// Checks a signature over `msg` made by the key in `spki` with `algorithm`.
pub trait SignatureVerifier: Send + Sync {
    /// `Ok(())` only when the signature is valid.
    fn verify(
        &self,
        algorithm: &AlgorithmIdentifierOwned,
        spki: &SubjectPublicKeyInfoOwned,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(), Error>;
}

/// The portable, pure-Rust verifier (RustCrypto).
#[derive(Debug, Clone, Copy)]
pub struct RustCrypto;

/// The portable verifier, usable everywhere including wasm32.
pub static RUST_CRYPTO: RustCrypto = RustCrypto;

/// The cryptography a CA runs on, chosen once (as rustls's
/// `CryptoProvider`): how signatures are verified, and how a private key
/// is made ready to sign. Randomness comes beside it, as an
/// [`Entropy`](crate::Entropy), because no_std has no source of its own.
#[derive(Clone, Copy)]
pub struct CryptoProvider {
    /// Verifies tokens, CSRs and chains.
    pub verifier: &'static dyn SignatureVerifier,
    /// Makes a loaded key a signer.
    pub signer: fn(crate::PrivateKey) -> alloc::boxed::Box<dyn crate::SigningKey>,
}

impl core::fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CryptoProvider").finish_non_exhaustive()
    }
}

fn portable_signer(key: crate::PrivateKey) -> alloc::boxed::Box<dyn crate::SigningKey> {
    alloc::boxed::Box::new(key)
}

/// The portable provider (RustCrypto), everywhere including wasm32.
pub static RUST_CRYPTO_PROVIDER: CryptoProvider = CryptoProvider {
    verifier: &RUST_CRYPTO,
    signer: portable_signer,
};

/// The hash an X.509 signature algorithm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

fn digest(hash: Hash, msg: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match hash {
        Hash::Sha256 => sha256(msg).to_vec(),
        Hash::Sha384 => sha384(msg).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(msg).to_vec(),
    }
}

fn ecdsa_hash(oid: ObjectIdentifier) -> Option<Hash> {
    match oid {
        o if o == rfc5912::ECDSA_WITH_SHA_256 => Some(Hash::Sha256),
        o if o == rfc5912::ECDSA_WITH_SHA_384 => Some(Hash::Sha384),
        o if o == rfc5912::ECDSA_WITH_SHA_512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn rsa_hash(oid: ObjectIdentifier) -> Option<Hash> {
    match oid {
        o if o == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => Some(Hash::Sha256),
        o if o == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => Some(Hash::Sha384),
        o if o == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => Some(Hash::Sha512),
        _ => None,
    }
}

/// The named curve of an EC `SubjectPublicKeyInfo`.
pub fn named_curve(spki: &SubjectPublicKeyInfoOwned) -> Result<ObjectIdentifier, Error> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| Error::Malformed("EC key without a named curve".into()))
}

/// The size in bits of an RSA key's modulus (`None` for a key that is
/// not RSA or is malformed).
pub fn rsa_modulus_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<usize> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        _exponent: der::asn1::UintRef<'a>,
    }
    let bytes = spki.subject_public_key.as_bytes()?;
    let key = <RsaPublicKey<'_> as der::Decode>::from_der(bytes).ok()?;
    let m = key.modulus.as_bytes();
    let lead = m.first().copied().unwrap_or(0);
    Some(m.len() * 8 - lead.leading_zeros() as usize)
}

/// Smallest and largest RSA moduli fedpki accepts, in bits.
pub const RSA_BITS: core::ops::RangeInclusive<usize> = 2048..=4096;

const BAD: Error = Error::BadSignature("the signature does not match the data and key");

impl SignatureVerifier for RustCrypto {
    fn verify(
        &self,
        algorithm: &AlgorithmIdentifierOwned,
        spki: &SubjectPublicKeyInfoOwned,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        let key_alg = spki.algorithm.oid;
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::Malformed("public key bit string is not whole bytes".into()))?;

        if algorithm.oid == rfc8410::ID_ED_25519 {
            if key_alg != rfc8410::ID_ED_25519 {
                return Err(Error::Unsupported(
                    "Ed25519 signature with a non-Ed25519 key".into(),
                ));
            }
            let bytes: &[u8; 32] = point
                .try_into()
                .map_err(|_| Error::Malformed("Ed25519 public key is not 32 bytes".into()))?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(bytes)
                .map_err(|_| Error::Malformed("invalid Ed25519 public key".into()))?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| BAD)?;
            return vk.verify_strict(msg, &sig).map_err(|_| BAD);
        }

        if let Some(hash) = ecdsa_hash(algorithm.oid) {
            if key_alg != rfc5912::ID_EC_PUBLIC_KEY {
                return Err(Error::Unsupported(
                    "ECDSA signature with a non-EC key".into(),
                ));
            }
            let curve = named_curve(spki)?;
            let prehash = digest(hash, msg);
            if curve == rfc5912::SECP_256_R_1 {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| Error::Malformed("invalid P-256 public key".into()))?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| BAD)?;
                return vk.verify_prehash(&prehash, &sig).map_err(|_| BAD);
            }
            if curve == rfc5912::SECP_384_R_1 {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| Error::Malformed("invalid P-384 public key".into()))?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| BAD)?;
                return vk.verify_prehash(&prehash, &sig).map_err(|_| BAD);
            }
            return Err(Error::Unsupported(alloc::format!("EC curve {curve}")));
        }

        if let Some(hash) = rsa_hash(algorithm.oid) {
            if key_alg != rfc5912::RSA_ENCRYPTION {
                return Err(Error::Unsupported(
                    "RSA signature with a non-RSA key".into(),
                ));
            }
            let der = spki
                .to_der()
                .map_err(|_| Error::Malformed("RSA public key".into()))?;
            let key = rsa::PublicKey::from_public_key_der(&der)
                .map_err(|_| Error::Malformed("invalid RSA public key".into()))?;
            let bits = rsa::traits::PublicKeyParts::n_bits_precision(&key) as usize;
            if !RSA_BITS.contains(&bits) {
                return Err(Error::Unsupported(alloc::format!(
                    "RSA key of {bits} bits (fedpki accepts 2048 to 4096)"
                )));
            }
            let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| BAD)?;
            return match hash {
                Hash::Sha256 => {
                    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig)
                }
                Hash::Sha384 => {
                    rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig)
                }
                Hash::Sha512 => {
                    rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key).verify(msg, &sig)
                }
            }
            .map_err(|_| BAD);
        }

        Err(Error::Unsupported(alloc::format!(
            "signature algorithm {}",
            algorithm.oid
        )))
    }
}
