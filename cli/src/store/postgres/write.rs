//! One batch in one transaction, as the writer thread commits it: the
//! audit head locked, the batch decided by `rules`, its lines chained and
//! what each entry changes written.

use tokio_postgres::Client;

use super::{CHANNEL, PgError, snapshot};
use crate::store::log::{Effects, Entry, Head};
use crate::store::records::{Change, Outcome};
use crate::store::rules;

/// One batch in one transaction: the head locked, the batch decided against
/// what the database holds, the lines chained and everything written.
pub(super) async fn commit_batch(
    client: &mut Client,
    batch: &[Change],
) -> Result<Vec<Outcome>, PgError> {
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
    let (bytes, next) = crate::store::log::chain_refs(&head, &lines);
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
pub(super) async fn apply(
    tx: &tokio_postgres::Transaction<'_>,
    fx: &Effects,
) -> Result<(), PgError> {
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
