//! The CA's durable state: burnt token ids, issued certificates,
//! revocations, renewals, and the audit log that records them.
//!
//! Reading order: [`records`] (what is kept and asked), [`rules`] (the one
//! decision function), [`log`] (the audit log, which is also the
//! write-ahead log), [`index`] (redb, a checkpoint of the log),
//! [`durable`] (the two together), [`disk`] (the seam to storage), then
//! the writer thread below.
//!
//! One writer thread owns the backend and applies requests in batches:
//! every request waiting when a batch starts is decided together, its
//! entries are appended to the log and synced, and only then is each
//! caller answered. Under load one fsync carries many certificates.

pub(crate) mod disk;
pub(crate) mod durable;
pub(crate) mod index;
mod ledger;
pub mod log;
pub(crate) mod migrate;
pub(crate) mod postgres;
#[cfg(test)]
mod power_cut_tests;
pub(crate) mod published;
mod reader;
#[cfg(test)]
mod reader_tests;
pub(crate) mod records;
pub(crate) mod rules;
#[cfg(test)]
mod sim;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::{oneshot, watch};

use crate::error::{CliError, Result};

pub(crate) use durable::{Durable, StorePaths};
pub use ledger::Ledger;
pub(crate) use ledger::{AuditTrail, InForce, log_snapshot, recover, repair};
pub(crate) use reader::Reader;
pub(crate) use records::{Burn, CertRecord, Change, Outcome, RevocationRecord};

/// How a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The disk is full: nothing was written; the store carries on once
    /// there is room.
    DiskFull(String),
    /// The store can no longer trust its files and refuses every change;
    /// the CA must be restarted (it recovers from the log).
    Fatal(String),
    /// The store's files disagree (the log lacks what the index took) or
    /// are in a format this fedpki does not read: nothing was changed.
    Corrupt(String),
    /// The shared database cannot be reached now: nothing was written; the
    /// store reconnects by itself.
    Unavailable(String),
    /// Another failure (the index unreadable, …).
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DiskFull(m) | Self::Failed(m) | Self::Corrupt(m) | Self::Unavailable(m) => {
                f.write_str(m)
            }
            Self::Fatal(m) => write!(
                f,
                "{m}; the store refuses every change until the CA is restarted"
            ),
        }
    }
}

impl From<String> for StoreError {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(m) => CliError::CorruptCa(m),
            other => CliError::Store(other.to_string()),
        }
    }
}

/// A storage engine. Calls come from the single writer thread only.
pub trait Backend: Send + 'static {
    /// Decide and apply the changes in order, durably.
    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, StoreError>;
    /// Forget burnt ids whose `burn_until` is before `now`; how many.
    fn prune(&mut self, now: u64) -> Result<usize, StoreError>;
    /// Every certificate record.
    fn certificates(&mut self) -> Result<Vec<CertRecord>, StoreError>;
    /// Every revocation.
    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError>;
    /// One certificate's record, if it was issued here.
    fn certificate(&mut self, serial: &str) -> Result<Option<CertRecord>, StoreError>;
    /// Whether a token id is burnt.
    fn is_burnt(&mut self, jti: &str) -> Result<bool, StoreError>;
    /// When the key `key` was first certified, if it was.
    fn key_birth(&mut self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Every revocation with the record of the certificate it revokes.
    fn revoked_certificates(
        &mut self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>, StoreError> {
        let revoked = self.revocations()?;
        revoked
            .into_iter()
            .map(|r| {
                let cert = self.certificate(&r.serial)?;
                Ok((r, cert))
            })
            .collect()
    }
    /// The next cRLNumber, at least `at_least`, when the ledger keeps them
    /// (shared by replicas); `None` when the CA keeps its own.
    fn next_crl_number(&mut self, at_least: u64) -> Result<Option<u64>, StoreError> {
        let _ = at_least;
        Ok(None)
    }
    /// Whether the storage can be reached now (a shared database): the
    /// health check's probe.
    fn ping(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The last batch's callers have their answers (the batch is durable
    /// in the log): a moment for work they need not wait for, such as a
    /// due checkpoint of the index.
    fn answered(&mut self) {}
    /// No request is waiting: a moment for housekeeping.
    fn idle(&mut self) {}
    /// The store is closing: last housekeeping.
    fn close(&mut self) {}
    /// Set while the disk is full (the last write failed for lack of
    /// space); cleared by the next write that succeeds.
    fn disk_full_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }
    /// Set while a shared database cannot be reached; cleared by the next
    /// operation that reaches it.
    fn unavailable_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }
    /// How other threads read what this backend made durable without
    /// waiting for the writer's batches; `None`: through the writer.
    fn reader(&self) -> Option<Reader> {
        None
    }
}

