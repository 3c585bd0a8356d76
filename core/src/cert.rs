//! A parsed X.509 certificate, as fedpki's API hands it around. Opaque:
//! which ASN.1 library holds it is this crate's business, so callers need
//! none of them; what they read of it has a method here or in [`chain`]
//! and [`issue`](crate::issue).
//!
//! [`chain`]: crate::chain

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};

use crate::error::malformed;
use crate::{Error, PublicKey, UnixTime};

/// An X.509 certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate(x509_cert::Certificate, PublicKey);

impl Certificate {
    pub(crate) fn new(inner: x509_cert::Certificate) -> Result<Self, Error> {
        let key = PublicKey::from_spki(inner.tbs_certificate().subject_public_key_info().clone())?;
        Ok(Self(inner, key))
    }

    pub(crate) fn x509(&self) -> &x509_cert::Certificate {
        &self.0
    }

    /// Parse DER.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let inner =
            x509_cert::Certificate::from_der(der).map_err(|e| malformed("certificate", e))?;
        Self::new(inner)
    }

    /// Its DER.
    pub fn to_der(&self) -> Result<Vec<u8>, Error> {
        self.0.to_der().map_err(|e| malformed("certificate", e))
    }

    /// Its PEM (`CERTIFICATE`, ending in a newline).
    pub fn to_pem(&self) -> Result<String, Error> {
        crate::encoding::pem("CERTIFICATE", &self.to_der()?)
    }

    /// The subject's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.1
    }

    /// notBefore.
    pub fn not_before(&self) -> UnixTime {
        UnixTime(
            self.0
                .tbs_certificate()
                .validity()
                .not_before
                .to_unix_duration()
                .as_secs(),
        )
    }

    /// notAfter.
    pub fn not_after(&self) -> UnixTime {
        UnixTime(
            self.0
                .tbs_certificate()
                .validity()
                .not_after
                .to_unix_duration()
                .as_secs(),
        )
    }

    /// notAfter as X.509 prints it (`2027-12-02T06:00:00Z`).
    pub fn not_after_text(&self) -> String {
        self.0.tbs_certificate().validity().not_after.to_string()
    }

    /// notBefore as X.509 prints it.
    pub fn not_before_text(&self) -> String {
        self.0.tbs_certificate().validity().not_before.to_string()
    }

    /// The key identifier of this certificate's key: its SKI extension if
    /// present, else computed (RFC 7093 method 1), so it matches the AKI of
    /// whatever this certificate signs.
    pub fn key_id(&self) -> Vec<u8> {
        let tbs = self.0.tbs_certificate();
        match tbs.get_extension::<SubjectKeyIdentifier>() {
            Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
            _ => crate::profile::key_identifier(tbs.subject_public_key_info().owned_to_ref()),
        }
    }

    /// The key identifier of the key that signed this certificate (its
    /// AKI's keyIdentifier), if it names one.
    pub fn authority_key_id(&self) -> Option<Vec<u8>> {
        match self
            .0
            .tbs_certificate()
            .get_extension::<AuthorityKeyIdentifier>()
        {
            Ok(Some((_, aki))) => aki.key_identifier.map(|k| k.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The subject as an RFC 4514 string.
    pub fn subject_text(&self) -> String {
        self.0.tbs_certificate().subject().to_string()
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer_text(&self) -> String {
        self.0.tbs_certificate().issuer().to_string()
    }

    /// The keyUsage bits fedpki's profiles use, by name (empty without
    /// the extension).
    pub fn key_usage_names(&self) -> Vec<&'static str> {
        let Ok(Some((_, ku))) = self.0.tbs_certificate().get_extension::<KeyUsage>() else {
            return Vec::new();
        };
        [
            (KeyUsages::DigitalSignature, "digitalSignature"),
            (KeyUsages::KeyEncipherment, "keyEncipherment"),
            (KeyUsages::KeyCertSign, "keyCertSign"),
            (KeyUsages::CRLSign, "cRLSign"),
        ]
        .into_iter()
        .filter(|(flag, _)| ku.0.contains(*flag))
        .map(|(_, n)| n)
        .collect()
    }

    /// The extKeyUsage purposes by name (`serverAuth`, `clientAuth`, else
    /// the OID); `None` without the extension.
    pub fn extended_key_usage_names(&self) -> Option<Vec<String>> {
        use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
        let Ok(Some((_, eku))) = self.0.tbs_certificate().get_extension::<ExtendedKeyUsage>()
        else {
            return None;
        };
        Some(
            eku.0
                .iter()
                .map(|o| match *o {
                    o if o == ID_KP_SERVER_AUTH => "serverAuth".to_string(),
                    o if o == ID_KP_CLIENT_AUTH => "clientAuth".to_string(),
                    o => o.to_string(),
                })
                .collect(),
        )
    }
}
