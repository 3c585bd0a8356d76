//! Revocation: by a revoke token, by the certificate's holder over mutual
//! TLS, or by the operator; a key compromise revokes every certificate of
//! that key, in the same commit (the store's rule).

use std::net::IpAddr;

use fedpki_core::Certificate;
use fedpki_core::UnixTime;
use fedpki_core::crl::Reason;
use fedpki_core::issue;
use fedpki_core::token::TokenError;

use crate::platform::events::{self, Event};
use crate::store::{Burn, Change, Outcome, RevocationRecord};

use super::refusal::internal;
use super::{Authority, Refusal, Why};

/// The outcome of a revocation.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// The revocation in force.
    pub record: RevocationRecord,
    /// Whether it was revoked before this request.
    pub already: bool,
}

/// A serial as typed by a person or printed by OpenSSL (`4A:3B…`, any
/// case, colons or spaces) → fedpki's lowercase hex.
pub(crate) fn normalize_serial(s: &str) -> Result<String, Refusal> {
    let hex: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if hex.is_empty()
        || hex.len() > 40
        || !hex.len().is_multiple_of(2)
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Refusal::new(
            Why::Malformed,
            format!("{s:?} is not a certificate serial (hex, as `fedpki pki list` shows it)"),
        ));
    }
    let bytes = fedpki_core::encoding::unhex(&hex)
        .map_err(|e| Refusal::new(Why::Malformed, format!("serial {s:?}: {e}")))?;
    Ok(fedpki_core::serial::canonical_hex(&bytes))
}

impl Authority {
    /// Revoke with a revoke token (`sub` = the serial, `aud` = this CA's
    /// revoke URL). The token is burnt whatever the outcome.
    pub async fn revoke_with_token(
        &self,
        serial: &str,
        ott: &str,
        reason: Reason,
        now: UnixTime,
        from: Option<IpAddr>,
    ) -> Result<Revocation, Refusal> {
        let token = self.verified(ott, &self.revoke_audiences, now)?;
        let serial = normalize_serial(serial)?;
        // As step-ca's, a revoke token names its serial in decimal.
        let sub = &token.claims().sub;
        if fedpki_core::serial::decimal_to_hex(sub).ok().as_deref() != Some(serial.as_str()) {
            return Err(Refusal::new(
                Why::NotAuthorized,
                format!(
                    "the token authorizes revoking serial {sub} (its sub, in decimal), not {}",
                    fedpki_core::serial::hex_to_decimal(&serial).unwrap_or_default()
                ),
            ));
        }
        let by = format!("token {}", token.jti());
        self.revoke(
            serial,
            reason,
            now,
            Some(Burn {
                jti: token.jti().to_owned(),
                until: token.burn_until().0,
            }),
            Err(by),
            from,
        )
        .await
    }

    /// Revoke the certificate its holder presented over mutual TLS.
    pub async fn revoke_by_holder(
        &self,
        presented: &Certificate,
        serial: &str,
        reason: Reason,
        now: UnixTime,
        from: Option<IpAddr>,
    ) -> Result<Revocation, Refusal> {
        let serial = normalize_serial(serial)?;
        self.check_presented(presented, now)?;
        let own = issue::serial_hex(presented);
        if own != serial {
            // step-ca answers this with 400, so does fedpki.
            return Err(Refusal::new(
                Why::Malformed,
                "the serial in the body is not that of the certificate presented over mutual \
                 TLS: a holder can revoke only its own certificate (or send a revoke token)",
            ));
        }
        let holder = Holder {
            by: format!("holder of {own}"),
            presented: presented.to_der().map_err(internal)?,
        };
        match self
            .revoke(serial.clone(), reason, now, None, Ok(holder.clone()), from)
            .await
        {
            // Issued by an adopted step-ca: recorded now, then revoked.
            Err(r) if r.why == Why::Unknown => {
                self.record_unseen(presented, now).await?;
                self.revoke(serial, reason, now, None, Ok(holder), from)
                    .await
            }
            other => other,
        }
    }

    /// Revoke as the operator of the CA folder (the server is stopped).
    pub async fn revoke_by_operator(
        &self,
        serial: &str,
        reason: Reason,
        now: UnixTime,
    ) -> Result<Revocation, Refusal> {
        let serial = normalize_serial(serial)?;
        self.revoke(serial, reason, now, None, Err("operator".into()), None)
            .await
    }

    /// Revoke `serial`, asked by the holder presenting it (`Ok`), or by
    /// whom `Err` says.
    async fn revoke(
        &self,
        serial: String,
        reason: Reason,
        now: UnixTime,
        token: Option<Burn>,
        asker: Result<Holder, String>,
        from: Option<IpAddr>,
    ) -> Result<Revocation, Refusal> {
        let (by, presented) = match asker {
            Ok(h) => (h.by, Some(h.presented)),
            Err(by) => (by, None),
        };
        let record = RevocationRecord {
            serial: serial.clone(),
            revoked_at: now.0,
            reason: reason.code(),
        };
        let outcome = self
            .store
            .commit(Change::Revoke {
                record: record.clone(),
                token,
                by,
                presented,
                from,
            })
            .await
            .map_err(|e| self.store_failed(e))?;
        match outcome {
            Outcome::Done => {
                events::report(&Event::Revoked {
                    serial: &record.serial,
                    reason_code: record.reason,
                    from,
                });
                Ok(Revocation {
                    record,
                    already: false,
                })
            }
            Outcome::Revoked(prior) => Ok(Revocation {
                record: prior,
                already: true,
            }),
            Outcome::UnknownSerial => Err(Refusal::new(
                Why::Unknown,
                format!("this CA issued no certificate with serial {serial}"),
            )),
            Outcome::NotAsIssued => Err(super::commit::not_as_issued()),
            Outcome::AlreadyRenewed(_) | Outcome::AlreadyRecorded | Outcome::KeyCompromised => {
                Err(internal("a revocation answered as an issuance"))
            }
            Outcome::TokenUsed => Err(TokenError::AlreadyUsed.into()),
            Outcome::TokenTooOld => Err(TokenError::Expired.into()),
        }
    }
}

/// The holder of a certificate, asking over mutual TLS.
#[derive(Debug, Clone)]
struct Holder {
    /// Who, for the audit log.
    by: String,
    /// What it presented, DER: the ledger's record must be exactly it.
    presented: Vec<u8>,
}
