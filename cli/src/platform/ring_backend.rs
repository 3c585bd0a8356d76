//! The server's crypto on ring (which rustls already brings): the same two
//! seams as the portable RustCrypto backend, [`SigningKey`] and
//! [`SignatureVerifier`], several times faster per core (TOOLCHAIN.md: P-256
//! sign 52,000/s against 5,200/s, verify 16,200/s against 3,000/s).
//!
//! What ring does not cover (Ed25519 here, ECDSA with SHA-512, anything
//! unusual) is handed to [`RUST_CRYPTO`], so both backends accept and refuse
//! exactly the same things; the tests cross-check them.

use fedpki_core::provider::RSA_BITS;
use fedpki_core::{
    Error, KeyAlgorithm, PrivateKey, PublicKey, RUST_CRYPTO, SignatureAlgorithm, SignatureVerifier,
    SigningKey,
};
use ring::signature::{self, EcdsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};

/// Verifies with ring where it can, else with RustCrypto.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring;

/// The ring verifier.
pub(crate) static RING: Ring = Ring;

const BAD: Error = Error::BadSignature("the signature does not match the data and key");

impl Ring {
    fn algorithm(
        algorithm: SignatureAlgorithm,
        key: KeyAlgorithm,
    ) -> Option<&'static dyn VerificationAlgorithm> {
        use SignatureAlgorithm as S;
        Some(match (algorithm, key) {
            (S::EcdsaSha256, KeyAlgorithm::P256) => &signature::ECDSA_P256_SHA256_ASN1,
            (S::EcdsaSha384, KeyAlgorithm::P256) => &signature::ECDSA_P256_SHA384_ASN1,
            (S::EcdsaSha256, KeyAlgorithm::P384) => &signature::ECDSA_P384_SHA256_ASN1,
            (S::EcdsaSha384, KeyAlgorithm::P384) => &signature::ECDSA_P384_SHA384_ASN1,
            // Same size policy as the portable backend; outside it, let that
            // backend give its refusal.
            (S::RsaSha256, KeyAlgorithm::Rsa { bits }) if RSA_BITS.contains(&bits) => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            (S::RsaSha384, KeyAlgorithm::Rsa { bits }) if RSA_BITS.contains(&bits) => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            (S::RsaSha512, KeyAlgorithm::Rsa { bits }) if RSA_BITS.contains(&bits) => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            _ => return None,
        })
    }
}

impl SignatureVerifier for Ring {
    fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        key: &PublicKey,
        msg: &[u8],
        signature: &[u8],
    ) -> Result<(), Error> {
        let (Some(alg), Some(bytes)) =
            (Self::algorithm(algorithm, key.algorithm()), key.key_bytes())
        else {
            return RUST_CRYPTO.verify(algorithm, key, msg, signature);
        };
        UnparsedPublicKey::new(alg, bytes)
            .verify(msg, signature)
            .map_err(|_| BAD)
    }
}

/// A P-256 CA key on ring (ECDSA with SHA-256, DER signatures).
pub struct RingP256 {
    pair: EcdsaKeyPair,
    public: PublicKey,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for RingP256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RingP256([secret key elided])")
    }
}

impl RingP256 {
    /// The same key on ring; `None` for a key ring cannot take (not P-256).
    pub fn new(key: &PrivateKey) -> Option<Self> {
        if key.algorithm() != KeyAlgorithm::P256 {
            return None;
        }
        let der = key.to_pkcs8_der().ok()?;
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
            .ok()?;
        Some(Self {
            pair,
            public: key.public_key(),
            rng,
        })
    }
}

impl SigningKey for RingP256 {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaSha256
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        self.pair
            .sign(&self.rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::Unsupported("ring could not sign".into()))
    }
}

/// The fastest signer for `key`: ring for P-256, else the key itself.
pub(crate) fn signer(key: PrivateKey) -> Box<dyn SigningKey> {
    match RingP256::new(&key) {
        Some(fast) => Box::new(fast),
        None => Box::new(key),
    }
}

