//! The durable store: the audit log is the write-ahead log, the index
//! (redb) a checkpoint of it.
//!
//! A batch is decided against the index plus what the log holds beyond
//! it, its entries are appended to the log and synced (one write, one
//! `fdatasync`), and only then is it answered. Checkpoints give the index
//! the log's new entries in bulk; opening replays the entries the index
//! lacks and cuts a torn tail.
//!
//! Faults: a write that fails for lack of space is taken back and the
//! batch refused (the store carries on once there is room); any other
//! failed write, a failed take-back, or a failed sync poisons the store:
//! it refuses every further change, because after an `fdatasync` error
//! Linux may report later syncs of the same pages as fine. The next start
//! recovers from the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::disk::{Disk, LogFile};
use super::index::Index;
use super::log::{self, Effects, Entry, Head, Tail};
use super::published::{Published, Visible};
use super::records::{CertRecord, Change, Outcome, RevocationRecord};
use super::rules::{self, Layered};
use super::{Backend, Reader, StoreError};

/// A checkpoint is due after this many entries…
const CHECKPOINT_ENTRIES: usize = 256;
/// …or when the oldest entry not in the index is this old.
const CHECKPOINT_AGE: Duration = Duration::from_millis(250);

/// Where the store's two files are.
#[derive(Debug, Clone)]
pub struct StorePaths {
    /// The index database.
    pub index: PathBuf,
    /// The audit log.
    pub log: PathBuf,
}

/// The durable backend.
#[derive(Debug)]
pub struct Durable {
    disk: Arc<dyn Disk>,
    paths: StorePaths,
    /// The index and what the log holds beyond it, shared with readers.
    published: Published,
    log: Box<dyn LogFile>,
    /// The end of the log: every entry synced.
    head: Head,
    /// The log's entries after the index's head, for the next checkpoint.
    pending: Vec<Effects>,
    oldest: Option<Instant>,
    disk_full: Arc<AtomicBool>,
    /// Why the store refuses every change, once it does.
    poisoned: Option<String>,
    /// When a checkpoint is due: entries, age.
    checkpoint_after: (usize, Duration),
}

fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(28 | 122))
}

