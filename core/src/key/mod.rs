//! Private keys: generation, PKCS#8 (plain and PBES2-encrypted), signing.
//!
//! Secrets zeroize on drop and never print. Ed25519 keys are written as
//! PKCS#8 v1 (no public key inside): OpenSSL 3.0 cannot read v2.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use const_oid::db::{rfc5912, rfc8410};
use der::asn1::OctetString;
use der::{Decode, Encode};
use pkcs8::pkcs5::pbes2;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, EncryptedPrivateKeyInfo};
use signature::Signer;
use zeroize::Zeroizing;

use crate::encoding::pem;
use crate::error::malformed;
use crate::{Entropy, Error, KeyAlgorithm, PublicKey, SignatureAlgorithm};

#[cfg(feature = "legacy-pem")]
mod formats;
mod openssh;
#[cfg(feature = "rsa")]
mod rsa_rng;
pub use openssh::{openssh_private, openssh_public};

/// PBKDF2-HMAC-SHA256 iterations for keys fedpki encrypts (OWASP 2023).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// The most PBKDF2 rounds a key file (or a step JWE's `p2c`) may ask for
/// before its password is tried: 16 times what fedpki writes. A file asking
/// more is refused at once instead of being worked on for hours.
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// The most memory a key file's scrypt may ask for (128 · r · N bytes):
/// 16 times OpenSSL's default. More is refused at once instead of being
/// allocated.
pub const MAX_SCRYPT_BYTES: u64 = 256 * 1024 * 1024;

/// The most scrypt work (N · r · p, in 128-byte blocks) a key file may ask
/// for: 2^24, 128 times OpenSSL's default.
pub const MAX_SCRYPT_WORK: u64 = 1 << 24;

/// The key algorithms fedpki generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256.
    P256,
    /// ECDSA on NIST P-384 with SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
    /// RSA, 2048 bits, PKCS #1 v1.5 with SHA-256: for a framework that
    /// signs with RSA only (NVFlare's identity assertion, RSA-PSS).
    #[cfg(feature = "rsa")]
    Rsa2048,
}

impl KeyType {
    /// The name used on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P256 => "p256",
            Self::P384 => "p384",
            Self::Ed25519 => "ed25519",
            #[cfg(feature = "rsa")]
            Self::Rsa2048 => "rsa2048",
        }
    }
}

impl core::str::FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ec" | "ecdsa" => Ok(Self::P256),
            "p384" | "p-384" => Ok(Self::P384),
            "ed25519" | "okp" => Ok(Self::Ed25519),
            #[cfg(feature = "rsa")]
            "rsa2048" | "rsa" => Ok(Self::Rsa2048),
            other => Err(Error::Unsupported(alloc::format!(
                "key type {other:?} (choose p256, p384, ed25519{})",
                if cfg!(feature = "rsa") {
                    " or rsa2048"
                } else {
                    ""
                }
            ))),
        }
    }
}

/// What a CA needs from a key: its public half, its signature algorithm,
/// and signatures over a message in X.509 form (DER for ECDSA).
///
/// Implemented by [`PrivateKey`]; a faster backend or an HSM can implement
/// it too.
pub trait SigningKey: Send + Sync {
    /// The public half of this key.
    fn public_key(&self) -> PublicKey;
    /// The X.509 `signatureAlgorithm` this key signs with.
    fn signature_algorithm(&self) -> SignatureAlgorithm;
    /// Sign `msg`; the value goes in an X.509 signature BIT STRING.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error>;
}

/// A private key. Zeroized on drop; `Debug` prints no secret. Opaque:
/// which library holds it is this crate's business.
#[derive(Clone)]
pub struct PrivateKey(Key);

#[derive(Clone)]
enum Key {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    /// Read, never generated: a node's existing key (OpenSSL's default).
    #[cfg(feature = "rsa")]
    Rsa(alloc::boxed::Box<rsa::PrivateKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?}, [secret key elided])", self.algorithm())
    }
}

