//! Certificate revocation lists (RFC 5280 §5), signed by the issuing CA.
//!
//! fedpki's CRLs are complete (no deltas), version 2, with `nextUpdate`, a
//! monotonic `cRLNumber` and an `authorityKeyIdentifier` equal to the
//! issuer's `subjectKeyIdentifier`, which is what OpenSSL's `-crl_check`
//! matches the CRL to its issuer with. (x509-cert's own `CrlBuilder` copies
//! the issuer's *authority* key id instead, so it is not used.)

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::cert::Certificate;
use der::asn1::{BitString, OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::ext::{Criticality, Extensions};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::encoding::unhex;
use crate::error::malformed;
use crate::issue::Issuer;
use crate::{Error, SignatureVerifier, UnixTime};

/// Why a certificate was revoked: the RFC 5280 reasons that apply to a
/// leaf of a federation (no CA compromise, no hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No reason given (the `reasonCode` extension is then omitted).
    Unspecified,
    /// The private key leaked or may have.
    KeyCompromise,
    /// The holder changed organisation or role.
    AffiliationChanged,
    /// Replaced by another certificate.
    Superseded,
    /// The host was retired.
    CessationOfOperation,
    /// The holder may no longer take part.
    PrivilegeWithdrawn,
}

impl Reason {
    /// Every reason, for help texts.
    pub const ALL: [Reason; 6] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::PrivilegeWithdrawn,
    ];

    /// The RFC 5280 `CRLReason` code.
    pub fn code(self) -> u8 {
        match self {
            Reason::Unspecified => 0,
            Reason::KeyCompromise => 1,
            Reason::AffiliationChanged => 3,
            Reason::Superseded => 4,
            Reason::CessationOfOperation => 5,
            Reason::PrivilegeWithdrawn => 9,
        }
    }

    /// The reason for a code, if fedpki accepts it.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// Parse a name (any case, `-` and `_` ignored: `key-compromise`) or a
    /// number.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let folded: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect();
        if let Ok(code) = folded.parse::<u8>() {
            return Self::from_code(code).ok_or_else(|| bad_reason(s));
        }
        Self::ALL
            .into_iter()
            .find(|r| r.name().to_ascii_lowercase() == folded)
            .ok_or_else(|| bad_reason(s))
    }

    fn to_x509(self) -> CrlReason {
        match self {
            Reason::Unspecified => CrlReason::Unspecified,
            Reason::KeyCompromise => CrlReason::KeyCompromise,
            Reason::AffiliationChanged => CrlReason::AffiliationChanged,
            Reason::Superseded => CrlReason::Superseded,
            Reason::CessationOfOperation => CrlReason::CessationOfOperation,
            Reason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        }
    }
}

fn bad_reason(s: &str) -> Error {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    Error::Policy(alloc::format!(
        "{s:?} is not a revocation reason; use one of {}",
        names.join(", ")
    ))
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Its serial, lowercase hex of the DER INTEGER's bytes (as
    /// [`crate::issue::serial_hex`] prints it).
    pub serial_hex: String,
    /// When it was revoked.
    pub at: UnixTime,
    /// Why.
    pub reason: Reason,
}

fn time(t: UnixTime) -> Result<Time, Error> {
    let dt = der::DateTime::from_unix_duration(core::time::Duration::from_secs(t.0))
        .map_err(|e| malformed("time", e))?;
    Ok(Time::from(dt))
}

fn ext<T: Criticality + der::oid::AssociatedOid + Encode>(
    value: &T,
    issuer: &x509_cert::name::Name,
) -> Result<x509_cert::ext::Extension, Error> {
    x509_cert::ext::ToExtension::to_extension(value, issuer, &[])
        .map_err(|e| malformed("CRL extension", e))
}

