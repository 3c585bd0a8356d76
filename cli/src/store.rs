//! The CA's durable state: burnt token ids, issued certificates,
//! revocations, and the head of the audit log.
//!
//! One writer thread owns the backend and applies requests in batches: every
//! request waiting when a batch starts is decided together, its effects are
//! appended to the journal in one record and synced, and only then is each
//! caller answered. Under load one fsync carries many certificates; alone,
//! a request costs one fsync. The database takes the journal's records in
//! bulk at checkpoints (see [`crate::journal`]).
//!
//! The backend is a trait: [`RedbBackend`] (crash-safe, the real one) and
//! [`MemoryBackend`] (the test double).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::audit;
use crate::error::{CliError, Result};
use crate::journal::{self, Effects, Journal};

/// One issued certificate, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Subject common name.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// notAfter (Unix seconds).
    pub not_after: u64,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// The certificate, DER (stored as base64; records written as a JSON
    /// array of bytes by earlier versions are read too).
    #[serde(with = "der_b64")]
    pub der: Vec<u8>,
}

mod der_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(der: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fedpki_core::encoding::b64(der))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Bytes(Vec<u8>),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Either::deserialize(d)? {
            Either::Text(t) => fedpki_core::encoding::unb64(&t).map_err(serde::de::Error::custom),
            Either::Bytes(b) => Ok(b),
        }
    }
}

/// A revocation, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// When (Unix seconds).
    pub revoked_at: u64,
    /// RFC 5280 reason code.
    pub reason: u8,
}

/// What one issuance asks the store to make durable, atomically.
#[derive(Debug, Clone)]
pub struct IssueCommit {
    /// The token id to burn; `None` for a request the operator confirmed
    /// by hand (air-gapped signing without a token) or a renewal.
    pub jti: Option<String>,
    /// Until when the burnt id must be remembered (then it may be pruned).
    pub burn_until: u64,
    /// The certificate to record; `None` burns the token only (a request
    /// refused after its token was accepted).
    pub cert: Option<CertRecord>,
    /// For a renewal: the serial renewed. The commit is refused if that
    /// certificate has been revoked (checked inside the transaction, so a
    /// revocation racing a renewal cannot be lost).
    pub renews: Option<String>,
}

/// What one revocation asks the store to make durable, atomically.
#[derive(Debug, Clone)]
pub struct RevokeCommit {
    /// The revocation.
    pub record: RevocationRecord,
    /// A revoke token's id to burn, if one authorized it.
    pub jti: Option<String>,
    /// Until when the burnt id must be remembered.
    pub burn_until: u64,
    /// Who asked, for the audit log.
    pub by: String,
}

/// A change to the CA's state.
#[derive(Debug, Clone)]
pub enum Change {
    /// Issue or renew (and burn a token).
    Issue(IssueCommit),
    /// Revoke (and burn a token).
    Revoke(RevokeCommit),
}

/// Outcome of a [`Change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and durable.
    Done,
    /// The token had been used before; nothing was written.
    TokenUsed,
    /// Revoke or renew: no certificate with that serial was issued here;
    /// nothing was written.
    UnknownSerial,
    /// Revoke: already revoked (the earlier record); nothing was written.
    /// Renew: the certificate renewed is revoked; nothing was written.
    Revoked(RevocationRecord),
    /// Renew: the certificate was renewed before and that successor (its
    /// serial) is not revoked; nothing was written. One key holds one live
    /// line of certificates, and a client whose answer was lost gets the
    /// same successor again.
    AlreadyRenewed(String),
}

/// A storage engine. Calls come from the single writer thread only.
pub trait Backend: Send + 'static {
    /// Apply the changes in order, in one durable transaction.
    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, String>;
    /// Forget burnt ids whose `burn_until` is before `now`; how many.
    fn prune(&mut self, now: u64) -> Result<usize, String>;
    /// Every certificate record, by serial.
    fn certificates(&mut self) -> Result<Vec<CertRecord>, String>;
    /// Every revocation, by serial.
    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, String>;
    /// Whether a token id is burnt.
    fn is_burnt(&mut self, jti: &str) -> Result<bool, String>;
    /// No request is waiting: a moment for housekeeping.
    fn idle(&mut self) {}
    /// Set while the disk is full (the last write failed for lack of
    /// space); cleared by the next write that succeeds.
    fn disk_full_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }
}

/// The audit event a change makes, once applied.
fn audit_event(change: &Change) -> audit::Event {
    match change {
        Change::Issue(c) => {
            let rec = c.cert.as_ref();
            audit::Event {
                event: if c.renews.is_some() { "renew" } else { "issue" }.into(),
                time: rec.map_or(0, |r| r.issued_at),
                serial: rec.map(|r| r.serial.clone()).unwrap_or_default(),
                subject: rec.map(|r| r.subject.clone()).unwrap_or_default(),
                sans: rec.map(|r| r.sans.clone()).unwrap_or_default(),
                not_after: rec.map(|r| r.not_after),
                by: match (&c.jti, &c.renews) {
                    (Some(jti), _) => format!("token {jti}"),
                    (None, Some(old)) => format!("holder of {old}"),
                    (None, None) => "operator, confirmed by CSR hash".into(),
                },
                reason: None,
            }
        }
        Change::Revoke(r) => audit::Event {
            event: "revoke".into(),
            time: r.record.revoked_at,
            serial: r.record.serial.clone(),
            subject: String::new(),
            sans: Vec::new(),
            not_after: None,
            by: r.by.clone(),
            reason: Some(
                fedpki_core::crl::Reason::from_code(r.record.reason)
                    .map_or("unknown", |x| x.name())
                    .into(),
            ),
        },
    }
}

/// Burnt token ids, keyed `burn_until (u64 BE) || jti`: inserts land near
/// the end of the tree, and pruning is a range delete.
const TOKENS: TableDefinition<&[u8], ()> = TableDefinition::new("burnt_tokens");
/// Burnt token ids → until when they are kept: the replay check, keyed on
/// the `jti` alone. [`TOKENS`] is the same set ordered by expiry, for pruning.
const TOKEN_IDS: TableDefinition<&str, u64> = TableDefinition::new("burnt_token_ids");
/// Serial renewed → the serial of its successor.
const RENEWED: TableDefinition<&str, &str> = TableDefinition::new("renewed_by");
/// The first layout (`jti → burn_until`), migrated at open.
const TOKENS_V1: TableDefinition<&str, u64> = TableDefinition::new("used_tokens");