impl PrivateKey {
    /// Generate a new key of `key_type` from `entropy`.
    pub fn generate(key_type: KeyType, entropy: &mut dyn Entropy) -> Result<Self, Error> {
        // Rejection sampling: a scalar that is zero or not below the group
        // order is refused by `from_slice`; the chance is below 2^-32.
        for _ in 0..64 {
            match key_type {
                KeyType::P256 => {
                    let mut seed = Zeroizing::new([0u8; 32]);
                    entropy.fill(seed.as_mut())?;
                    if let Ok(k) = p256::ecdsa::SigningKey::from_slice(seed.as_ref()) {
                        return Ok(Self(Key::P256(k)));
                    }
                }
                KeyType::P384 => {
                    let mut seed = Zeroizing::new([0u8; 48]);
                    entropy.fill(seed.as_mut())?;
                    if let Ok(k) = p384::ecdsa::SigningKey::from_slice(seed.as_ref()) {
                        return Ok(Self(Key::P384(k)));
                    }
                }
                KeyType::Ed25519 => {
                    let mut seed = Zeroizing::new([0u8; 32]);
                    entropy.fill(seed.as_mut())?;
                    return Ok(Self(Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                        &seed,
                    ))));
                }
                #[cfg(feature = "rsa")]
                KeyType::Rsa2048 => {
                    let key = rsa::PrivateKey::new(&mut rsa_rng::EntropyRng(entropy), 2048)
                        .map_err(|_| Error::Entropy)?;
                    return Self::from_rsa(key);
                }
            }
        }
        Err(Error::Entropy)
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.0 {
            Key::P256(_) => KeyAlgorithm::P256,
            Key::P384(_) => KeyAlgorithm::P384,
            Key::Ed25519(_) => KeyAlgorithm::Ed25519,
            #[cfg(feature = "rsa")]
            Key::Rsa(k) => KeyAlgorithm::Rsa {
                bits: rsa::traits::PublicKeyParts::n_bits_precision(k.as_ref()) as usize,
            },
        }
    }

    /// Unencrypted PKCS#8 DER (v1 for Ed25519).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        let doc = match &self.0 {
            Key::P256(k) => k.to_pkcs8_der(),
            Key::P384(k) => k.to_pkcs8_der(),
            Key::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der(),
            #[cfg(feature = "rsa")]
            Key::Rsa(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| malformed("PKCS#8 encoding", e))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Unencrypted PKCS#8 PEM (`PRIVATE KEY`).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, Error> {
        Ok(Zeroizing::new(pem("PRIVATE KEY", &self.to_pkcs8_der()?)?))
    }

    /// PKCS#8 PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), PEM
    /// `ENCRYPTED PRIVATE KEY`: what `openssl pkey -passin` reads.
    pub fn to_encrypted_pem(
        &self,
        password: &[u8],
        iterations: u32,
        entropy: &mut dyn Entropy,
    ) -> Result<String, Error> {
        encrypt_pkcs8_der(&self.to_pkcs8_der()?, password, iterations, entropy)
    }

    /// Read unencrypted PKCS#8 DER (v1 or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| malformed("PKCS#8", e))?;
        let alg = info.algorithm.oid;
        if alg == rfc8410::ID_ED_25519 {
            return ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(|k| Self(Key::Ed25519(k)))
                .map_err(|e| malformed("Ed25519 PKCS#8", e));
        }
        if alg == rfc5912::ID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|e| malformed("EC key without a named curve", e))?;
            if curve == rfc5912::SECP_256_R_1 {
                return p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(|k| Self(Key::P256(k)))
                    .map_err(|e| malformed("P-256 PKCS#8", e));
            }
            if curve == rfc5912::SECP_384_R_1 {
                return p384::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map(|k| Self(Key::P384(k)))
                    .map_err(|e| malformed("P-384 PKCS#8", e));
            }
            return Err(Error::Unsupported(alloc::format!("EC curve {curve}")));
        }
        #[cfg(feature = "rsa")]
        if alg == rfc5912::RSA_ENCRYPTION {
            return rsa::PrivateKey::from_pkcs8_der(der)
                .map_err(|e| malformed("RSA PKCS#8", e))
                .and_then(Self::from_rsa);
        }
        Err(Error::Unsupported(alloc::format!(
            "private key algorithm {alg}"
        )))
    }

    /// An RSA key fedpki accepts (2048 to 4096 bits, as in CSRs).
    #[cfg(feature = "rsa")]
    pub(crate) fn from_rsa(key: rsa::PrivateKey) -> Result<Self, Error> {
        let bits = rsa::traits::PublicKeyParts::n_bits_precision(&key) as usize;
        if !crate::provider::RSA_BITS.contains(&bits) {
            return Err(Error::Unsupported(alloc::format!(
                "an RSA key of {bits} bits (fedpki accepts 2048 to 4096)"
            )));
        }
        Ok(Self(Key::Rsa(alloc::boxed::Box::new(key))))
    }

    /// A P-256 key from its 32-byte scalar (a JWK's `d`).
    #[cfg(feature = "jwe")]
    pub(crate) fn from_p256_scalar(d: &[u8]) -> Result<Self, Error> {
        p256::ecdsa::SigningKey::from_slice(d)
            .map(|k| Self(Key::P256(k)))
            .map_err(|e| malformed("P-256 private scalar", e))
    }

    /// A P-256 or P-384 key from its SEC1 `ECPrivateKey` DER.
    #[cfg(feature = "legacy-pem")]
    pub(crate) fn from_sec1_der(der: &[u8]) -> Result<Self, Error> {
        if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            return Ok(Self(Key::P256(k.into())));
        }
        if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
            return Ok(Self(Key::P384(k.into())));
        }
        Err(Error::Unsupported(
            "an \"EC PRIVATE KEY\" that is not a P-256 or P-384 key (fedpki's curves)".into(),
        ))
    }

    /// The raw JWS signature (`r || s`) over `msg`; P-256 only (ES256).
    pub fn sign_es256(&self, msg: &[u8]) -> Result<[u8; 64], Error> {
        match &self.0 {
            Key::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_bytes().into())
            }
            _ => Err(Error::Unsupported("ES256 needs a P-256 key".into())),
        }
    }

    /// The uncompressed affine coordinates (x, y) of a P-256 key, for JWK.
    pub fn p256_coordinates(&self) -> Option<([u8; 32], [u8; 32])> {
        match &self.0 {
            Key::P256(k) => {
                let point = k.verifying_key().to_sec1_bytes();
                // Uncompressed SEC1: 0x04 || x || y.
                let mut x = [0u8; 32];
                let mut y = [0u8; 32];
                x.copy_from_slice(point.get(1..33)?);
                y.copy_from_slice(point.get(33..65)?);
                Some((x, y))
            }
            _ => None,
        }
    }
}

