//! The shared ledger of a CA's replicas, in PostgreSQL.
//!
//! Each replica's writer thread keeps one connection and commits a batch in
//! one transaction that first locks the audit log's head: writers of every
//! replica are serialised there, so the batch is decided by the same
//! `rules::decide` as the embedded store's, against what the database
//! holds for it (`snapshot`), and its audit lines extend the one chain.
//! Tokens, certificates, revocations, lineage and barred keys are written
//! in that transaction; no answer leaves before it commits. A revocation
//! notifies every replica (`NOTIFY fedpki`), which re-signs its CRL.
//!
//! The database unreachable: every operation fails at once as
//! [`StoreError::Unavailable`] (503 to clients), and the next one connects
//! again. A serialization failure or a deadlock is retried; a commit whose
//! outcome was lost with the connection is not (its token, if the commit
//! did happen, is then spent: the client has no answer, never two).

mod connect;
mod outside;
pub(crate) mod read;
mod schema;
mod snapshot;
mod write;

pub(crate) use self::connect::PgLocation;
pub(crate) use self::outside::{
    check_empty, fetch_issuers, import, publish_issuers, read_audit, read_ledger,
    read_pruned_before,
};
pub(crate) use self::schema::Expect;
use self::write::commit_batch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::Client;

use super::records::{CertRecord, Change, Outcome, RevocationRecord};
use super::{Backend, Reader, StoreError};

/// The channel replicas hear each other on.
pub(crate) const CHANNEL: &str = "fedpki";

/// How long one operation (a batch's transaction) may take.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure of the database, by what the store does about it.
#[derive(Debug)]
pub(crate) enum PgError {
    /// Unreachable, or the connection was lost: answer 503, reconnect.
    Unavailable(String),
    /// A serialization failure or a deadlock: try the batch again.
    Retry(String),
    /// The database refuses to serve this CA (a standby, another CA's
    /// ledger, a newer schema): say why, change nothing.
    Refused(String),
    /// Anything else.
    Failed(String),
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                Self::Retry(e.to_string())
            }
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => Self::Refused(
                "the database became a read-only standby; the CA reconnects to find the primary"
                    .into(),
            ),
            Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
                Self::Unavailable(e.to_string())
            }
            Some(_) => Self::Failed(e.to_string()),
            None => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<String> for PgError {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

impl PgError {
    fn into_store(self, url: &str) -> StoreError {
        match self {
            Self::Unavailable(m) | Self::Retry(m) => StoreError::Unavailable(format!(
                "cannot reach {url} ({m}): check that PostgreSQL runs there and that its \
                 password is given (--store-password-file, PGPASSWORD or a pgpass file)"
            )),
            Self::Refused(m) | Self::Failed(m) => StoreError::Failed(format!("{url}: {m}")),
        }
    }
}

/// The PostgreSQL backend, owned by the store's writer thread.
pub(crate) struct PgBackend {
    rt: tokio::runtime::Runtime,
    location: PgLocation,
    client: Option<Client>,
    /// Connections of their own for reads that need not wait for a batch.
    reader: read::PgReader,
    unavailable: Arc<AtomicBool>,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBackend")
            .field("url", &self.location.url)
            .finish_non_exhaustive()
    }
}

/// A runtime of its own, for a thread that is not async.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Failed(format!("cannot start the database client: {e}")))
}

