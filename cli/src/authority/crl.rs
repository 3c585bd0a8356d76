//! The CRLs the authority signs, one per intermediate in use, and how their
//! numbers grow.

use std::collections::HashMap;

use fedpki_core::UnixTime;
use fedpki_core::crl::{self, Reason};

use super::Authority;

/// How long a CRL is valid; the server signs a new one at two thirds of
/// that, and after every revocation.
pub(crate) const CRL_LIFETIME_SECS: u64 = 24 * 3600;

/// One intermediate's CRL.
#[derive(Debug, Clone)]
pub(crate) struct SignedCrl {
    /// The intermediate's key id, hex.
    pub kid: String,
    /// Whether it is the active intermediate's (`GET /crl`).
    pub active: bool,
    /// The CRL, DER.
    pub der: Vec<u8>,
}

impl Authority {
    /// A complete CRL for each intermediate in use: every revocation of a
    /// certificate it signed, numbered `number`, valid
    /// [`CRL_LIFETIME_SECS`] from `now`, the active intermediate's first;
    /// and every revocation they list (serial → date, reason code).
    pub(crate) async fn crls(
        &self,
        number: u64,
        now: UnixTime,
    ) -> crate::error::Result<(Vec<SignedCrl>, HashMap<String, (u64, u8)>)> {
        let issuers = self.issuers();
        let active = issuers.active_kid().to_owned();
        let mut by_issuer: HashMap<String, Vec<crl::Revoked>> = HashMap::new();
        let mut listed = HashMap::new();
        let signers = issuers.crl_signers(now);
        for (r, record) in self.store.revoked_certificates().await? {
            // A record is the certificate's issuer's: its AKI names it.
            let kid = record
                .and_then(|c| fedpki_core::Certificate::from_der(&c.der).ok())
                .and_then(|c| c.authority_key_id())
                .map_or_else(|| active.clone(), |k| fedpki_core::encoding::hex(&k));
            if signers.iter().any(|s| s.kid == kid) {
                listed.insert(r.serial.clone(), (r.revoked_at, r.reason));
            }
            by_issuer.entry(kid).or_default().push(crl::Revoked {
                serial_hex: r.serial,
                at: UnixTime(r.revoked_at),
                reason: Reason::from_code(r.reason).unwrap_or(Reason::Unspecified),
            });
        }
        let crls = signers
            .into_iter()
            .map(|s| {
                let revoked = by_issuer.get(s.kid).map_or(&[][..], Vec::as_slice);
                Ok(SignedCrl {
                    kid: s.kid.to_owned(),
                    active: s.active,
                    der: crl::build(&s.issuer, revoked, number, now, now.plus(CRL_LIFETIME_SECS))?,
                })
            })
            .collect::<crate::error::Result<_>>()?;
        Ok((crls, listed))
    }
}

/// Keep signed CRLs in the CA folder: each intermediate's as
/// `certs/crl/KID.crl`, the active one's also as `certs/intermediate_ca.crl`.
pub(crate) fn save(paths: &crate::ca::CaPaths, crls: &[SignedCrl]) -> crate::error::Result<()> {
    for crl in crls {
        let file = paths.crl_of(&crl.kid);
        if let Some(dir) = file.parent() {
            crate::platform::sys::create_dir(dir, false)?;
        }
        crate::platform::sys::write_atomic(&file, &crl.der, 0o644)?;
        if crl.active {
            crate::platform::sys::write_atomic(&paths.crl(), &crl.der, 0o644)?;
        }
    }
    Ok(())
}

/// The next cRLNumber: milliseconds since the epoch, or one more than the
/// last if the clock has not moved on (numbers only grow, also across
/// restarts while the clock does).
pub(crate) fn crl_number(last: u64) -> u64 {
    crate::platform::sys::now_ms().max(last.saturating_add(1))
}