/// Build and sign a complete CRL.
pub fn build(
    issuer: &Issuer<'_>,
    revoked: &[Revoked],
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
) -> Result<Vec<u8>, Error> {
    if next_update <= this_update {
        return Err(Error::Policy("nextUpdate must be after thisUpdate".into()));
    }
    let name = issuer.cert.x509().tbs_certificate().subject().clone();
    let mut entries = Vec::with_capacity(revoked.len());
    for r in revoked {
        let bytes = unhex(&r.serial_hex)?;
        let serial_number: SerialNumber =
            SerialNumber::new(&bytes).map_err(|e| malformed("serial", e))?;
        let crl_entry_extensions = if r.reason == Reason::Unspecified {
            None
        } else {
            Some(alloc::vec![ext(&r.reason.to_x509(), &name)?])
        };
        entries.push(RevokedCert {
            serial_number,
            revocation_date: time(r.at)?,
            crl_entry_extensions,
        });
    }
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(
            OctetString::new(issuer.key_id()).map_err(|e| malformed("key id", e))?,
        ),
        ..Default::default()
    };
    let crl_number =
        CrlNumber(Uint::new(&number.to_be_bytes()).map_err(|e| malformed("CRL number", e))?);
    let extensions: Extensions = alloc::vec![ext(&aki, &name)?, ext(&crl_number, &name)?];
    let tbs = TbsCertList {
        version: x509_cert::Version::V2,
        signature: issuer.key.signature_algorithm().identifier(),
        issuer: name,
        this_update: time(this_update)?,
        next_update: Some(time(next_update)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(extensions),
    };
    let msg = tbs.to_der().map_err(|e| malformed("CRL", e))?;
    let sig = issuer.key.sign(&msg)?;
    let list = CertificateList {
        signature_algorithm: tbs.signature.clone(),
        tbs_cert_list: tbs,
        signature: BitString::from_bytes(&sig).map_err(|e| malformed("signature", e))?,
    };
    list.to_der().map_err(|e| malformed("CRL", e))
}

/// A parsed CRL.
#[derive(Debug, Clone)]
pub struct Crl {
    list: CertificateList,
}

