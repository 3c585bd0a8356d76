//! What the commands do with a connection of their own, beside the
//! writer: publish and fetch what every replica issues with, move a whole
//! ledger in (`pki store migrate`), check a database is empty, and read a
//! ledger for `pki list`.

use super::write::apply;
use super::{CHANNEL, Expect, PgError, PgLocation, read, runtime, schema};
use crate::store::StoreError;
use crate::store::log::{Effects, Head};

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
) -> Result<crate::store::Ledger, StoreError> {
    let url = location.url.clone();
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = location.connect().await.map_err(PgError::from)?;
        schema::prepare(&mut client, fingerprint, Expect::Existing).await?;
        let tx = one_snapshot(&mut client).await?;
        let certificates = read::certificates(&tx, None).await?;
        let revocations = read::revocations(&tx).await?;
        let renewed = read::renewals(&tx).await?;
        let (_, head) = read::audit(&tx).await?;
        tx.commit().await?;
        Ok(crate::store::Ledger {
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
        let tx = one_snapshot(&mut client).await?;
        let audit = read::audit(&tx).await?;
        tx.commit().await?;
        Ok(audit)
    })
    .map_err(|e: PgError| e.into_store(&url))
}

/// A read-only transaction that sees one snapshot: the log's lines, its
/// head and the tables are read as of one moment, while the replicas go on
/// committing (read one by one, a commit between two reads made a live
/// ledger look as if its log's end had been cut off).
async fn one_snapshot(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, PgError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}
