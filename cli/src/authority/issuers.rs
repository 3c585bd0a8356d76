//! The intermediates an authority signs with: the active one issues, the
//! retired ones still sign their CRLs and are known in the certificates
//! their holders present. Replaced whole, while serving, when an
//! intermediate is activated.

use std::sync::Arc;

use fedpki_core::crl::Revoked;
use fedpki_core::issue::Issuer;
use fedpki_core::{Certificate, PrivateKey, SigningKey, UnixTime};

use super::Authority;
use crate::ca::CaCerts;
use crate::ca::issuers::{IssuerKeys, key_id_hex};

/// One intermediate as the authority holds it.
struct Held {
    cert: Certificate,
    pem: String,
    /// Its key id (what the AKI of each certificate it signs holds), and
    /// that in hex.
    key_id: Vec<u8>,
    kid: String,
    key: Box<dyn SigningKey>,
    /// `None` for the active one (its CRL is always due).
    crl_until: Option<u64>,
    /// The root's revocation of it, if its CRL says so.
    revoked_by_root: Option<Revoked>,
}

/// The intermediate that signed a certificate, as the authority holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signer<'a> {
    /// Its certificate.
    pub cert: &'a Certificate,
    /// Its PEM.
    pub pem: &'a str,
    /// Its key id, hex.
    pub kid: &'a str,
    /// The root's revocation of it, if any.
    pub revoked_by_root: Option<&'a Revoked>,
}

/// The root and every intermediate in use, unlocked.
pub struct Issuers {
    certs: CaCerts,
    /// The active intermediate first, then the retired ones.
    held: Vec<Held>,
    /// The offline root's CRL as kept (DER), served at `GET /crl/root`.
    root_crl: Option<Vec<u8>>,
}

/// An intermediate's CRL to sign: its key id and the issuer signing it.
pub(crate) struct CrlSigner<'a> {
    /// Its key id, hex.
    pub kid: &'a str,
    /// It, as an issuer.
    pub issuer: Issuer<'a>,
    /// Whether it is the active intermediate.
    pub active: bool,
}

impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuers")
            .field(
                "key_ids",
                &self.held.iter().map(|h| h.kid.as_str()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Issuers {
    pub(super) fn new(keys: IssuerKeys, signer: fn(PrivateKey) -> Box<dyn SigningKey>) -> Self {
        let root_crl = keys.root_crl;
        let revoked = |cert: &Certificate| root_crl.as_ref().and_then(|c| c.revocation_of(cert));
        let mut held = vec![Held {
            key_id: keys.certs.intermediate.key_id(),
            kid: key_id_hex(&keys.certs.intermediate),
            revoked_by_root: revoked(&keys.certs.intermediate),
            cert: keys.certs.intermediate.clone(),
            pem: keys.certs.intermediate_pem.clone(),
            key: signer(keys.key),
            crl_until: None,
        }];
        held.extend(keys.retired.into_iter().map(|r| Held {
            key_id: r.cert.key_id(),
            kid: key_id_hex(&r.cert),
            revoked_by_root: revoked(&r.cert),
            cert: r.cert,
            pem: r.pem,
            key: signer(r.key),
            crl_until: Some(r.crl_until),
        }));
        Self {
            certs: keys.certs,
            held,
            root_crl: root_crl.map(|c| c.der),
        }
    }

    /// The offline root's CRL as the CA was given it (DER), if it was.
    pub fn root_crl(&self) -> Option<&[u8]> {
        self.root_crl.as_deref()
    }

    /// The root and the active intermediate.
    pub fn certs(&self) -> &CaCerts {
        &self.certs
    }

    /// The active intermediate, as an issuer.
    pub fn active(&self) -> Issuer<'_> {
        self.issuer(&self.held[0])
    }

    /// The active intermediate's key id, hex.
    pub fn active_kid(&self) -> &str {
        &self.held[0].kid
    }

    fn issuer<'a>(&'a self, h: &'a Held) -> Issuer<'a> {
        Issuer {
            cert: &h.cert,
            key: &*h.key,
        }
    }

    /// The certificate of the intermediate held under `kid` (hex), active
    /// or retired: what a leaf's authorityInfoAccess points at.
    pub(crate) fn certificate_of(&self, kid: &str) -> Option<&Certificate> {
        self.held.iter().find(|h| h.kid == kid).map(|h| &h.cert)
    }

    /// Which of our intermediates names itself the signer of `cert` (by
    /// its authority key id; the active one for a certificate naming
    /// none). The signature is the caller's to check.
    pub(crate) fn signer_of(&self, cert: &Certificate) -> Option<Signer<'_>> {
        let held = match cert.authority_key_id() {
            Some(aki) => self.held.iter().find(|h| h.key_id == aki)?,
            None => &self.held[0],
        };
        Some(Signer {
            cert: &held.cert,
            pem: &held.pem,
            kid: &held.kid,
            revoked_by_root: held.revoked_by_root.as_ref(),
        })
    }

    /// The intermediates whose CRL is due at `now`: the active one, and
    /// each retired one until its last certificate has expired.
    pub(crate) fn crl_signers(&self, now: UnixTime) -> Vec<CrlSigner<'_>> {
        self.held
            .iter()
            .enumerate()
            .filter(|(_, h)| h.crl_until.is_none_or(|until| until > now.0))
            .map(|(i, h)| CrlSigner {
                kid: &h.kid,
                issuer: self.issuer(h),
                active: i == 0,
            })
            .collect()
    }
}

impl Authority {
    /// The root and the intermediates, as they are now.
    pub fn issuers(&self) -> Arc<Issuers> {
        self.issuers
            .read()
            .map(|i| i.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Take up another set of intermediates (an activated one): every
    /// request from now on issues from its active intermediate.
    pub(crate) fn replace_issuers(&self, keys: IssuerKeys) {
        let fresh = Arc::new(Issuers::new(keys, self.signer));
        match self.issuers.write() {
            Ok(mut cur) => *cur = fresh,
            Err(e) => *e.into_inner() = fresh,
        }
    }
}