/// Where a CA's ledger lives.
#[derive(Debug, Clone)]
pub(crate) enum StoreLocation {
    /// In the CA folder (the default): the index and the audit log.
    Embedded(StorePaths),
    /// In a PostgreSQL database its replicas share, bound to the CA whose
    /// root has this fingerprint.
    Postgres {
        /// The database.
        location: Box<postgres::PgLocation>,
        /// The CA's root fingerprint, which the database records.
        root_fingerprint: String,
    },
}

impl StoreLocation {
    /// Whether the ledger is shared by replicas (in a database).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }
}

/// The in-memory backend (tests, benchmarks): the same rules, no files.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: rules::State,
}

impl Backend for MemoryBackend {
    fn commit(&mut self, batch: &[Change]) -> Result<Vec<Outcome>, StoreError> {
        let (out, entries) = rules::decide(batch, &self.state)?;
        for (_, fx) in entries {
            self.state.apply(fx);
        }
        Ok(out)
    }
    fn prune(&mut self, now: u64) -> Result<usize, StoreError> {
        Ok(self.state.prune(now))
    }
    fn certificates(&mut self) -> Result<Vec<CertRecord>, StoreError> {
        Ok(self.state.certs.values().cloned().collect())
    }
    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError> {
        Ok(self.state.revoked.values().cloned().collect())
    }
    fn certificate(&mut self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        Ok(rules::Lookup::certificate(&self.state, serial)?)
    }
    fn is_burnt(&mut self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.state.tokens.contains_key(jti))
    }
    fn key_birth(&mut self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(rules::key_birth(&self.state, key)?)
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    Change(Box<Change>, Reply<Outcome>),
    Prune(u64, Reply<usize>),
    List(Reply<Vec<CertRecord>>),
    Revocations(Reply<Vec<RevocationRecord>>),
    Certificate(String, Reply<Option<CertRecord>>),
    Revoked(Reply<Vec<(RevocationRecord, Option<CertRecord>)>>),
    IsBurnt(String, Reply<bool>),
    KeyBirth(String, Reply<Option<u64>>),
    CrlNumber(u64, Reply<Option<u64>>),
    Ping(Reply<()>),
}

/// Most changes one batch carries.
const MAX_BATCH: usize = 512;
/// No request for this long: time for housekeeping.
const IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// What the handles share. The writer thread holds only `failure`, so
/// this drops with the last handle, and joins the writer then: whoever
/// drops the last handle (a command's end) waits for the last checkpoint.
#[derive(Debug)]
struct Shared {
    disk_full: Option<Arc<AtomicBool>>,
    unavailable: Option<Arc<AtomicBool>>,
    reader: Option<Reader>,
    /// Set once the store can no longer serve: why.
    failure: Arc<watch::Sender<Option<String>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Every handle, and with them every sender, is gone: the writer
        // sees the channel closed, closes the backend, and returns.
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// A handle to the store's writer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Op>,
    shared: Arc<Shared>,
}

impl Store {
    /// Start the writer thread over `backend`.
    pub fn start(backend: impl Backend) -> Result<Self> {
        Self::start_holding(backend, ())
    }

