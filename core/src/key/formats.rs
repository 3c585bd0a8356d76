//! Reading private keys in the PEM forms nodes already have: PKCS#8 (what
//! fedpki writes), SEC1 `EC PRIVATE KEY` (what step and `openssl ecparam`
//! write) and PKCS#1 `RSA PRIVATE KEY` (older OpenSSL), each plain or
//! encrypted: PKCS#8 by PBES2, the other two by OpenSSL's legacy PEM
//! encryption (RFC 1423 headers, as step-ca encrypts its CA keys).

use alloc::string::String;
use alloc::vec::Vec;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, KeyIvInit};
use rsa::pkcs1::DecodeRsaPrivateKey;
use zeroize::Zeroizing;

use super::PrivateKey;
use crate::Error;
use crate::error::malformed;

impl PrivateKey {
    /// Read a PEM private key in any of the forms above; `password`
    /// unlocks an encrypted one.
    pub fn from_pem(text: &str, password: Option<&[u8]>) -> Result<Self, Error> {
        let block = LegacyBlock::find(text)?;
        let plain: Zeroizing<Vec<u8>> = match (&block.encryption, password) {
            (None, _) => block.body.clone(),
            (Some(_), None) => {
                return Err(Error::Malformed(
                    "the private key is encrypted and no password was given".into(),
                ));
            }
            (Some(dek), Some(pw)) => dek.decrypt(pw, &block.body)?,
        };
        let legacy_encrypted = block.encryption.is_some();
        let read = match (block.label.as_str(), password) {
            ("PRIVATE KEY", _) => Self::from_pkcs8_der(&plain),
            ("EC PRIVATE KEY", _) => Self::from_sec1_der(&plain),
            ("RSA PRIVATE KEY", _) => rsa::PrivateKey::from_pkcs1_der(&plain)
                .map_err(|e| malformed("RSA PRIVATE KEY (PKCS#1)", e))
                .and_then(Self::from_rsa),
            ("ENCRYPTED PRIVATE KEY", Some(pw)) => {
                let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(plain.as_slice())
                    .map_err(|e| malformed("encrypted PKCS#8", e))?;
                check_work(&info.encryption_algorithm)?;
                let doc = info.decrypt(pw).map_err(|_| Error::Decrypt)?;
                Self::from_pkcs8_der(doc.as_bytes())
            }
            ("ENCRYPTED PRIVATE KEY", None) => Err(Error::Malformed(
                "the private key is encrypted and no password was given".into(),
            )),
            (other, _) => Err(Error::Unsupported(alloc::format!(
                "PEM \"{other}\" (fedpki reads PRIVATE KEY, ENCRYPTED PRIVATE KEY, \
                 EC PRIVATE KEY and RSA PRIVATE KEY)"
            ))),
        };
        // Legacy encryption has no integrity check but the padding: a wrong
        // password that happens to leave valid padding yields garbage.
        match read {
            Err(Error::Malformed(_)) if legacy_encrypted => Err(Error::Decrypt),
            other => other,
        }
    }

    /// Whether `text` holds an encrypted private key (so a caller can ask
    /// for its passphrase before reading it).
    pub fn pem_is_encrypted(text: &str) -> bool {
        LegacyBlock::find(text)
            .is_ok_and(|b| b.encryption.is_some() || b.label == "ENCRYPTED PRIVATE KEY")
    }
}

/// That an encrypted key asks for no more key-derivation work than the
/// limits above, before any of it is done: a file from elsewhere could ask
/// for 2^31 PBKDF2 rounds (hours) or scrypt over 16 GiB.
fn check_work(scheme: &pkcs8::pkcs5::EncryptionScheme) -> Result<(), Error> {
    use super::{MAX_PBKDF2_ROUNDS, MAX_SCRYPT_BYTES, MAX_SCRYPT_WORK};
    use pkcs8::pkcs5::{EncryptionScheme, pbes2::Kdf};
    let redo = "re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 600000`";
    match scheme {
        EncryptionScheme::Pbes2(params) => match &params.kdf {
            Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ROUNDS => {
                Err(Error::Unsupported(alloc::format!(
                    "a key encrypted with {} PBKDF2 rounds (fedpki tries at most {MAX_PBKDF2_ROUNDS}); {redo}",
                    p.iteration_count
                )))
            }
            Kdf::Scrypt(p) => {
                let (n, r, par) = (
                    p.cost_parameter,
                    u64::from(p.block_size),
                    u64::from(p.parallelization),
                );
                let bytes = n.saturating_mul(r).saturating_mul(128);
                let work = n.saturating_mul(r).saturating_mul(par);
                if bytes > MAX_SCRYPT_BYTES || work > MAX_SCRYPT_WORK {
                    return Err(Error::Unsupported(alloc::format!(
                        "a key encrypted with scrypt N={n}, r={r}, p={par} ({} MiB; fedpki \
                         allows at most {} MiB and N·r·p {MAX_SCRYPT_WORK}); {redo}",
                        bytes / (1024 * 1024),
                        MAX_SCRYPT_BYTES / (1024 * 1024)
                    )));
                }
                Ok(())
            }
            _ => Ok(()),
        },
        // PBES1 is refused by the decryption itself, before any work.
        _ => Ok(()),
    }
}

/// One `-----BEGIN …PRIVATE KEY-----` block, with RFC 1423 headers when
/// present. RFC 7468 parsers refuse those headers, so this one reads them.
struct LegacyBlock {
    label: String,
    encryption: Option<Dek>,
    body: Zeroizing<Vec<u8>>,
}

