//! The CA's ledger as commands read and mend it without a server: the
//! records, the audit trail and the head it must end at, wherever the
//! ledger lives; crash recovery and `pki audit --repair` of the embedded
//! store.

use std::path::Path;

use super::records::{CertRecord, RevocationRecord};
use super::{StoreError, StoreLocation, StorePaths, durable, index, log, postgres, rules};
use crate::error::{CliError, Result};

/// A read-only view of a CA's ledger, usable while the server runs.
#[derive(Debug)]
pub struct Ledger {
    /// Issued certificates.
    pub certificates: Vec<CertRecord>,
    /// Revocations.
    pub revocations: Vec<RevocationRecord>,
    /// Renewals: each renewed serial and its successor's.
    pub renewed: Vec<(String, String)>,
    /// The head the index holds everything up to (`None`: no entry yet).
    pub indexed: Option<log::Head>,
}

/// Certificates in force at a moment: `pki status` and the metrics count
/// them by this one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InForce {
    /// Neither expired nor revoked.
    pub valid: usize,
    /// Of those, the ones that expire within `within` seconds.
    pub expiring: usize,
    /// Keys of valid certificates whose age limit (see
    /// [`InForce::with_key_age`]) falls within `within` seconds.
    pub keys_near_limit: usize,
}

impl InForce {
    /// "Expiring soon": within 30 days.
    pub(crate) const SOON: u64 = 30 * 24 * 3600;

    /// Count `certificates` at `now`, given the `revocations`, with the
    /// keys of valid node certificates whose age limit (`max_key_age` from the key's first certificate, as the
    /// authority reckons it) falls within `within` seconds. `server_key`:
    /// the CA's own TLS key, which the limit does not bind.
    pub(crate) fn with_key_age(
        certificates: &[CertRecord],
        revocations: &[RevocationRecord],
        now: u64,
        within: u64,
        (max_key_age, server_key): (Option<u64>, Option<&str>),
    ) -> Self {
        use std::collections::{HashMap, HashSet};
        let revoked: HashSet<&str> = revocations.iter().map(|r| r.serial.as_str()).collect();
        let soon = now.saturating_add(within);
        let bound = |c: &CertRecord| !c.key.is_empty() && Some(c.key.as_str()) != server_key;
        let mut birth: HashMap<&str, u64> = HashMap::new();
        if max_key_age.is_some() {
            for c in certificates.iter().filter(|c| bound(c)) {
                let b = birth.entry(c.key.as_str()).or_insert(c.issued_at);
                *b = (*b).min(c.issued_at);
            }
        }
        let mut counts = Self::default();
        let mut near: HashSet<&str> = HashSet::new();
        for c in certificates {
            if c.not_after <= now || revoked.contains(c.serial.as_str()) {
                continue;
            }
            counts.valid += 1;
            if c.not_after <= soon {
                counts.expiring += 1;
            }
            let limit =
                max_key_age.and_then(|age| Some(birth.get(c.key.as_str())?.saturating_add(age)));
            if bound(c) && limit.is_some_and(|l| l <= soon) {
                near.insert(c.key.as_str());
            }
        }
        counts.keys_near_limit = near.len();
        counts
    }
}

impl Ledger {
    /// Read the ledger wherever it lives, without taking the writer's place.
    pub(crate) fn read_at(location: &StoreLocation) -> Result<Self> {
        match location {
            StoreLocation::Embedded(paths) => Self::read(paths),
            StoreLocation::Postgres {
                location,
                root_fingerprint,
            } => postgres::read_ledger(location, root_fingerprint).map_err(CliError::from),
        }
    }

    /// Read the index, then the log's entries beyond it, without taking
    /// the writer's place.
    pub fn read(paths: &StorePaths) -> Result<Self> {
        if !paths.index.exists() {
            return Ok(Self {
                certificates: Vec::new(),
                revocations: Vec::new(),
                renewed: Vec::new(),
                indexed: None,
            });
        }
        let view = index::read_only(&paths.index).map_err(|e| {
            CliError::Store(format!(
                "cannot read {}: {e}. If the CA crashed, start it once (`fedpki pki run`) so the database is recovered",
                paths.index.display()
            ))
        })?;
        let indexed = view.head().map_err(CliError::Store)?;
        let mut state = rules::State::default();
        for c in view.certificates().map_err(CliError::Store)? {
            state.certs.insert(c.serial.clone(), c);
        }
        for r in view.revocations().map_err(CliError::Store)? {
            state.revoked.insert(r.serial.clone(), r);
        }
        state.renewed = view
            .renewals()
            .map_err(CliError::Store)?
            .into_iter()
            .collect();
        // The log after the index's head: what the server answered and has
        // not indexed yet.
        let tail = read_from(&paths.log, indexed.len)?;
        for entry in log::scan(&tail, &indexed).0 {
            state.apply(entry.effects().map_err(CliError::Store)?);
        }
        Ok(Self {
            certificates: state.certs.into_values().collect(),
            revocations: state.revoked.into_values().collect(),
            renewed: {
                let mut all: Vec<_> = state.renewed.into_iter().collect();
                all.sort();
                all
            },
            indexed: (indexed.seq > 0).then_some(indexed),
        })
    }
}

fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    if !path.exists() {
        return Ok(bytes);
    }
    let mut f = crate::platform::sys::open_regular(path)?;
    f.seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|e| CliError::io("read", path, e))?;
    Ok(bytes)
}

/// The embedded ledger's audit log as it stands, for a backup taken while
/// the server runs: the head the index holds is read first, so the copy
/// holds every entry of a request answered before it began (an answer
/// waits for its entry's sync), and those written beyond, up to the last
/// whole entry. The log alone rebuilds the index, so it is the ledger.
pub(crate) fn log_snapshot(paths: &StorePaths) -> Result<(Vec<u8>, log::Head)> {
    let indexed = if paths.index.exists() {
        // An index a crash left unclosed cannot be opened read-only (redb
        // would repair it): the log alone is the ledger, and its whole
        // entries are copied, checked from the first.
        index::read_only(&paths.index)
            .and_then(|view| view.head())
            .unwrap_or_default()
    } else {
        log::Head::default()
    };
    let mut bytes = read_from(&paths.log, 0)?;
    let damaged = |why: String| {
        CliError::Check(format!(
            "the audit log {} cannot be backed up: {why}. {}",
            paths.log.display(),
            durable::repair_hint(&paths.log)
        ))
    };
    log::check_head(&bytes, &indexed).map_err(damaged)?;
    let start = usize::try_from(indexed.len).unwrap_or(usize::MAX);
    let (_, head, tail) = log::scan(&bytes[start..], &indexed);
    if let log::Tail::Damaged { entry, reason } = tail {
        return Err(damaged(format!("entry {entry} is damaged ({reason})")));
    }
    // A write in progress, or a torn one: not part of the copy.
    bytes.truncate(usize::try_from(head.len).unwrap_or(usize::MAX));
    Ok((bytes, head))
}

/// The audit log's lines and the head the ledger says it ends at.
#[derive(Debug)]
pub(crate) struct AuditTrail {
    /// The lines, each with its newline.
    pub text: Vec<u8>,
    /// The head the ledger holds (`None`: no entry yet).
    pub head: Option<log::Head>,
    /// Where the lines are (a file, a database), for messages.
    pub source: String,
    /// What to do when the lines do not check.
    pub hint: String,
}

impl AuditTrail {
    /// Read the trail wherever the ledger lives (the embedded one after
    /// [`recover`]).
    pub(crate) fn read_at(location: &StoreLocation) -> Result<Self> {
        match location {
            StoreLocation::Embedded(paths) => Ok(Self {
                text: read_from(&paths.log, 0)?,
                head: Ledger::read(paths)?.indexed,
                source: paths.log.display().to_string(),
                hint: durable::repair_hint(&paths.log),
            }),
            StoreLocation::Postgres {
                location,
                root_fingerprint,
            } => {
                let (text, head) = postgres::read_audit(location, root_fingerprint)?;
                Ok(Self {
                    text,
                    head: Some(head),
                    source: location.url.clone(),
                    hint: "Its lines are in the database's table fedpki_audit: compare with a \
                           backup of the database to see what was changed"
                        .into(),
                })
            }
        }
    }
}

/// Finish what a crash interrupted, as the server does when it starts:
/// index what the log holds beyond the index, cut a torn tail. The caller
/// holds the CA folder's lock. Nothing to do for a shared ledger.
pub(crate) fn recover(location: &StoreLocation) -> Result<(), StoreError> {
    match location {
        StoreLocation::Embedded(paths) => durable::recover(paths),
        StoreLocation::Postgres { .. } => Ok(()),
    }
}

/// `pki audit --repair` (the caller holds the CA folder's lock): what was
/// repaired, `None` when the log matched the ledger.
pub(crate) fn repair(location: &StoreLocation, now: u64) -> Result<Option<String>> {
    match location {
        StoreLocation::Embedded(paths) => Ok(durable::repair(
            std::sync::Arc::new(super::disk::OsDisk),
            paths,
            now,
        )?),
        StoreLocation::Postgres { .. } => Err(CliError::usage(
            "--repair mends an audit log file; this CA's log is in its database, whose own \
             replication and backups keep it",
        )),
    }
}