/// The server's provider: ring where it can, RustCrypto for the rest.
pub(crate) static RING_PROVIDER: fedpki_core::CryptoProvider = fedpki_core::CryptoProvider {
    verifier: &RING,
    signer,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::sys::OsEntropy;
    use fedpki_core::KeyType;

    /// Both backends agree on valid signatures, altered messages, altered
    /// signatures and swapped keys, for every key type.
    #[test]
    fn ring_and_rustcrypto_agree() {
        let keys: Vec<PrivateKey> = [KeyType::P256, KeyType::P384, KeyType::Ed25519]
            .into_iter()
            .flat_map(|kt| (0..4).map(move |_| PrivateKey::generate(kt, &mut OsEntropy).unwrap()))
            .collect();
        let mut checked = 0;
        for (i, key) in keys.iter().enumerate() {
            let other = &keys[(i + 1) % keys.len()];
            for n in 0..8u8 {
                let msg = vec![n; 37 * usize::from(n)];
                let sig = key.sign(&msg).unwrap();
                let alg = key.signature_algorithm();
                let spki = key.public_key();
                let mut bad_sig = sig.clone();
                let last = bad_sig.len() - 1;
                bad_sig[last] ^= 1;
                let mut bad_msg = msg.clone();
                bad_msg.push(1);
                for (m, s, k) in [
                    (&msg, &sig, &spki),
                    (&bad_msg, &sig, &spki),
                    (&msg, &bad_sig, &spki),
                    (&msg, &sig, &other.public_key()),
                ] {
                    let a = RING.verify(alg, k, m, s).is_ok();
                    let b = RUST_CRYPTO.verify(alg, k, m, s).is_ok();
                    assert_eq!(a, b, "backends disagree ({:?})", key.algorithm());
                    checked += 1;
                }
                assert!(RING.verify(alg, &spki, &msg, &sig).is_ok());
            }
        }
        assert_eq!(checked, 12 * 8 * 4);
    }

    /// ring's signatures verify with RustCrypto, and the other way round.
    #[test]
    fn ring_signer_is_interchangeable() {
        let key = PrivateKey::generate(KeyType::P256, &mut OsEntropy).unwrap();
        let fast = RingP256::new(&key).unwrap();
        assert_eq!(fast.public_key(), key.public_key());
        for n in 0..16u8 {
            let msg = vec![n; 100];
            let sig = fast.sign(&msg).unwrap();
            let alg = fast.signature_algorithm();
            RUST_CRYPTO
                .verify(alg, &key.public_key(), &msg, &sig)
                .unwrap();
            RING.verify(alg, &key.public_key(), &msg, &key.sign(&msg).unwrap())
                .unwrap();
        }
        assert!(
            RingP256::new(&PrivateKey::generate(KeyType::Ed25519, &mut OsEntropy).unwrap())
                .is_none()
        );
    }

    /// A token verifies the same through ring as through RustCrypto, and
    /// an altered one fails both ways.
    #[test]
    fn token_verdicts_match() {
        use fedpki_core::name::{San, Subject};
        use fedpki_core::token::{self, Expectations, TokenRequest};
        let prov = PrivateKey::generate(KeyType::P256, &mut OsEntropy).unwrap();
        let fast = RingP256::new(&prov).unwrap();
        let aud = token::sign_audience("localhost:9123");
        let subject = Subject::new("node").unwrap();
        let now = fedpki_core::UnixTime(1_800_000_000);
        let req = TokenRequest {
            issuer: "provisioner",
            subject: &subject,
            sans: &[San::parse("node").unwrap()],
            audience: &aud,
            root_der: b"root",
            now,
            ttl_secs: 300,
            tls_key_sha256: None,
        };
        let auds = [aud.clone()];
        let expect = Expectations {
            issuer: "provisioner",
            audiences: &auds,
            max_lifetime_secs: fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS,
        };
        for jwt in [
            token::sign(&req, &prov, &mut OsEntropy).unwrap(),
            token::sign_with(&req, &fast, &mut OsEntropy).unwrap(),
        ] {
            let mut bad = jwt.clone().into_bytes();
            let i = jwt.find('.').unwrap() + 3;
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).unwrap();
            for (t, good) in [(&jwt, true), (&bad, false)] {
                let a =
                    token::verify_with(t, &prov.public_key(), &RUST_CRYPTO, &expect, now).is_ok();
                let b = token::verify_with(t, &prov.public_key(), &RING, &expect, now).is_ok();
                assert_eq!((a, b), (good, good));
            }
        }
    }

    /// OpenSSL-made RSA keys: the same verdicts, and the same size policy.
    #[test]
    fn rsa_verdicts_match() {
        let dir = tempfile_dir();
        for bits in ["1024", "2048", "3072"] {
            let key = dir.join(format!("rsa{bits}.pem"));
            let csr = dir.join(format!("rsa{bits}.csr"));
            let ok = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-new",
                    "-newkey",
                    &format!("rsa:{bits}"),
                    "-nodes",
                    "-subj",
                    "/CN=x",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&csr)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "openssl req");
            let parsed =
                fedpki_core::csr::Csr::from_pem(&std::fs::read_to_string(&csr).unwrap()).unwrap();
            let a = parsed.clone().verify(&RING).is_ok();
            let b = parsed.verify(&RUST_CRYPTO).is_ok();
            assert_eq!(a, b, "RSA-{bits}");
            assert_eq!(a, bits != "1024", "RSA-{bits}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("fedpki-ring-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