/// Bring burnt tokens of older layouts into [`TOKENS`] and [`TOKEN_IDS`]:
/// the first layout's `used_tokens`, and an expiry index without its id
/// table (fedpki before the replay check was keyed on the `jti` alone).
fn migrate_tokens(txn: &redb::WriteTransaction) -> Result<(), String> {
    let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
    let mut ids = txn.open_table(TOKEN_IDS).map_err(db_err)?;
    match txn.open_table(TOKENS_V1) {
        Ok(old) => {
            for row in old.iter().map_err(db_err)? {
                let (jti, until) = row.map_err(db_err)?;
                tokens
                    .insert(token_key(jti.value(), until.value()).as_slice(), ())
                    .map_err(db_err)?;
            }
            drop(old);
            txn.delete_table(TOKENS_V1).map_err(db_err)?;
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(db_err(e)),
    }
    if ids.iter().map_err(db_err)?.next().is_none() {
        for row in tokens.iter().map_err(db_err)? {
            let (key, _) = row.map_err(db_err)?;
            let (until, jti) = split_token_key(key.value())?;
            ids.insert(jti, until).map_err(db_err)?;
        }
    }
    Ok(())
}

fn split_token_key(key: &[u8]) -> Result<(u64, &str), String> {
    let (until, jti) = key
        .split_at_checked(8)
        .ok_or_else(|| "a burnt-token key is shorter than its expiry".to_owned())?;
    let until = u64::from_be_bytes(until.try_into().map_err(db_err)?);
    let jti = std::str::from_utf8(jti).map_err(db_err)?;
    Ok((until, jti))
}

/// Whether a write failed for lack of space (ENOSPC, or EDQUOT).
fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28 | 122))
}

fn clone_io(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

fn token_key(jti: &str, burn_until: u64) -> Vec<u8> {
    let mut k = burn_until.to_be_bytes().to_vec();
    k.extend_from_slice(jti.as_bytes());
    k
}

/// A certificate record as stored: a version byte (1), issued_at and
/// notAfter (u64 BE), the subject and the SANs (each u16 BE length, then
/// UTF-8; SANs joined by newlines), then the DER. Records of the first
/// layout (JSON) are read too.
fn encode_record(rec: &CertRecord) -> Vec<u8> {
    let sans = rec.sans.join("\n");
    let mut v = Vec::with_capacity(21 + rec.subject.len() + sans.len() + rec.der.len());
    v.push(1);
    v.extend_from_slice(&rec.issued_at.to_be_bytes());
    v.extend_from_slice(&rec.not_after.to_be_bytes());
    for text in [rec.subject.as_str(), sans.as_str()] {
        // Subjects are at most 64 characters and SANs bounded by the body
        // limit, far below u16::MAX.
        v.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes());
        v.extend_from_slice(text.as_bytes());
    }
    v.extend_from_slice(&rec.der);
    v
}

fn decode_record(serial: &str, bytes: &[u8]) -> Result<CertRecord, String> {
    let bad = || format!("certificate record {serial} is unreadable");
    match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(db_err),
        Some(1) => {
            let mut rest = bytes.get(1..).ok_or_else(bad)?;
            let mut u64_field = || -> Result<u64, String> {
                let (n, r) = rest.split_at_checked(8).ok_or_else(bad)?;
                rest = r;
                Ok(u64::from_be_bytes(n.try_into().map_err(db_err)?))
            };
            let issued_at = u64_field()?;
            let not_after = u64_field()?;
            let mut texts = Vec::with_capacity(2);
            for _ in 0..2 {
                let (len, r) = rest.split_at_checked(2).ok_or_else(bad)?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let (text, r) = r.split_at_checked(len).ok_or_else(bad)?;
                texts.push(String::from_utf8(text.to_vec()).map_err(db_err)?);
                rest = r;
            }
            let sans = texts.pop().unwrap_or_default();
            Ok(CertRecord {
                serial: serial.to_owned(),
                subject: texts.pop().unwrap_or_default(),
                sans: sans
                    .split('\n')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                not_after,
                issued_at,
                der: rest.to_vec(),
            })
        }
        _ => Err(bad()),
    }
}

fn read_certs(txn: &redb::ReadTransaction) -> Result<Vec<CertRecord>, String> {
    let t = match txn.open_table(CERTS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db_err(e)),
    };
    let mut out = Vec::new();
    for row in t.iter().map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        out.push(decode_record(k.value(), v.value())?);
    }
    Ok(out)
}
const CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
const REVOKED: TableDefinition<&str, &[u8]> = TableDefinition::new("revocations");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const AUDIT_HEAD: &str = "audit_head";

fn db_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// redb's settings for this file: one writer process (the server or an
/// offline command, never both: the folder lock sees to that), and any
/// number of read-only readers (`pki list`, `pki audit`) alongside it.
fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    b
}

/// redb (copy-on-write B-trees with checksummed commits; a `kill -9` at any
/// moment leaves the last committed state) behind a journal: a batch is
/// decided against the database plus what the journal holds beyond it,
/// appended to the journal and synced, and answered; checkpoints write the
/// journaled records into the database in bulk and empty the journal.
/// Opening replays the records the database lacks.
///
/// The audit log costs no extra fsync: each journal record carries the
/// batch's log lines and the new head; the lines are appended to the file
/// after the record is durable, and the file is synced about once a second.
/// Checkpoints copy the lines the synced file does not yet hold into the
/// `audit_pending` table, and drop the rows it now holds. When the store
/// opens, a file that lost its tail in a crash is completed from the
/// pending rows.
#[derive(Debug)]
pub struct RedbBackend {
    /// `None` between a failed write, after which redb refuses everything
    /// until it is reopened, and the reopening.
    db: Option<redb::Database>,
    path: std::path::PathBuf,
    disk_full: Arc<AtomicBool>,
    audit: Option<AuditFile>,
    journal: Journal,
    /// What the journal holds and the database does not yet.
    overlay: Overlay,
    /// The journal's records since the last checkpoint.
    journaled: Vec<(u64, Effects)>,
    /// Rows they add.
    journaled_rows: usize,
    /// When the oldest of them was written.
    oldest: Option<std::time::Instant>,
    /// [`CHECKPOINT_AGE`], or longer in tests that look at the journal.
    checkpoint_age: std::time::Duration,
}

/// The state the journal adds to the database's, as the decisions need it.
#[derive(Debug, Default)]
struct Overlay {
    /// Burnt token ids (`jti`).
    tokens: HashSet<String>,
    certs: HashSet<String>,
    revoked: HashMap<String, RevocationRecord>,
    renewed: HashMap<String, String>,
}

impl Overlay {
    fn merge(&mut self, other: Self) {
        self.renewed.extend(other.renewed);
        self.tokens.extend(other.tokens);
        self.certs.extend(other.certs);
        self.revoked.extend(other.revoked);
    }
}

/// A checkpoint is due after this many journaled rows (a certificate is
/// three: its token, its record, its audit line)…
const CHECKPOINT_ROWS: usize = 256;
/// …or when the oldest journaled record is this old…
const CHECKPOINT_AGE: std::time::Duration = std::time::Duration::from_millis(250);
/// …or when no request has come for this long.
const IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// The last journal record the database holds (u64 BE).
const JOURNAL_SEQ: &str = "journal_seq";

