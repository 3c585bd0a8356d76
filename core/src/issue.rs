//! Issuance: turn a profile, a public key, a serial and a validity into a
//! certificate signed through a [`SigningKey`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use crate::cert::Certificate;
use der::asn1::BitString;
use der::{DateTime, Decode, Encode};
use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::encoding::{hex, pem};
use crate::error::malformed;
use crate::name::{San, Subject};
use crate::profile::{
    IntermediateProfile, LeafProfile, LeafUsage, Published, RootProfile, SubjectAttributes,
    cn_name, subject_name,
};
use crate::{Entropy, Error, PublicKey, SigningKey, UnixTime};

/// Seconds in a (non-leap) year: the leaf lifetime OpenFL uses (8760 h).
pub const YEAR_SECS: u64 = 365 * 24 * 3600;
/// CA lifetime: 10 years.
pub const CA_LIFETIME_SECS: u64 = 10 * YEAR_SECS;
/// Leaves start a minute in the past to absorb clock skew (as step does).
pub const BACKDATE_SECS: u64 = 60;

/// A certificate serial number: 16 random bytes, top bit clear and second
/// bit set, so the DER INTEGER is always positive, exactly 16 bytes long,
/// and carries 126 bits of entropy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Serial([u8; 16]);

impl Serial {
    /// A fresh random serial.
    pub fn random(entropy: &mut dyn Entropy) -> Result<Self, Error> {
        let mut bytes = [0u8; 16];
        entropy.fill(&mut bytes)?;
        bytes[0] = (bytes[0] & 0x7f) | 0x40;
        Ok(Self(bytes))
    }

    /// A leaf serial that sorts by issue time: the first 6 bytes carry the
    /// time in milliseconds (top bits `01`, as [`Serial::random`]), the last
    /// 10 are random (80 bits of entropy, above the CA/Browser Forum's 64).
    /// A ledger keyed by serial then grows at its end instead of touching a
    /// random page per certificate.
    pub fn time_ordered(now_ms: u64, entropy: &mut dyn Entropy) -> Result<Self, Error> {
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
        bytes[0] = (bytes[0] & 0x3f) | 0x40;
        entropy.fill(&mut bytes[6..])?;
        Ok(Self(bytes))
    }

    /// A serial of exactly these bytes (top bit clear, so positive): one
    /// already issued, named again (a test that forges a certificate under
    /// it, say).
    pub fn from_bytes(bytes: [u8; 16]) -> Result<Self, Error> {
        if bytes[0] & 0x80 != 0 {
            return Err(Error::Malformed(
                "a serial with its top bit set is negative".into(),
            ));
        }
        Ok(Self(bytes))
    }

    /// Lowercase hex, as fedpki prints and stores serials.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    fn to_x509(self) -> Result<SerialNumber, Error> {
        SerialNumber::new(&self.0).map_err(|e| malformed("serial", e))
    }
}

/// Lowercase hex of a certificate's serial number, without the leading
/// zero octet DER adds to a serial whose top bit is set (step-ca's are
/// often), so it matches [`crate::serial::decimal_to_hex`].
pub fn serial_hex(cert: &Certificate) -> String {
    crate::serial::canonical_hex(cert.x509().tbs_certificate().serial_number().as_bytes())
}

fn x509_time(t: UnixTime) -> Result<Time, Error> {
    let dt =
        DateTime::from_unix_duration(Duration::from_secs(t.0)).map_err(|e| malformed("time", e))?;
    Ok(Time::from(dt))
}

/// A validity window `[not_before, not_after]`.
pub(crate) fn validity(not_before: UnixTime, not_after: UnixTime) -> Result<Validity, Error> {
    if not_after <= not_before {
        return Err(Error::Policy("notAfter must be after notBefore".into()));
    }
    Ok(Validity::new(x509_time(not_before)?, x509_time(not_after)?))
}

/// Adapts a `dyn SigningKey` to the traits x509-cert's builders want.
struct BuilderSigner<'a> {
    key: &'a dyn SigningKey,
    public: SpkiKey,
}

#[derive(Clone)]
struct SpkiKey(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::from_der(&self.0.to_der()?)?)
    }
}

impl signature::Keypair for BuilderSigner<'_> {
    type VerifyingKey = SpkiKey;
    fn verifying_key(&self) -> SpkiKey {
        self.public.clone()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for BuilderSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.key.signature_algorithm().identifier())
    }
}

