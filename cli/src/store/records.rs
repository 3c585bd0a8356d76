//! What the store keeps and what it is asked to change.

use std::net::IpAddr;

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
    /// The key id (hex) of the CA key that signed it, from its
    /// authorityKeyIdentifier: whose CRL lists it. Empty when unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
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
            issuer: issuer_of(cert),
        }
    }

    /// The key and the issuer of a certificate's DER (see
    /// [`CertRecord::key`], [`CertRecord::issuer`]): for a record kept
    /// before they were.
    pub(crate) fn key_and_issuer_of_der(der: &[u8]) -> (String, String) {
        fedpki_core::Certificate::from_der(der)
            .map(|c| (c.public_key().pin(), issuer_of(&c)))
            .unwrap_or_default()
    }
}

fn issuer_of(cert: &fedpki_core::Certificate) -> String {
    cert.authority_key_id()
        .map(|k| fedpki_core::encoding::hex(&k))
        .unwrap_or_default()
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

/// A one-time token spent by a change: its id, and until when it must be
/// remembered (then it may be forgotten: it has expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burn {
    /// The token id (`jti`).
    pub jti: String,
    /// Until when it stays burnt (Unix seconds).
    pub until: u64,
}

/// One of the CA's atomic intents, made durable with its audit line in one
/// commit (or, refused, with nothing but the token it spent).
#[derive(Debug, Clone)]
pub enum Change {
    /// Record a certificate the CA issued: for `token` (spent whatever the
    /// outcome), or asked by whom `by` says (the operator who compared a
    /// request's hash, the CA's own server). A key barred for compromise
    /// is refused.
    Issue {
        /// The token it spends.
        token: Option<Burn>,
        /// The certificate.
        cert: CertRecord,
        /// Who asked, when no token says.
        by: Option<String>,
        /// The client's address, for a request over the network.
        from: Option<IpAddr>,
    },
    /// Only spend a token: its request passed the token's checks and was
    /// refused after them (its CSR).
    Burn {
        /// The token.
        token: Burn,
        /// When (Unix seconds), for its audit line.
        at: u64,
        /// The client's address.
        from: Option<IpAddr>,
    },
    /// Renew `old`, presented over mutual TLS as `presented`: refused
    /// unless `presented` is byte for byte the certificate recorded under
    /// `old`, `old` is not revoked, and it has no live successor (then
    /// that successor is the answer). Decided in the store's one writer,
    /// so a revocation racing a renewal cannot be lost.
    Renew {
        /// The serial renewed.
        old: String,
        /// The certificate its holder presented, DER.
        presented: Vec<u8>,
        /// The successor.
        cert: CertRecord,
        /// The holder's address.
        from: Option<IpAddr>,
    },
    /// Take into the ledger a certificate first seen (issued by an adopted
    /// step-ca); one already recorded is left as it is.
    Record {
        /// The certificate.
        cert: CertRecord,
        /// Why it is taken in, for the audit log.
        by: String,
    },
    /// Revoke; for key compromise, every certificate of that key too.
    Revoke {
        /// The revocation.
        record: RevocationRecord,
        /// A revoke token it spends, if one authorized it.
        token: Option<Burn>,
        /// Who asked, for the audit log.
        by: String,
        /// For a revocation by the holder: the certificate presented, DER;
        /// refused unless it is the one recorded under the serial.
        presented: Option<Vec<u8>>,
        /// The client's address, for a request over the network.
        from: Option<IpAddr>,
    },
}

impl Change {
    /// The address of the client that asked for it over the network.
    pub(crate) fn from(&self) -> Option<IpAddr> {
        match self {
            Self::Issue { from, .. }
            | Self::Burn { from, .. }
            | Self::Renew { from, .. }
            | Self::Revoke { from, .. } => *from,
            Self::Record { .. } => None,
        }
    }

    /// The token this change spends, and until when it must stay burnt.
    pub(crate) fn token(&self) -> Option<(&str, u64)> {
        let burn = match self {
            Self::Issue { token, .. } | Self::Revoke { token, .. } => token.as_ref(),
            Self::Burn { token, .. } => Some(token),
            Self::Renew { .. } | Self::Record { .. } => None,
        };
        burn.map(|b| (b.jti.as_str(), b.until))
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
    /// Record: a certificate with that serial is already in the ledger;
    /// nothing was written.
    AlreadyRecorded,
    /// Renew or revoke by the holder: the certificate presented is not the
    /// one recorded under its serial; nothing was written.
    NotAsIssued,
    /// Issue or renew: a certificate of this key was revoked for key
    /// compromise, so the key is never certified again; nothing but the
    /// token was written.
    KeyCompromised,
}
