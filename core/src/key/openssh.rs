//! OpenSSH's forms of an ECDSA key (RFC 5656 §3.1, and OpenSSH's
//! PROTOCOL.key for the private one, unencrypted): what Flower's SuperNode
//! authentication reads (`--auth-supernode-private-key`) and what its
//! SuperLink registers (`flwr supernode register KEY.pub`). Only NIST
//! curves: Flower refuses the others.

use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use super::{Key, PrivateKey};
use crate::encoding::{b64, sha256};
use crate::{Error, KeyAlgorithm, PublicKey};

/// OpenSSH's key type and curve names of a NIST curve.
fn names(algorithm: KeyAlgorithm) -> Result<(&'static str, &'static str), Error> {
    match algorithm {
        KeyAlgorithm::P256 => Ok(("ecdsa-sha2-nistp256", "nistp256")),
        KeyAlgorithm::P384 => Ok(("ecdsa-sha2-nistp384", "nistp384")),
        other => Err(Error::Unsupported(alloc::format!(
            "an OpenSSH ECDSA key needs a P-256 or P-384 key, not {other:?}"
        ))),
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// RFC 4251's mpint of a big-endian unsigned number.
fn put_mpint(out: &mut Zeroizing<Vec<u8>>, unsigned: &[u8]) {
    let start = unsigned
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(unsigned.len());
    let digits = &unsigned[start..];
    let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
    out.extend_from_slice(&((digits.len() + usize::from(pad)) as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
}

/// The public key blob: type, curve, SEC1 point.
fn public_blob(key: &PublicKey) -> Result<Vec<u8>, Error> {
    let (kind, curve) = names(key.algorithm())?;
    let point = key
        .key_bytes()
        .ok_or_else(|| Error::Malformed("the public key is not whole bytes".into()))?;
    let mut blob = Vec::new();
    put_string(&mut blob, kind.as_bytes());
    put_string(&mut blob, curve.as_bytes());
    put_string(&mut blob, point);
    Ok(blob)
}

/// `ecdsa-sha2-nistp256 AAAA… comment`, one line as `ssh-keygen` writes
/// `KEY.pub`.
pub fn openssh_public(key: &PublicKey, comment: &str) -> Result<String, Error> {
    let (kind, _) = names(key.algorithm())?;
    Ok(alloc::format!(
        "{kind} {} {comment}\n",
        b64(&public_blob(key)?)
    ))
}

/// `-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted (Flower reads it
/// without a passphrase; the file is the holder's to keep 0600).
pub fn openssh_private(key: &PrivateKey, comment: &str) -> Result<Zeroizing<String>, Error> {
    let public = crate::SigningKey::public_key(key);
    let (kind, curve) = names(public.algorithm())?;
    let scalar: Zeroizing<Vec<u8>> = match &key.0 {
        Key::P256(k) => Zeroizing::new(k.to_bytes().to_vec()),
        Key::P384(k) => Zeroizing::new(k.to_bytes().to_vec()),
        _ => return Err(Error::Unsupported("not a NIST curve key".into())),
    };
    let blob = public_blob(&public)?;
    // The check words only tell a right passphrase from a wrong one; any
    // value does for an unencrypted key, so one that never changes.
    let check = &sha256(&blob)[..4];
    let mut secret = Zeroizing::new(Vec::new());
    secret.extend_from_slice(check);
    secret.extend_from_slice(check);
    put_string(&mut secret, kind.as_bytes());
    put_string(&mut secret, curve.as_bytes());
    put_string(&mut secret, public.key_bytes().unwrap_or_default());
    put_mpint(&mut secret, &scalar);
    put_string(&mut secret, comment.as_bytes());
    let mut pad = 1u8;
    while secret.len() % 8 != 0 {
        secret.push(pad);
        pad += 1;
    }
    let mut file = Zeroizing::new(Vec::new());
    file.extend_from_slice(b"openssh-key-v1\0");
    put_string(&mut file, b"none");
    put_string(&mut file, b"none");
    put_string(&mut file, b"");
    file.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut file, &blob);
    put_string(&mut file, &secret);
    let text = Zeroizing::new(b64(&file));
    let mut out = Zeroizing::new(String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    for line in text.as_bytes().chunks(70) {
        out.push_str(core::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyType;
    use crate::key::tests::TestEntropy;

    #[test]
    fn nist_keys_only_and_the_mpint_keeps_its_sign() {
        let rng = &mut TestEntropy(7);
        let ed = PrivateKey::generate(KeyType::Ed25519, rng).unwrap();
        assert!(openssh_private(&ed, "x").is_err());
        let p384 = PrivateKey::generate(KeyType::P384, rng).unwrap();
        let public = openssh_public(&crate::SigningKey::public_key(&p384), "node1").unwrap();
        assert!(public.starts_with("ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ"));
        assert!(public.ends_with(" node1\n"));
        let mut m = Zeroizing::new(Vec::new());
        put_mpint(&mut m, &[0, 0, 0x80, 1]);
        assert_eq!(*m, [0, 0, 0, 3, 0, 0x80, 1]);
    }
}
