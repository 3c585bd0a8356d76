//! Serial numbers as text. fedpki's files, logs and command line write
//! them in lowercase hex, as OpenSSL prints them; step-ca's API (and so the
//! step CLI, and the `sub` of a revoke token) writes them in decimal, as
//! Go's `big.Int.String()`. These are the only conversions between the two.

use alloc::string::String;
use alloc::vec::Vec;

use crate::Error;

/// RFC 5280 §4.1.2.2: a serial is at most 20 octets.
pub const MAX_SERIAL_BYTES: usize = 20;

/// The canonical hex of a positive serial's big-endian bytes: no leading
/// zero octets (DER adds one when the top bit is set), at least one octet.
pub fn canonical_hex(bytes: &[u8]) -> String {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    crate::encoding::hex(&bytes[start.min(bytes.len())..])
}

/// A decimal serial (step-ca's wire form) → canonical hex.
pub fn decimal_to_hex(text: &str) -> Result<String, Error> {
    let bad = || {
        Error::Malformed(alloc::format!(
            "serial {text:?} is not a decimal number of at most {MAX_SERIAL_BYTES} octets \
             (step-ca's API writes serials in decimal)"
        ))
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut bytes: Vec<u8> = Vec::new(); // little-endian while building
    for digit in text.bytes().map(|b| b - b'0') {
        let mut carry = u16::from(digit);
        for byte in bytes.iter_mut() {
            let v = u16::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry > 0 {
            bytes.push(carry as u8);
        }
        if bytes.len() > MAX_SERIAL_BYTES {
            return Err(bad());
        }
    }
    if bytes.is_empty() {
        bytes.push(0);
    }
    bytes.reverse();
    Ok(canonical_hex(&bytes))
}

/// Hex (as fedpki writes it, or OpenSSL with colons) → step-ca's decimal.
pub fn hex_to_decimal(hex: &str) -> Result<String, Error> {
    let clean: String = hex.chars().filter(|c| *c != ':').collect();
    let mut bytes = crate::encoding::unhex(&clean)
        .map_err(|_| Error::Malformed(alloc::format!("serial {hex:?} is not hexadecimal")))?;
    if bytes.len() > MAX_SERIAL_BYTES + 1 {
        return Err(Error::Malformed(alloc::format!(
            "serial {hex:?} is longer than {MAX_SERIAL_BYTES} octets"
        )));
    }
    // Repeated division by 10, collecting remainders.
    let mut digits = Vec::new();
    while bytes.iter().any(|b| *b != 0) {
        let mut rem = 0u16;
        for byte in bytes.iter_mut() {
            let v = (rem << 8) | u16::from(*byte);
            *byte = (v / 10) as u8;
            rem = v % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    Ok(digits.into_iter().map(char::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_both_ways() {
        for (dec, hex) in [
            ("0", "00"),
            ("1", "01"),
            ("255", "ff"),
            ("256", "0100"),
            // A 16-octet serial with the top bit set (values from Python int()).
            (
                "263238212422983208054204924136975710289",
                "c609d5e8a6ef44fb2c2c1fa98e6f3851",
            ),
            (
                "1461501637330902918203684832716283019655932542975",
                "ffffffffffffffffffffffffffffffffffffffff",
            ),
        ] {
            assert_eq!(decimal_to_hex(dec).unwrap(), hex, "{dec}");
            assert_eq!(hex_to_decimal(hex).unwrap(), dec, "{hex}");
        }
        assert_eq!(hex_to_decimal("00:c6:09").unwrap(), "50697");
        assert_eq!(canonical_hex(&[0, 0xc6, 0x09]), "c609");
        assert_eq!(canonical_hex(&[0]), "00");
    }

    #[test]
    fn refusals_name_the_input() {
        for bad in ["", "12a", "-5", "0x10", " 12", "1e3"] {
            let err = decimal_to_hex(bad).unwrap_err();
            assert!(alloc::format!("{err}").contains("decimal"), "{bad}");
        }
        // 2^160 needs 21 octets.
        assert!(decimal_to_hex("1461501637330902918203684832716283019655932542976").is_err());
        assert!(hex_to_decimal("xyz").is_err());
    }
}
