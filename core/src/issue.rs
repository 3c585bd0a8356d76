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
mod tests {
    use super::*;
    use crate::chain::{check_leaf_is_ours, verify_chain};
    use crate::csr;
    use crate::key::tests::TestEntropy;
    use crate::{KeyType, PrivateKey, RUST_CRYPTO};

    const NOW: UnixTime = UnixTime(1_790_000_000);

    struct Ca {
        root_key: PrivateKey,
        root: Certificate,
        int_key: PrivateKey,
        int: Certificate,
    }

    fn ca(seed: u64) -> Ca {
        let rng = &mut TestEntropy(seed);
        let root_key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let root = root_ca(&root_key, "Test Root", Serial::random(rng).unwrap(), NOW).unwrap();
        let int_key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let int = Issuer {
            cert: &root,
            key: &root_key,
        }
        .intermediate_ca(
            &int_key.public_key(),
            "Test Intermediate",
            Serial::random(rng).unwrap(),
            NOW,
        )
        .unwrap();
        Ca {
            root_key,
            root,
            int_key,
            int,
        }
    }

    #[test]
    fn csr_to_leaf_to_verified_chain_for_every_key_type() {
        let ca = ca(10);
        let rng = &mut TestEntropy(11);
        let kinds = [
            KeyType::P256,
            KeyType::P384,
            KeyType::Ed25519,
            #[cfg(feature = "rsa")]
            KeyType::Rsa2048,
        ];
        for kt in kinds {
            let key = PrivateKey::generate(kt, rng).unwrap();
            assert_eq!(key.public_key().algorithm(), kt.into());
            let subject = crate::name::Subject::new("agg.example").unwrap();
            let sans = [crate::name::San::parse("agg.example").unwrap()];
            let req = csr::build(&key, &subject, &sans).unwrap();
            let req = csr::Csr::from_pem(&req.to_pem().unwrap()).unwrap();
            let verified = req.verify(&RUST_CRYPTO).unwrap();
            verified.check_names(&subject, &sans).unwrap();
            let leaf = Issuer {
                cert: &ca.int,
                key: &ca.int_key,
            }
            .leaf(
                verified.public_key(),
                &subject,
                &sans,
                LeafUsage::Node,
                Serial::random(rng).unwrap(),
                NOW.minus(BACKDATE_SECS),
                NOW.plus(YEAR_SECS),
                &Default::default(),
            )
            .unwrap();
            verify_chain(&leaf, &ca.int, &ca.root, NOW, &RUST_CRYPTO).unwrap();
            check_leaf_is_ours(&leaf, &key.public_key(), &subject, &sans).unwrap();
            // Someone else's key, another name, another time: each refused.
            let other = PrivateKey::generate(kt, rng).unwrap();
            assert!(check_leaf_is_ours(&leaf, &other.public_key(), &subject, &sans).is_err());
            let bob = crate::name::Subject::new("bob").unwrap();
            assert!(check_leaf_is_ours(&leaf, &key.public_key(), &bob, &sans).is_err());
            assert!(
                verify_chain(
                    &leaf,
                    &ca.int,
                    &ca.root,
                    NOW.plus(2 * YEAR_SECS),
                    &RUST_CRYPTO
                )
                .is_err()
            );
            assert!(verify_chain(&leaf, &ca.int, &ca.root, NOW.minus(3600), &RUST_CRYPTO).is_err());
        }
    }

    #[test]
    fn a_chain_from_another_ca_is_refused() {
        let (a, b) = (ca(20), ca(30));
        let rng = &mut TestEntropy(21);
        let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let subject = crate::name::Subject::new("x").unwrap();
        let sans = [crate::name::San::parse("x").unwrap()];
        let leaf = Issuer {
            cert: &a.int,
            key: &a.int_key,
        }
        .leaf(
            &key.public_key(),
            &subject,
            &sans,
            LeafUsage::Node,
            Serial::random(rng).unwrap(),
            NOW,
            NOW.plus(100),
            &Default::default(),
        )
        .unwrap();
        // Same names on both CAs: only the signatures tell them apart.
        assert!(verify_chain(&leaf, &b.int, &b.root, NOW, &RUST_CRYPTO).is_err());
        assert!(verify_chain(&leaf, &a.int, &b.root, NOW, &RUST_CRYPTO).is_err());
        assert!(verify_chain(&leaf, &a.int, &a.root, NOW, &RUST_CRYPTO).is_ok());
        let _ = &a.root_key;
    }