/// Sign anything x509-cert can build (a certificate or a CSR) with `key`.
pub(crate) fn build_signed<B: Builder>(
    mut builder: B,
    key: &dyn SigningKey,
) -> Result<B::Output, Error> {
    let signer = BuilderSigner {
        key,
        public: SpkiKey(key.public_key().spki().clone()),
    };
    let tbs = builder
        .finalize(&signer)
        .map_err(|e| malformed("building the to-be-signed structure", e))?;
    let sig = key.sign(&tbs)?;
    let bits = BitString::from_bytes(&sig).map_err(|e| malformed("signature", e))?;
    builder
        .assemble(bits, &signer)
        .map_err(|e| malformed("assembling", e))
}

fn build_cert<P: BuilderProfile>(
    profile: P,
    serial: Serial,
    validity: Validity,
    subject_key: &PublicKey,
    issuer_key: &dyn SigningKey,
) -> Result<Certificate, Error> {
    let builder = CertificateBuilder::new(
        profile,
        serial.to_x509()?,
        validity,
        subject_key.spki().clone(),
    )
    .map_err(|e| malformed("certificate", e))?;
    Certificate::new(build_signed(builder, issuer_key)?)
}

/// A self-signed root CA certificate, valid 10 years from `now`.
pub fn root_ca(
    key: &dyn SigningKey,
    common_name: &str,
    serial: Serial,
    now: UnixTime,
) -> Result<Certificate, Error> {
    let profile = RootProfile {
        subject: cn_name(common_name).map_err(|e| malformed("name", e))?,
    };
    build_cert(
        profile,
        serial,
        validity(now.minus(BACKDATE_SECS), now.plus(CA_LIFETIME_SECS))?,
        &key.public_key(),
        key,
    )
}

/// A CA certificate and the key that signs with it.
pub struct Issuer<'a> {
    /// The CA's certificate.
    pub cert: &'a Certificate,
    /// The CA's key.
    pub key: &'a dyn SigningKey,
}

impl core::fmt::Debug for Issuer<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Issuer")
            .field("subject", &self.cert.x509().tbs_certificate().subject())
            .finish_non_exhaustive()
    }
}

