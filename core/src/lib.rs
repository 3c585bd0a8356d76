//! `fedpki-core`: the parts of fedpki that are pure computation.
//!
//! Keys, certificate signing requests, the root / intermediate / leaf
//! certificate profiles, issuance, chain checks and the one-time enrollment
//! token. Nothing here touches a file, a socket or a clock, and nothing draws
//! its own randomness: time is passed in as [`UnixTime`] and randomness
//! through the [`Entropy`] trait, so the same code runs in the CA server, the
//! command-line client, the browser (wasm32) and the tests.
//!
//! Signatures go through two small seams: [`SigningKey`] (what a CA key can
//! do, so an HSM or a faster backend can stand in) and [`SignatureVerifier`]
//! (how a signature over a message is checked against a
//! [`PublicKey`]). [`RUST_CRYPTO`] is the portable implementation.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cert;
pub mod chain;
pub mod crl;
pub mod csr;
pub mod encoding;
mod entropy;
mod error;
pub mod issue;
#[cfg(feature = "jwe")]
pub mod jwe;
pub mod key;
pub mod name;
pub mod package;
pub mod profile;
pub mod provider;
mod public_key;
pub mod serial;
pub mod token;

pub use cert::Certificate;
pub use entropy::Entropy;
pub use error::Error;
pub use key::{KeyType, PrivateKey, SigningKey};
pub use provider::{CryptoProvider, RUST_CRYPTO, RUST_CRYPTO_PROVIDER, SignatureVerifier};
pub use public_key::{KeyAlgorithm, PublicKey, SignatureAlgorithm};

/// Seconds since the Unix epoch, as the caller's clock sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub u64);

impl core::fmt::Display for UnixTime {
    /// RFC 3339 in UTC (`2026-12-02T06:00:00Z`), or the seconds when the
    /// time is beyond what X.509 can write.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match der::DateTime::from_unix_duration(core::time::Duration::from_secs(self.0)) {
            Ok(d) => write!(f, "{d}"),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

impl UnixTime {
    /// This time plus `secs` seconds (saturating).
    pub fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// This time minus `secs` seconds (saturating at the epoch).
    pub fn minus(self, secs: u64) -> Self {
        Self(self.0.saturating_sub(secs))
    }
}