    #[test]
    fn csr_names_and_signatures_are_enforced() {
        let rng = &mut TestEntropy(40);
        let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let subject = crate::name::Subject::new("col1").unwrap();
        let sans = [crate::name::San::parse("col1").unwrap()];
        let req = csr::build(&key, &subject, &sans).unwrap();
        let v = req.clone().verify(&RUST_CRYPTO).unwrap();
        let col2 = crate::name::Subject::new("col2").unwrap();
        assert!(matches!(v.check_names(&col2, &sans), Err(Error::Policy(_))));
        let more = [
            sans[0].clone(),
            crate::name::San::parse("evil.example").unwrap(),
        ];
        assert!(matches!(
            v.check_names(&subject, &more),
            Err(Error::Policy(_))
        ));
        // A CSR without SANs is fine: the certificate's names come from the token.
        let bare = csr::build(&key, &subject, &[])
            .unwrap()
            .verify(&RUST_CRYPTO)
            .unwrap();
        bare.check_names(&subject, &sans).unwrap();
        // Corrupt the signature's last byte: refused.
        let mut der = req.der().to_vec();
        let n = der.len();
        der[n - 1] ^= 1;
        let bad = csr::Csr::from_der(&der).unwrap();
        assert!(matches!(
            bad.verify(&RUST_CRYPTO),
            Err(Error::BadSignature(_))
        ));
        assert!(
            csr::Csr::from_pem(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            )
            .is_err()
        );
        assert_eq!(req.openfl_hash().unwrap().len(), 96);
    }

    #[test]
    fn serials_are_positive_sixteen_bytes() {
        let rng = &mut TestEntropy(50);
        for _ in 0..100 {
            let s = Serial::random(rng).unwrap();
            let x = s.to_x509().unwrap();
            assert_eq!(x.as_bytes().len(), 16);
            assert!(x.as_bytes()[0] & 0x80 == 0 && x.as_bytes()[0] != 0);
        }
    }

    #[test]
    fn time_ordered_serials_sort_by_time_and_keep_80_random_bits() {
        let rng = &mut TestEntropy(51);
        let mut last = String::new();
        for ms in (1_800_000_000_000u64..).step_by(7).take(200) {
            let s = Serial::time_ordered(ms, rng).unwrap();
            let x = s.to_x509().unwrap();
            assert_eq!(x.as_bytes().len(), 16);
            assert_eq!(x.as_bytes()[0] & 0xc0, 0x40, "positive, no leading zero");
            let hex = s.to_hex();
            assert!(hex > last, "{hex} after {last}");
            last = hex;
        }
        // Same millisecond: the random tail differs.
        let a = Serial::time_ordered(5, rng).unwrap();
        let b = Serial::time_ordered(5, rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.to_hex()[..12], b.to_hex()[..12]);
    }

    #[test]
    fn only_an_intermediate_of_fedpkis_profile_passes_its_check() {
        use crate::chain::check_intermediate_profile;
        use alloc::string::ToString;
        let ca = ca(60);
        check_intermediate_profile(&ca.int).unwrap();
        // A root (pathlen 1) and a leaf are not intermediates.
        let e = check_intermediate_profile(&ca.root)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pathlen 1"), "{e}");
        let rng = &mut TestEntropy(61);
        let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let name = Subject::new("node").unwrap();
        let leaf = Issuer {
            cert: &ca.int,
            key: &ca.int_key,
        }
        .leaf(
            &key.public_key(),
            &name,
            &[San::parse("node").unwrap()],
            LeafUsage::Node,
            Serial::random(rng).unwrap(),
            NOW,
            NOW.plus(60),
            &Default::default(),
        )
        .unwrap();
        let e = check_intermediate_profile(&leaf).unwrap_err().to_string();
        assert!(
            e.contains("CA false") && e.contains("keyCertSign false"),
            "{e}"
        );
        // A serial named again keeps its bytes; a negative one is refused.
        let s = Serial::random(rng).unwrap();
        assert_eq!(Serial::from_bytes(s.0).unwrap(), s);
        assert!(Serial::from_bytes([0x80; 16]).is_err());
    }

    #[test]
    fn no_certificate_outlives_its_issuer() {
        use alloc::string::ToString;
        let rng = &mut TestEntropy(40);
        let root_key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let root = root_ca(&root_key, "Root", Serial::random(rng).unwrap(), NOW).unwrap();
        let issuer = Issuer {
            cert: &root,
            key: &root_key,
        };
        let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        // Signed a year into the root's life: ten years would pass its end.
        let later = NOW.plus(YEAR_SECS);
        let int = issuer
            .intermediate_ca(&key.public_key(), "I", Serial::random(rng).unwrap(), later)
            .unwrap();
        assert_eq!(int.not_after(), root.not_after());
        // Once the root has ended there is nothing left to sign for.
        let err = issuer
            .intermediate_ca(
                &key.public_key(),
                "I",
                Serial::random(rng).unwrap(),
                root.not_after().plus(BACKDATE_SECS + 1),
            )
            .unwrap_err();
        assert!(err.to_string().contains("expires"), "{err}");
    }

