//! The CA's durable state: burnt token ids and issued certificates.
//!
//! One writer thread owns the backend and applies requests in batches: every
//! request waiting when a batch starts goes into one transaction, and each
//! caller is answered only after that transaction is durable. Under load one
//! fsync carries many certificates; alone, a request costs one fsync.
//!
//! The backend is a trait: [`RedbBackend`] (crash-safe, the real one) and
//! [`MemoryBackend`] (the test double).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::{CliError, Result};

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
    /// The certificate, DER.
    pub der: Vec<u8>,
}

/// What one issuance asks the store to make durable, atomically.
#[derive(Debug, Clone)]
pub struct IssueCommit {
    /// The token id to burn; `None` for a request the operator confirmed
    /// by hand (air-gapped signing without a token).
    pub jti: Option<String>,
    /// Until when the burnt id must be remembered (then it may be pruned).
    pub burn_until: u64,
    /// The certificate to record; `None` burns the token only (a request
    /// refused after its token was accepted).
    pub cert: Option<CertRecord>,
}

/// Outcome of an [`IssueCommit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Burn {
    /// The token was unused; it is now burnt and the record is durable.
    Fresh,
    /// The token had been used before; nothing was written.
    AlreadyUsed,
}

/// A storage engine. Calls come from the single writer thread only.
pub trait Backend: Send + 'static {
    /// Apply the commits in order, in one durable transaction.
    fn commit(&mut self, batch: &[IssueCommit]) -> Result<Vec<Burn>, String>;
    /// Forget burnt ids whose `burn_until` is before `now`; how many.
    fn prune(&mut self, now: u64) -> Result<usize, String>;
    /// Every certificate record, by serial.
    fn certificates(&self) -> Result<Vec<CertRecord>, String>;
    /// Whether a token id is burnt.
    fn is_burnt(&self, jti: &str) -> Result<bool, String>;
}

const TOKENS: TableDefinition<&str, u64> = TableDefinition::new("used_tokens");
const CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");

/// redb: copy-on-write B-trees with checksummed commits; a `kill -9` at any
/// moment leaves the last committed state.
#[derive(Debug)]
pub struct RedbBackend {
    db: redb::Database,
}

fn db_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl RedbBackend {
    /// Open or create the database file.
    pub fn open(path: &Path) -> Result<Self> {
        let db = redb::Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => CliError::Store(format!(
                "{} is in use by another fedpki process (a running `fedpki pki run`?)",
                path.display()
            )),
            other => CliError::Store(format!("cannot open {}: {other}", path.display())),
        })?;
        // Create the tables so readers never see them missing.
        let txn = db.begin_write().map_err(|e| CliError::Store(db_err(e)))?;
        txn.open_table(TOKENS)
            .map_err(|e| CliError::Store(db_err(e)))?;
        txn.open_table(CERTS)
            .map_err(|e| CliError::Store(db_err(e)))?;
        txn.commit().map_err(|e| CliError::Store(db_err(e)))?;
        Ok(Self { db })
    }
}

impl Backend for RedbBackend {
    fn commit(&mut self, batch: &[IssueCommit]) -> Result<Vec<Burn>, String> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
            let mut certs = txn.open_table(CERTS).map_err(db_err)?;
            for c in batch {
                if let Some(jti) = &c.jti {
                    if tokens.get(jti.as_str()).map_err(db_err)?.is_some() {
                        out.push(Burn::AlreadyUsed);
                        continue;
                    }
                    tokens.insert(jti.as_str(), c.burn_until).map_err(db_err)?;
                }
                if let Some(rec) = &c.cert {
                    let bytes = serde_json::to_vec(rec).map_err(db_err)?;
                    certs
                        .insert(rec.serial.as_str(), bytes.as_slice())
                        .map_err(db_err)?;
                }
                out.push(Burn::Fresh);
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(out)
    }

    fn prune(&mut self, now: u64) -> Result<usize, String> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut pruned = 0;
        {
            let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
            tokens
                .retain(|_, until| {
                    let keep = until >= now;
                    pruned += usize::from(!keep);
                    keep
                })
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(pruned)
    }

    fn certificates(&self) -> Result<Vec<CertRecord>, String> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let certs = txn.open_table(CERTS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in certs.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
        }
        Ok(out)
    }

    fn is_burnt(&self, jti: &str) -> Result<bool, String> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let tokens = txn.open_table(TOKENS).map_err(db_err)?;
        Ok(tokens.get(jti).map_err(db_err)?.is_some())
    }
}

/// In-memory backend for tests: same semantics, no durability.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    tokens: HashMap<String, u64>,
    certs: BTreeMap<String, CertRecord>,
}

