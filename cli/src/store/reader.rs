//! Reads of what a backend made durable that do not wait in the writer's
//! queue: the embedded store's index and overlay under their lock, or the
//! shared database through a pool of connections of its own.

use super::records::{CertRecord, RevocationRecord};
use super::{StoreError, postgres, published};

/// Reads that do not wait in the writer's queue (opaque outside the store).
#[derive(Debug, Clone)]
pub struct Reader(ReaderKind);

#[derive(Debug, Clone)]
enum ReaderKind {
    /// The embedded store's index and overlay, under their lock (redb
    /// reads block: they run on tokio's blocking threads).
    Embedded(published::Published),
    /// The shared database, through a pool of its own.
    Postgres(postgres::read::PgReader),
}

impl Reader {
    pub(crate) fn embedded(published: published::Published) -> Self {
        Self(ReaderKind::Embedded(published))
    }

    pub(crate) fn postgres(reader: postgres::read::PgReader) -> Self {
        Self(ReaderKind::Postgres(reader))
    }

    /// Whether the writer should answer a read this reader failed: the
    /// embedded index is closed while the writer reopens it. A database's
    /// failure is the writer's too.
    pub(super) fn writer_may_answer(&self) -> bool {
        matches!(self.0, ReaderKind::Embedded(_))
    }

    async fn blocking<T: Send + 'static>(
        published: &published::Published,
        read: impl FnOnce(&published::Visible) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let published = published.clone();
        tokio::task::spawn_blocking(move || read(&published.read()))
            .await
            .map_err(|e| StoreError::Failed(format!("a read of the store failed: {e}")))?
    }

    pub(super) async fn certificates(&self) -> Result<Vec<CertRecord>, StoreError> {
        match &self.0 {
            ReaderKind::Embedded(p) => Self::blocking(p, |v| v.certificates()).await,
            ReaderKind::Postgres(pg) => pg.certificates().await,
        }
    }

    pub(super) async fn revocations(&self) -> Result<Vec<RevocationRecord>, StoreError> {
        match &self.0 {
            ReaderKind::Embedded(p) => Self::blocking(p, |v| v.revocations()).await,
            ReaderKind::Postgres(pg) => pg.revocations().await,
        }
    }

    pub(super) async fn revoked_certificates(
        &self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, StoreError> {
        match &self.0 {
            ReaderKind::Embedded(p) => Self::blocking(p, |v| v.revoked_certificates()).await,
            ReaderKind::Postgres(pg) => pg.revoked_certificates().await,
        }
    }

    pub(super) async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        match &self.0 {
            ReaderKind::Embedded(p) => {
                let serial = serial.to_owned();
                Self::blocking(p, move |v| v.certificate(&serial)).await
            }
            ReaderKind::Postgres(pg) => pg.certificate(serial).await,
        }
    }

    pub(super) async fn key_birth(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match &self.0 {
            ReaderKind::Embedded(p) => {
                let key = key.to_owned();
                Self::blocking(p, move |v| v.key_birth(&key)).await
            }
            ReaderKind::Postgres(pg) => pg.key_birth(key).await,
        }
    }

    pub(super) async fn is_burnt(&self, jti: &str) -> Result<bool, StoreError> {
        match &self.0 {
            ReaderKind::Embedded(p) => {
                let jti = jti.to_owned();
                Self::blocking(p, move |v| v.is_burnt(&jti)).await
            }
            ReaderKind::Postgres(pg) => pg.is_burnt(jti).await,
        }
    }
}
