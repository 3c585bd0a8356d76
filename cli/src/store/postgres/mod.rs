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
pub(crate) mod read;
mod schema;
mod snapshot;

pub(crate) use self::connect::PgLocation;
pub(crate) use self::schema::Expect;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::Client;

use super::log::{Effects, Entry, Head};
use super::records::{CertRecord, Change, Outcome, RevocationRecord};
use super::{Backend, Reader, StoreError, rules};

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

/// One batch in one transaction: the head locked, the batch decided against
/// what the database holds, the lines chained and everything written.
async fn commit_batch(client: &mut Client, batch: &[Change]) -> Result<Vec<Outcome>, PgError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "SELECT seq, hash, len FROM fedpki_audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    let head = Head {
        seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        hash: row.get(1),
        len: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
    };
    let state = snapshot::of(&tx, batch).await?;
    let (outcomes, entries) = rules::decide(batch, &state)?;
    if entries.is_empty() {
        tx.rollback().await?;
        return Ok(outcomes);
    }
    let lines: Vec<&Entry> = entries.iter().map(|(e, _)| e).collect();
    let (bytes, next) = super::log::chain_refs(&head, &lines);
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    let insert_line = tx
        .prepare("INSERT INTO fedpki_audit (seq, line) VALUES ($1, $2)")
        .await?;
    for (i, line) in text.lines().enumerate() {
        let seq = i64::try_from(head.seq + 1 + i as u64).unwrap_or(i64::MAX);
        tx.execute(&insert_line, &[&seq, &line]).await?;
    }
    let (seq, len) = (
        i64::try_from(next.seq).unwrap_or(i64::MAX),
        i64::try_from(next.len).unwrap_or(i64::MAX),
    );
    tx.execute(
        "UPDATE fedpki_audit_head SET seq = $1, hash = $2, len = $3 WHERE id = 1",
        &[&seq, &next.hash, &len],
    )
    .await?;
    let mut revoked = false;
    for (_, fx) in &entries {
        revoked |= !fx.revoked.is_empty();
        apply(&tx, fx).await?;
    }
    if revoked {
        // Delivered at commit, to every replica listening (this one too).
        tx.execute(&format!("NOTIFY {CHANNEL}, 'revoked'"), &[])
            .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Write what one entry changes.
async fn apply(tx: &tokio_postgres::Transaction<'_>, fx: &Effects) -> Result<(), PgError> {
    let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    if let Some((jti, until)) = &fx.token {
        tx.execute(
            "INSERT INTO fedpki_tokens (jti, burn_until) VALUES ($1, $2)",
            &[jti, &i(*until)],
        )
        .await?;
    }
    if let Some(c) = &fx.cert {
        tx.execute(
            "INSERT INTO fedpki_certificates
                 (serial, subject, sans, not_after, issued_at, der, key, issuer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &c.serial,
                &c.subject,
                &c.sans.join("\n"),
                &i(c.not_after),
                &i(c.issued_at),
                &c.der,
                &c.key,
                &c.issuer,
            ],
        )
        .await?;
    }
    for r in &fx.revoked {
        tx.execute(
            "INSERT INTO fedpki_revocations (serial, revoked_at, reason) VALUES ($1, $2, $3)
             ON CONFLICT (serial) DO UPDATE SET revoked_at = EXCLUDED.revoked_at,
                                                reason = EXCLUDED.reason",
            &[&r.serial, &i(r.revoked_at), &i16::from(r.reason)],
        )
        .await?;
    }
    if let (Some(key), Some(first)) = (&fx.compromised, fx.revoked.first()) {
        tx.execute(
            "INSERT INTO fedpki_compromised_keys (key, serial) VALUES ($1, $2)
             ON CONFLICT (key) DO NOTHING",
            &[key, &first.serial],
        )
        .await?;
    }
    if let Some((old, new)) = &fx.renewed {
        tx.execute(
            "INSERT INTO fedpki_renewals (old, new) VALUES ($1, $2)
             ON CONFLICT (old) DO UPDATE SET new = EXCLUDED.new",
            &[old, new],
        )
        .await?;
    }
    Ok(())
}

/// Publish what every replica issues with (`state`, opaque here) and tell
/// the replicas (`NOTIFY fedpki, 'issuers'`). Its new version.
pub(crate) fn publish_issuers(
    location: &PgLocation,
    fingerprint: &str,
    state: &str,
) -> Result<i64, StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Existing).await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "INSERT INTO fedpki_issuers (id, version, state) VALUES (1, 1, $1)
                 ON CONFLICT (id) DO UPDATE SET version = fedpki_issuers.version + 1,
                                                state = EXCLUDED.state
                 RETURNING version",
                &[&state],
            )
            .await?;
        tx.execute(&format!("NOTIFY {CHANNEL}, 'issuers'"), &[])
            .await?;
        tx.commit().await?;
        Ok(row.get::<_, i64>(0))
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// What every replica issues with, as last published, if it was.
pub(crate) fn fetch_issuers(
    location: &PgLocation,
    fingerprint: &str,
) -> Result<Option<String>, StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Existing).await?;
        Ok(client
            .query_opt("SELECT state FROM fedpki_issuers WHERE id = 1", &[])
            .await?
            .map(|r| r.get::<_, String>(0)))
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// A whole ledger taken into an empty database for the CA whose root has
/// `fingerprint` (`pki store migrate`): the audit log's lines as they are
/// (the same chain and head), and what each changes; in one transaction.
pub(crate) fn import(
    location: &PgLocation,
    fingerprint: &str,
    lines: &[String],
    effects: &[Effects],
    head: &Head,
    (pruned_before, crl_number): (u64, u64),
) -> Result<(), StoreError> {
    let url = location.url.clone();
    let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Empty).await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare("INSERT INTO fedpki_audit (seq, line) VALUES ($1, $2)")
            .await?;
        for (n, line) in lines.iter().enumerate() {
            tx.execute(&insert, &[&i(n as u64 + 1), line]).await?;
        }
        tx.execute(
            "UPDATE fedpki_audit_head SET seq = $1, hash = $2, len = $3 WHERE id = 1",
            &[&i(head.seq), &head.hash, &i(head.len)],
        )
        .await?;
        for fx in effects {
            // A token burnt twice in the log (a repair's overlap) is one.
            if let Some((jti, until)) = &fx.token {
                tx.execute(
                    "INSERT INTO fedpki_tokens (jti, burn_until) VALUES ($1, $2)
                     ON CONFLICT (jti) DO UPDATE SET burn_until =
                         GREATEST(fedpki_tokens.burn_until, EXCLUDED.burn_until)",
                    &[jti, &i(*until)],
                )
                .await?;
            }
            let rest = Effects {
                token: None,
                ..fx.clone()
            };
            apply(&tx, &rest).await?;
        }
        // Keys revoked for compromise by entries written before keys were.
        tx.execute(
            "INSERT INTO fedpki_compromised_keys (key, serial)
             SELECT c.key, r.serial FROM fedpki_revocations r
             JOIN fedpki_certificates c USING (serial)
             WHERE r.reason = 1 AND c.key <> '' ON CONFLICT (key) DO NOTHING",
            &[],
        )
        .await?;
        tx.execute(
            "UPDATE fedpki_meta SET value = $1 WHERE key = 'pruned_before'",
            &[&i(pruned_before)],
        )
        .await?;
        tx.execute(
            "UPDATE fedpki_meta SET value = $1 WHERE key = 'crl_number'",
            &[&i(crl_number)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// That the database can be reached and holds no fedpki ledger, changing
/// nothing (before a ledger is moved there).
pub(crate) fn check_empty(location: &PgLocation) -> Result<(), StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let client = location.connect().await.map_err(PgError::from)?;
        let row = client
            .query_one("SELECT to_regclass('fedpki_schema') IS NOT NULL", &[])
            .await?;
        let held = row.get::<_, bool>(0)
            && client
                .query_opt("SELECT 1 FROM fedpki_schema", &[])
                .await?
                .is_some();
        if held {
            return Err(PgError::Refused(
                "the database already holds a fedpki ledger: give an empty database; nothing \
                 was changed"
                    .into(),
            ));
        }
        Ok(())
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// Before when burnt token ids were forgotten (see `Lookup::pruned_before`).
pub(crate) fn read_pruned_before(
    location: &PgLocation,
    fingerprint: &str,
) -> Result<u64, StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Existing).await?;
        let row = client
            .query_one(
                "SELECT value FROM fedpki_meta WHERE key = 'pruned_before'",
                &[],
            )
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// The ledger as `pki list` shows it, read with a connection of its own.
pub(crate) fn read_ledger(
    location: &PgLocation,
    fingerprint: &str,
) -> Result<super::Ledger, StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Existing).await?;
        let certificates = read::certificates(&client, None).await?;
        let revocations = read::revocations(&client).await?;
        let renewed = read::renewals(&client).await?;
        let (_, head) = read::audit(&client).await?;
        Ok(super::Ledger {
            certificates,
            revocations,
            renewed,
            indexed: (head.seq > 0).then_some(head),
        })
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// The audit log's lines (each with its newline) and the head the database
/// records, for `pki audit`.
pub(crate) fn read_audit(
    location: &PgLocation,
    fingerprint: &str,
) -> Result<(Vec<u8>, Head), StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Existing).await?;
        read::audit(&client).await
    })
    .map_err(|e: PgError| e.into_store(&url))
}
