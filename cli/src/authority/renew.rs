//! Renewal over mutual TLS, and taking into the ledger a certificate the
//! intermediate signed before this CA held it (an adopted step-ca's).

use fedpki_core::name::Subject;
use fedpki_core::{Certificate, UnixTime, issue};

use super::refusal::internal;
use super::{Authority, Issued, Refusal, Why, commit::outcome_result};
use crate::store::{CertRecord, Outcome};

impl Authority {
    /// Renew a certificate its holder presented over mutual TLS: same key,
    /// subject and SANs, a new serial and validity. Refused when it was not
    /// issued by this CA, has expired, or was revoked (checked atomically
    /// with the commit).
    pub async fn renew(&self, presented: &Certificate, now: UnixTime) -> Result<Issued, Refusal> {
        self.check_presented(presented, now)?;
        let cn = fedpki_core::chain::common_name(presented)
            .ok_or_else(|| Refusal::new(Why::Malformed, "the certificate has no common name"))?;
        let subject = Subject::new(&cn).map_err(|e| Refusal::new(Why::Malformed, e.to_string()))?;
        let sans = fedpki_core::chain::sans(presented);
        let old = issue::serial_hex(presented);
        let (issued, record) = self.issue(presented.public_key(), &subject, &sans, now)?;
        let mut outcome = self
            .commit_outcome(None, Some(record.clone()), Some(old.clone()), None)
            .await?;
        if outcome == Outcome::UnknownSerial {
            // Issued by this intermediate before fedpki held it (an adopted
            // step-ca): recorded now, then renewed.
            self.record_unseen(presented, now).await?;
            outcome = self
                .commit_outcome(None, Some(record), Some(old), None)
                .await?;
        }
        match outcome_result(outcome)? {
            None => Ok(issued),
            // Renewed before: the same successor again, not another one.
            Some(successor) => self.issued_from_ledger(&successor).await,
        }
    }

    /// A certificate presented over mutual TLS that this CA may act on: a
    /// leaf one of its intermediates (active or retired) signed, valid now.
    fn check_presented(&self, presented: &Certificate, now: UnixTime) -> Result<(), Refusal> {
        let not_ours = || {
            Refusal::new(
                Why::NotAuthorized,
                "the certificate was not issued by this CA",
            )
        };
        let issuers = self.issuers();
        let (issuer, _) = issuers.signer_of(presented).ok_or_else(not_ours)?;
        fedpki_core::chain::check_signed_by(presented, issuer, self.verifier)
            .map_err(|_| not_ours())?;
        fedpki_core::chain::check_valid_at(presented, now).map_err(|_| {
            Refusal::new(
                Why::NotAuthorized,
                "the certificate has expired (or is not yet valid); get a new one with a token",
            )
        })?;
        if fedpki_core::chain::is_ca(presented) {
            return Err(Refusal::new(
                Why::Forbidden,
                "a CA certificate cannot be renewed or revoked by its holder",
            ));
        }
        Ok(())
    }

    /// Record a certificate this CA's intermediate signed that its ledger
    /// has never seen: one step-ca issued before the CA was adopted. Its
    /// holder presented it over mutual TLS (so it chains to our root); it
    /// must be signed by our intermediate, unexpired and a leaf. Already
    /// recorded (a racing request) is fine.
    pub(crate) async fn record_unseen(
        &self,
        presented: &Certificate,
        now: UnixTime,
    ) -> Result<(), Refusal> {
        self.check_presented(presented, now)?;
        let record = CertRecord {
            serial: issue::serial_hex(presented),
            subject: fedpki_core::chain::common_name(presented).unwrap_or_default(),
            sans: fedpki_core::chain::sans(presented)
                .iter()
                .map(ToString::to_string)
                .collect(),
            not_after: presented.not_after().0,
            issued_at: presented.not_before().0,
            der: presented.to_der().map_err(internal)?,
        };
        let by = "adopted: issued before this CA was adopted, first seen here".to_owned();
        match self
            .commit_outcome(None, Some(record), None, Some(by))
            .await?
        {
            Outcome::Done | Outcome::AlreadyRecorded => Ok(()),
            other => outcome_result(other).map(|_| ()),
        }
    }

    /// A certificate this CA issued, answered from its ledger record with
    /// the chain of the intermediate that signed it.
    async fn issued_from_ledger(&self, serial: &str) -> Result<Issued, Refusal> {
        let record = self
            .store
            .certificate(serial)
            .await
            .map_err(|e| self.store_failed(e))?
            .ok_or_else(|| internal(format!("the successor {serial} is not in the ledger")))?;
        let cert = issue::parse_cert_der(&record.der).map_err(internal)?;
        let issuers = self.issuers();
        let (_, ca) = issuers
            .signer_of(&cert)
            .ok_or_else(|| internal(format!("the successor {serial}'s issuer is not held")))?;
        Ok(Issued {
            crt: fedpki_core::encoding::pem("CERTIFICATE", &record.der).map_err(internal)?,
            ca: ca.to_owned(),
            serial: record.serial,
            subject: record.subject,
        })
    }
}
