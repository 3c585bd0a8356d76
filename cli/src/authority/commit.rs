//! Issuances made durable: one commit to the store, its outcome as the
//! client sees it.

use fedpki_core::crl::Reason;
use fedpki_core::token::TokenError;

use super::refusal::internal;
use super::{Authority, Refusal, Why};
use crate::store::{Change, Outcome};

impl Authority {
    /// Commit an issuance (and the token it spends) durably. `Some(serial)`
    /// when the certificate it renews was renewed before: nothing was
    /// written, and that serial is the successor to answer with.
    pub(super) async fn commit(&self, change: Change) -> Result<Option<String>, Refusal> {
        outcome_result(self.commit_outcome(change).await?)
    }

    /// The store's outcome of one change, unmapped.
    pub(super) async fn commit_outcome(&self, change: Change) -> Result<Outcome, Refusal> {
        self.store
            .commit(change)
            .await
            .map_err(|e| self.store_failed(e))
    }
}

/// An issuance's outcome as the client sees it: the successor already
/// issued for a renewal, or why not.
pub(super) fn outcome_result(outcome: Outcome) -> Result<Option<String>, Refusal> {
    match outcome {
        Outcome::Done => Ok(None),
        Outcome::AlreadyRecorded => Err(internal("a new serial is already in the ledger")),
        Outcome::AlreadyRenewed(successor) => Ok(Some(successor)),
        Outcome::TokenUsed => Err(TokenError::AlreadyUsed.into()),
        Outcome::TokenTooOld => Err(TokenError::Expired.into()),
        Outcome::Revoked(r) => Err(Refusal::new(
            Why::NotAuthorized,
            format!(
                "the certificate was revoked ({}); it cannot be renewed",
                Reason::from_code(r.reason).map_or("unknown reason", |x| x.name())
            ),
        )),
        Outcome::UnknownSerial => Err(Refusal::new(
            Why::NotAuthorized,
            "the certificate is not in this CA's ledger; it cannot be renewed",
        )),
        Outcome::NotAsIssued => Err(not_as_issued()),
        Outcome::KeyCompromised => Err(Refusal::new(
            Why::Forbidden,
            "a certificate of this key was revoked for key compromise, so this CA never \
             certifies the key again: make a new key (a new CSR) and get a new token",
        )),
    }
}

/// A certificate presented under a serial the ledger knows, but not the
/// one recorded under it.
pub(super) fn not_as_issued() -> Refusal {
    Refusal::new(
        Why::NotAuthorized,
        "the certificate presented is not the one this CA issued under its serial (it was \
         altered or forged); nothing was done",
    )
}