    /// Start the writer thread over `backend`; it keeps `guard` (the CA
    /// folder's lock) until it has closed the backend.
    pub fn start_holding(backend: impl Backend, guard: impl Send + 'static) -> Result<Self> {
        let (failure, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            disk_full: backend.disk_full_flag(),
            unavailable: backend.unavailable_flag(),
            reader: backend.reader(),
            failure: Arc::new(failure),
            thread: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel();
        let on_thread = shared.failure.clone();
        let handle = std::thread::Builder::new()
            .name("fedpki-store".into())
            .spawn(move || {
                let run = std::panic::AssertUnwindSafe(|| writer(backend, rx, &on_thread));
                if std::panic::catch_unwind(run).is_err() {
                    on_thread.send_replace(Some("the store's writer thread panicked".into()));
                }
                drop(guard);
            })
            .map_err(|e| CliError::Store(format!("cannot start the store thread: {e}")))?;
        *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Self { tx, shared })
    }

    /// Open the CA's store on the machine's disk and start the writer.
    pub fn open(paths: &StorePaths, guard: impl Send + 'static) -> Result<Self> {
        let backend = Durable::open(Arc::new(disk::OsDisk), paths)?;
        Self::start_holding(backend, guard)
    }

    /// Open the CA's ledger wherever it lives and start the writer.
    pub(crate) fn open_at(location: &StoreLocation, guard: impl Send + 'static) -> Result<Self> {
        match location {
            StoreLocation::Embedded(paths) => Self::open(paths, guard),
            StoreLocation::Postgres {
                location,
                root_fingerprint,
            } => {
                let backend = postgres::PgBackend::open(
                    (**location).clone(),
                    root_fingerprint,
                    postgres::Expect::Existing,
                )?;
                Self::start_holding(backend, guard)
            }
        }
    }

    /// Whether the last write failed because the disk is full.
    pub fn disk_full(&self) -> bool {
        self.shared
            .disk_full
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Whether the shared database could not be reached last time.
    pub fn unavailable(&self) -> bool {
        self.shared
            .unavailable
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// Why the store stopped serving, once it has.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.borrow().clone()
    }

    /// Resolves when the store can no longer serve: why.
    pub async fn failed(&self) -> String {
        let mut rx = self.shared.failure.subscribe();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                return "the store stopped".into();
            }
        }
    }

    /// Close the store: the writer finishes what was asked, takes a last
    /// checkpoint, releases its guard, and is joined. Other handles get
    /// "the store has stopped" from then on.
    pub fn shutdown(self) -> Result<()> {
        let handle = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(self.tx);
        // Other clones keep the channel open; tell the writer directly.
        self.shared.failure.send_if_modified(|f| {
            if f.is_none() {
                *f = Some("the store was shut down".into());
            }
            false
        });
        match handle {
            Some(h) => h
                .join()
                .map_err(|_| CliError::Store("the store's writer thread panicked".into())),
            None => Ok(()),
        }
    }

    async fn ask<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T> {
        let stopped = || {
            CliError::Store(
                self.failure()
                    .unwrap_or_else(|| "the store has stopped".into()),
            )
        };
        let (reply, answer) = oneshot::channel();
        self.tx.send(op(reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(CliError::from)
    }

    /// Decide a change in the store's one writer and make it durable with
    /// its audit line (and the token it spends), atomically.
    pub async fn commit(&self, change: Change) -> Result<Outcome> {
        self.ask(|r| Op::Change(Box::new(change), r)).await
    }

    /// Forget burnt ids that expired before `now`.
    pub async fn prune(&self, now: u64) -> Result<usize> {
        self.ask(|r| Op::Prune(now, r)).await
    }

    /// Read without waiting for the writer where the backend allows; the
    /// writer answers otherwise, and when the embedded index is closed
    /// (the writer reopens it).
    async fn read<T>(
        &self,
        direct: impl AsyncFnOnce(&Reader) -> Result<T, StoreError>,
        queued: impl FnOnce(Reply<T>) -> Op,
    ) -> Result<T> {
        if self.failure().is_none()
            && let Some(reader) = &self.shared.reader
        {
            // A read reaches the shared database as a write does: it sets
            // or clears the same flag (`/health`, and the 503 it answers).
            let reached = |yes: bool| {
                if let Some(flag) = &self.shared.unavailable {
                    flag.store(!yes, Ordering::SeqCst);
                }
            };
            match direct(reader).await {
                Ok(v) => {
                    reached(true);
                    return Ok(v);
                }
                Err(_) if reader.writer_may_answer() => {}
                Err(e) => {
                    if matches!(e, StoreError::Unavailable(_)) {
                        reached(false);
                    }
                    return Err(e.into());
                }
            }
        }
        self.ask(queued).await
    }

    /// Every issued certificate.
    pub async fn certificates(&self) -> Result<Vec<CertRecord>> {
        self.read(async |r| r.certificates().await, Op::List).await
    }

    /// Every revocation.
    pub async fn revocations(&self) -> Result<Vec<RevocationRecord>> {
        self.read(async |r| r.revocations().await, Op::Revocations)
            .await
    }

    /// One certificate's record, if it was issued here.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>> {
        let owned = serial.to_owned();
        self.read(
            async |r| r.certificate(serial).await,
            |r| Op::Certificate(owned, r),
        )
        .await
    }

    /// Every revocation with the record of the certificate it revokes
    /// (`None` only for a ledger that lost it): what a CRL per issuer needs.
    pub async fn revoked_certificates(
        &self,
    ) -> Result<Vec<(RevocationRecord, Option<CertRecord>)>> {
        self.read(async |r| r.revoked_certificates().await, Op::Revoked)
            .await
    }

    /// When the key `key` (a [`CertRecord::key`]) was first certified
    /// here, if it was.
    pub async fn key_birth(&self, key: &str) -> Result<Option<u64>> {
        let owned = key.to_owned();
        self.read(async |r| r.key_birth(key).await, |r| Op::KeyBirth(owned, r))
            .await
    }

    /// Whether a token id is burnt.
    pub async fn is_burnt(&self, jti: &str) -> Result<bool> {
        let owned = jti.to_owned();
        self.read(async |r| r.is_burnt(jti).await, |r| Op::IsBurnt(owned, r))
            .await
    }

    /// Reach the storage once (a shared database): sets or clears
    /// [`Store::unavailable`].
    pub async fn ping(&self) -> Result<()> {
        self.ask(Op::Ping).await
    }

    /// The next cRLNumber, at least `at_least`, when the ledger keeps them
    /// (a shared one, so every replica's CRLs number on); `None` when the
    /// caller numbers its own.
    pub async fn next_crl_number(&self, at_least: u64) -> Result<Option<u64>> {
        self.ask(|r| Op::CrlNumber(at_least, r)).await
    }
}