fn open_index(disk: &dyn Disk, path: &Path) -> Result<Index, StoreError> {
    let created = !disk.exists(path);
    let db = disk.open_index(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => format!(
            "{} is in use by another fedpki process (a running `fedpki pki run`?)",
            path.display()
        ),
        other => format!("cannot open {}: {other}", path.display()),
    })?;
    if created {
        sync_parent(disk, path)?;
    }
    Index::new(db).map_err(|e| match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// A new file's name must survive a power cut too.
fn sync_parent(disk: &dyn Disk, path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    disk.sync_dir(dir)
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

/// What `pki audit --repair` tells.
pub(crate) fn repair_hint(log: &Path) -> String {
    let dir = log
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| "DIR".to_owned(), |d| d.display().to_string());
    format!(
        "Nothing was changed. `fedpki pki audit -p {dir}` shows where; if the log was restored \
         from an old backup or damaged, `fedpki pki audit -p {dir} --repair` records the gap \
         in the log (keeping the damaged part aside) and lets the CA start"
    )
}

impl Durable {
    /// Open the store: check that the log holds what the index indexed,
    /// cut a torn tail, and index what the log holds beyond.
    pub fn open(disk: Arc<dyn Disk>, paths: &StorePaths) -> Result<Self, StoreError> {
        let index = open_index(disk.as_ref(), &paths.index)?;
        let indexed = index.view()?.head()?;
        let created = !disk.exists(&paths.log);
        let mut file = disk
            .open_log(&paths.log)
            .map_err(|e| format!("cannot open {}: {e}", paths.log.display()))?;
        if created {
            sync_parent(disk.as_ref(), &paths.log)?;
        }
        let bytes = file
            .read_all()
            .map_err(|e| format!("cannot read {}: {e}", paths.log.display()))?;
        let gap = |reason: String| {
            StoreError::Corrupt(format!(
                "the audit log {} does not match the CA's ledger: {reason}. {}",
                paths.log.display(),
                repair_hint(&paths.log)
            ))
        };
        log::check_head(&bytes, &indexed).map_err(gap)?;
        let (entries, head, tail) = log::scan(&bytes[indexed.len as usize..], &indexed);
        match tail {
            Tail::Clean => {}
            Tail::Torn { bytes: cut } => {
                file.truncate(head.len)
                    .and_then(|()| file.sync())
                    .map_err(|e| format!("cannot cut {}: {e}", paths.log.display()))?;
                crate::platform::log::warn(
                    "log_tail_cut",
                    &[
                        ("bytes", &cut.to_string()),
                        (
                            "note",
                            "an unsynced write a crash interrupted; it was never answered",
                        ),
                    ],
                );
            }
            Tail::Damaged { entry, reason } => {
                return Err(gap(format!("entry {entry} is damaged ({reason})")));
            }
        }
        if !entries.is_empty() {
            let changes = entries
                .iter()
                .map(Entry::effects)
                .collect::<Result<Vec<_>, _>>()?;
            index.checkpoint(&changes, &head)?;
            crate::platform::log::info("log_replayed", &[("entries", &entries.len().to_string())]);
        }
        Ok(Self {
            disk,
            paths: paths.clone(),
            published: Published::default().with_index(index),
            log: file,
            head,
            pending: Vec::new(),
            oldest: None,
            disk_full: Arc::new(AtomicBool::new(false)),
            poisoned: None,
            checkpoint_after: (CHECKPOINT_ENTRIES, CHECKPOINT_AGE),
        })
    }

    /// Checkpoint after every `entries` entries (tests that race them).
    #[cfg(test)]
    pub fn checkpoint_every(mut self, entries: usize) -> Self {
        self.checkpoint_after = (entries, Duration::MAX);
        self
    }

    /// Checkpoint only when told to (tests that choose when).
    #[cfg(test)]
    pub fn manual_checkpoints(mut self) -> Self {
        self.checkpoint_after = (usize::MAX, Duration::MAX);
        self
    }

    /// The shared view, its index reopened first if a failed write closed
    /// it.
    fn visible(&mut self) -> Result<std::sync::RwLockReadGuard<'_, Visible>, String> {
        if self.published.read().index.is_none() {
            let index =
                open_index(self.disk.as_ref(), &self.paths.index).map_err(|e| e.to_string())?;
            self.published.write().index = Some(index);
            crate::platform::log::info("database_reopened", &[]);
        }
        Ok(self.published.read())
    }

    fn poison(&mut self, why: String) -> StoreError {
        crate::platform::log::error("store_poisoned", &[("reason", &why)]);
        self.poisoned = Some(why.clone());
        StoreError::Fatal(why)
    }

    /// Append and sync a batch's lines; on failure take them back.
    fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let log = self.paths.log.display().to_string();
        if let Err(e) = self.log.append(bytes) {
            let full = is_disk_full(&e);
            if let Err(t) = self
                .log
                .truncate(self.head.len)
                .and_then(|()| self.log.sync())
            {
                return Err(self.poison(format!(
                    "a write to {log} failed ({e}) and could not be taken back ({t})"
                )));
            }
            if !full {
                return Err(self.poison(format!("a write to {log} failed: {e}")));
            }
            self.disk_full.store(true, Ordering::SeqCst);
            return Err(StoreError::DiskFull(format!("cannot write {log}: {e}")));
        }
        if let Err(e) = self.log.sync() {
            return Err(self.poison(format!("fdatasync of {log} failed: {e}")));
        }
        self.disk_full.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Give the index every entry it lacks.
    pub fn checkpoint(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        drop(self.visible()?);
        // Readers wait for the checkpoint rather than see a record twice
        // (in the new index and the old overlay) or not at all.
        let mut visible = self.published.write();
        let result = match &visible.index {
            Some(index) => index.checkpoint(&self.pending, &self.head),
            None => Err("the index is closed".to_owned()),
        };
        match result {
            Ok(()) => {
                visible.overlay = Default::default();
                drop(visible);
                self.pending.clear();
                self.oldest = None;
                Ok(())
            }
            Err(e) => {
                // redb may now refuse every call: reopen it next time.
                visible.index = None;
                drop(visible);
                if e.contains("No space left") || e.contains("Disk quota") {
                    self.disk_full.store(true, Ordering::SeqCst);
                }
                Err(e)
            }
        }
    }

    fn checkpoint_if_due(&mut self) {
        let (entries, age) = self.checkpoint_after;
        let due = self.pending.len() >= entries || self.oldest.is_some_and(|t| t.elapsed() >= age);
        if due && let Err(e) = self.checkpoint() {
            crate::platform::log::error(
                "checkpoint_failed",
                &[
                    ("error", &e),
                    (
                        "note",
                        "the log keeps every change; retried with the next batch",
                    ),
                ],
            );
        }
    }

    /// The log's head (every entry synced).
    pub fn head(&self) -> &Head {
        &self.head
    }
}

