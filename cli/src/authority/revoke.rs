//! Revocation: by a revoke token, by the certificate's holder over mutual
//! TLS, or by the operator; a key compromise revokes every certificate of
//! that key.

use fedpki_core::Certificate;
use fedpki_core::UnixTime;
use fedpki_core::crl::Reason;
use fedpki_core::issue;
use fedpki_core::token::{self, TokenError};

use crate::store::{Outcome, RevocationRecord, RevokeCommit};

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
    ) -> Result<Revocation, Refusal> {
        let expect = token::Expectations {
            issuer: &self.config.provisioner.name,
            audiences: &self.revoke_audiences,
            max_lifetime_secs: self.config.max_token_lifetime_secs,
        };
        let token = token::verify_with(ott, &self.provisioner, self.verifier, &expect, now)?;
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
            Some((token.jti().to_owned(), token.burn_until().0)),
            by,
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
    ) -> Result<Revocation, Refusal> {
        let serial = normalize_serial(serial)?;
        let own = issue::serial_hex(presented);
        if own != serial {
            // step-ca answers this with 400, so does fedpki.
            return Err(Refusal::new(
                Why::Malformed,
                "the serial in the body is not that of the certificate presented over mutual \
                 TLS: a holder can revoke only its own certificate (or send a revoke token)",
            ));
        }
        let by = format!("holder of {own}");
        match self
            .revoke(serial.clone(), reason, now, None, by.clone())
            .await
        {
            // Issued before the CA was adopted: recorded now, then revoked.
            Err(r) if r.why == Why::Unknown => {
                self.record_unseen(presented, now).await?;
                self.revoke(serial, reason, now, None, by).await
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
        self.revoke(serial, reason, now, None, "operator".into())
            .await
    }

    async fn revoke(
        &self,
        serial: String,
        reason: Reason,
        now: UnixTime,
        burn: Option<(String, u64)>,
        by: String,
    ) -> Result<Revocation, Refusal> {
        let (jti, burn_until) = burn.map_or((None, 0), |(j, u)| (Some(j), u));
        let record = RevocationRecord {
            serial: serial.clone(),
            revoked_at: now.0,
            reason: reason.code(),
        };
        let outcome = self
            .store
            .commit_revoke(RevokeCommit {
                record: record.clone(),
                jti,
                burn_until,
                by,
            })
            .await
            .map_err(|e| self.store_failed(e))?;
        match outcome {
            Outcome::Done => {
                if reason == Reason::KeyCompromise {
                    self.revoke_same_key(&record.serial, now).await?;
                }
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
            Outcome::AlreadyRenewed(_) | Outcome::AlreadyRecorded => {
                Err(internal("a revocation answered as an issuance"))
            }
            Outcome::TokenUsed => Err(TokenError::AlreadyUsed.into()),
            Outcome::TokenTooOld => Err(TokenError::Expired.into()),
        }
    }

    /// A compromised key compromises every certificate over it: revoke the
    /// other certificates of `serial`'s key (its earlier renewals, say), as
    /// keyCompromise too. Repeated until none is left, so a renewal that
    /// committed meanwhile is caught as well.
    async fn revoke_same_key(&self, serial: &str, now: UnixTime) -> Result<(), Refusal> {
        loop {
            let certs = self
                .store
                .certificates()
                .await
                .map_err(|e| self.store_failed(e))?;
            let revoked: std::collections::HashSet<String> = self
                .store
                .revocations()
                .await
                .map_err(|e| self.store_failed(e))?
                .into_iter()
                .map(|r| r.serial)
                .collect();
            let key_of = |der: &[u8]| {
                issue::parse_cert_der(der)
                    .ok()
                    .map(|c| c.public_key().clone())
            };
            let Some(key) = certs
                .iter()
                .find(|c| c.serial == serial)
                .and_then(|c| key_of(&c.der))
            else {
                return Ok(());
            };
            let siblings: Vec<String> = certs
                .iter()
                .filter(|c| !revoked.contains(&c.serial))
                .filter(|c| key_of(&c.der).as_ref() == Some(&key))
                .map(|c| c.serial.clone())
                .collect();
            if siblings.is_empty() {
                return Ok(());
            }
            for sibling in siblings {
                self.store
                    .commit_revoke(RevokeCommit {
                        record: RevocationRecord {
                            serial: sibling,
                            revoked_at: now.0,
                            reason: Reason::KeyCompromise.code(),
                        },
                        jti: None,
                        burn_until: 0,
                        by: format!("key compromise of {serial}"),
                    })
                    .await
                    .map_err(|e| self.store_failed(e))?;
            }
        }
    }
}