fn writer(
    mut backend: impl Backend,
    rx: mpsc::Receiver<Op>,
    failure: &watch::Sender<Option<String>>,
) {
    let mut pending = Vec::new();
    loop {
        if failure.borrow().is_some() {
            break;
        }
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
                    changes.push(*c);
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
                Op::Certificate(serial, r) => {
                    let _ = r.send(backend.certificate(&serial));
                }
                Op::Revoked(r) => {
                    let _ = r.send(backend.revoked_certificates());
                }
                Op::CrlNumber(at_least, r) => {
                    let _ = r.send(backend.next_crl_number(at_least));
                }
                Op::Ping(r) => {
                    let _ = r.send(backend.ping());
                }
                Op::IsBurnt(jti, r) => {
                    let _ = r.send(backend.is_burnt(&jti));
                }
                Op::KeyBirth(key, r) => {
                    let _ = r.send(backend.key_birth(&key));
                }
            }
        }
        if changes.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        match backend.commit(&changes) {
            Ok(outcomes) => {
                crate::platform::events::report(&crate::platform::events::Event::Committed {
                    changes: changes.len(),
                    elapsed: started.elapsed(),
                });
                for (r, o) in replies.into_iter().zip(outcomes) {
                    let _ = r.send(Ok(o));
                }
                backend.answered();
            }
            Err(e) => {
                if let StoreError::Fatal(why) = &e {
                    failure.send_replace(Some(why.clone()));
                }
                for r in replies {
                    let _ = r.send(Err(e.clone()));
                }
            }
        }
    }
    backend.close();
}