#[derive(Debug)]
struct AuditFile {
    file: std::fs::File,
    head: audit::Head,
    /// Every entry up to this sequence number is synced in the file.
    synced_seq: u64,
    /// Pending rows up to this sequence number were dropped.
    dropped_seq: u64,
    last_sync: std::time::Instant,
    /// A write to the file failed: stop writing (the database keeps every
    /// entry from then on; the next open completes the file).
    behind: bool,
}

const AUDIT_PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_pending");

/// How often the audit file is synced (the database holds what it has not).
const AUDIT_SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn read_head(txn: &redb::ReadTransaction) -> Result<Option<audit::Head>, String> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(db_err(e)),
    };
    match meta.get(AUDIT_HEAD).map_err(db_err)? {
        Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(db_err),
        None => Ok(None),
    }
}

/// A pending row: where the line starts in the file, then the line.
fn pending_row(offset: u64, line: &[u8]) -> Vec<u8> {
    let mut row = offset.to_be_bytes().to_vec();
    row.extend_from_slice(line);
    row
}

fn split_row(row: &[u8]) -> Option<(u64, &[u8])> {
    let (off, line) = row.split_at_checked(8)?;
    Some((u64::from_be_bytes(off.try_into().ok()?), line))
}

impl RedbBackend {
    /// Open or create the database file, without an audit log.
    pub fn open(path: &Path) -> Result<Self> {
        let db = builder().create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => CliError::Store(format!(
                "{} is in use by another fedpki process (a running `fedpki pki run`?)",
                path.display()
            )),
            other => CliError::Store(format!("cannot open {}: {other}", path.display())),
        })?;
        // Create the tables so readers never see them missing.
        let txn = db.begin_write().map_err(|e| CliError::Store(db_err(e)))?;
        for t in [CERTS, REVOKED, META] {
            txn.open_table(t).map_err(|e| CliError::Store(db_err(e)))?;
        }
        txn.open_table(RENEWED)
            .map_err(|e| CliError::Store(db_err(e)))?;
        migrate_tokens(&txn).map_err(CliError::Store)?;
        txn.open_table(AUDIT_PENDING)
            .map_err(|e| CliError::Store(db_err(e)))?;
        txn.commit().map_err(|e| CliError::Store(db_err(e)))?;
        let after = {
            let txn = db.begin_read().map_err(|e| CliError::Store(db_err(e)))?;
            read_journal_seq(&txn).map_err(CliError::Store)?
        };
        let journal_path = journal::path_for(path);
        let (journal, replay) = Journal::open(&journal_path, after)
            .map_err(|e| CliError::io("open", &journal_path, e))?;
        let replayed = replay.len();
        let mut me = Self {
            db: Some(db),
            path: path.to_owned(),
            disk_full: Arc::new(AtomicBool::new(false)),
            audit: None,
            journal,
            overlay: Overlay::default(),
            journaled: replay,
            journaled_rows: 0,
            oldest: None,
            checkpoint_age: CHECKPOINT_AGE,
        };
        // What a crash left only in the journal goes into the database now;
        // then the journal starts empty (which also cuts a torn tail).
        me.checkpoint().map_err(CliError::Store)?;
        me.journal
            .reset()
            .map_err(|e| CliError::io("empty", &journal_path, e))?;
        if replayed > 0 {
            crate::log::warn("journal_replayed", &[("records", &replayed.to_string())]);
        }
        Ok(me)
    }

    /// Open the database and its audit log, completing a log whose tail a
    /// crash lost from the rows the database still holds.
    pub fn open_with_audit(path: &Path, audit_path: &Path) -> Result<Self> {
        let mut me = Self::open(path)?;
        let store = |e: String| CliError::Store(e);
        let (head, pending) = {
            let txn = me
                .db()
                .map_err(store)?
                .begin_read()
                .map_err(|e| store(db_err(e)))?;
            let head = read_head(&txn).map_err(store)?;
            let table = txn
                .open_table(AUDIT_PENDING)
                .map_err(|e| store(db_err(e)))?;
            let mut rows = Vec::new();
            for row in table.iter().map_err(|e| store(db_err(e)))? {
                let (k, v) = row.map_err(|e| store(db_err(e)))?;
                rows.push((k.value(), v.value().to_vec()));
            }
            (head.unwrap_or_default(), rows)
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(audit_path)
            .map_err(|e| CliError::io("open", audit_path, e))?;
        let len = file
            .metadata()
            .map_err(|e| CliError::io("read", audit_path, e))?
            .len();
        if len < head.len {
            // The first pending line the file does not hold whole.
            let missing = pending
                .iter()
                .filter_map(|(_, row)| split_row(row))
                .find(|(off, line)| off + line.len() as u64 > len);
            match missing {
                Some((off, _)) if off <= len => {
                    file.set_len(off)
                        .map_err(|e| CliError::io("repair", audit_path, e))?;
                    let mut f = &file;
                    for (_, row) in &pending {
                        if let Some((o, line)) = split_row(row)
                            && o >= off
                        {
                            f.write_all(line)
                                .map_err(|e| CliError::io("repair", audit_path, e))?;
                        }
                    }
                    file.sync_all()
                        .map_err(|e| CliError::io("repair", audit_path, e))?;
                    crate::log::warn(
                        "audit_log_completed",
                        &[("restored_bytes", &(head.len - off).to_string())],
                    );
                }
                _ => crate::log::error(
                    "audit_log_truncated",
                    &[
                        ("path", &audit_path.display().to_string()),
                        ("committed_bytes", &head.len.to_string()),
                        ("file_bytes", &len.to_string()),
                    ],
                ),
            }
        } else {
            file.sync_all()
                .map_err(|e| CliError::io("sync", audit_path, e))?;
        }
        let synced = head.seq;
        me.audit = Some(AuditFile {
            file,
            head,
            synced_seq: synced,
            dropped_seq: pending.first().map_or(synced, |(k, _)| k.saturating_sub(1)),
            last_sync: std::time::Instant::now(),
            behind: false,
        });
        Ok(me)
    }

    /// Decide a batch against the database and the journal's overlay, each
    /// change seeing those before it: the outcomes, what to write, the
    /// audit events, and the overlay the batch adds.
    #[allow(clippy::type_complexity)]
    fn decide(
        &self,
        batch: &[Change],
    ) -> Result<(Vec<Outcome>, Effects, Vec<audit::Event>, Overlay), String> {
        let txn = self.db()?.begin_read().map_err(db_err)?;
        let tokens = txn.open_table(TOKEN_IDS).map_err(db_err)?;
        let certs = txn.open_table(CERTS).map_err(db_err)?;
        let revoked = txn.open_table(REVOKED).map_err(db_err)?;
        let renewed = txn.open_table(RENEWED).map_err(db_err)?;
        let mut staged = Overlay::default();
        let mut effects = Effects::default();
        let mut events = Vec::new();
        let mut out = Vec::with_capacity(batch.len());
        let prior_revocation = |staged: &Overlay, serial: &str| -> Result<_, String> {
            if let Some(r) = staged
                .revoked
                .get(serial)
                .or_else(|| self.overlay.revoked.get(serial))
            {
                return Ok(Some(r.clone()));
            }
            match revoked.get(serial).map_err(db_err)? {
                Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(db_err),
                None => Ok(None),
            }
        };
        let issued = |staged: &Overlay, serial: &str| -> Result<bool, String> {
            Ok(staged.certs.contains(serial)
                || self.overlay.certs.contains(serial)
                || certs.get(serial).map_err(db_err)?.is_some())
        };
        let successor = |staged: &Overlay, serial: &str| -> Result<Option<String>, String> {
            if let Some(next) = staged
                .renewed
                .get(serial)
                .or_else(|| self.overlay.renewed.get(serial))
            {
                return Ok(Some(next.clone()));
            }
            Ok(renewed
                .get(serial)
                .map_err(db_err)?
                .map(|v| v.value().to_owned()))
        };
        for change in batch {
            let (jti, burn_until) = match change {
                Change::Issue(c) => (&c.jti, c.burn_until),
                Change::Revoke(r) => (&r.jti, r.burn_until),
            };
            if let Some(id) = jti
                && (staged.tokens.contains(id)
                    || self.overlay.tokens.contains(id)
                    || tokens.get(id.as_str()).map_err(db_err)?.is_some())
            {
                out.push(Outcome::TokenUsed);
                continue;
            }
            let outcome = match change {
                Change::Issue(c) => match &c.renews {
                    Some(old) => match prior_revocation(&staged, old)? {
                        Some(prior) => Outcome::Revoked(prior),
                        None if !issued(&staged, old)? => Outcome::UnknownSerial,
                        None => match successor(&staged, old)? {
                            Some(next) if prior_revocation(&staged, &next)?.is_none() => {
                                Outcome::AlreadyRenewed(next)
                            }
                            _ => Outcome::Done,
                        },
                    },
                    None => Outcome::Done,
                },
                Change::Revoke(r) => {
                    let serial = r.record.serial.as_str();
                    match prior_revocation(&staged, serial)? {
                        Some(prior) => Outcome::Revoked(prior),
                        None if !issued(&staged, serial)? => Outcome::UnknownSerial,
                        None => Outcome::Done,
                    }
                }
            };
            // A token is spent by any attempt that passed its own checks.
            if let Some(jti) = jti {
                staged.tokens.insert(jti.clone());
                effects.tokens.push((jti.clone(), burn_until));
            }
            if outcome == Outcome::Done {
                match change {
                    Change::Issue(c) => {
                        if let Some(rec) = &c.cert {
                            staged.certs.insert(rec.serial.clone());
                            effects.certs.push(rec.clone());
                            events.push(audit_event(change));
                            if let Some(old) = &c.renews {
                                staged.renewed.insert(old.clone(), rec.serial.clone());
                                effects.renewed.push((old.clone(), rec.serial.clone()));
                            }
                        }
                    }
                    Change::Revoke(r) => {
                        staged
                            .revoked
                            .insert(r.record.serial.clone(), r.record.clone());
                        effects.revoked.push(r.record.clone());
                        events.push(audit_event(change));
                    }
                }
            }
            out.push(outcome);
        }
        Ok((out, effects, events, staged))
    }

    /// Write the journaled records into the database in one durable
    /// transaction, then empty the journal. Audit lines the file already
    /// holds synced are not copied; pending rows the synced file now holds
    /// are dropped.
    /// The database, reopened first if a failed write closed it.
    fn db(&self) -> Result<&redb::Database, String> {
        self.db
            .as_ref()
            .ok_or_else(|| "the database is closed after a failed write".to_owned())
    }

    /// After a failed write redb answers every call with its previous I/O
    /// error: close it, and open it again (its last commit is intact) the
    /// next time it is needed, so service resumes once the cause (a full
    /// disk) is gone. The journal keeps what it did not take.
    fn reopen_if_closed(&mut self) -> Result<(), String> {
        if self.db.is_some() {
            return Ok(());
        }
        let db = builder()
            .create(&self.path)
            .map_err(|e| format!("cannot reopen {}: {e}", self.path.display()))?;
        self.db = Some(db);
        crate::log::info("database_reopened", &[]);
        Ok(())
    }

    fn note_write(&mut self, result: &std::io::Result<()>) {
        let full = result.as_ref().is_err_and(is_disk_full);
        self.disk_full.store(full, Ordering::SeqCst);
    }

    fn checkpoint(&mut self) -> Result<(), String> {
        self.reopen_if_closed()?;
        let result = self.checkpoint_open();
        if let Err(e) = &result {
            // Whatever failed, redb may now refuse every call: start over.
            self.db = None;
            if e.contains("No space left") || e.contains("Disk quota") {
                self.disk_full.store(true, Ordering::SeqCst);
            }
        }
        result
    }

    fn checkpoint_open(&mut self) -> Result<(), String> {
        let drop_rows = self
            .audit
            .as_ref()
            .is_some_and(|l| l.dropped_seq < l.synced_seq);
        if self.journaled.is_empty() && !drop_rows {
            return Ok(());
        }
        let synced = self.audit.as_ref().map_or(0, |l| l.synced_seq);
        let txn = self.db()?.begin_write().map_err(db_err)?;
        if let Some((last, _)) = self.journaled.last() {
            write_effects(&txn, self.journaled.iter().map(|(_, e)| e), *last, synced)?;
        }
        if let Some(log) = self.audit.as_mut() {
            let mut pending = txn.open_table(AUDIT_PENDING).map_err(db_err)?;
            while log.dropped_seq < log.synced_seq {
                log.dropped_seq += 1;
                pending.remove(log.dropped_seq).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        if !self.journaled.is_empty() {
            // Not fatal: the database's sequence number makes a journal
            // that could not be emptied skipped at the next open.
            if let Err(e) = self.journal.reset() {
                crate::log::error("journal_reset_failed", &[("error", &e.to_string())]);
            }
        }
        self.journaled.clear();
        self.journaled_rows = 0;
        self.oldest = None;
        self.overlay = Overlay::default();
        Ok(())
    }

    fn checkpoint_if_due(&mut self) {
        let due = self.journaled_rows >= CHECKPOINT_ROWS
            || self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.checkpoint_age);
        if due && let Err(e) = self.checkpoint() {
            // The answered changes are durable in the journal; the
            // checkpoint is tried again with the next batch.
            crate::log::error(
                "checkpoint_failed",
                &[
                    ("error", &e),
                    (
                        "note",
                        "the journal keeps every change; retried with the next batch",
                    ),
                ],
            );
        }
    }
}

/// Write journal records into the database: rows, audit lines not yet
/// synced in the file (sequence numbers above `synced`), the audit head,
/// and the last record's sequence number.
fn write_effects<'a>(
    txn: &redb::WriteTransaction,
    records: impl Iterator<Item = &'a Effects>,
    last_seq: u64,
    synced: u64,
) -> Result<(), String> {
    let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
    let mut ids = txn.open_table(TOKEN_IDS).map_err(db_err)?;
    let mut certs = txn.open_table(CERTS).map_err(db_err)?;
    let mut revoked = txn.open_table(REVOKED).map_err(db_err)?;
    let mut renewed = txn.open_table(RENEWED).map_err(db_err)?;
    let mut pending = txn.open_table(AUDIT_PENDING).map_err(db_err)?;
    let mut meta = txn.open_table(META).map_err(db_err)?;
    let mut head = None;
    for e in records {
        for (jti, until) in &e.tokens {
            tokens
                .insert(token_key(jti, *until).as_slice(), ())
                .map_err(db_err)?;
            ids.insert(jti.as_str(), *until).map_err(db_err)?;
        }
        for (old, new) in &e.renewed {
            renewed.insert(old.as_str(), new.as_str()).map_err(db_err)?;
        }
        for rec in &e.certs {
            certs
                .insert(rec.serial.as_str(), encode_record(rec).as_slice())
                .map_err(db_err)?;
        }
        for r in &e.revoked {
            let bytes = serde_json::to_vec(r).map_err(db_err)?;
            revoked
                .insert(r.serial.as_str(), bytes.as_slice())
                .map_err(db_err)?;
        }
        if let Some(h) = &e.head {
            let first = (h.seq + 1).saturating_sub(e.audit.len() as u64);
            for (seq, (offset, line)) in (first..).zip(&e.audit) {
                if seq > synced {
                    pending
                        .insert(seq, pending_row(*offset, line.as_bytes()).as_slice())
                        .map_err(db_err)?;
                }
            }
            head = Some(h);
        }
    }
    if let Some(h) = head {
        let json = serde_json::to_vec(h).map_err(db_err)?;
        meta.insert(AUDIT_HEAD, json.as_slice()).map_err(db_err)?;
    }
    meta.insert(JOURNAL_SEQ, last_seq.to_be_bytes().as_slice())
        .map_err(db_err)?;
    Ok(())
}

