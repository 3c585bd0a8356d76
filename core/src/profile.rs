//! The certificate profiles of SPEC §5, and the constrained CA an offline
//! root signs for NVFlare's jobs, as values that emit their own extensions
//! through x509-cert's `BuilderProfile`.
//!
//! | | root | intermediate | job CA | leaf |
//! |---|---|---|---|---|
//! | basicConstraints (critical) | CA, pathlen 1 | CA, pathlen 0 | CA, pathlen 0 | not CA |
//! | keyUsage (critical) | keyCertSign, cRLSign | keyCertSign, cRLSign | keyCertSign, cRLSign | digitalSignature (+keyEncipherment for RSA) |
//! | extKeyUsage | — | — | — | by [`LeafUsage`]: serverAuth and/or clientAuth |
//! | SAN | — | — | its purpose (a URI) | the token's names, or the roster's |
//! | subject | CN | CN | the CSR's CN, O | CN (+ O, role from a roster) |
//! | SKI / AKI | SKI | both | both | both |

use alloc::vec;
use alloc::vec::Vec;

use const_oid::AssociatedOid;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use const_oid::db::rfc5912::RSA_ENCRYPTION;
use der::asn1::{Ia5String, OctetString};
use der::{Encode, Tag};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::CrlDistributionPoints;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::DistributionPointName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;

use crate::encoding::sha256;
use crate::name::San;

/// Key identifier: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey bits (RFC 7093 §2, method 1).
pub(crate) fn key_identifier(spki: SubjectPublicKeyInfoRef<'_>) -> Vec<u8> {
    sha256(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> der::Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn ski(spk: SubjectPublicKeyInfoRef<'_>) -> der::Result<Extension> {
    extension(
        &SubjectKeyIdentifier(OctetString::new(key_identifier(spk))?),
        false,
    )
}

fn aki(issuer_key_id: Vec<u8>) -> der::Result<Extension> {
    extension(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(issuer_key_id)?),
            ..Default::default()
        },
        false,
    )
}

fn ca_extensions(path_len: u8) -> der::Result<Vec<Extension>> {
    Ok(vec![
        extension(
            &BasicConstraints {
                ca: true,
                path_len_constraint: Some(path_len),
            },
            true,
        )?,
        extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
    ])
}

/// A self-signed root CA: pathlen 1, so it may sign one level of CAs.
#[derive(Debug, Clone)]
pub(crate) struct RootProfile {
    /// The root's subject (also its issuer).
    pub subject: Name,
}

impl BuilderProfile for RootProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts = ca_extensions(1)?;
        exts.push(ski(spk)?);
        Ok(exts)
    }
}

/// An intermediate (signing) CA: pathlen 0, so it signs only leaves. A
/// CA for one purpose (NVFlare's job CA) is one too, with SANs that name
/// the purpose (a URI marker its relying parties look for).
#[derive(Debug, Clone)]
pub(crate) struct IntermediateProfile {
    /// The intermediate's subject.
    pub subject: Name,
    /// The root's subject.
    pub issuer: Name,
    /// The root's key identifier (its SKI).
    pub issuer_key_id: Vec<u8>,
    /// What it is for, when it is for one thing only (else empty: no SAN).
    pub sans: Vec<San>,
}

impl BuilderProfile for IntermediateProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts = ca_extensions(0)?;
        if !self.sans.is_empty() {
            let names = self
                .sans
                .iter()
                .map(general_name)
                .collect::<der::Result<Vec<_>>>()?;
            exts.push(extension(&SubjectAltName(names), false)?);
        }
        exts.push(ski(spk)?);
        exts.push(aki(self.issuer_key_id.clone())?);
        Ok(exts)
    }
}

/// What a leaf may authenticate as, which decides its extKeyUsage. The
/// names it carries are the caller's decision; this is only the purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafUsage {
    /// A federation node enrolled by token: TLS server and client (mutual
    /// TLS), as step-ca's leaves.
    Node,
    /// OpenFL's aggregator in the manual flow: TLS server only.
    TlsServer,
    /// OpenFL's collaborator in the manual flow: TLS client only.
    TlsClient,
    /// The CA's own HTTPS server: TLS server only, so it can never renew or
    /// revoke as a node (its key is pinned by the tokens instead).
    CaServer,
}

impl LeafUsage {
    /// The extKeyUsage purposes, in order.
    pub(crate) fn purposes(self) -> Vec<const_oid::ObjectIdentifier> {
        match self {
            Self::Node => vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH],
            Self::TlsServer | Self::CaServer => vec![ID_KP_SERVER_AUTH],
            Self::TlsClient => vec![ID_KP_CLIENT_AUTH],
        }
    }
}

/// An end-entity certificate: an aggregator, a collaborator or the CA's own
/// server, by its [`LeafUsage`].
#[derive(Debug, Clone)]
pub(crate) struct LeafProfile {
    /// The leaf's subject (`CN=<name>`).
    pub subject: Name,
    /// The issuing CA's subject.
    pub issuer: Name,
    /// The issuing CA's key identifier (its SKI).
    pub issuer_key_id: Vec<u8>,
    /// Subject alternative names; never empty (webpki ignores the CN).
    pub sans: Vec<San>,
    /// What the leaf is for.
    pub usage: LeafUsage,
    /// Where its issuer's CRL and certificate are published.
    pub published: Published,
}

