//! Moving a CA's ledger between the folder and a shared database (`pki
//! store migrate`). The audit log is the ledger's history, so it is what
//! moves: its lines, byte for byte (the same chain, the same head), and
//! the state they make (certificates, revocations, lineage, burnt tokens,
//! barred keys). The target is checked to hold what the source holds
//! before the CA is switched to it; the source is left as it was.

use std::sync::Arc;

use super::durable::{self, Durable, StorePaths};
use super::log::{self, Effects, Head, Tail};
use super::postgres::{self, PgLocation};
use super::{Backend, Ledger, StoreError, index};
use crate::error::{CliError, Result};

/// What moved: entries, certificates, revocations, and the audit head.
#[derive(Debug)]
pub(crate) struct Moved {
    /// Audit entries.
    pub entries: u64,
    /// Certificates.
    pub certificates: usize,
    /// Revocations.
    pub revocations: usize,
    /// The last entry's hash.
    pub head: String,
}

/// The folder's ledger into an empty database, checked there. The folder's
/// files are not changed (a crash is recovered first, as at a start).
pub(crate) fn to_postgres(
    paths: &StorePaths,
    db: &PgLocation,
    fingerprint: &str,
    crl_number: u64,
) -> Result<Moved> {
    postgres::check_empty(db)?;
    durable::recover(paths)?;
    let text = read_log(paths)?;
    let (entries, head, tail) = log::scan(&text, &Head::default());
    if tail != Tail::Clean {
        return Err(CliError::CorruptCa(format!(
            "the audit log {} does not end cleanly; run `fedpki pki audit` on the CA first; \
             nothing was moved",
            paths.log.display()
        )));
    }
    let lines: Vec<String> = String::from_utf8_lossy(&text)
        .lines()
        .map(str::to_owned)
        .collect();
    let effects = entries
        .iter()
        .map(log::Entry::effects)
        .collect::<std::result::Result<Vec<Effects>, _>>()
        .map_err(StoreError::Corrupt)?;
    let pruned_before = {
        use super::rules::Lookup;
        index::read_only(&paths.index)
            .map_err(CliError::Store)?
            .pruned_before()
    };
    let source = Ledger::read(paths)?;
    postgres::import(
        db,
        fingerprint,
        &lines,
        &effects,
        &head,
        (pruned_before, crl_number),
    )?;
    let target = postgres::read_ledger(db, fingerprint)?;
    let (_, target_head) = postgres::read_audit(db, fingerprint)?;
    same(&source, &target, &head, &target_head)
}

/// A database's ledger into this folder's `db/`, checked there. What `db/`
/// held (the ledger as it was when it moved to the database) is set aside
/// as `NAME.before-TIME`, not deleted.
pub(crate) fn to_embedded(
    db: &PgLocation,
    fingerprint: &str,
    paths: &StorePaths,
    now: u64,
) -> Result<Moved> {
    let source = postgres::read_ledger(db, fingerprint)?;
    let (text, head) = postgres::read_audit(db, fingerprint)?;
    if let log::Verdict::Tampered { entry, reason } = log::verify(&text, Some(&head)) {
        return Err(CliError::CorruptCa(format!(
            "the database's audit log is broken at entry {entry} ({reason}); nothing was moved"
        )));
    }
    let pruned_before = postgres::read_pruned_before(db, fingerprint)?;
    for f in [&paths.index, &paths.log] {
        if f.exists() {
            let mut aside = f.as_os_str().to_owned();
            aside.push(format!(".before-{now}"));
            std::fs::rename(f, &aside).map_err(|e| CliError::io("set aside", f, e))?;
        }
    }
    if let Some(dir) = paths.log.parent() {
        crate::platform::sys::create_dir(dir, true)?;
    }
    // The log first; opening the store indexes it all, as after a crash.
    crate::platform::sys::write_atomic(&paths.log, &text, 0o600)?;
    let mut store = Durable::open(Arc::new(super::disk::OsDisk), paths)?;
    store.prune(pruned_before)?;
    store.close();
    drop(store);
    let target = Ledger::read(paths)?;
    let (_, target_head, _) = log::scan(&read_log(paths)?, &Head::default());
    same(&source, &target, &head, &target_head)
}

fn read_log(paths: &StorePaths) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    if paths.log.exists() {
        std::io::Read::read_to_end(
            &mut crate::platform::sys::open_regular(&paths.log)?,
            &mut text,
        )
        .map_err(|e| CliError::io("read", &paths.log, e))?;
    }
    Ok(text)
}

/// The target holds what the source held, under the same audit head.
fn same(source: &Ledger, target: &Ledger, head: &Head, target_head: &Head) -> Result<Moved> {
    let key = |l: &Ledger| {
        let mut c: Vec<_> = l
            .certificates
            .iter()
            .map(|c| (c.serial.clone(), c.der.clone()))
            .collect();
        let mut r: Vec<_> = l
            .revocations
            .iter()
            .map(|r| (r.serial.clone(), r.revoked_at, r.reason))
            .collect();
        c.sort();
        r.sort();
        (c, r)
    };
    if key(source) != key(target) || (head.seq, &head.hash) != (target_head.seq, &target_head.hash)
    {
        return Err(CliError::Store(format!(
            "the ledger moved differs from its source ({} certificates and {} revocations to \
             {} and {}, audit head {} to {}); the CA still uses its source",
            source.certificates.len(),
            source.revocations.len(),
            target.certificates.len(),
            target.revocations.len(),
            head.seq,
            target_head.seq
        )));
    }
    Ok(Moved {
        entries: head.seq,
        certificates: target.certificates.len(),
        revocations: target.revocations.len(),
        head: head.hash.clone(),
    })
}
