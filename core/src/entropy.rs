//! Randomness comes from the caller: the OS in the CLI, `crypto.getRandomValues`
//! in the browser, a fixed stream in tests.

use crate::Error;

/// A source of cryptographically secure random bytes.
pub trait Entropy {
    /// Fill `dest` entirely with random bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error>;
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        (**self).fill(dest)
    }
}