/// Where a relying party finds what a leaf's issuer publishes: its CRL
/// (cRLDistributionPoints) and its certificate (authorityInfoAccess
/// caIssuers), as URLs. Empty for a CA that publishes nothing online (the
/// manual flow).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The issuer's CRL (DER).
    pub crl: Option<alloc::string::String>,
    /// The issuer's certificate (DER).
    pub ca_issuers: Option<alloc::string::String>,
}

impl Published {
    /// The extensions that say it (none for what is not published).
    fn extensions(&self) -> der::Result<Vec<Extension>> {
        let uri = |u: &str| {
            Ok::<_, der::Error>(GeneralName::UniformResourceIdentifier(Ia5String::new(u)?))
        };
        let mut out = Vec::new();
        if let Some(crl) = &self.crl {
            let point = DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(crl)?])),
                reasons: None,
                crl_issuer: None,
            };
            out.push(extension(&CrlDistributionPoints(vec![point]), false)?);
        }
        if let Some(ca) = &self.ca_issuers {
            let access = AccessDescription {
                access_method: ID_AD_CA_ISSUERS,
                access_location: uri(ca)?,
            };
            out.push(extension(&AuthorityInfoAccessSyntax(vec![access]), false)?);
        }
        Ok(out)
    }
}

impl BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        // keyEncipherment only means something for RSA key transport.
        let usage = if spk.algorithm.oid == RSA_ENCRYPTION {
            KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
        } else {
            KeyUsages::DigitalSignature.into()
        };
        let names = self
            .sans
            .iter()
            .map(general_name)
            .collect::<der::Result<Vec<_>>>()?;
        let mut all = vec![
            extension(
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                true,
            )?,
            extension(&KeyUsage(usage), true)?,
            extension(&ExtendedKeyUsage(self.usage.purposes()), false)?,
            extension(&SubjectAltName(names), false)?,
            ski(spk)?,
            aki(self.issuer_key_id.clone())?,
        ];
        all.extend(self.published.extensions()?);
        Ok(all)
    }
}

/// The `GeneralName` of a SAN.
pub(crate) fn general_name(san: &San) -> der::Result<GeneralName> {
    Ok(match san {
        San::Dns(d) => GeneralName::DnsName(Ia5String::new(d)?),
        San::Ip(core::net::IpAddr::V4(v4)) => {
            GeneralName::IpAddress(OctetString::new(v4.octets())?)
        }
        San::Ip(core::net::IpAddr::V6(v6)) => {
            GeneralName::IpAddress(OctetString::new(v6.octets())?)
        }
        San::Uri(u) => GeneralName::UniformResourceIdentifier(Ia5String::new(u)?),
    })
}

/// The SAN of a `GeneralName`, or `None` for kinds fedpki never issues.
pub(crate) fn san_of(name: &GeneralName) -> Option<San> {
    match name {
        GeneralName::DnsName(d) => San::parse(d.as_str()).ok(),
        GeneralName::IpAddress(o) => match o.as_bytes().len() {
            4 => <[u8; 4]>::try_from(o.as_bytes())
                .ok()
                .map(|b| San::Ip(core::net::IpAddr::from(b))),
            16 => <[u8; 16]>::try_from(o.as_bytes())
                .ok()
                .map(|b| San::Ip(core::net::IpAddr::from(b))),
            _ => None,
        },
        GeneralName::UniformResourceIdentifier(u) => San::uri(u.as_str()).ok(),
        _ => None,
    }
}

/// `CN=<cn>` as a UTF8String, the way step and OpenSSL write it.
pub(crate) fn cn_name(cn: &str) -> der::Result<Name> {
    subject_name(cn, &SubjectAttributes::default())
}

/// What a node's subject says besides its name: the `O` and the role, in
/// the attribute NVFlare reads it from (PKCS #9 unstructuredName).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectAttributes {
    /// organizationName.
    pub organization: Option<alloc::string::String>,
    /// unstructuredName (1.2.840.113549.1.9.2): the participant's role.
    pub role: Option<alloc::string::String>,
}

/// `CN=<cn>[, O=<org>][, unstructuredName=<role>]`, each a UTF8String in
/// its own RDN, in that order (NVFlare's `x509_name`).
pub(crate) fn subject_name(cn: &str, attributes: &SubjectAttributes) -> der::Result<Name> {
    use der::Decode;
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
    const UNSTRUCTURED_NAME: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.2");
    let mut seq = RdnSequence::default();
    let parts = [
        (const_oid::db::rfc4519::CN, Some(cn)),
        (
            const_oid::db::rfc4519::O,
            attributes.organization.as_deref(),
        ),
        (UNSTRUCTURED_NAME, attributes.role.as_deref()),
    ];
    for (oid, value) in parts {
        let Some(value) = value else { continue };
        let mut rdn = RelativeDistinguishedName::default();
        rdn.insert(AttributeTypeAndValue {
            oid,
            value: der::asn1::Any::new(Tag::Utf8String, value.as_bytes())?,
        })?;
        seq.push(rdn);
    }
    Name::from_der(&seq.to_der()?)
}