impl Crl {
    /// Decode DER, or PEM (`X509 CRL`).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let der = match core::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => crate::encoding::pem_one(text, "X509 CRL")?,
            _ => bytes.to_vec(),
        };
        let list = CertificateList::from_der(&der).map_err(|e| malformed("CRL", e))?;
        Ok(Self { list })
    }

    /// Its DER.
    pub fn to_der(&self) -> Result<alloc::vec::Vec<u8>, Error> {
        self.list.to_der().map_err(|e| malformed("CRL", e))
    }

    /// `Ok` when `issuer` signed it.
    pub fn verify(
        &self,
        issuer: &Certificate,
        verifier: &dyn SignatureVerifier,
    ) -> Result<(), Error> {
        let tbs = &self.list.tbs_cert_list;
        if &tbs.issuer != issuer.x509().tbs_certificate().subject() {
            return Err(Error::Chain(alloc::format!(
                "the CRL was issued by {}, not by {}",
                tbs.issuer,
                issuer.x509().tbs_certificate().subject()
            )));
        }
        let msg = tbs.to_der().map_err(|e| malformed("CRL", e))?;
        let sig = self
            .list
            .signature
            .as_bytes()
            .ok_or_else(|| Error::Chain("the CRL signature is not whole bytes".into()))?;
        verifier
            .verify(
                crate::SignatureAlgorithm::from_identifier(&self.list.signature_algorithm)?,
                issuer.public_key(),
                &msg,
                sig,
            )
            .map_err(|_| Error::Chain("the CRL's signature does not verify".into()))
    }

    /// thisUpdate.
    pub fn this_update(&self) -> UnixTime {
        UnixTime(
            self.list
                .tbs_cert_list
                .this_update
                .to_unix_duration()
                .as_secs(),
        )
    }

    /// nextUpdate, if any.
    pub fn next_update(&self) -> Option<UnixTime> {
        self.list
            .tbs_cert_list
            .next_update
            .map(|t| UnixTime(t.to_unix_duration().as_secs()))
    }

    /// The cRLNumber, if present and small enough.
    pub fn number(&self) -> Option<u64> {
        let exts = self.list.tbs_cert_list.crl_extensions.as_ref()?;
        let e = exts
            .iter()
            .find(|e| e.extn_id == <CrlNumber as der::oid::AssociatedOid>::OID)?;
        let n = CrlNumber::from_der(e.extn_value.as_bytes()).ok()?;
        let bytes = n.0.as_bytes();
        if bytes.len() > 8 {
            return None;
        }
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Every entry.
    pub fn entries(&self) -> Vec<Revoked> {
        let Some(list) = &self.list.tbs_cert_list.revoked_certificates else {
            return Vec::new();
        };
        list.iter()
            .map(|r| Revoked {
                // As `issue::serial_hex` names it: DER's sign octet dropped.
                serial_hex: crate::serial::canonical_hex(r.serial_number.as_bytes()),
                at: UnixTime(r.revocation_date.to_unix_duration().as_secs()),
                reason: r
                    .crl_entry_extensions
                    .as_ref()
                    .and_then(|exts| {
                        exts.iter()
                            .find(|e| e.extn_id == <CrlReason as der::oid::AssociatedOid>::OID)
                    })
                    .and_then(|e| CrlReason::from_der(e.extn_value.as_bytes()).ok())
                    .and_then(|r| Reason::from_code(r as u8))
                    .unwrap_or(Reason::Unspecified),
            })
            .collect()
    }

    /// The entry for a serial (lowercase hex, no leading zero octet), if
    /// revoked.
    pub fn find(&self, serial_hex: &str) -> Option<Revoked> {
        self.entries()
            .into_iter()
            .find(|r| r.serial_hex == serial_hex)
    }

    /// Issuer name, for display.
    pub fn issuer(&self) -> String {
        self.list.tbs_cert_list.issuer.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{Serial, root_ca};
    use crate::{KeyType, PrivateKey, RUST_CRYPTO};

    /// xorshift64: deterministic, and never repeats within a test.
    struct Fixed(u64);
    impl crate::Entropy for Fixed {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), Error> {
            for b in buf.iter_mut() {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = (self.0 >> 24) as u8;
            }
            Ok(())
        }
    }

    #[test]
    fn round_trip_and_signature() {
        let mut e = Fixed(1);
        let key = PrivateKey::generate(KeyType::P256, &mut e).unwrap();
        let root = root_ca(
            &key,
            "Test Root",
            Serial::random(&mut e).unwrap(),
            UnixTime(1_700_000_000),
        )
        .unwrap();
        let issuer = Issuer {
            cert: &root,
            key: &key,
        };
        let revoked = [
            Revoked {
                serial_hex: "4a01".into(),
                at: UnixTime(1_700_000_100),
                reason: Reason::KeyCompromise,
            },
            Revoked {
                serial_hex: "7f02".into(),
                at: UnixTime(1_700_000_200),
                reason: Reason::Unspecified,
            },
        ];
        let der = build(
            &issuer,
            &revoked,
            7,
            UnixTime(1_700_000_300),
            UnixTime(1_700_086_700),
        )
        .unwrap();
        let crl = Crl::parse(&der).unwrap();
        crl.verify(&root, &RUST_CRYPTO).unwrap();
        assert_eq!(crl.entries(), revoked);
        assert_eq!(crl.number(), Some(7));
        assert_eq!(crl.this_update(), UnixTime(1_700_000_300));
        assert_eq!(crl.next_update(), Some(UnixTime(1_700_086_700)));
        assert!(crl.find("4a01").is_some());
        assert!(crl.find("4a02").is_none());

        // A flipped byte in the body breaks the signature (or the parse).
        let mut bad = der.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        if let Ok(c) = Crl::parse(&bad) {
            assert!(c.verify(&root, &RUST_CRYPTO).is_err());
        }
        // Another key's certificate does not verify it.
        let other_key = PrivateKey::generate(KeyType::P256, &mut e).unwrap();
        let other = root_ca(
            &other_key,
            "Test Root",
            Serial::random(&mut e).unwrap(),
            UnixTime(1_700_000_000),
        )
        .unwrap();
        assert!(crl.verify(&other, &RUST_CRYPTO).is_err());
    }

    #[test]
    fn reasons_parse() {
        assert_eq!(
            Reason::parse("key-compromise").unwrap(),
            Reason::KeyCompromise
        );
        assert_eq!(
            Reason::parse("keyCompromise").unwrap(),
            Reason::KeyCompromise
        );
        assert_eq!(Reason::parse("4").unwrap(), Reason::Superseded);
        assert!(Reason::parse("6").is_err());
        assert!(Reason::parse("hold").is_err());
        for r in Reason::ALL {
            assert_eq!(Reason::from_code(r.code()), Some(r));
            assert_eq!(Reason::parse(r.name()).unwrap(), r);
        }
    }
}
