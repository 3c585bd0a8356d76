//! The CRLs the server publishes (`GET /crl` for the active intermediate,
//! `GET /crl/KID` for each intermediate in use), and their files in the CA
//! folder. An answer about a revocation never runs ahead of them: it waits
//! for CRLs that list it, and a failed re-signing is reported (`/health`)
//! and retried until it succeeds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::authority::Authority;
use crate::ca::CaPaths;
use crate::error::Result;
use crate::platform::sys::now;
use crate::store::RevocationRecord;

/// The current CRLs, re-signed after each revocation and at two thirds of
/// their life. Refreshes run one at a time, and a refresh that started after
/// a revocation was committed always covers it: each caller takes a ticket
/// after its commit, and CRLs are built only after reading the highest
/// ticket so far, so concurrent revocations can never leave an older CRL
/// served (each returns once a CRL with its revocation is published).
pub(super) struct CrlCache {
    published: RwLock<Arc<Published>>,
    tickets: std::sync::atomic::AtomicU64,
    state: tokio::sync::Mutex<CrlState>,
    /// Set while the last refresh failed: the CRLs served may lack a
    /// revocation that was recorded.
    stale: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Published {
    /// The active intermediate's key id.
    active: String,
    by_kid: HashMap<String, Bytes>,
    /// Every revocation they list: serial → (date, reason code).
    listed: HashMap<String, (u64, u8)>,
}

struct CrlState {
    /// Every ticket up to this one is covered by the published CRLs.
    published: u64,
    last_number: u64,
}

impl CrlCache {
    /// `last_number`: the number of the CRL on disk, so numbers keep
    /// growing across restarts whatever the clock does.
    pub(super) fn new(last_number: u64) -> Self {
        Self {
            published: RwLock::new(Arc::default()),
            tickets: std::sync::atomic::AtomicU64::new(0),
            state: tokio::sync::Mutex::new(CrlState {
                published: 0,
                last_number,
            }),
            stale: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the last refresh failed (and none has succeeded since).
    pub(super) fn is_stale(&self) -> bool {
        self.stale.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Return once the CRLs served list `record` as it is: at once if they
    /// do, else after a refresh (which may fail: then they do not).
    pub(super) async fn ensure_lists(
        &self,
        authority: &Authority,
        folder: Option<&CaPaths>,
        record: &RevocationRecord,
    ) -> Result<()> {
        let listed = self.published().listed.get(&record.serial).copied();
        if listed == Some((record.revoked_at, record.reason)) {
            return Ok(());
        }
        self.refresh(authority, folder).await
    }

    fn published(&self) -> Arc<Published> {
        self.published.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// The active intermediate's CRL published last (DER).
    pub(super) fn current(&self) -> Bytes {
        let published = self.published();
        published
            .by_kid
            .get(&published.active)
            .cloned()
            .unwrap_or_default()
    }

    /// The CRL published last of the intermediate with key id `kid`.
    pub(super) fn of(&self, kid: &str) -> Option<Bytes> {
        self.published().by_kid.get(kid).cloned()
    }

    /// Publish CRLs that hold every revocation committed before this call
    /// (and write them to the CA folder).
    pub(super) async fn refresh(
        &self,
        authority: &Authority,
        folder: Option<&CaPaths>,
    ) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let ticket = self.tickets.fetch_add(1, SeqCst) + 1;
        let mut state = self.state.lock().await;
        if state.published >= ticket {
            return Ok(());
        }
        let covers = self.tickets.load(SeqCst);
        let signed = authority
            .publish_crls(state.last_number, folder, now())
            .await;
        self.stale.store(signed.is_err(), SeqCst);
        let signed = signed?;
        let mut fresh = Published {
            listed: signed.listed,
            ..Published::default()
        };
        for crl in signed.crls {
            if crl.active {
                fresh.active.clone_from(&crl.kid);
            }
            fresh.by_kid.insert(crl.kid, Bytes::from(crl.der));
        }
        if let Ok(mut cur) = self.published.write() {
            *cur = Arc::new(fresh);
        }
        state.last_number = signed.number;
        state.published = covers;
        Ok(())
    }
}
