//! How old a key may be: its age counts from the ledger's first
//! certificate of it (`pki install --max-key-age`), and every node
//! certificate ends by the key's limit.

use fedpki_core::{PublicKey, UnixTime};

use super::{Authority, Plan, Refusal, Why};

/// The least validity a certificate of an ageing key may have: below it,
/// the key is refused instead.
const MIN_KEY_LIFE_LEFT: u64 = 86_400;

impl Authority {
    /// When the key was first certified here, when `plan` limits key age
    /// (else not looked up: `None`).
    pub(super) async fn key_birth(
        &self,
        key: &PublicKey,
        plan: &Plan,
    ) -> Result<Option<u64>, Refusal> {
        if plan.max_key_age_secs.is_none() {
            return Ok(None);
        }
        self.store
            .key_birth(&key.pin())
            .await
            .map_err(|e| self.store_failed(e))
    }

    /// A node certificate's notAfter: the plan's lifetime, cut short to
    /// the key's age limit (`max_key_age_secs` from its `birth`, or from
    /// now for a new key); refused when less than a day would be left, so
    /// the holder makes a new key rather than renewing ever more often.
    pub(super) fn not_after(
        &self,
        now: UnixTime,
        birth: Option<u64>,
        plan: &Plan,
    ) -> Result<UnixTime, Refusal> {
        let planned = now.plus(plan.lifetime_secs);
        let Some(max_age) = plan.max_key_age_secs else {
            return Ok(planned);
        };
        let born = birth.unwrap_or(now.0).min(now.0);
        let limit = UnixTime(born).plus(max_age);
        if limit.0 < now.0.saturating_add(MIN_KEY_LIFE_LEFT) {
            let days = |s: u64| s / 86_400;
            return Err(Refusal::new(
                Why::Forbidden,
                format!(
                    "this key is {} days old (first certified here {}) and this CA certifies a \
                     key for at most {} days: make a new key (a new CSR) and ask again",
                    days(now.0 - born),
                    UnixTime(born),
                    days(max_age)
                ),
            ));
        }
        Ok(UnixTime(planned.0.min(limit.0)))
    }
}