impl Issuer<'_> {
    /// This CA's key identifier: its SKI extension if present, else computed
    /// from its key, so AKIs match whatever the CA's own certificate says.
    pub fn key_id(&self) -> Vec<u8> {
        self.cert.key_id()
    }

    /// `[not_before, not_after]`, `not_after` clipped to this CA's own: no
    /// certificate outlives its issuer.
    fn validity(&self, not_before: UnixTime, not_after: UnixTime) -> Result<Validity, Error> {
        let ca_end = self.cert.not_after();
        if ca_end <= not_before {
            return Err(Error::Policy(format!(
                "the issuing CA's certificate expires ({}) before the new one would start",
                ca_end.0
            )));
        }
        validity(not_before, not_after.min(ca_end))
    }

    /// An intermediate CA certificate for `subject_key`, valid 10 years
    /// (at most until its issuer's notAfter).
    pub fn intermediate_ca(
        &self,
        subject_key: &PublicKey,
        common_name: &str,
        serial: Serial,
        now: UnixTime,
    ) -> Result<Certificate, Error> {
        let profile = IntermediateProfile {
            subject: cn_name(common_name).map_err(|e| malformed("name", e))?,
            issuer: self.cert.x509().tbs_certificate().subject().clone(),
            issuer_key_id: self.key_id(),
            sans: Vec::new(),
        };
        build_cert(
            profile,
            serial,
            self.validity(now.minus(BACKDATE_SECS), now.plus(CA_LIFETIME_SECS))?,
            subject_key,
            self.key,
        )
    }

    /// A CA for one purpose (NVFlare's job CA): `CN=common_name[,
    /// O=organization]`, pathlen 0, keyCertSign and cRLSign, `sans` naming
    /// its purpose, valid `lifetime_secs` from `now` (at most until this
    /// CA's notAfter).
    #[allow(clippy::too_many_arguments)] // the certificate's fields, each named
    pub fn constrained_ca(
        &self,
        subject_key: &PublicKey,
        common_name: &str,
        organization: Option<&str>,
        sans: &[San],
        serial: Serial,
        now: UnixTime,
        lifetime_secs: u64,
    ) -> Result<Certificate, Error> {
        crate::name::check_ca_name(common_name)?;
        if let Some(org) = organization {
            crate::name::check_ca_name(org)?;
        }
        let attributes = SubjectAttributes {
            organization: organization.map(Into::into),
            role: None,
        };
        let profile = IntermediateProfile {
            subject: subject_name(common_name, &attributes).map_err(|e| malformed("name", e))?,
            issuer: self.cert.x509().tbs_certificate().subject().clone(),
            issuer_key_id: self.key_id(),
            sans: sans.to_vec(),
        };
        build_cert(
            profile,
            serial,
            self.validity(now.minus(BACKDATE_SECS), now.plus(lifetime_secs))?,
            subject_key,
            self.key,
        )
    }

    /// A leaf certificate with the leaf profile. The names come from the
    /// caller (the token), never from the CSR. The validity is clipped to the
    /// issuer's own notAfter, so no leaf outlives its CA.
    #[allow(clippy::too_many_arguments)] // the certificate's fields, each named
    pub fn leaf(
        &self,
        subject_key: &PublicKey,
        subject: &Subject,
        sans: &[San],
        usage: LeafUsage,
        serial: Serial,
        not_before: UnixTime,
        not_after: UnixTime,
        published: &Published,
    ) -> Result<Certificate, Error> {
        let plain = SubjectAttributes::default();
        let window = (not_before, not_after);
        self.leaf_with(
            subject_key,
            (subject, &plain),
            sans,
            usage,
            serial,
            window,
            published,
        )
    }

    /// [`Issuer::leaf`] whose subject also carries `attributes` (a
    /// federation roster's organisation and role), each 1 to 64 printable
    /// characters.
    #[allow(clippy::too_many_arguments)] // as `leaf`, with the attributes
    pub fn leaf_with(
        &self,
        subject_key: &PublicKey,
        (subject, attributes): (&Subject, &SubjectAttributes),
        sans: &[San],
        usage: LeafUsage,
        serial: Serial,
        (not_before, not_after): (UnixTime, UnixTime),
        published: &Published,
    ) -> Result<Certificate, Error> {
        for value in [&attributes.organization, &attributes.role]
            .into_iter()
            .flatten()
        {
            crate::name::check_ca_name(value)?;
        }
        if sans.is_empty() {
            return Err(Error::Policy(
                "a leaf certificate needs at least one SAN".into(),
            ));
        }
        let profile = LeafProfile {
            subject: subject_name(subject.as_str(), attributes)
                .map_err(|e| malformed("name", e))?,
            issuer: self.cert.x509().tbs_certificate().subject().clone(),
            issuer_key_id: self.key_id(),
            sans: sans.to_vec(),
            usage,
            published: published.clone(),
        };
        build_cert(
            profile,
            serial,
            self.validity(not_before, not_after)?,
            subject_key,
            self.key,
        )
    }
}

/// PEM of a certificate.
pub fn cert_pem(cert: &Certificate) -> Result<String, Error> {
    pem(
        "CERTIFICATE",
        &cert.to_der().map_err(|e| malformed("certificate", e))?,
    )
}

/// A certificate's fingerprint: lowercase hex SHA-256 of its DER, as
/// `pki install` prints the root's and OpenSSL shows it (without colons).
pub fn fingerprint(cert: &Certificate) -> Result<String, Error> {
    Ok(fingerprint_der(&cert_der(cert)?))
}

/// [`fingerprint`] of a certificate's DER: the one home of the rule
/// (lowercase hex SHA-256 of the DER, as step and the token's `sha` say).
pub fn fingerprint_der(der: &[u8]) -> String {
    hex(&crate::encoding::sha256(der))
}

/// DER of a certificate.
pub fn cert_der(cert: &Certificate) -> Result<Vec<u8>, Error> {
    cert.to_der().map_err(|e| malformed("certificate", e))
}

/// Parse a DER certificate.
pub fn parse_cert_der(der: &[u8]) -> Result<Certificate, Error> {
    Certificate::from_der(der).map_err(|e| malformed("certificate", e))
}

/// Parse every `CERTIFICATE` block of a PEM text, in order.
pub fn parse_certs_pem(text: &str) -> Result<Vec<Certificate>, Error> {
    let certs = crate::encoding::pem_blocks(text)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| parse_cert_der(&b.der))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(Error::Malformed("no PEM certificate found".into()));
    }
    Ok(certs)
}

/// Parse exactly one PEM certificate.
pub fn parse_cert_pem(text: &str) -> Result<Certificate, Error> {
    parse_cert_der(&crate::encoding::pem_one(text, "CERTIFICATE")?)
}

#[cfg(test)]
mod tests;