fn read_journal_seq(txn: &redb::ReadTransaction) -> Result<u64, String> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(db_err(e)),
    };
    Ok(meta
        .get(JOURNAL_SEQ)
        .map_err(db_err)?
        .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // A clean stop leaves the journal empty (a crash leaves it to the
        // next open).
        if let Err(e) = self.checkpoint() {
            crate::log::error("checkpoint_failed", &[("error", &e)]);
        }
    }
}

impl Backend for RedbBackend {
    fn disk_full_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(self.disk_full.clone())
    }

    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, String> {
        self.reopen_if_closed()?;
        let (out, mut effects, events, staged) = self.decide(batch)?;
        let mut appended = None;
        if let Some(log) = self.audit.as_ref()
            && !events.is_empty()
        {
            let (bytes, head) = audit::chain(&log.head, &events);
            let mut offset = log.head.len;
            for line in bytes.split_inclusive(|b| *b == b'\n') {
                let text = String::from_utf8(line.to_vec()).map_err(db_err)?;
                effects.audit.push((offset, text));
                offset += line.len() as u64;
            }
            effects.head = Some(head.clone());
            appended = Some((bytes, head));
        }
        if !effects.is_empty() {
            let rows = effects.rows();
            let appended = self.journal.append(&effects);
            self.note_write(&appended.as_ref().map(|_| ()).map_err(clone_io));
            let seq = appended.map_err(|e| format!("cannot write the journal: {e}"))?;
            self.overlay.merge(staged);
            self.journaled.push((seq, effects));
            self.journaled_rows += rows;
            self.oldest.get_or_insert_with(std::time::Instant::now);
        }
        if let (Some(log), Some((bytes, head))) = (self.audit.as_mut(), appended) {
            // Durable already (in the journal); the file follows.
            if !log.behind
                && let Err(e) = log.file.write_all(&bytes)
            {
                log.behind = true;
                crate::log::error(
                    "audit_log_write_failed",
                    &[
                        ("error", &e.to_string()),
                        (
                            "note",
                            "entries are kept in the database; the log is completed at the next start",
                        ),
                    ],
                );
            }
            log.head = head;
        }
        if let Some(log) = self.audit.as_mut()
            && !log.behind
            && log.synced_seq < log.head.seq
            && log.last_sync.elapsed() >= AUDIT_SYNC_EVERY
        {
            if log.file.sync_data().is_ok() {
                log.synced_seq = log.head.seq;
            }
            log.last_sync = std::time::Instant::now();
        }
        self.checkpoint_if_due();
        Ok(out)
    }

    fn prune(&mut self, now: u64) -> Result<usize, String> {
        self.checkpoint()?;
        let txn = self.db()?.begin_write().map_err(db_err)?;
        let pruned = {
            let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
            let mut ids = txn.open_table(TOKEN_IDS).map_err(db_err)?;
            let upper = now.to_be_bytes();
            let mut expired = Vec::new();
            tokens
                .retain_in::<&[u8], _>(..upper.as_slice(), |key, ()| {
                    expired.push(key.to_vec());
                    false
                })
                .map_err(db_err)?;
            for key in &expired {
                let (_, jti) = split_token_key(key)?;
                ids.remove(jti).map_err(db_err)?;
            }
            expired.len()
        };
        txn.commit().map_err(db_err)?;
        Ok(pruned)
    }

    fn certificates(&mut self) -> Result<Vec<CertRecord>, String> {
        self.checkpoint()?;
        read_certs(&self.db()?.begin_read().map_err(db_err)?)
    }

    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, String> {
        self.checkpoint()?;
        read_all(&self.db()?.begin_read().map_err(db_err)?, REVOKED)
    }

    fn is_burnt(&mut self, jti: &str) -> Result<bool, String> {
        self.checkpoint()?;
        let txn = self.db()?.begin_read().map_err(db_err)?;
        let ids = txn.open_table(TOKEN_IDS).map_err(db_err)?;
        Ok(ids.get(jti).map_err(db_err)?.is_some())
    }

    fn idle(&mut self) {
        if !self.journaled.is_empty()
            && let Err(e) = self.checkpoint()
        {
            crate::log::error("checkpoint_failed", &[("error", &e)]);
        }
    }
}

