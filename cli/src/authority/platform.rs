//! What an authority runs on besides its CA, injected so tests can fix
//! the clock and the randomness.

use std::fmt;

use fedpki_core::Entropy;

use crate::platform::sys::{Clock, OsEntropy, SystemClock};

/// What an authority runs on besides its CA: the cryptography, the clock
/// (serial numbers, log times) and the randomness (serial numbers).
pub struct Platform {
    /// Signature verification and signing keys.
    pub crypto: fedpki_core::CryptoProvider,
    /// Time.
    pub clock: Box<dyn Clock>,
    /// Randomness.
    pub entropy: Box<dyn Entropy + Send>,
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Platform")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// The server's: ring, the system clock, the OS's randomness.
    pub fn system() -> Self {
        Self {
            crypto: crate::platform::ring_backend::RING_PROVIDER,
            clock: Box::new(SystemClock),
            entropy: Box::new(OsEntropy),
        }
    }
}
