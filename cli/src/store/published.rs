//! What the embedded store has made durable, as every reader sees it: the
//! index (a checkpoint of the log) and, over it, what the log's entries
//! beyond the index change.
//!
//! The writer thread changes it; readers on other threads read it without
//! waiting for the writer's batches. A reader holds the read lock for the
//! whole of a read, and the writer takes the write lock to add a synced
//! batch and for a checkpoint (which moves the overlay into the index), so
//! a reader sees each record exactly once, as of one moment.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::StoreError;
use super::index::Index;
use super::records::{CertRecord, RevocationRecord};
use super::rules::{Layered, Lookup, State};

/// The index and the overlay, together.
#[derive(Debug, Default)]
pub(crate) struct Visible {
    /// `None` between a failed index write (after which redb refuses
    /// everything) and its reopening by the writer.
    pub index: Option<Index>,
    /// What the log's entries after the index's head change.
    pub overlay: State,
}

/// The shared handle: the writer's and every reader's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Published(Arc<RwLock<Visible>>);

impl Published {
    /// Over an open index, with nothing beyond it yet.
    pub(crate) fn with_index(self, index: Index) -> Self {
        self.write().index = Some(index);
        self
    }

    /// For a read, or for the writer's decisions (which read only).
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Visible> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// For the writer: a synced batch, a checkpoint, a reopened index.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Visible> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Visible {
    /// The index, unless a failed write closed it.
    pub(crate) fn index(&self) -> Result<&Index, StoreError> {
        self.index
            .as_ref()
            .ok_or_else(|| StoreError::Failed("the index is being reopened".into()))
    }

    /// Every certificate record.
    pub(crate) fn certificates(&self) -> Result<Vec<CertRecord>, StoreError> {
        let mut all = self.index()?.view()?.certificates()?;
        all.extend(self.overlay.certs.values().cloned());
        Ok(all)
    }

    /// Every revocation; the overlay's over the index's (a revocation may
    /// have moved to key compromise since the last checkpoint).
    pub(crate) fn revocations(&self) -> Result<Vec<RevocationRecord>, StoreError> {
        let mut all: BTreeMap<String, RevocationRecord> = self
            .index()?
            .view()?
            .revocations()?
            .into_iter()
            .map(|r| (r.serial.clone(), r))
            .collect();
        all.extend(
            self.overlay
                .revoked
                .iter()
                .map(|(s, r)| (s.clone(), r.clone())),
        );
        Ok(all.into_values().collect())
    }

    /// Every revocation with its certificate's record, in one read
    /// transaction.
    pub(crate) fn revoked_certificates(
        &self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, StoreError> {
        let revoked = self.revocations()?;
        let view = self.index()?.view()?;
        let now = Layered {
            top: &self.overlay,
            base: &view,
        };
        let mut all = Vec::with_capacity(revoked.len());
        for r in revoked {
            let cert = now.certificate(&r.serial)?;
            all.push((r, cert));
        }
        Ok(all)
    }

    /// One certificate's record.
    pub(crate) fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        let view = self.index()?.view()?;
        Ok(Layered {
            top: &self.overlay,
            base: &view,
        }
        .certificate(serial)?)
    }

    /// When the key `key` was first certified, if it was.
    pub(crate) fn key_birth(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let view = self.index()?.view()?;
        Ok(super::rules::key_birth(
            &Layered {
                top: &self.overlay,
                base: &view,
            },
            key,
        )?)
    }

    /// Whether a token id is burnt.
    pub(crate) fn is_burnt(&self, jti: &str) -> Result<bool, StoreError> {
        let view = self.index()?.view()?;
        Ok(Layered {
            top: &self.overlay,
            base: &view,
        }
        .burnt(jti)?)
    }
}
