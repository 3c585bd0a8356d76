//! The one JWE fedpki reads: step-ca's encrypted provisioner key
//! (`encryptedKey` in `ca.json`, `secrets/priv.json`), a compact JWE with
//! `alg` PBES2-HS256+A128KW and `enc` A256GCM (RFC 7518 §4.8, §5.3) whose
//! payload is the private JWK. Decrypting it lets a CA step-ca made keep
//! its provisioner, so tokens `step ca token` makes stay valid.

use alloc::string::String;
use alloc::vec::Vec;

use aes::cipher::{BlockCipherDecrypt, KeyInit};
use aes_gcm::aead::{Aead, Payload};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::encoding::unb64url;
use crate::{Error, PrivateKey};

/// More PBKDF2 rounds than a key file may ask for is refused as a denial
/// of service (step uses 100,000; RFC 7518 §4.8.1.2 suggests 1,000 at
/// least).
const MAX_ROUNDS: u32 = crate::key::MAX_PBKDF2_ROUNDS;

#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    p2c: u32,
    p2s: String,
}

/// The decrypted JWK; wiped on drop, for `d` is the provisioner's secret.
#[derive(Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct Jwk {
    kty: String,
    crv: String,
    x: String,
    y: String,
    d: String,
}

fn bad(what: &str) -> Error {
    Error::Malformed(alloc::format!("encrypted provisioner key: {what}"))
}

/// The P-256 key in step's encrypted JWK, unlocked with `password`; the
/// JWK's own `x`/`y` must be the key's.
pub fn decrypt_p256_jwk(compact: &str, password: &[u8]) -> Result<PrivateKey, Error> {
    let parts: Vec<&str> = compact.trim().split('.').collect();
    let [head_b64, wrapped, iv, ciphertext, tag] = parts[..] else {
        return Err(bad("not a compact JWE (five parts)"));
    };
    let header: Header = serde_json::from_slice(&unb64url(head_b64)?)
        .map_err(|e| bad(&alloc::format!("header: {e}")))?;
    if header.alg != "PBES2-HS256+A128KW" || header.enc != "A256GCM" {
        return Err(Error::Unsupported(alloc::format!(
            "an encrypted key with alg {} and enc {} (step uses PBES2-HS256+A128KW, A256GCM)",
            header.alg,
            header.enc
        )));
    }
    if !(1..=MAX_ROUNDS).contains(&header.p2c) {
        return Err(bad("its PBKDF2 round count (p2c) is out of range"));
    }
    // RFC 7518 §4.8.1.1: the salt is the alg, a zero byte, then p2s.
    let mut salt = header.alg.clone().into_bytes();
    salt.push(0);
    salt.extend_from_slice(&unb64url(&header.p2s)?);
    let mut kek = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, header.p2c, kek.as_mut());
    let cek = aes_key_unwrap(&kek, &unb64url(wrapped)?)?;
    let mut sealed = unb64url(ciphertext)?;
    sealed.extend_from_slice(&unb64url(tag)?);
    let nonce = unb64url(iv)?;
    if nonce.len() != 12 || cek.len() != 32 {
        return Err(bad("its IV or content key has the wrong size"));
    }
    let gcm = aes_gcm::Aes256Gcm::new_from_slice(&cek).map_err(|_| Error::Decrypt)?;
    let nonce = aes_gcm::Nonce::try_from(nonce.as_slice()).map_err(|_| bad("its IV"))?;
    let plain = Zeroizing::new(
        gcm.decrypt(
            &nonce,
            Payload {
                msg: &sealed,
                aad: head_b64.as_bytes(),
            },
        )
        .map_err(|_| Error::Decrypt)?,
    );
    let jwk: Jwk =
        serde_json::from_slice(&plain).map_err(|e| bad(&alloc::format!("the JWK: {e}")))?;
    if jwk.kty != "EC" || jwk.crv != "P-256" {
        return Err(Error::Unsupported(alloc::format!(
            "a provisioner key of kty {} crv {} (fedpki signs ES256: EC P-256)",
            jwk.kty,
            jwk.crv
        )));
    }
    let d = Zeroizing::new(unb64url(&jwk.d)?);
    let key = PrivateKey::from_p256_scalar(&d)?;
    let (x, y) = key.p256_coordinates().ok_or_else(|| bad("not P-256"))?;
    if unb64url(&jwk.x)? != x || unb64url(&jwk.y)? != y {
        return Err(bad("its private part does not match its x and y"));
    }
    Ok(key)
}