fn read_all<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
) -> Result<Vec<T>, String> {
    let t = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db_err(e)),
    };
    let mut out = Vec::new();
    for row in t.iter().map_err(db_err)? {
        let (_, v) = row.map_err(db_err)?;
        out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
    }
    Ok(out)
}

/// A read-only view of a CA's ledger, usable while the server runs.
#[derive(Debug)]
pub struct Ledger {
    /// Issued certificates.
    pub certificates: Vec<CertRecord>,
    /// Revocations.
    pub revocations: Vec<RevocationRecord>,
    /// The committed audit head, if any entry was written.
    pub audit_head: Option<audit::Head>,
}

impl Ledger {
    /// Read the database file without taking the writer's place. A file
    /// that needs crash recovery cannot be read this way: `recover` is then
    /// called to open it for writing (which repairs it) when no server holds
    /// it.
    pub fn read(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self {
                certificates: Vec::new(),
                revocations: Vec::new(),
                audit_head: None,
            });
        }
        // The journal first, then the database: a checkpoint between the two
        // reads leaves its records in the database, where the sequence
        // number finds them; the other order could miss them in both.
        let journal_path = journal::path_for(path);
        let journal_bytes = match std::fs::read(&journal_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(CliError::io("read", &journal_path, e)),
        };
        let db = builder().open_read_only(path).map_err(|e| {
            CliError::Store(format!(
                "cannot read {}: {e}. If the CA crashed, start it once (`fedpki pki run`) so the database is recovered",
                path.display()
            ))
        })?;
        let txn = db.begin_read().map_err(|e| CliError::Store(db_err(e)))?;
        let mut me = Self {
            certificates: read_certs(&txn).map_err(CliError::Store)?,
            revocations: read_all(&txn, REVOKED).map_err(CliError::Store)?,
            audit_head: read_head(&txn).map_err(CliError::Store)?,
        };
        let after = read_journal_seq(&txn).map_err(CliError::Store)?;
        for (_, e) in journal::decode(&journal_bytes, after) {
            me.certificates.extend(e.certs);
            me.revocations.extend(e.revoked);
            if e.head.is_some() {
                me.audit_head = e.head;
            }
        }
        Ok(me)
    }
}

