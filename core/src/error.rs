//! The one error type of `fedpki-core`.

use alloc::string::String;
use core::fmt;

/// Everything that can go wrong in the core. Each variant says what was
/// wrong in words a user can act on; none carries a foreign type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Input could not be decoded (PEM, DER, base64, JSON). The text says what.
    Malformed(String),
    /// A key, algorithm or parameter that fedpki does not support.
    Unsupported(String),
    /// A signature did not verify.
    BadSignature(&'static str),
    /// The token was refused; see [`crate::token::TokenError`].
    Token(crate::token::TokenError),
    /// A name (subject, SAN) is not acceptable.
    InvalidName(String),
    /// A request asked for something the policy does not allow.
    Policy(String),
    /// A chain or certificate check failed.
    Chain(String),
    /// Decrypting a private key failed: wrong password or corrupt file.
    Decrypt,
    /// The entropy source failed.
    Entropy,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "malformed input: {what}"),
            Self::Unsupported(what) => write!(f, "unsupported: {what}"),
            Self::BadSignature(what) => write!(f, "signature check failed: {what}"),
            Self::Token(e) => write!(f, "token refused: {e}"),
            Self::InvalidName(what) => write!(f, "invalid name: {what}"),
            Self::Policy(what) => write!(f, "not allowed: {what}"),
            Self::Chain(what) => write!(f, "certificate check failed: {what}"),
            Self::Decrypt => f.write_str(
                "could not decrypt the private key: wrong password, or the key file is corrupt",
            ),
            Self::Entropy => f.write_str("the system's random number source failed"),
        }
    }
}

impl core::error::Error for Error {}

impl From<crate::token::TokenError> for Error {
    fn from(e: crate::token::TokenError) -> Self {
        Self::Token(e)
    }
}

pub(crate) fn malformed(what: &str, e: impl fmt::Display) -> Error {
    Error::Malformed(alloc::format!("{what}: {e}"))
}