impl Backend for Durable {
    fn disk_full_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(self.disk_full.clone())
    }

    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, StoreError> {
        if let Some(why) = &self.poisoned {
            return Err(StoreError::Fatal(why.clone()));
        }
        let (out, entries) = {
            let visible = self.visible().map_err(StoreError::Failed)?;
            let view = visible.index()?.view()?;
            rules::decide(
                batch,
                &Layered {
                    top: &visible.overlay,
                    base: &view,
                },
            )?
        };
        if entries.is_empty() {
            return Ok(out);
        }
        let lines: Vec<&Entry> = entries.iter().map(|(e, _)| e).collect();
        let (bytes, head) = log::chain_refs(&self.head, &lines);
        self.append(&bytes)?;
        let mut visible = self.published.write();
        for (_, fx) in entries {
            visible.overlay.apply(fx.clone());
            self.pending.push(fx);
        }
        drop(visible);
        self.head = head;
        self.oldest.get_or_insert_with(Instant::now);
        Ok(out)
    }

    fn prune(&mut self, now: u64) -> Result<usize, StoreError> {
        self.checkpoint()?;
        let visible = self.visible()?;
        Ok(visible.index()?.prune(now)?)
    }

    fn certificates(&mut self) -> Result<Vec<CertRecord>, StoreError> {
        self.visible()?.certificates()
    }

    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError> {
        self.visible()?.revocations()
    }

    fn revoked_certificates(
        &mut self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, StoreError> {
        self.visible()?.revoked_certificates()
    }

    fn certificate(&mut self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        self.visible()?.certificate(serial)
    }

    fn is_burnt(&mut self, jti: &str) -> Result<bool, StoreError> {
        self.visible()?.is_burnt(jti)
    }

    fn key_birth(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        self.visible()?.key_birth(key)
    }

    fn reader(&self) -> Option<Reader> {
        Some(Reader::embedded(self.published.clone()))
    }

    fn answered(&mut self) {
        // After the answers, not before: a checkpoint is a redb commit with
        // its own fsync, and the callers' changes are already in the log.
        self.checkpoint_if_due();
    }

    fn idle(&mut self) {
        if let Err(e) = self.checkpoint() {
            crate::platform::log::error("checkpoint_failed", &[("error", &e)]);
        }
    }

    fn close(&mut self) {
        self.idle();
    }
}

/// `pki audit --repair`: make a log that no longer matches the index
/// usable again, keeping everything. The log's good entries stay; what
/// follows the first bad one is set aside in `audit.log.damaged-TIME`;
/// the index takes every good entry again (taking one twice changes
/// nothing) and keeps what only it still has; a `repair` entry records
/// what was found. `None` when there was nothing to repair.
pub(crate) fn repair(
    disk: Arc<dyn Disk>,
    paths: &StorePaths,
    now: u64,
) -> Result<Option<String>, StoreError> {
    if let Ok(mut store) = Durable::open(disk.clone(), paths) {
        store.close();
        return Ok(None);
    }
    let index = open_index(disk.as_ref(), &paths.index)?;
    let indexed = index.view()?.head()?;
    let io = |e: std::io::Error| format!("{}: {e}", paths.log.display());
    let mut file = disk.open_log(&paths.log).map_err(io)?;
    let bytes = file.read_all().map_err(io)?;
    let (entries, good, _) = log::scan(&bytes, &Head::default());
    let rest = &bytes[good.len as usize..];
    let mut note = format!(
        "the log held {} good entries; the ledger had indexed {}",
        good.seq, indexed.seq
    );
    if !rest.is_empty() {
        let mut name = paths.log.as_os_str().to_owned();
        name.push(format!(".damaged-{now}"));
        let aside = PathBuf::from(name);
        let mut side = disk.open_log(&aside).map_err(io)?;
        side.append(rest).and_then(|()| side.sync()).map_err(io)?;
        sync_parent(disk.as_ref(), &aside)?;
        note.push_str(&format!(
            "; {} bytes after entry {} set aside in {}",
            rest.len(),
            good.seq,
            aside.display()
        ));
    }
    let repair = Entry {
        event: "repair".into(),
        time: now,
        by: "operator (pki audit --repair)".into(),
        note: Some(note.clone()),
        ..Entry::default()
    };
    let (line, head) = log::chain(&good, std::slice::from_ref(&repair));
    file.truncate(good.len)
        .and_then(|()| file.append(&line))
        .and_then(|()| file.sync())
        .map_err(io)?;
    let mut changes = entries
        .iter()
        .map(Entry::effects)
        .collect::<Result<Vec<_>, _>>()?;
    changes.push(repair.effects()?);
    index.checkpoint(&changes, &head)?;
    Ok(Some(note))
}

/// Open the store once and close it: what a crash left in the log is
/// indexed, a torn tail cut (`pki list` and `pki audit` when no server
/// runs).
pub(crate) fn recover(paths: &StorePaths) -> Result<(), StoreError> {
    Durable::open(Arc::new(super::disk::OsDisk), paths)?.close();
    Ok(())
}
