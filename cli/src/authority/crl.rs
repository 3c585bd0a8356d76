//! The CRL the authority signs, and how its numbers grow.

use fedpki_core::UnixTime;
use fedpki_core::crl::{self, Reason};

use super::Authority;

/// How long a CRL is valid; the server signs a new one at two thirds of
/// that, and after every revocation.
pub(crate) const CRL_LIFETIME_SECS: u64 = 24 * 3600;

impl Authority {
    /// A complete CRL over every revocation, signed by the intermediate,
    /// valid [`CRL_LIFETIME_SECS`] from `now`.
    pub async fn crl(&self, number: u64, now: UnixTime) -> crate::error::Result<Vec<u8>> {
        let revoked: Vec<crl::Revoked> = self
            .store
            .revocations()
            .await?
            .into_iter()
            .map(|r| crl::Revoked {
                serial_hex: r.serial,
                at: UnixTime(r.revoked_at),
                reason: Reason::from_code(r.reason).unwrap_or(Reason::Unspecified),
            })
            .collect();
        Ok(crl::build(
            &self.issuer(),
            &revoked,
            number,
            now,
            now.plus(CRL_LIFETIME_SECS),
        )?)
    }
}

/// The next cRLNumber: milliseconds since the epoch, or one more than the
/// last if the clock has not moved on (numbers only grow, also across
/// restarts while the clock does).
pub(crate) fn crl_number(last: u64) -> u64 {
    crate::platform::sys::now_ms().max(last.saturating_add(1))
}
