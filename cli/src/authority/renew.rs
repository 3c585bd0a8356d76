//! What a holder presents over mutual TLS (to renew or to revoke it), and
//! taking into the ledger a certificate an adopted step-ca issued.
//!
//! A presented certificate is trusted only as issued: signed by one of our
//! intermediates that the root has not revoked, valid now, a leaf, and,
//! under a serial the ledger knows, byte for byte the certificate recorded
//! there (the store decides that, with the commit). A serial the ledger
//! does not know is taken in only on an adopted CA, only from the
//! intermediate adopted, and only if it was issued before the adoption.

use fedpki_core::name::Subject;
use fedpki_core::{Certificate, UnixTime, issue};

use super::commit::not_as_issued;
use super::refusal::internal;
use super::{Authority, Issued, Refusal, Why, commit::outcome_result};
use crate::platform::events::Issuance;
use crate::store::{CertRecord, Change, Outcome};

impl Authority {
    /// Renew a certificate its holder presented over mutual TLS: same key,
    /// subject and SANs, a new serial and validity. Refused when it is not
    /// trusted as issued (above), has expired, or was revoked (checked
    /// atomically with the commit).
    pub async fn renew(
        &self,
        presented: &Certificate,
        now: UnixTime,
        from: Option<std::net::IpAddr>,
    ) -> Result<Issued, Refusal> {
        self.check_presented(presented, now)?;
        let cn = fedpki_core::chain::common_name(presented)
            .ok_or_else(|| Refusal::new(Why::Malformed, "the certificate has no common name"))?;
        let subject = Subject::new(&cn).map_err(|e| Refusal::new(Why::Malformed, e.to_string()))?;
        let sans = fedpki_core::chain::sans(presented);
        // With a roster, the renewal is what the roster says now.
        let plan = self.plan(&subject, &sans)?;
        let birth = self.key_birth(presented.public_key(), &plan).await?;
        let (issued, cert) = self.issue(presented.public_key(), &plan, now, birth)?;
        let renew = Change::Renew {
            old: issue::serial_hex(presented),
            presented: presented.to_der().map_err(internal)?,
            cert,
            from,
        };
        let mut outcome = self.commit_outcome(renew.clone()).await?;
        if outcome == Outcome::UnknownSerial {
            // Issued by an adopted step-ca before fedpki held it: recorded
            // now, then renewed.
            self.record_unseen(presented, now).await?;
            outcome = self.commit_outcome(renew).await?;
        }
        match outcome_result(outcome)? {
            None => {
                super::reported(Issuance::Renewal, &issued, from);
                Ok(issued)
            }
            // Renewed before: the same successor again, not another one.
            Some(successor) => self.issued_from_ledger(&successor).await,
        }
    }

    /// A certificate presented over mutual TLS that this CA may act on: a
    /// leaf one of its intermediates (active or retired, not revoked by
    /// the root) signed, valid now. The key id of that intermediate.
    pub(super) fn check_presented(
        &self,
        presented: &Certificate,
        now: UnixTime,
    ) -> Result<String, Refusal> {
        let not_ours = || {
            Refusal::new(
                Why::NotAuthorized,
                "the certificate was not issued by this CA",
            )
        };
        let issuers = self.issuers();
        let signer = issuers.signer_of(presented).ok_or_else(not_ours)?;
        fedpki_core::chain::check_signed_by(presented, signer.cert, self.verifier)
            .map_err(|_| not_ours())?;
        if let Some(r) = signer.revoked_by_root {
            return Err(Refusal::new(
                Why::NotAuthorized,
                format!(
                    "the intermediate that signed this certificate ({}) was revoked by the root \
                     ({}, {}): its certificates are no longer renewed or revoked by their \
                     holders; get a new certificate with a token",
                    signer.kid,
                    r.reason.name(),
                    r.at
                ),
            ));
        }
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
        Ok(signer.kid.to_owned())
    }

    /// Record a certificate the ledger has never seen, if it is one an
    /// adopted step-ca issued: the CA was adopted, the certificate is the
    /// adopted intermediate's and was issued before the adoption. Already
    /// recorded (a racing request) is fine.
    pub(crate) async fn record_unseen(
        &self,
        presented: &Certificate,
        now: UnixTime,
    ) -> Result<(), Refusal> {
        let kid = self.check_presented(presented, now)?;
        let unknown = Refusal::new(
            Why::NotAuthorized,
            "the certificate is not in this CA's ledger; it cannot be renewed or revoked by its \
             holder",
        );
        let Some(adopted) = &self.config.adopted else {
            // A native CA records every certificate it issues: one it has
            // no record of, it did not issue.
            return Err(unknown);
        };
        if kid != adopted.intermediate || presented.not_before().0 >= adopted.at {
            return Err(unknown);
        }
        let record = CertRecord::of(
            presented,
            presented.to_der().map_err(internal)?,
            presented.not_before().0,
        );
        let by = format!(
            "adopted: issued by the step-ca's intermediate {kid} before this CA was adopted \
             ({}), first seen here",
            UnixTime(adopted.at)
        );
        match self
            .commit_outcome(Change::Record {
                cert: record.clone(),
                by,
            })
            .await?
        {
            Outcome::Done => Ok(()),
            // Recorded meanwhile: the one recorded must be this one.
            Outcome::AlreadyRecorded => match self
                .store
                .certificate(&record.serial)
                .await
                .map_err(|e| self.store_failed(e))?
            {
                Some(r) if r.der == record.der => Ok(()),
                _ => Err(not_as_issued()),
            },
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
        let signer = issuers
            .signer_of(&cert)
            .ok_or_else(|| internal(format!("the successor {serial}'s issuer is not held")))?;
        Ok(Issued {
            crt: fedpki_core::encoding::pem("CERTIFICATE", &record.der).map_err(internal)?,
            ca: signer.pem.to_owned(),
            serial: record.serial,
            subject: record.subject,
        })
    }
}