/// In-memory backend for tests: same semantics, no durability.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    tokens: HashMap<String, u64>,
    certs: BTreeMap<String, CertRecord>,
    revoked: BTreeMap<String, RevocationRecord>,
    renewed: HashMap<String, String>,
}

impl Backend for MemoryBackend {
    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, String> {
        Ok(batch
            .iter()
            .map(|change| {
                let (jti, until) = match change {
                    Change::Issue(c) => (&c.jti, c.burn_until),
                    Change::Revoke(r) => (&r.jti, r.burn_until),
                };
                if let Some(jti) = jti {
                    if self.tokens.contains_key(jti) {
                        return Outcome::TokenUsed;
                    }
                    self.tokens.insert(jti.clone(), until);
                }
                match change {
                    Change::Issue(c) => {
                        if let Some(old) = &c.renews {
                            if let Some(prior) = self.revoked.get(old) {
                                return Outcome::Revoked(prior.clone());
                            }
                            if !self.certs.contains_key(old) {
                                return Outcome::UnknownSerial;
                            }
                            if let Some(next) = self.renewed.get(old)
                                && !self.revoked.contains_key(next)
                            {
                                return Outcome::AlreadyRenewed(next.clone());
                            }
                        }
                        if let Some(rec) = &c.cert {
                            self.certs.insert(rec.serial.clone(), rec.clone());
                            if let Some(old) = &c.renews {
                                self.renewed.insert(old.clone(), rec.serial.clone());
                            }
                        }
                        Outcome::Done
                    }
                    Change::Revoke(r) => {
                        if let Some(prior) = self.revoked.get(&r.record.serial) {
                            return Outcome::Revoked(prior.clone());
                        }
                        if !self.certs.contains_key(&r.record.serial) {
                            return Outcome::UnknownSerial;
                        }
                        self.revoked
                            .insert(r.record.serial.clone(), r.record.clone());
                        Outcome::Done
                    }
                }
            })
            .collect())
    }
    fn prune(&mut self, now: u64) -> Result<usize, String> {
        let before = self.tokens.len();
        self.tokens.retain(|_, until| *until >= now);
        Ok(before - self.tokens.len())
    }
    fn certificates(&mut self) -> Result<Vec<CertRecord>, String> {
        Ok(self.certs.values().cloned().collect())
    }
    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, String> {
        Ok(self.revoked.values().cloned().collect())
    }
    fn is_burnt(&mut self, jti: &str) -> Result<bool, String> {
        Ok(self.tokens.contains_key(jti))
    }
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum Op {
    Change(Change, Reply<Outcome>),
    Prune(u64, Reply<usize>),
    List(Reply<Vec<CertRecord>>),
    Revocations(Reply<Vec<RevocationRecord>>),
    IsBurnt(String, Reply<bool>),
}

/// Most commits one transaction carries.
const MAX_BATCH: usize = 512;

/// A handle to the store's writer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Op>,
    disk_full: Option<Arc<AtomicBool>>,
}

impl Store {
    /// Start the writer thread over `backend`.
    pub fn start(backend: impl Backend) -> Result<Self> {
        let disk_full = backend.disk_full_flag();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fedpki-store".into())
            .spawn(move || writer(backend, rx))
            .map_err(|e| CliError::Store(format!("cannot start the store thread: {e}")))?;
        Ok(Self { tx, disk_full })
    }

    /// Whether the last write failed because the disk is full.
    pub fn disk_full(&self) -> bool {
        self.disk_full
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Open a database file (no audit log) and start the writer.
    pub fn open(path: &Path) -> Result<Self> {
        Self::start(RedbBackend::open(path)?)
    }

    /// Open the CA's database and audit log and start the writer.
    pub fn open_with_audit(path: &Path, audit_path: &Path) -> Result<Self> {
        Self::start(RedbBackend::open_with_audit(path, audit_path)?)
    }

    async fn ask<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(op(reply))
            .map_err(|_| CliError::Store("the store has stopped".into()))?;
        answer
            .await
            .map_err(|_| CliError::Store("the store has stopped".into()))?
            .map_err(CliError::Store)
    }

    /// Burn a token and record a certificate, durably, atomically.
    pub async fn commit_issue(&self, commit: IssueCommit) -> Result<Outcome> {
        self.ask(|r| Op::Change(Change::Issue(commit), r)).await
    }

    /// Record a revocation (and burn its token), durably, atomically.
    pub async fn commit_revoke(&self, commit: RevokeCommit) -> Result<Outcome> {
        self.ask(|r| Op::Change(Change::Revoke(commit), r)).await
    }

    /// Forget burnt ids that expired before `now`.
    pub async fn prune(&self, now: u64) -> Result<usize> {
        self.ask(|r| Op::Prune(now, r)).await
    }

    /// Every issued certificate.
    pub async fn certificates(&self) -> Result<Vec<CertRecord>> {
        self.ask(Op::List).await
    }

    /// Every revocation.
    pub async fn revocations(&self) -> Result<Vec<RevocationRecord>> {
        self.ask(Op::Revocations).await
    }