impl SigningKey for PrivateKey {
    fn public_key(&self) -> PublicKey {
        let der = match &self.0 {
            Key::P256(k) => k.verifying_key().to_public_key_der(),
            Key::P384(k) => k.verifying_key().to_public_key_der(),
            Key::Ed25519(k) => k.verifying_key().to_public_key_der(),
            #[cfg(feature = "rsa")]
            Key::Rsa(k) => k.to_public_key().to_public_key_der(),
        };
        // Encoding a valid in-memory public key cannot fail, and decoding
        // what was just encoded cannot either.
        #[allow(clippy::expect_used)]
        let key = der
            .ok()
            .and_then(|d| PublicKey::from_der(d.as_bytes()).ok())
            .expect("a valid key encodes to a valid SubjectPublicKeyInfo");
        key
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        match &self.0 {
            Key::P256(_) => SignatureAlgorithm::EcdsaSha256,
            Key::P384(_) => SignatureAlgorithm::EcdsaSha384,
            Key::Ed25519(_) => SignatureAlgorithm::Ed25519,
            #[cfg(feature = "rsa")]
            Key::Rsa(_) => SignatureAlgorithm::RsaSha256,
        }
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(match &self.0 {
            Key::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
            Key::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
            Key::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            // PKCS#1 v1.5 is deterministic; this path signs only a node's
            // own CSR, never a certificate (TLS signs through rustls).
            #[cfg(feature = "rsa")]
            Key::Rsa(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.as_ref().clone());
                signature::SignatureEncoding::to_vec(&signer.sign(msg))
            }
        })
    }
}

