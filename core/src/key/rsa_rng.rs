//! The caller's [`Entropy`] as the random source `rsa` generates keys
//! from (rand_core's fallible, cryptographic RNG traits).

use crate::Entropy;

/// `Entropy` seen as a `rand_core::TryCryptoRng`.
pub(super) struct EntropyRng<'a>(pub &'a mut dyn Entropy);

/// The entropy source failed.
#[derive(Debug)]
pub(super) struct Failed;

impl core::fmt::Display for Failed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the entropy source failed")
    }
}

impl core::error::Error for Failed {}

impl rand_core::TryRng for EntropyRng<'_> {
    type Error = Failed;
    fn try_next_u32(&mut self) -> Result<u32, Failed> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Failed> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Failed> {
        self.0.fill(dst).map_err(|_| Failed)
    }
}

impl rand_core::TryCryptoRng for EntropyRng<'_> {}
