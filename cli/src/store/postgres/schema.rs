//! The shared ledger's tables, created and versioned by fedpki: each
//! migration runs once, under an advisory lock so replicas starting
//! together do not race, and a database whose schema is newer than this
//! fedpki, or that holds another CA's ledger, is refused with both named.

use tokio_postgres::Client;

use super::PgError;

/// The schema this fedpki reads and writes.
pub(crate) const SCHEMA_VERSION: i32 = 2;

/// The migrations, in order: `MIGRATIONS[n]` takes version n to n + 1.
const MIGRATIONS: &[&str] = &[
    // 1: the ledger, as the embedded store's tables and log.
    "CREATE TABLE fedpki_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
     INSERT INTO fedpki_meta VALUES ('pruned_before', 0), ('crl_number', 0);
     CREATE TABLE fedpki_tokens (jti TEXT PRIMARY KEY, burn_until BIGINT NOT NULL);
     CREATE INDEX fedpki_tokens_until ON fedpki_tokens (burn_until);
     CREATE TABLE fedpki_certificates (
         serial TEXT PRIMARY KEY, subject TEXT NOT NULL, sans TEXT NOT NULL,
         not_after BIGINT NOT NULL, issued_at BIGINT NOT NULL, der BYTEA NOT NULL,
         key TEXT NOT NULL, issuer TEXT NOT NULL);
     CREATE INDEX fedpki_certificates_key ON fedpki_certificates (key);
     CREATE TABLE fedpki_revocations (
         serial TEXT PRIMARY KEY, revoked_at BIGINT NOT NULL, reason SMALLINT NOT NULL);
     CREATE TABLE fedpki_renewals (old TEXT PRIMARY KEY, new TEXT NOT NULL);
     CREATE TABLE fedpki_compromised_keys (key TEXT PRIMARY KEY, serial TEXT NOT NULL);
     CREATE TABLE fedpki_audit (seq BIGINT PRIMARY KEY, line TEXT NOT NULL);
     CREATE TABLE fedpki_audit_head (
         id INT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL,
         len BIGINT NOT NULL);
     INSERT INTO fedpki_audit_head VALUES
         (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);",
    // 2: what every replica issues with (the intermediates in use, the
    // root's CRL), published by the replica that changed it.
    "CREATE TABLE fedpki_issuers (
         id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, state TEXT NOT NULL);",
];

/// What opening asks of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// It holds this CA's ledger (a replica starting, a command).
    Existing,
    /// It holds no fedpki ledger yet: make one (`pki install --store`,
    /// `pki store migrate`).
    Empty,
}

/// Make the schema current for the CA whose root has `fingerprint`, as
/// `expect` says, in one transaction.
pub(crate) async fn prepare(
    client: &mut Client,
    fingerprint: &str,
    expect: Expect,
) -> Result<(), PgError> {
    let read_only: String = client
        .query_one("SHOW transaction_read_only", &[])
        .await?
        .get(0);
    if read_only == "on" {
        return Err(PgError::Refused(
            "the database is a read-only standby: point --store at the primary, or list both \
             hosts with target_session_attrs=read-write so the primary is found; nothing was \
             changed"
                .into(),
        ));
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7410203)", &[])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fedpki_schema (
             id INT PRIMARY KEY CHECK (id = 1), version INT NOT NULL,
             root_fingerprint TEXT NOT NULL)",
    )
    .await?;
    let found = tx
        .query_opt("SELECT version, root_fingerprint FROM fedpki_schema", &[])
        .await?
        .map(|r| (r.get::<_, i32>(0), r.get::<_, String>(1)));
    let from = match (found, expect) {
        (None, Expect::Existing) => {
            return Err(PgError::Refused(
                "the database holds no fedpki ledger (make one with `fedpki pki install --store \
                 URL` or move a CA's with `fedpki pki store migrate`)"
                    .into(),
            ));
        }
        (Some(_), Expect::Empty) => {
            return Err(PgError::Refused(
                "the database already holds a fedpki ledger: give an empty database; nothing was \
                 changed"
                    .into(),
            ));
        }
        (None, Expect::Empty) => {
            tx.execute(
                "INSERT INTO fedpki_schema VALUES (1, 0, $1)",
                &[&fingerprint],
            )
            .await?;
            0
        }
        (Some((version, root)), Expect::Existing) => {
            if root != fingerprint {
                return Err(PgError::Refused(format!(
                    "the database holds the ledger of another CA (root {root}), not this one's \
                     ({fingerprint}); nothing was changed"
                )));
            }
            if version > SCHEMA_VERSION {
                return Err(PgError::Refused(format!(
                    "the database's ledger is in schema version {version}, newer than this \
                     fedpki's {SCHEMA_VERSION}: run the fedpki that wrote it"
                )));
            }
            version
        }
    };
    for (n, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(from).unwrap_or(0))
    {
        tx.batch_execute(sql).await?;
        let to = i32::try_from(n + 1).unwrap_or(i32::MAX);
        tx.execute("UPDATE fedpki_schema SET version = $1", &[&to])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