    #[test]
    fn a_roster_leaf_carries_its_organisation_role_and_uri_sans() {
        let ca = ca(43);
        let rng = &mut TestEntropy(44);
        let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let subject = crate::name::Subject::new("admin1").unwrap();
        let study = "https://nvidia.com/nvflare/v1/project/demo/study/lung";
        let sans = crate::name::San::parse_set(&["admin1", study]).unwrap();
        let attributes = SubjectAttributes {
            organization: Some("Hospital A".into()),
            role: Some("lead".into()),
        };
        let issuer = Issuer {
            cert: &ca.int,
            key: &ca.int_key,
        };
        let leaf = issuer
            .leaf_with(
                &key.public_key(),
                (&subject, &attributes),
                &sans,
                LeafUsage::TlsClient,
                Serial::random(rng).unwrap(),
                (NOW, NOW.plus(3600)),
                &Default::default(),
            )
            .unwrap();
        let name = leaf.x509().tbs_certificate().subject().to_der().unwrap();
        let has = |needle: &[u8]| name.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"Hospital A") && has(b"lead"));
        // unstructuredName's OID, 1.2.840.113549.1.9.2.
        assert!(has(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02]));
        assert_eq!(crate::chain::sans(&leaf), sans);
        check_leaf_is_ours(&leaf, &key.public_key(), &subject, &sans).unwrap();
        verify_chain(&leaf, &ca.int, &ca.root, NOW, &RUST_CRYPTO).unwrap();
        let control = SubjectAttributes {
            organization: Some("a\nb".into()),
            role: None,
        };
        let refused = issuer.leaf_with(
            &key.public_key(),
            (&subject, &control),
            &sans,
            LeafUsage::TlsClient,
            Serial::random(rng).unwrap(),
            (NOW, NOW.plus(3600)),
            &Default::default(),
        );
        assert!(refused.is_err(), "a control character in O is refused");
    }

    #[test]
    fn a_leaf_says_where_its_issuers_crl_and_certificate_are() {
        use alloc::string::ToString;
        use der::Decode;
        use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
        use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, crl::CrlDistributionPoints};
        let ca = ca(41);
        let rng = &mut TestEntropy(42);
        let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
        let subject = crate::name::Subject::new("node").unwrap();
        let sans = [crate::name::San::parse("node").unwrap()];
        let make = |published: &Published, rng: &mut TestEntropy| {
            Issuer {
                cert: &ca.int,
                key: &ca.int_key,
            }
            .leaf(
                &key.public_key(),
                &subject,
                &sans,
                LeafUsage::Node,
                Serial::random(rng).unwrap(),
                NOW,
                NOW.plus(YEAR_SECS),
                published,
            )
            .unwrap()
        };
        let ext = |cert: &Certificate, oid| {
            cert.x509()
                .tbs_certificate()
                .extensions()
                .into_iter()
                .flatten()
                .find(|e| e.extn_id == oid)
                .map(|e| e.extn_value.as_bytes().to_vec())
        };
        let published = Published {
            crl: Some("https://ca.example:9123/crl/ab12".into()),
            ca_issuers: Some("https://ca.example:9123/crt/ab12".into()),
        };
        let leaf = make(&published, rng);
        let uri = |g: &GeneralName| match g {
            GeneralName::UniformResourceIdentifier(u) => u.to_string(),
            other => panic!("{other:?}"),
        };
        let cdp = CrlDistributionPoints::from_der(
            &ext(&leaf, const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).unwrap(),
        )
        .unwrap();
        match &cdp.0[0].distribution_point {
            Some(DistributionPointName::FullName(names)) => {
                assert_eq!(uri(&names[0]), "https://ca.example:9123/crl/ab12");
            }
            other => panic!("{other:?}"),
        }
        let aia = AuthorityInfoAccessSyntax::from_der(
            &ext(&leaf, const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS).unwrap(),
        )
        .unwrap();
        assert_eq!(
            aia.0[0].access_method,
            const_oid::db::rfc5280::ID_AD_CA_ISSUERS
        );
        assert_eq!(
            uri(&aia.0[0].access_location),
            "https://ca.example:9123/crt/ab12"
        );
        verify_chain(&leaf, &ca.int, &ca.root, NOW, &RUST_CRYPTO).unwrap();

        // A CA that publishes nothing (the manual flow) says nothing.
        let bare = make(&Published::default(), rng);
        assert!(ext(&bare, const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).is_none());
        assert!(ext(&bare, const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS).is_none());
    }
}
