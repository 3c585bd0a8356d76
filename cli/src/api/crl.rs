//! The CRL the server publishes (`GET /crl`, and the file in the CA
//! folder).

use std::sync::RwLock;

use bytes::Bytes;

use crate::authority::{Authority, crl_number};
use crate::error::Result;
use crate::platform::sys::now;

/// The current CRL, re-signed after each revocation and at two thirds of
/// its life. Refreshes run one at a time, and a refresh that started after
/// a revocation was committed always covers it: each caller takes a ticket
/// after its commit, and a CRL is built only after reading the highest
/// ticket so far, so concurrent revocations can never leave an older CRL
/// served (each returns once a CRL with its revocation is published).
pub(super) struct CrlCache {
    der: RwLock<Bytes>,
    tickets: std::sync::atomic::AtomicU64,
    state: tokio::sync::Mutex<CrlState>,
}

struct CrlState {
    /// Every ticket up to this one is covered by the published CRL.
    published: u64,
    last_number: u64,
}

impl CrlCache {
    /// `last_number`: the number of the CRL on disk, so numbers keep
    /// growing across restarts whatever the clock does.
    pub(super) fn new(last_number: u64) -> Self {
        Self {
            der: RwLock::new(Bytes::new()),
            tickets: std::sync::atomic::AtomicU64::new(0),
            state: tokio::sync::Mutex::new(CrlState {
                published: 0,
                last_number,
            }),
        }
    }

    /// The CRL published last (DER).
    pub(super) fn current(&self) -> Bytes {
        self.der.read().map(|d| d.clone()).unwrap_or_default()
    }

    /// Publish a CRL that holds every revocation committed before this call
    /// (and write it to the CA folder).
    pub(super) async fn refresh(
        &self,
        authority: &Authority,
        file: Option<&std::path::Path>,
    ) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let ticket = self.tickets.fetch_add(1, SeqCst) + 1;
        let mut state = self.state.lock().await;
        if state.published >= ticket {
            return Ok(());
        }
        let covers = self.tickets.load(SeqCst);
        let number = crl_number(state.last_number);
        let der = authority.crl(number, now()).await?;
        if let Some(path) = file {
            // Off the async workers: the write waits for the disk.
            let (path, bytes) = (path.to_owned(), der.clone());
            tokio::task::spawn_blocking(move || {
                crate::platform::sys::write_atomic(&path, &bytes, 0o644)
            })
            .await
            .map_err(|e| crate::error::CliError::Store(format!("the CRL writer stopped: {e}")))??;
        }
        if let Ok(mut cur) = self.der.write() {
            *cur = Bytes::from(der);
        }
        state.last_number = number;
        state.published = covers;
        Ok(())
    }
}

/// The cRLNumber of the CRL in `file`, or 0.
pub(super) fn crl_number_on_disk(file: Option<&std::path::Path>) -> u64 {
    file.and_then(|p| std::fs::read(p).ok())
        .and_then(|der| fedpki_core::crl::Crl::parse(&der).ok())
        .and_then(|crl| crl.number())
        .unwrap_or(0)
}