impl PgBackend {
    /// Connect, and make the schema current for the CA whose root has
    /// `fingerprint` (`expect` says whether its ledger must exist).
    pub(crate) fn open(
        location: PgLocation,
        fingerprint: &str,
        expect: Expect,
    ) -> Result<Self, StoreError> {
        let rt = runtime()?;
        let url = location.url.clone();
        let client = rt.block_on(async {
            let mut client = location.connect().await.map_err(PgError::from)?;
            schema::prepare(&mut client, fingerprint, expect).await?;
            Ok::<_, PgError>(client)
        });
        let client = client.map_err(|e| e.into_store(&url))?;
        Ok(Self {
            rt,
            reader: read::PgReader::new(&location)?,
            location,
            client: Some(client),
            unavailable: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Run `op` on a connection (made again if it was lost), retrying a
    /// serialization failure; a lost connection makes the store
    /// unavailable until the next success.
    fn run<T>(
        &mut self,
        mut op: impl AsyncFnMut(&mut Client) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        let url = self.location.url.clone();
        let mut last = None;
        for _ in 0..5 {
            let result = self.rt.block_on(async {
                if self.client.as_ref().is_none_or(Client::is_closed) {
                    self.client = Some(self.location.connect().await.map_err(PgError::from)?);
                }
                let Some(client) = self.client.as_mut() else {
                    return Err(PgError::Unavailable("no connection".into()));
                };
                match tokio::time::timeout(OP_TIMEOUT, op(client)).await {
                    Ok(r) => r,
                    Err(_) => Err(PgError::Unavailable(format!(
                        "no answer within {} s",
                        OP_TIMEOUT.as_secs()
                    ))),
                }
            });
            match result {
                Ok(v) => {
                    self.unavailable.store(false, Ordering::SeqCst);
                    return Ok(v);
                }
                Err(PgError::Retry(m)) => last = Some(m),
                Err(e) => {
                    if matches!(e, PgError::Unavailable(_) | PgError::Refused(_)) {
                        // Lost or a standby now: connect afresh next time.
                        self.client = None;
                        self.unavailable.store(true, Ordering::SeqCst);
                    }
                    return Err(e.into_store(&url));
                }
            }
        }
        Err(PgError::Retry(last.unwrap_or_default()).into_store(&url))
    }
}

impl Backend for PgBackend {
    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, StoreError> {
        self.run(async |client| commit_batch(client, batch).await)
    }

    fn prune(&mut self, now: u64) -> Result<usize, StoreError> {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        self.run(async |client| {
            let tx = client.transaction().await?;
            let n = tx
                .execute("DELETE FROM fedpki_tokens WHERE burn_until < $1", &[&now])
                .await?;
            tx.execute(
                "UPDATE fedpki_meta SET value = GREATEST(value, $1) WHERE key = 'pruned_before'",
                &[&now],
            )
            .await?;
            tx.commit().await?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn certificates(&mut self) -> Result<Vec<CertRecord>, StoreError> {
        self.run(async |client| read::certificates(client, None).await)
    }

    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError> {
        self.run(async |client| read::revocations(client).await)
    }

    fn certificate(&mut self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        let serial = serial.to_owned();
        self.run(async |client| {
            Ok(
                read::certificates(client, Some(std::slice::from_ref(&serial)))
                    .await?
                    .pop(),
            )
        })
    }

    fn revoked_certificates(
        &mut self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, StoreError> {
        self.run(async |client| read::revoked_certificates(client).await)
    }

    fn is_burnt(&mut self, jti: &str) -> Result<bool, StoreError> {
        self.run(async |client| read::is_burnt(client, jti).await)
    }

    fn key_birth(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        self.run(async |client| read::key_birth(client, key).await)
    }

    fn next_crl_number(&mut self, at_least: u64) -> Result<Option<u64>, StoreError> {
        let at_least = i64::try_from(at_least).unwrap_or(i64::MAX);
        self.run(async |client| {
            let row = client
                .query_one(
                    "UPDATE fedpki_meta SET value = GREATEST(value + 1, $1)
                     WHERE key = 'crl_number' RETURNING value",
                    &[&at_least],
                )
                .await?;
            Ok(Some(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
        })
    }

    fn unavailable_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(self.unavailable.clone())
    }

    fn reader(&self) -> Option<Reader> {
        Some(Reader::postgres(self.reader.clone()))
    }

    fn ping(&mut self) -> Result<(), StoreError> {
        self.run(async |client| {
            client.simple_query("SELECT 1").await?;
            Ok(())
        })
    }
}