impl LegacyBlock {
    fn find(text: &str) -> Result<Self, Error> {
        let none = || Error::Malformed("no PEM private key found".into());
        let mut lines = text.lines().map(str::trim);
        let label = loop {
            let line = lines.next().ok_or_else(none)?;
            if let Some(label) = line
                .strip_prefix("-----BEGIN ")
                .and_then(|l| l.strip_suffix("-----"))
                .filter(|l| l.ends_with("PRIVATE KEY"))
            {
                break String::from(label);
            }
        };
        let end = alloc::format!("-----END {label}-----");
        let (mut encryption, mut encrypted, mut b64) = (None, false, Zeroizing::new(String::new()));
        for line in lines.by_ref() {
            if line == end {
                let body = crate::encoding::unb64(&b64)
                    .map_err(|e| Error::Malformed(alloc::format!("PEM {label}: {e}")))?;
                if encrypted && encryption.is_none() {
                    return Err(Error::Malformed(alloc::format!(
                        "PEM {label} says Proc-Type 4,ENCRYPTED but has no DEK-Info"
                    )));
                }
                return Ok(Self {
                    label,
                    encryption,
                    body: Zeroizing::new(body),
                });
            }
            if let Some(v) = line.strip_prefix("Proc-Type:") {
                encrypted = v.trim() == "4,ENCRYPTED";
            } else if let Some(v) = line.strip_prefix("DEK-Info:") {
                encryption = Some(Dek::parse(v.trim())?);
            } else if !line.contains(':') {
                b64.push_str(line);
            }
        }
        Err(Error::Malformed(alloc::format!(
            "PEM block {label} has no END line"
        )))
    }
}

/// `DEK-Info: AES-256-CBC,<IV hex>`: the cipher and IV of OpenSSL's
/// legacy PEM encryption.
struct Dek {
    key_len: usize,
    iv: [u8; 16],
}

impl Dek {
    fn parse(value: &str) -> Result<Self, Error> {
        let (cipher, iv) = value
            .split_once(',')
            .ok_or_else(|| Error::Malformed(alloc::format!("DEK-Info {value:?}")))?;
        let key_len = match cipher {
            "AES-128-CBC" => 16,
            "AES-192-CBC" => 24,
            "AES-256-CBC" => 32,
            other => {
                return Err(Error::Unsupported(alloc::format!(
                    "a key encrypted with {other} (fedpki reads AES-CBC; convert it with \
                     `openssl pkcs8 -topk8 -in OLD -out NEW`)"
                )));
            }
        };
        let iv: [u8; 16] = crate::encoding::unhex(iv)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::Malformed(alloc::format!("DEK-Info IV {iv:?}")))?;
        Ok(Self { key_len, iv })
    }

    /// OpenSSL's `EVP_BytesToKey(MD5, salt = IV[..8], count 1)`, then
    /// AES-CBC with PKCS#7 padding. A wrong password shows as bad padding
    /// or, rarely, as a key that does not parse: both are `Decrypt`.
    fn decrypt(&self, password: &[u8], body: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        use md5::Digest;
        let mut key = Zeroizing::new(Vec::with_capacity(48));
        let mut prev: Vec<u8> = Vec::new();
        while key.len() < self.key_len {
            let mut h = md5::Md5::new();
            h.update(&prev);
            h.update(password);
            h.update(&self.iv[..8]);
            prev = h.finalize().to_vec();
            key.extend_from_slice(&prev);
        }
        key.truncate(self.key_len);
        let mut buf = Zeroizing::new(body.to_vec());
        let n = match self.key_len {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &self.iv)
                .map_err(|_| Error::Decrypt)?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map(|p| p.len()),
            24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &self.iv)
                .map_err(|_| Error::Decrypt)?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map(|p| p.len()),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &self.iv)
                .map_err(|_| Error::Decrypt)?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map(|p| p.len()),
        }
        .map_err(|_| Error::Decrypt)?;
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use der::Encode;
    use pkcs8::pkcs5::pbes2::{self, Kdf, ScryptParams};

    /// An `ENCRYPTED PRIVATE KEY` whose KDF is `kdf` (its ciphertext is
    /// junk: the work is refused before any decryption).
    fn asking(kdf: impl FnOnce(&mut pbes2::Parameters)) -> String {
        let mut params =
            pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(1000, &[7u8; 16], [9u8; 16])
                .unwrap();
        kdf(&mut params);
        let info = pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: params.into(),
            encrypted_data: der::asn1::OctetString::new([0u8; 48]).unwrap(),
        };
        crate::encoding::pem("ENCRYPTED PRIVATE KEY", &info.to_der().unwrap()).unwrap()
    }

    #[test]
    fn a_key_asking_for_hours_or_gigabytes_of_kdf_is_refused_at_once() {
        let rounds = asking(|p| {
            if let Kdf::Pbkdf2(k) = &mut p.kdf {
                k.iteration_count = i32::MAX as u32;
            }
        });
        let e = PrivateKey::from_pem(&rounds, Some(b"pw"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2147483647 PBKDF2 rounds"), "{e}");
        let memory = asking(|p| {
            let Kdf::Pbkdf2(k) = &p.kdf else {
                unreachable!()
            };
            p.kdf = Kdf::Scrypt(ScryptParams {
                salt: k.salt,
                cost_parameter: 1 << 24,
                block_size: 8,
                parallelization: 1,
                key_length: None,
            });
        });
        let e = PrivateKey::from_pem(&memory, Some(b"pw"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("scrypt N=16777216, r=8, p=1 (16384 MiB"), "{e}");
        // Within the limits the password is tried (and is wrong here).
        let fine = asking(|_| {});
        assert!(matches!(
            PrivateKey::from_pem(&fine, Some(b"pw")),
            Err(Error::Decrypt)
        ));
    }
}
