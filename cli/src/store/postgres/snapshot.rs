//! What the rules ask of the ledger for one batch, read from the database
//! in a handful of queries into an in-memory [`State`]: the tokens the
//! batch spends, the certificates it names, every certificate of their
//! keys, barred keys, successors and revocations. Read under the audit
//! head's lock, so no other replica writes meanwhile; `rules::decide` asks
//! nothing outside this (its own staged layer covers the batch itself).

use std::collections::BTreeSet;

use tokio_postgres::Transaction;

use super::{PgError, read};
use crate::store::records::{Change, RevocationRecord};
use crate::store::rules::State;

pub(super) async fn of(tx: &Transaction<'_>, batch: &[Change]) -> Result<State, PgError> {
    let mut state = State::default();
    let row = tx
        .query_one(
            "SELECT value FROM fedpki_meta WHERE key = 'pruned_before'",
            &[],
        )
        .await?;
    state.pruned_before = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);

    let jtis: Vec<String> = batch
        .iter()
        .filter_map(|c| c.token().map(|(j, _)| j.to_owned()))
        .collect();
    for row in tx
        .query(
            "SELECT jti, burn_until FROM fedpki_tokens WHERE jti = ANY($1)",
            &[&jtis],
        )
        .await?
    {
        let until = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
        state.tokens.insert(row.get(0), until);
    }

    // The certificates the batch names: renewed, revoked, or new.
    let mut named = BTreeSet::new();
    let mut renewed = Vec::new();
    let mut keys = BTreeSet::new();
    for change in batch {
        match change {
            Change::Issue { cert, .. } | Change::Record { cert, .. } => {
                named.insert(cert.serial.clone());
                keys.insert(cert.key.clone());
            }
            Change::Renew { old, cert, .. } => {
                named.insert(old.clone());
                renewed.push(old.clone());
                named.insert(cert.serial.clone());
                keys.insert(cert.key.clone());
            }
            Change::Revoke { record, .. } => {
                named.insert(record.serial.clone());
            }
            Change::Burn { .. } => {}
        }
    }
    let named: Vec<String> = named.into_iter().collect();
    for rec in read::certificates(tx, Some(&named)).await? {
        keys.insert(rec.key.clone());
        state.certs.insert(rec.serial.clone(), rec);
    }
    keys.remove("");

    // Every certificate of those keys, and the keys barred.
    let keys: Vec<String> = keys.into_iter().collect();
    let mut serials: BTreeSet<String> = named.iter().cloned().collect();
    for row in tx
        .query(
            "SELECT serial, key FROM fedpki_certificates WHERE key = ANY($1)",
            &[&keys],
        )
        .await?
    {
        let (serial, key): (String, String) = (row.get(0), row.get(1));
        serials.insert(serial.clone());
        state.by_key.entry(key).or_default().insert(serial);
    }
    for row in tx
        .query(
            "SELECT key FROM fedpki_compromised_keys WHERE key = ANY($1)",
            &[&keys],
        )
        .await?
    {
        state.compromised.insert(row.get(0));
    }

    // The successors of what is renewed, and every revocation among them.
    for row in tx
        .query(
            "SELECT old, new FROM fedpki_renewals WHERE old = ANY($1)",
            &[&renewed],
        )
        .await?
    {
        let (old, new): (String, String) = (row.get(0), row.get(1));
        serials.insert(new.clone());
        state.renewed.insert(old, new);
    }
    let serials: Vec<String> = serials.into_iter().collect();
    for row in tx
        .query(
            "SELECT serial, revoked_at, reason FROM fedpki_revocations WHERE serial = ANY($1)",
            &[&serials],
        )
        .await?
    {
        let rec = RevocationRecord {
            serial: row.get(0),
            revoked_at: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
            reason: u8::try_from(row.get::<_, i16>(2)).unwrap_or(0),
        };
        state.revoked.insert(rec.serial.clone(), rec);
    }
    Ok(state)
}
