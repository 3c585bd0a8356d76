//! What the CA reads from the shared ledger: the queries, and a pool of
//! connections of its own that readers use without waiting for the
//! writer's.

use tokio_postgres::{GenericClient, Row};

use super::{OP_TIMEOUT, PgError, PgLocation};
use crate::store::StoreError;
use crate::store::log::Head;
use crate::store::records::{CertRecord, RevocationRecord};

/// Connections a replica's readers share (the writer keeps its own).
const READERS: usize = 4;

/// Reads of the shared ledger on the caller's runtime, through a pool.
#[derive(Clone)]
pub(crate) struct PgReader {
    pool: deadpool_postgres::Pool,
    url: String,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PgReader {
    /// No connection is made until the first read.
    pub(crate) fn new(location: &PgLocation) -> Result<Self, StoreError> {
        Ok(Self {
            pool: location.pool(READERS).map_err(StoreError::Failed)?,
            url: location.url.clone(),
        })
    }

    /// Run `op` on a pooled connection, within the operation timeout.
    async fn run<T>(
        &self,
        op: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, PgError>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(OP_TIMEOUT, async {
            let client = self.pool.get().await.map_err(|e| match e {
                deadpool_postgres::PoolError::Backend(e) => PgError::from(e),
                other => PgError::Unavailable(other.to_string()),
            })?;
            op(&client).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(PgError::Unavailable(format!(
                "no answer within {} s",
                OP_TIMEOUT.as_secs()
            )))
        });
        result.map_err(|e| e.into_store(&self.url))
    }

    /// Every certificate record.
    pub(crate) async fn certificates(&self) -> Result<Vec<CertRecord>, StoreError> {
        self.run(async |c| certificates(c, None).await).await
    }

    /// Every revocation.
    pub(crate) async fn revocations(&self) -> Result<Vec<RevocationRecord>, StoreError> {
        self.run(async |c| revocations(c).await).await
    }

    /// Every revocation with its certificate, in one query.
    pub(crate) async fn revoked_certificates(
        &self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, StoreError> {
        self.run(async |c| revoked_certificates(c).await).await
    }

    /// One certificate's record.
    pub(crate) async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        let serial = [serial.to_owned()];
        self.run(async |c| Ok(certificates(c, Some(&serial)).await?.pop()))
            .await
    }

    /// Whether a token id is burnt.
    pub(crate) async fn is_burnt(&self, jti: &str) -> Result<bool, StoreError> {
        self.run(async |c| is_burnt(c, jti).await).await
    }

    /// When the key `key` was first certified, if it was.
    pub(crate) async fn key_birth(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.run(async |c| key_birth(c, key).await).await
    }
}

/// Whether a token id is burnt.
pub(crate) async fn is_burnt(c: &impl GenericClient, jti: &str) -> Result<bool, PgError> {
    Ok(
        c.query_opt("SELECT 1 FROM fedpki_tokens WHERE jti = $1", &[&jti])
            .await?
            .is_some(),
    )
}

/// When the key `key` was first certified, if it was.
pub(crate) async fn key_birth(c: &impl GenericClient, key: &str) -> Result<Option<u64>, PgError> {
    let row = c
        .query_one(
            "SELECT min(issued_at) FROM fedpki_certificates WHERE key = $1",
            &[&key],
        )
        .await?;
    let birth: Option<i64> = row.get(0);
    Ok(birth.and_then(|b| u64::try_from(b).ok()))
}

const CERT_COLUMNS: &str = "serial, subject, sans, not_after, issued_at, der, key, issuer";

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn cert(row: &Row, at: usize) -> CertRecord {
    let sans: String = row.get(at + 2);
    CertRecord {
        serial: row.get(at),
        subject: row.get(at + 1),
        sans: sans
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        not_after: u(row.get(at + 3)),
        issued_at: u(row.get(at + 4)),
        der: row.get(at + 5),
        key: row.get(at + 6),
        issuer: row.get(at + 7),
    }
}

fn revocation(row: &Row, at: usize) -> RevocationRecord {
    RevocationRecord {
        serial: row.get(at),
        revoked_at: u(row.get(at + 1)),
        reason: u8::try_from(row.get::<_, i16>(at + 2)).unwrap_or(0),
    }
}

/// Certificates (those of `serials`, or all), by serial.
pub(crate) async fn certificates(
    c: &impl GenericClient,
    serials: Option<&[String]>,
) -> Result<Vec<CertRecord>, PgError> {
    let rows = match serials {
        Some(s) => {
            c.query(
                &format!("SELECT {CERT_COLUMNS} FROM fedpki_certificates WHERE serial = ANY($1)"),
                &[&s],
            )
            .await?
        }
        None => {
            c.query(
                &format!("SELECT {CERT_COLUMNS} FROM fedpki_certificates ORDER BY serial"),
                &[],
            )
            .await?
        }
    };
    Ok(rows.iter().map(|r| cert(r, 0)).collect())
}

/// Every revocation.
pub(crate) async fn revocations(c: &impl GenericClient) -> Result<Vec<RevocationRecord>, PgError> {
    let rows = c
        .query(
            "SELECT serial, revoked_at, reason FROM fedpki_revocations ORDER BY serial",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| revocation(r, 0)).collect())
}

/// Every renewal: the serial renewed and its successor's.
pub(crate) async fn renewals(c: &impl GenericClient) -> Result<Vec<(String, String)>, PgError> {
    let rows = c
        .query("SELECT old, new FROM fedpki_renewals ORDER BY old", &[])
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Every revocation with its certificate, in one query.
pub(crate) async fn revoked_certificates(
    c: &impl GenericClient,
) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, PgError> {
    let rows = c
        .query(
            "SELECT r.serial, r.revoked_at, r.reason, c.serial, c.subject, c.sans,
                    c.not_after, c.issued_at, c.der, c.key, c.issuer
             FROM fedpki_revocations r LEFT JOIN fedpki_certificates c USING (serial)
             ORDER BY r.serial",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let found = r.get::<_, Option<String>>(3).is_some();
            (revocation(r, 0), found.then(|| cert(r, 3)))
        })
        .collect())
}

/// The audit log: its lines, in order, each with its newline, and the
/// head the database records.
pub(crate) async fn audit(c: &impl GenericClient) -> Result<(Vec<u8>, Head), PgError> {
    let mut text = Vec::new();
    for row in c
        .query("SELECT line FROM fedpki_audit ORDER BY seq", &[])
        .await?
    {
        text.extend_from_slice(row.get::<_, &str>(0).as_bytes());
        text.push(b'\n');
    }
    let row = c
        .query_one(
            "SELECT seq, hash, len FROM fedpki_audit_head WHERE id = 1",
            &[],
        )
        .await?;
    Ok((
        text,
        Head {
            seq: u(row.get(0)),
            hash: row.get(1),
            len: u(row.get(2)),
        },
    ))
}
