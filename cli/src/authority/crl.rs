//! The CRLs the authority signs, one per intermediate in use, how their
//! numbers grow, and where they are kept: the one home of CRL publishing,
//! for the server (`api/crl.rs` serves what this made), `pki crl` and
//! `pki revoke` without a server, and the root's CRL (`root/sign.rs`).

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

/// CRLs signed under one number.
pub(crate) struct CrlSet {
    /// Their cRLNumber.
    pub number: u64,
    /// Each intermediate's CRL, the active one's first.
    pub crls: Vec<SignedCrl>,
    /// Every revocation they list: serial → (date, reason code).
    pub listed: HashMap<String, (u64, u8)>,
}

impl CrlSet {
    /// The active intermediate's CRL, DER.
    pub(crate) fn active(&self) -> &[u8] {
        self.crls
            .iter()
            .find(|c| c.active)
            .map_or(&[][..], |c| c.der.as_slice())
    }
}

impl Authority {
    /// Sign every intermediate's CRL under the next number above `last`
    /// (see [`next_number`]) and keep them in `folder`, if given: the CRLs
    /// to serve.
    pub(crate) async fn publish_crls(
        &self,
        last: u64,
        folder: Option<&crate::ca::CaPaths>,
        now: UnixTime,
    ) -> crate::error::Result<CrlSet> {
        let number = next_number(&self.store, last).await?;
        let (crls, listed) = self.crls(number, now).await?;
        let crls = match folder.cloned() {
            // Off the async workers: the writes wait for the disk.
            Some(paths) => tokio::task::spawn_blocking(move || save(&paths, &crls).map(|()| crls))
                .await
                .map_err(|e| {
                    crate::error::CliError::Store(format!("the CRL writer stopped: {e}"))
                })??,
            None => crls,
        };
        crate::platform::events::report(&crate::platform::events::Event::CrlSigned {
            number,
            at: now.0,
        });
        Ok(CrlSet {
            number,
            crls,
            listed,
        })
    }

    /// A complete CRL for each intermediate in use: every revocation of a
    /// certificate it signed, numbered `number`, valid
    /// [`CRL_LIFETIME_SECS`] from `now`, the active intermediate's first;
    /// and every revocation they list (serial → date, reason code).
    pub(super) async fn crls(
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
            // A revocation is on its certificate's issuer's CRL.
            let kid = record
                .map(|c| c.issuer)
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| active.clone());
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
fn save(paths: &crate::ca::CaPaths, crls: &[SignedCrl]) -> crate::error::Result<()> {
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

/// The next cRLNumber above `last` (the last one this process or folder
/// signed): milliseconds since the epoch, or one more than `last` if the
/// clock has not moved on, so numbers only grow, also across restarts
/// while the clock does. A ledger shared by replicas numbers them all, so
/// each replica's CRLs, and one signed by `pki crl` beside them, number
/// above every other's.
pub(crate) async fn next_number(
    store: &crate::store::Store,
    last: u64,
) -> crate::error::Result<u64> {
    let local = crate::platform::sys::now_ms().max(last.saturating_add(1));
    Ok(store.next_crl_number(local).await?.unwrap_or(local))
}