    /// Whether a token id is burnt.
    pub async fn is_burnt(&self, jti: &str) -> Result<bool> {
        let jti = jti.to_owned();
        self.ask(|r| Op::IsBurnt(jti, r)).await
    }
}

fn writer(mut backend: impl Backend, rx: mpsc::Receiver<Op>) {
    let mut pending = Vec::new();
    loop {
        let first = match rx.recv_timeout(IDLE) {
            Ok(op) => op,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                backend.idle();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        pending.push(first);
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => pending.push(op),
                Err(_) => break,
            }
        }
        let mut changes = Vec::new();
        let mut replies = Vec::new();
        for op in pending.drain(..) {
            match op {
                Op::Change(c, r) => {
                    changes.push(c);
                    replies.push(r);
                }
                Op::Prune(now, r) => {
                    let _ = r.send(backend.prune(now));
                }
                Op::List(r) => {
                    let _ = r.send(backend.certificates());
                }
                Op::Revocations(r) => {
                    let _ = r.send(backend.revocations());
                }
                Op::IsBurnt(jti, r) => {
                    let _ = r.send(backend.is_burnt(&jti));
                }
            }
        }
        if changes.is_empty() {
            continue;
        }
        match backend.commit(&changes) {
            Ok(outcomes) => {
                for (r, o) in replies.into_iter().zip(outcomes) {
                    let _ = r.send(Ok(o));
                }
            }
            Err(e) => {
                for r in replies {
                    let _ = r.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(jti: &str, serial: Option<&str>) -> IssueCommit {
        IssueCommit {
            jti: Some(jti.into()),
            burn_until: 100,
            cert: serial.map(|s| CertRecord {
                serial: s.into(),
                subject: "x".into(),
                sans: vec!["x".into()],
                not_after: 1,
                issued_at: 0,
                der: vec![1, 2],
            }),
            renews: None,
        }
    }

    fn revoke(serial: &str, jti: Option<&str>) -> RevokeCommit {
        RevokeCommit {
            record: RevocationRecord {
                serial: serial.into(),
                revoked_at: 50,
                reason: 1,
            },
            jti: jti.map(Into::into),
            burn_until: 100,
            by: "operator".into(),
        }
    }

    async fn exercise(store: Store) {
        assert_eq!(
            store.commit_issue(commit("a", Some("01"))).await.unwrap(),
            Outcome::Done
        );
        assert_eq!(
            store.commit_issue(commit("a", Some("02"))).await.unwrap(),
            Outcome::TokenUsed
        );
        // The replay key is the jti alone: the same id with another expiry
        // (a token minted twice) is spent too.
        let same_id = IssueCommit {
            burn_until: commit("a", None).burn_until + 3600,
            ..commit("a", Some("02"))
        };
        assert_eq!(
            store.commit_issue(same_id).await.unwrap(),
            Outcome::TokenUsed
        );
        assert_eq!(
            store.commit_issue(commit("b", None)).await.unwrap(),
            Outcome::Done
        );
        // Hash-confirmed signing burns no token and can repeat.
        let confirmed = IssueCommit {
            jti: None,
            ..commit("", Some("03"))
        };
        for _ in 0..2 {
            assert_eq!(
                store.commit_issue(confirmed.clone()).await.unwrap(),
                Outcome::Done
            );
        }
        let certs = store.certificates().await.unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].serial, "01");
        assert!(store.is_burnt("b").await.unwrap());

        // Revocation: once, of a known serial; a revoked certificate
        // cannot be renewed; a revoke token works once.
        assert_eq!(
            store.commit_revoke(revoke("01", Some("r1"))).await.unwrap(),
            Outcome::Done
        );
        assert_eq!(
            store.commit_revoke(revoke("03", Some("r1"))).await.unwrap(),
            Outcome::TokenUsed
        );
        let again = store.commit_revoke(revoke("01", None)).await.unwrap();
        assert!(matches!(again, Outcome::Revoked(r) if r.reason == 1 && r.revoked_at == 50));
        assert_eq!(
            store.commit_revoke(revoke("99", None)).await.unwrap(),
            Outcome::UnknownSerial
        );
        let renewal = IssueCommit {
            jti: None,
            renews: Some("01".into()),
            ..commit("", Some("04"))
        };
        assert!(matches!(
            store.commit_issue(renewal.clone()).await.unwrap(),
            Outcome::Revoked(_)
        ));
        let renewal = IssueCommit {
            renews: Some("03".into()),
            ..renewal
        };
        assert_eq!(
            store.commit_issue(renewal.clone()).await.unwrap(),
            Outcome::Done
        );
        // 03 has a live successor now (04): renewing 03 again makes none.
        let again = IssueCommit {
            cert: Some(CertRecord {
                serial: "06".into(),
                ..renewal.cert.clone().unwrap()
            }),
            ..renewal
        };
        assert_eq!(
            store.commit_issue(again).await.unwrap(),
            Outcome::AlreadyRenewed("04".into())
        );
        assert_eq!(store.revocations().await.unwrap().len(), 1);
        assert_eq!(store.certificates().await.unwrap().len(), 3);
        let serials: Vec<String> = store
            .certificates()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.serial)
            .collect();
        assert!(serials.contains(&"04".to_owned()));
        assert!(!serials.contains(&"05".to_owned()));

        assert_eq!(store.prune(101).await.unwrap(), 3);
        assert!(!store.is_burnt("a").await.unwrap());
    }

    #[tokio::test]
    async fn memory_backend_semantics() {
        exercise(Store::start(MemoryBackend::default()).unwrap()).await;
    }

    #[tokio::test]
    async fn redb_backend_semantics_and_persistence() {
        let dir = std::env::temp_dir().join(format!("fedpki-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.redb");
        let _ = std::fs::remove_file(&path);
        exercise(Store::open(&path).unwrap()).await;
        // Reopen (the writer thread has dropped its handle when the store is
        // dropped and its channel closed).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut again = RedbBackend::open(&path).unwrap();
        assert_eq!(again.certificates().unwrap().len(), 3);
        assert_eq!(again.revocations().unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn audit_log_follows_commits_and_is_repaired_after_a_crash() {
        let dir = std::env::temp_dir().join(format!("fedpki-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (db, log) = (dir.join("t.redb"), dir.join("audit.log"));
        let _ = std::fs::remove_file(&db);
        let _ = std::fs::remove_file(&log);
        let store = Store::open_with_audit(&db, &log).unwrap();
        exercise(store).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let ledger = Ledger::read(&db).unwrap();
        let head = ledger.audit_head.unwrap();
        let text = std::fs::read(&log).unwrap();
        // 01, 03 twice, 04 issued or renewed; 01 revoked.
        assert_eq!(
            audit::verify(&text, Some(&head)),
            audit::Verdict::Intact {
                entries: 5,
                head: head.clone()
            }
        );
        let s = String::from_utf8(text.clone()).unwrap();
        assert_eq!(s.matches("\"event\":\"renew\"").count(), 1);
        assert_eq!(s.matches("\"event\":\"revoke\"").count(), 1);
        // A crash lost the file's tail (mid-line): the next open completes
        // it from the rows the database kept.
        let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        file.set_len(text.len() as u64 - 150).unwrap();
        drop(file);
        let again = RedbBackend::open_with_audit(&db, &log).unwrap();
        drop(again);
        assert_eq!(std::fs::read(&log).unwrap(), text);
        // Lines appended by someone else are not the CA's: kept, and
        // reported by the check.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"{\"seq\":6,\"forged\":true}\n")
            .unwrap();
        drop(RedbBackend::open_with_audit(&db, &log).unwrap());
        assert!(matches!(
            audit::verify(&std::fs::read(&log).unwrap(), Some(&head)),
            audit::Verdict::Tampered { entry: 6, .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Copy what is on disk right now, as a `kill -9` would leave it.
    fn crash_image(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let image = dir.join(name);
        std::fs::create_dir_all(&image).unwrap();
        for f in ["t.redb", "t.redb.journal", "audit.log"] {
            std::fs::copy(dir.join(f), image.join(f)).unwrap();
        }
        (image.join("t.redb"), image.join("audit.log"))
    }

    #[test]
    fn answered_changes_live_in_the_journal_until_a_checkpoint_and_survive_a_crash() {
        use Outcome::{Done, TokenUsed};
        let dir = std::env::temp_dir().join(format!("fedpki-journal-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut live =
            RedbBackend::open_with_audit(&dir.join("t.redb"), &dir.join("audit.log")).unwrap();
        live.checkpoint_age = std::time::Duration::from_secs(3600);
        let batch = [
            Change::Issue(commit("aa", Some("01"))),
            Change::Issue(commit("bb", Some("02"))),
        ];
        assert_eq!(live.commit(&batch).unwrap(), vec![Done, Done]);
        // Seen by the next batch before any checkpoint: the token is spent,
        // the certificate exists to be revoked.
        let batch = [
            Change::Issue(commit("aa", Some("03"))),
            Change::Revoke(revoke("01", Some("rv"))),
        ];
        assert_eq!(live.commit(&batch).unwrap(), vec![TokenUsed, Done]);
        assert_eq!(live.journaled.len(), 2, "no checkpoint yet");

        // Readers beside the writer take the journal into account…
        let ledger = Ledger::read(&dir.join("t.redb")).unwrap();
        assert_eq!(ledger.certificates.len(), 2);
        assert_eq!(ledger.revocations.len(), 1);
        let head = ledger.audit_head.unwrap();
        assert_eq!(
            audit::verify(&std::fs::read(dir.join("audit.log")).unwrap(), Some(&head)),
            audit::Verdict::Intact { entries: 3, head }
        );
        // The database file alone has none of it: it is in the journal.
        let (db, log) = crash_image(&dir, "image");
        let bare = dir.join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::copy(&db, bare.join("t.redb")).unwrap();
        let mut alone = RedbBackend::open(&bare.join("t.redb")).unwrap();
        assert!(alone.certificates().unwrap().is_empty());
        drop(alone);
        // …and opening replays it: the token stays burnt, the revocation
        // holds, and the journal is emptied into the database.
        {
            let mut again = RedbBackend::open_with_audit(&db, &log).unwrap();
            assert_eq!(std::fs::metadata(journal::path_for(&db)).unwrap().len(), 0);
            let batch = [
                Change::Issue(commit("bb", Some("04"))),
                Change::Revoke(revoke("01", None)),
            ];
            assert!(matches!(
                again.commit(&batch).unwrap().as_slice(),
                [TokenUsed, Outcome::Revoked(r)] if r.serial == "01"
            ));
            assert_eq!(again.certificates().unwrap().len(), 2);
        }

        // A batch torn in the journal (the crash came mid-append, so its
        // callers were never answered) is dropped; the ones before it stay.
        let batch = [Change::Issue(commit("cc", Some("05")))];
        assert_eq!(live.commit(&batch).unwrap(), vec![Done]);
        let (db, log) = crash_image(&dir, "torn");
        let journal = journal::path_for(&db);
        let len = std::fs::metadata(&journal).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&journal)
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        let mut again = RedbBackend::open_with_audit(&db, &log).unwrap();
        let serials: Vec<String> = again
            .certificates()
            .unwrap()
            .into_iter()
            .map(|c| c.serial)
            .collect();
        assert_eq!(serials, ["01", "02"]);
        assert!(again.is_burnt("rv").unwrap() && !again.is_burnt("cc").unwrap());
        drop(again);
        drop(live);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn first_layout_token_ids_are_migrated_and_stay_burnt() {
        let dir = std::env::temp_dir().join(format!("fedpki-migrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("old.redb");
        let _ = std::fs::remove_file(&path);
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(TOKENS_V1)
                .unwrap()
                .insert("old-jti", 5000)
                .unwrap();
            txn.commit().unwrap();
        }
        let mut b = RedbBackend::open(&path).unwrap();
        let again = IssueCommit {
            burn_until: 5000,
            ..commit("old-jti", Some("09"))
        };
        assert_eq!(
            b.commit(&[Change::Issue(again)]).unwrap(),
            vec![Outcome::TokenUsed]
        );
        assert!(b.is_burnt("old-jti").unwrap());
        assert_eq!(b.prune(5001).unwrap(), 1);
        assert!(!b.is_burnt("old-jti").unwrap());
        drop(b);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn binary_records_round_trip() {
        let mut rec = commit("a", Some("01")).cert.unwrap();
        rec.sans = vec!["x".into(), "10.0.0.1".into()];
        assert_eq!(decode_record("01", &encode_record(&rec)).unwrap(), rec);
        assert!(decode_record("01", &[1, 2, 3]).is_err());
        assert!(decode_record("01", &[9]).is_err());
    }

    #[test]
    fn records_read_both_der_encodings() {
        let rec = commit("a", Some("01")).cert.unwrap();
        let json = serde_json::to_string(&rec).unwrap();
        assert!(json.contains("\"der\":\"AQI=\""), "{json}");
        assert_eq!(serde_json::from_str::<CertRecord>(&json).unwrap(), rec);
        let old = json.replace("\"AQI=\"", "[1,2]");
        assert_eq!(serde_json::from_str::<CertRecord>(&old).unwrap(), rec);
    }

    #[tokio::test]
    async fn concurrent_uses_of_one_token_burn_it_once() {
        let store = Store::start(MemoryBackend::default()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..32 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.commit_issue(commit("same", Some(&format!("{i:02}"))))
                    .await
                    .unwrap()
            }));
        }
        let mut fresh = 0;
        for t in tasks {
            fresh += usize::from(t.await.unwrap() == Outcome::Done);
        }
        assert_eq!(fresh, 1);
        assert_eq!(store.certificates().await.unwrap().len(), 1);
    }
}
