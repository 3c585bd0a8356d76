//! Signature verification behind a small trait, so the server can use a
//! faster backend while the browser keeps the portable one.

use alloc::vec::Vec;
#[cfg(feature = "rsa")]
use signature::Verifier;
use signature::hazmat::PrehashVerifier;
#[cfg(feature = "rsa")]
use spki::DecodePublicKey;

use crate::Error;
use crate::encoding::{sha256, sha384};
use crate::public_key::{KeyAlgorithm, PublicKey, SignatureAlgorithm};

/// Checks a signature over `msg` made by `key` with `algorithm`.
pub trait SignatureVerifier: Send + Sync {
    /// `Ok(())` only when the signature is valid.
    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        key: &PublicKey,
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

/// Smallest and largest RSA moduli fedpki accepts, in bits.
pub const RSA_BITS: core::ops::RangeInclusive<usize> = 2048..=4096;

const BAD: Error = Error::BadSignature("the signature does not match the data and key");

impl SignatureVerifier for RustCrypto {
    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        key: &PublicKey,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        use SignatureAlgorithm as S;
        let point = key
            .key_bytes()
            .ok_or_else(|| Error::Malformed("public key bit string is not whole bytes".into()))?;
        match (algorithm, key.algorithm()) {
            (S::Ed25519, KeyAlgorithm::Ed25519) => {
                let bytes: &[u8; 32] = point
                    .try_into()
                    .map_err(|_| Error::Malformed("Ed25519 public key is not 32 bytes".into()))?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .map_err(|_| Error::Malformed("invalid Ed25519 public key".into()))?;
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| BAD)?;
                vk.verify_strict(msg, &sig).map_err(|_| BAD)
            }
            (S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512, KeyAlgorithm::P256) => {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| Error::Malformed("invalid P-256 public key".into()))?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| BAD)?;
                vk.verify_prehash(&digest(ecdsa_hash(algorithm), msg), &sig)
                    .map_err(|_| BAD)
            }
            (S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512, KeyAlgorithm::P384) => {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| Error::Malformed("invalid P-384 public key".into()))?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| BAD)?;
                vk.verify_prehash(&digest(ecdsa_hash(algorithm), msg), &sig)
                    .map_err(|_| BAD)
            }
            #[cfg(feature = "rsa")]
            (S::RsaSha256 | S::RsaSha384 | S::RsaSha512, KeyAlgorithm::Rsa { bits }) => {
                verify_rsa(algorithm, key, bits, msg, signature)
            }
            (_, KeyAlgorithm::Other) => Err(Error::Unsupported(alloc::format!("{key} key"))),
            (alg, _) => Err(Error::Unsupported(alloc::format!(
                "a {alg:?} signature with a {key} key"
            ))),
        }
    }
}

fn ecdsa_hash(algorithm: SignatureAlgorithm) -> Hash {
    match algorithm {
        SignatureAlgorithm::EcdsaSha384 => Hash::Sha384,
        SignatureAlgorithm::EcdsaSha512 => Hash::Sha512,
        _ => Hash::Sha256,
    }
}

#[cfg(feature = "rsa")]
fn verify_rsa(
    algorithm: SignatureAlgorithm,
    key: &PublicKey,
    bits: usize,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    if !RSA_BITS.contains(&bits) {
        return Err(Error::Unsupported(alloc::format!(
            "RSA key of {bits} bits (fedpki accepts 2048 to 4096)"
        )));
    }
    let key = rsa::PublicKey::from_public_key_der(key.der())
        .map_err(|_| Error::Malformed("invalid RSA public key".into()))?;
    let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| BAD)?;
    match algorithm {
        SignatureAlgorithm::RsaSha384 => {
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig)
        }
        SignatureAlgorithm::RsaSha512 => {
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key).verify(msg, &sig)
        }
        _ => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig),
    }
    .map_err(|_| BAD)
}