/// Unencrypted PKCS#8 DER (a key WebCrypto exported, say) encrypted as
/// [`PrivateKey::to_encrypted_pem`] writes it.
pub fn encrypt_pkcs8_der(
    plain: &[u8],
    password: &[u8],
    iterations: u32,
    entropy: &mut dyn Entropy,
) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    entropy.fill(&mut salt)?;
    entropy.fill(&mut iv)?;
    let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, &salt, iv)
        .map_err(|e| malformed("PBES2 parameters", e))?;
    // The one scheme fedpki writes, done here rather than through
    // `Parameters::encrypt`, whose every other scheme (AES-GCM, scrypt)
    // the page's module would otherwise carry.
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, iterations, key.as_mut());
    let ciphertext = {
        use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
        // PKCS#7 always pads, by a whole block when already aligned.
        let mut buf = Zeroizing::new(plain.to_vec());
        buf.resize(plain.len() + 16 - plain.len() % 16, 0);
        cbc::Encryptor::<aes::Aes256>::new_from_slices(key.as_ref(), &iv)
            .map_err(|_| Error::Malformed("the AES-256-CBC key or IV".into()))?
            .encrypt_padded::<Pkcs7>(&mut buf, plain.len())
            .map_err(|_| Error::Malformed("AES-256-CBC padding".into()))?
            .to_vec()
    };
    let info = EncryptedPrivateKeyInfo {
        encryption_algorithm: params.into(),
        encrypted_data: OctetString::new(ciphertext).map_err(|e| malformed("PKCS#8", e))?,
    };
    let der = info.to_der().map_err(|e| malformed("PKCS#8", e))?;
    pem("ENCRYPTED PRIVATE KEY", &der)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::SignatureVerifier;
    use crate::provider::RUST_CRYPTO;

    /// Deterministic "entropy" for tests: a counter stream. Never for keys
    /// anybody uses.
    #[derive(Debug)]
    pub(crate) struct TestEntropy(pub(crate) u64);
    impl Entropy for TestEntropy {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
            for chunk in dest.chunks_mut(32) {
                self.0 += 1;
                let block = crate::encoding::sha256(&self.0.to_le_bytes());
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
            Ok(())
        }
    }

    #[test]
    fn every_key_type_signs_and_verifies_and_round_trips() {
        let mut rng = TestEntropy(1);
        for kt in [KeyType::P256, KeyType::P384, KeyType::Ed25519] {
            let key = PrivateKey::generate(kt, &mut rng).unwrap();
            let sig = SigningKey::sign(&key, b"hello").unwrap();
            RUST_CRYPTO
                .verify(key.signature_algorithm(), &key.public_key(), b"hello", &sig)
                .unwrap();
            assert!(
                RUST_CRYPTO
                    .verify(key.signature_algorithm(), &key.public_key(), b"hellO", &sig)
                    .is_err()
            );

            let pem = key.to_pkcs8_pem().unwrap();
            let back = PrivateKey::from_pem(&pem, None).unwrap();
            assert_eq!(back.public_key(), key.public_key());

            let enc = key.to_encrypted_pem(b"pw", 1000, &mut rng).unwrap();
            assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            let back = PrivateKey::from_pem(&enc, Some(b"pw")).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            assert_eq!(
                PrivateKey::from_pem(&enc, Some(b"wrong")).unwrap_err(),
                Error::Decrypt
            );
            assert!(PrivateKey::from_pem(&enc, None).is_err());
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = PrivateKey::generate(KeyType::P256, &mut TestEntropy(2)).unwrap();
        let shown = alloc::format!("{key:?}");
        assert!(shown.contains("elided"));
        let secret = match &key.0 {
            Key::P256(k) => crate::encoding::hex(&k.to_bytes()),
            _ => unreachable!(),
        };
        assert!(!shown.contains(&secret));
    }
}
