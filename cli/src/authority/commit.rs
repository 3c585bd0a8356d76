//! Issuances made durable: one commit to the store, its outcome as the
//! client sees it.

use fedpki_core::crl::Reason;
use fedpki_core::token::TokenError;

use super::refusal::internal;
use super::{Authority, Refusal, Why};
use crate::store::{CertRecord, IssueCommit, Outcome};

impl Authority {
    /// Record an issuance (and burn its token) durably. `Some(serial)` when
    /// `renews` was renewed before: nothing was written, and that serial is
    /// the successor to answer with.
    pub(super) async fn commit(
        &self,
        burn: Option<(String, u64)>,
        cert: Option<CertRecord>,
        renews: Option<String>,
    ) -> Result<Option<String>, Refusal> {
        self.commit_as(burn, cert, renews, None).await
    }

    /// [`Self::commit`], saying who asked when no token or renewal does.
    pub(super) async fn commit_as(
        &self,
        burn: Option<(String, u64)>,
        cert: Option<CertRecord>,
        renews: Option<String>,
        by: Option<String>,
    ) -> Result<Option<String>, Refusal> {
        outcome_result(self.commit_outcome(burn, cert, renews, by).await?)
    }

    /// The store's outcome of one issuance commit, unmapped.
    pub(super) async fn commit_outcome(
        &self,
        burn: Option<(String, u64)>,
        cert: Option<CertRecord>,
        renews: Option<String>,
        by: Option<String>,
    ) -> Result<Outcome, Refusal> {
        let (jti, burn_until) = burn.map_or((None, 0), |(j, u)| (Some(j), u));
        self.store
            .commit_issue(IssueCommit {
                jti,
                burn_until,
                cert,
                renews,
                at: self.clock.now().0,
                by,
            })
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
    }
}