/// RFC 3394 AES key unwrap with a 128-bit key-encryption key. A wrong
/// password fails the integrity check: `Decrypt`.
fn aes_key_unwrap(kek: &[u8; 16], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(bad("its wrapped key has the wrong size"));
    }
    let cipher = aes::Aes128::new_from_slice(kek).map_err(|_| Error::Decrypt)?;
    let n = wrapped.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&wrapped[..8]);
    let mut r = Zeroizing::new(wrapped[8..].to_vec());
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let t = (n as u64) * j + i as u64;
            let mut block = [0u8; 16];
            for (k, byte) in a.iter().enumerate() {
                block[k] = byte ^ t.to_be_bytes()[k];
            }
            block[8..].copy_from_slice(&r[(i - 1) * 8..i * 8]);
            let mut b = aes::Block::from(block);
            cipher.decrypt_block(&mut b);
            a.copy_from_slice(&b[..8]);
            r[(i - 1) * 8..i * 8].copy_from_slice(&b[8..]);
        }
    }
    if a != [0xA6; 8] {
        return Err(Error::Decrypt);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3394 §4.1: 128 bits of key data wrapped with a 128-bit KEK.
    #[test]
    fn key_unwrap_matches_rfc_3394() {
        let kek: [u8; 16] = crate::encoding::unhex("000102030405060708090a0b0c0d0e0f")
            .unwrap()
            .try_into()
            .unwrap();
        let wrapped =
            crate::encoding::unhex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5").unwrap();
        let key = aes_key_unwrap(&kek, &wrapped).unwrap();
        assert_eq!(
            crate::encoding::hex(&key),
            "00112233445566778899aabbccddeeff"
        );
        let mut bent = wrapped.clone();
        bent[3] ^= 1;
        assert_eq!(aes_key_unwrap(&kek, &bent).unwrap_err(), Error::Decrypt);
    }

    /// An `encryptedKey` made by step 0.16.0 (`step ca init`, password
    /// `steppass-123`), and the public key its ca.json lists beside it.
    #[test]
    fn decrypts_what_step_encrypted() {
        const JWE: &str = include_str!("jwe_test_vector.txt");
        let key = decrypt_p256_jwk(JWE, b"steppass-123").unwrap();
        let (x, y) = key.p256_coordinates().unwrap();
        assert_eq!(
            crate::encoding::b64url(&x),
            "U-CI_z7_uzUmebr8vvrvl4dHpCeb1azQqnXdPXziO28"
        );
        assert_eq!(
            crate::encoding::b64url(&y),
            "6OZfg91fv-X2sfuvRZ4kv9psK7uL0iUX6qaHOB8j3PM"
        );
        assert_eq!(
            crate::token::jwk_thumbprint(&x, &y),
            "_dzXAeCMBdOIc-qj8vKDNieAUXW65fz6tle5rG0qbQw",
            "step's kid is the RFC 7638 thumbprint fedpki computes"
        );
        assert_eq!(decrypt_p256_jwk(JWE, b"wrong").unwrap_err(), Error::Decrypt);
        let mut parts: Vec<String> = JWE.trim().split('.').map(String::from).collect();
        let swap = if parts[3].starts_with('A') { "B" } else { "A" };
        parts[3].replace_range(0..1, swap);
        assert_eq!(
            decrypt_p256_jwk(&parts.join("."), b"steppass-123").unwrap_err(),
            Error::Decrypt,
            "an altered ciphertext fails GCM's check"
        );
    }
}
