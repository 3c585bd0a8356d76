//! Reads beside the writer: answered while a batch waits for its sync,
//! and consistent while checkpoints move the overlay into the index.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::Store;
use super::disk::{Disk, LogFile, OsDisk};
use super::durable::{Durable, StorePaths};
use super::records::*;

/// The machine's disk, whose log syncs wait while the gate is shut.
#[derive(Debug, Default)]
struct Gate {
    shut: Mutex<bool>,
    opened: Condvar,
    /// Set by a sync that found the gate shut.
    waiting: AtomicBool,
}

impl Gate {
    fn set(&self, shut: bool) {
        *self.shut.lock().unwrap() = shut;
        self.opened.notify_all();
    }
}

#[derive(Debug, Clone)]
struct GatedDisk(Arc<Gate>);

#[derive(Debug)]
struct GatedLog(Box<dyn LogFile>, Arc<Gate>);

impl LogFile for GatedLog {
    fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        self.0.read_all()
    }
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.append(bytes)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        let mut shut = self.1.shut.lock().unwrap();
        while *shut {
            self.1.waiting.store(true, Ordering::SeqCst);
            shut = self.1.opened.wait(shut).unwrap();
        }
        drop(shut);
        self.0.sync()
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.0.truncate(len)
    }
}

impl Disk for GatedDisk {
    fn open_log(&self, path: &Path) -> std::io::Result<Box<dyn LogFile>> {
        Ok(Box::new(GatedLog(OsDisk.open_log(path)?, self.0.clone())))
    }
    fn open_index(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError> {
        OsDisk.open_index(path)
    }
    fn exists(&self, path: &Path) -> bool {
        OsDisk.exists(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        OsDisk.sync_dir(dir)
    }
}

fn paths(dir: &Path) -> StorePaths {
    StorePaths {
        index: dir.join("fedpki.redb"),
        log: dir.join("audit.log"),
    }
}

fn issue(n: usize) -> Change {
    let serial = format!("{n:016x}");
    Change::Issue {
        token: Some(Burn {
            jti: format!("t{n}"),
            until: 2_000_000_000,
        }),
        cert: CertRecord {
            serial: serial.clone(),
            subject: format!("node-{n}"),
            sans: vec![format!("node-{n}")],
            not_after: 2_000_000_000,
            issued_at: 1_700_000_000,
            der: serial.into_bytes(),
            key: format!("{n:064x}"),
            issuer: String::new(),
        },
        by: None,
        from: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn reads_are_answered_while_a_batch_waits_for_its_sync() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let durable = Durable::open(Arc::new(GatedDisk(gate.clone())), &paths(dir.path())).unwrap();
    let store = Store::start(durable).unwrap();
    let rt = runtime();
    assert_eq!(rt.block_on(store.commit(issue(1))).unwrap(), Outcome::Done);

    // The next batch is written and waits for its fdatasync.
    gate.set(true);
    let writer = store.clone();
    let stuck = rt.spawn(async move { writer.commit(issue(2)).await });
    while !gate.waiting.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }

    // Meanwhile the durable state is read; what is not synced is not seen.
    let read = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), async {
            (
                store.certificate(&format!("{:016x}", 1)).await.unwrap(),
                store.is_burnt("t1").await.unwrap(),
                store.is_burnt("t2").await.unwrap(),
                store.certificates().await.unwrap().len(),
            )
        })
        .await
    });
    let stalled = rt.block_on(async { !stuck.is_finished() });
    gate.set(false);
    let (one, burnt_1, burnt_2, listed) = read.expect("the reads waited for the writer's batch");
    assert!(stalled, "the batch did not wait for its sync");
    assert!(one.is_some_and(|c| c.subject == "node-1"));
    assert!(burnt_1);
    assert!(
        !burnt_2,
        "a token was seen burnt before its batch was synced"
    );
    assert_eq!(listed, 1);
    assert_eq!(rt.block_on(stuck).unwrap().unwrap(), Outcome::Done);
    assert!(rt.block_on(store.is_burnt("t2")).unwrap());
}

#[test]
fn a_reader_racing_checkpoints_sees_every_answered_certificate_once() {
    const N: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let durable = Durable::open(Arc::new(OsDisk), &paths(dir.path()))
        .unwrap()
        .checkpoint_every(3);
    let store = Store::start(durable).unwrap();
    let rt = runtime();
    let answered = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (store, answered, done) = (store.clone(), answered.clone(), done.clone());
        rt.spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                let before = answered.load(Ordering::SeqCst);
                let listed = store.certificates().await.unwrap();
                let serials: HashSet<_> = listed.iter().map(|c| c.serial.clone()).collect();
                assert_eq!(
                    serials.len(),
                    listed.len(),
                    "a certificate was listed twice"
                );
                assert!(
                    listed.len() >= before,
                    "{before} answered, {} listed",
                    listed.len()
                );
                let last = format!("{:016x}", before);
                if before > 0 {
                    assert!(
                        store.certificate(&last).await.unwrap().is_some(),
                        "answered certificate {last} not found"
                    );
                }
                reads += 1;
            }
            reads
        })
    };
    rt.block_on(async {
        for n in 1..=N {
            assert_eq!(store.commit(issue(n)).await.unwrap(), Outcome::Done);
            answered.store(n, Ordering::SeqCst);
        }
    });
    done.store(true, Ordering::SeqCst);
    let reads = rt.block_on(reader).unwrap();
    assert!(reads > 10, "only {reads} reads raced the writer");
    assert_eq!(rt.block_on(store.certificates()).unwrap().len(), N);
}
