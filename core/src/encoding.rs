//! Small encodings used across fedpki: hex, base64 flavours, PEM, digests.

use alloc::string::String;
use alloc::vec::Vec;
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256, Sha384};

use crate::Error;
use crate::error::malformed;

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Parse hex (either case). Refuses odd lengths and non-hex characters.
pub fn unhex(s: &str) -> Result<Vec<u8>, Error> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(Error::Malformed("hex string of odd length".into()));
    }
    bytes
        .chunks(2)
        .map(|pair| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(Error::Malformed("not a hex string".into())),
        })
        .collect()
}

/// Standard base64 with padding (the token bundle's alphabet).
pub fn b64(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

/// Decode standard base64 with padding.
pub fn unb64(s: &str) -> Result<Vec<u8>, Error> {
    Base64::decode_vec(s).map_err(|e| malformed("base64", e))
}

/// URL-safe base64 without padding (JOSE).
pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decode URL-safe base64 without padding.
pub fn unb64url(s: &str) -> Result<Vec<u8>, Error> {
    Base64UrlUnpadded::decode_vec(s).map_err(|e| malformed("base64url", e))
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-384.
pub fn sha384(data: &[u8]) -> [u8; 48] {
    Sha384::digest(data).into()
}

/// PEM-encode `der` under `label`, LF line endings, 64-column lines.
pub fn pem(label: &str, der: &[u8]) -> Result<String, Error> {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der)
        .map_err(|e| malformed("PEM encoding", e))
}

/// One PEM block: its label and DER contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label, as in `-----BEGIN <label>-----`.
    pub label: String,
    /// The decoded contents.
    pub der: Vec<u8>,
}

/// Split text into its PEM blocks, in order. Text outside blocks is ignored
/// (OpenSSL's "Bag Attributes" and comments); a block that does not decode is
/// an error.
pub fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, Error> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let label_end = after[BEGIN.len()..]
            .find("-----")
            .ok_or_else(|| Error::Malformed("unterminated PEM header".into()))?;
        let label = &after[BEGIN.len()..BEGIN.len() + label_end];
        let end_marker = alloc::format!("-----END {label}-----");
        let end = after
            .find(&end_marker)
            .ok_or_else(|| Error::Malformed(alloc::format!("PEM block {label} has no END line")))?;
        let block = &after[..end + end_marker.len()];
        let (decoded_label, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|e| malformed("PEM", e))?;
        blocks.push(PemBlock {
            label: decoded_label.into(),
            der,
        });
        rest = &after[end + end_marker.len()..];
    }
    Ok(blocks)
}

/// The DER of the only PEM block in `text`, which must carry `label`.
pub fn pem_one(text: &str, label: &str) -> Result<Vec<u8>, Error> {
    let mut blocks = pem_blocks(text)?;
    match blocks.len() {
        0 => Err(Error::Malformed(alloc::format!(
            "expected a PEM block \"{label}\", found no PEM at all"
        ))),
        1 if blocks[0].label == label => Ok(blocks.remove(0).der),
        1 => Err(Error::Malformed(alloc::format!(
            "expected a PEM block \"{label}\", found \"{}\"",
            blocks[0].label
        ))),
        n => Err(Error::Malformed(alloc::format!(
            "expected one PEM block \"{label}\", found {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff").unwrap(), [0x00, 0xab, 0xff]);
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }

    #[test]
    fn pem_blocks_in_order_and_label_checked() {
        let a = pem("CERTIFICATE", &[1, 2, 3]).unwrap();
        let b = pem("CERTIFICATE REQUEST", &[4, 5]).unwrap();
        let text = alloc::format!("junk\n{a}between\n{b}");
        let blocks = pem_blocks(&text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].der, [1, 2, 3]);
        assert_eq!(blocks[1].label, "CERTIFICATE REQUEST");
        assert!(pem_one(&text, "CERTIFICATE").is_err());
        assert_eq!(pem_one(&b, "CERTIFICATE REQUEST").unwrap(), [4, 5]);
        assert!(pem_one(&b, "CERTIFICATE").is_err());
        assert!(pem_one("no pem here", "CERTIFICATE").is_err());
    }
}