impl Backend for MemoryBackend {
    fn commit(&mut self, batch: &[IssueCommit]) -> Result<Vec<Burn>, String> {
        Ok(batch
            .iter()
            .map(|c| {
                if let Some(jti) = &c.jti {
                    if self.tokens.contains_key(jti) {
                        return Burn::AlreadyUsed;
                    }
                    self.tokens.insert(jti.clone(), c.burn_until);
                }
                if let Some(rec) = &c.cert {
                    self.certs.insert(rec.serial.clone(), rec.clone());
                }
                Burn::Fresh
            })
            .collect())
    }
    fn prune(&mut self, now: u64) -> Result<usize, String> {
        let before = self.tokens.len();
        self.tokens.retain(|_, until| *until >= now);
        Ok(before - self.tokens.len())
    }
    fn certificates(&self) -> Result<Vec<CertRecord>, String> {
        Ok(self.certs.values().cloned().collect())
    }
    fn is_burnt(&self, jti: &str) -> Result<bool, String> {
        Ok(self.tokens.contains_key(jti))
    }
}

enum Op {
    Issue(IssueCommit, oneshot::Sender<Result<Burn, String>>),
    Prune(u64, oneshot::Sender<Result<usize, String>>),
    List(oneshot::Sender<Result<Vec<CertRecord>, String>>),
    IsBurnt(String, oneshot::Sender<Result<bool, String>>),
}

/// Most commits one transaction carries.
const MAX_BATCH: usize = 512;

/// A handle to the store's writer thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Op>,
}

impl Store {
    /// Start the writer thread over `backend`.
    pub fn start(backend: impl Backend) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fedpki-store".into())
            .spawn(move || writer(backend, rx))
            .map_err(|e| CliError::Store(format!("cannot start the store thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Open the CA's database file and start the writer.
    pub fn open(path: &Path) -> Result<Self> {
        Self::start(RedbBackend::open(path)?)
    }

    async fn ask<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Op) -> Result<T> {
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
    pub async fn commit_issue(&self, commit: IssueCommit) -> Result<Burn> {
        self.ask(|r| Op::Issue(commit, r)).await
    }

    /// Forget burnt ids that expired before `now`.
    pub async fn prune(&self, now: u64) -> Result<usize> {
        self.ask(|r| Op::Prune(now, r)).await
    }

    /// Every issued certificate.
    pub async fn certificates(&self) -> Result<Vec<CertRecord>> {
        self.ask(Op::List).await
    }

    /// Whether a token id is burnt.
    pub async fn is_burnt(&self, jti: &str) -> Result<bool> {
        let jti = jti.to_owned();
        self.ask(|r| Op::IsBurnt(jti, r)).await
    }
}

fn writer(mut backend: impl Backend, rx: mpsc::Receiver<Op>) {
    let mut pending = Vec::new();
    while let Ok(first) = rx.recv() {
        pending.push(first);
        while pending.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => pending.push(op),
                Err(_) => break,
            }
        }
        let mut commits = Vec::new();
        let mut replies = Vec::new();
        for op in pending.drain(..) {
            match op {
                Op::Issue(c, r) => {
                    commits.push(c);
                    replies.push(r);
                }
                Op::Prune(now, r) => {
                    let _ = r.send(backend.prune(now));
                }
                Op::List(r) => {
                    let _ = r.send(backend.certificates());
                }
                Op::IsBurnt(jti, r) => {
                    let _ = r.send(backend.is_burnt(&jti));
                }
            }
        }
        if commits.is_empty() {
            continue;
        }
        match backend.commit(&commits) {
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
        }
    }

    async fn exercise(store: Store) {
        assert_eq!(
            store.commit_issue(commit("a", Some("01"))).await.unwrap(),
            Burn::Fresh
        );
        assert_eq!(
            store.commit_issue(commit("a", Some("02"))).await.unwrap(),
            Burn::AlreadyUsed
        );
        assert_eq!(
            store.commit_issue(commit("b", None)).await.unwrap(),
            Burn::Fresh
        );
        // Hash-confirmed signing burns no token and can repeat.
        let confirmed = IssueCommit {
            jti: None,
            ..commit("", Some("03"))
        };
        for _ in 0..2 {
            assert_eq!(
                store.commit_issue(confirmed.clone()).await.unwrap(),
                Burn::Fresh
            );
        }
        let certs = store.certificates().await.unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].serial, "01");
        assert!(store.is_burnt("b").await.unwrap());
        assert_eq!(store.prune(101).await.unwrap(), 2);
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
        let again = RedbBackend::open(&path).unwrap();
        assert_eq!(again.certificates().unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
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
            fresh += usize::from(t.await.unwrap() == Burn::Fresh);
        }
        assert_eq!(fresh, 1);
        assert_eq!(store.certificates().await.unwrap().len(), 1);
    }
}
