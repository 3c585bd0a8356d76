//! What the store keeps and what it is asked to change.

use serde::{Deserialize, Serialize};

/// One issued certificate, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Subject common name.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// notAfter (Unix seconds).
    pub not_after: u64,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// The certificate, DER (base64 in JSON).
    #[serde(with = "der_b64")]
    pub der: Vec<u8>,
    /// The key it certifies: hex SHA-256 of its SubjectPublicKeyInfo, how
    /// the ledger finds every certificate of one key. Empty when unknown
    /// (a record whose DER does not parse).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

impl CertRecord {
    /// The record of `cert` (whose DER is `der`), issued at `issued_at`:
    /// its names as the certificate carries them.
    pub fn of(cert: &fedpki_core::Certificate, der: Vec<u8>, issued_at: u64) -> Self {
        Self {
            serial: fedpki_core::issue::serial_hex(cert),
            subject: fedpki_core::chain::common_name(cert).unwrap_or_default(),
            sans: fedpki_core::chain::sans(cert)
                .iter()
                .map(ToString::to_string)
                .collect(),
            not_after: cert.not_after().0,
            issued_at,
            der,
            key: cert.public_key().pin(),
        }
    }

    /// The key of a certificate's DER (see [`CertRecord::key`]).
    pub(crate) fn key_of_der(der: &[u8]) -> String {
        fedpki_core::Certificate::from_der(der)
            .map(|c| c.public_key().pin())
            .unwrap_or_default()
    }
}

mod der_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fedpki_core::encoding::b64(der))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        fedpki_core::encoding::unb64(&text).map_err(serde::de::Error::custom)
    }
}

/// A revocation, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// When (Unix seconds).
    pub revoked_at: u64,
    /// RFC 5280 reason code.
    pub reason: u8,
}

/// What one issuance asks the store to make durable, atomically.
#[derive(Debug, Clone)]
pub struct IssueCommit {
    /// The token id to burn; `None` for a request the operator confirmed
    /// by hand (air-gapped signing without a token) or a renewal.
    pub jti: Option<String>,
    /// Until when the burnt id must be remembered (then it may be pruned).
    pub burn_until: u64,
    /// The certificate to record; `None` burns the token only (a request
    /// refused after its token was accepted).
    pub cert: Option<CertRecord>,
    /// For a renewal: the serial renewed. The commit is refused if that
    /// certificate has been revoked (decided in the store's one writer, so a
    /// revocation racing a renewal cannot be lost).
    pub renews: Option<String>,
    /// For a renewal: the certificate presented, DER. The commit is refused
    /// unless it is, byte for byte, the one recorded under `renews` (a
    /// certificate forged with a known serial is not that certificate).
    pub presented: Option<Vec<u8>>,
    /// When it was decided (Unix seconds): the time of a token-only entry.
    pub at: u64,
    /// Who asked, for the audit log, when neither a token nor a renewal
    /// says (the operator, the CA's own server).
    pub by: Option<String>,
}

/// What one revocation asks the store to make durable, atomically.
#[derive(Debug, Clone)]
pub struct RevokeCommit {
    /// The revocation.
    pub record: RevocationRecord,
    /// A revoke token's id to burn, if one authorized it.
    pub jti: Option<String>,
    /// Until when the burnt id must be remembered.
    pub burn_until: u64,
    /// Who asked, for the audit log.
    pub by: String,
    /// For a revocation by the holder: the certificate presented, DER;
    /// refused unless it is the one recorded under the serial.
    pub presented: Option<Vec<u8>>,
}

/// A change to the CA's state.
#[derive(Debug, Clone)]
pub enum Change {
    /// Issue or renew (and burn a token).
    Issue(IssueCommit),
    /// Revoke (and burn a token).
    Revoke(RevokeCommit),
}

impl Change {
    /// The token this change spends, and until when it must stay burnt.
    pub(crate) fn token(&self) -> Option<(&str, u64)> {
        let (jti, until) = match self {
            Self::Issue(c) => (&c.jti, c.burn_until),
            Self::Revoke(r) => (&r.jti, r.burn_until),
        };
        jti.as_deref().map(|j| (j, until))
    }
}

/// Outcome of a [`Change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and durable.
    Done,
    /// The token had been used before; nothing was written.
    TokenUsed,
    /// The token expired before the store's last cleanup of burnt ids, so
    /// whether it was used can no longer be told: refused, whatever the
    /// clock says now (a clock stepped back cannot revive it).
    TokenTooOld,
    /// Revoke or renew: no certificate with that serial was issued here;
    /// nothing was written.
    UnknownSerial,
    /// Revoke: already revoked (the earlier record); nothing was written.
    /// Renew: the certificate renewed is revoked; nothing was written.
    Revoked(RevocationRecord),
    /// Renew: the certificate was renewed before and that successor (its
    /// serial) is not revoked; nothing was written. One key holds one live
    /// line of certificates, and a client whose answer was lost gets the
    /// same successor again.
    AlreadyRenewed(String),
    /// Issue (adopt): a certificate with that serial is already in the
    /// ledger; nothing was written.
    AlreadyRecorded,
    /// Renew or revoke by the holder: the certificate presented is not the
    /// one recorded under its serial; nothing was written.
    NotAsIssued,
    /// Issue or renew: a certificate of this key was revoked for key
    /// compromise, so the key is never certified again; nothing but the
    /// token was written.
    KeyCompromised,
}
