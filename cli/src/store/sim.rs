//! A simulated disk for power-cut tests. Each file keeps what was synced
//! apart from what was written since; a power cut keeps the synced bytes,
//! then a random prefix of the later writes, the last of them torn at a
//! random byte, and forgets every file whose name was not synced into its
//! directory. It can also stop working after a given number of
//! operations, as the power going off in the middle of a batch or a
//! checkpoint.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::disk::{Disk, LogFile};

#[derive(Debug, Clone)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct File {
    durable: Vec<u8>,
    current: Vec<u8>,
    unsynced: Vec<Op>,
    name_durable: bool,
}

fn apply(bytes: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write(at, data) => {
            let at = *at as usize;
            if bytes.len() < at + data.len() {
                bytes.resize(at + data.len(), 0);
            }
            bytes[at..at + data.len()].copy_from_slice(data);
        }
        Op::SetLen(len) => bytes.resize(*len as usize, 0),
    }
}

#[derive(Debug, Default)]
struct Inner {
    files: HashMap<PathBuf, File>,
    /// Operations left before the power goes off; `None`: no limit.
    ops_left: Option<u64>,
    /// The log's `sync` does nothing: a store that answers before its
    /// data is durable, which the power-cut test must catch.
    log_sync_is_a_no_op: bool,
}

impl Inner {
    fn spend(&mut self) -> io::Result<()> {
        match &mut self.ops_left {
            Some(0) => Err(io::Error::other("simulated power cut")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn file(&mut self, path: &Path) -> io::Result<&mut File> {
        self.files
            .get_mut(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn op(&mut self, path: &Path, op: Op) -> io::Result<()> {
        self.spend()?;
        let f = self.file(path)?;
        apply(&mut f.current, &op);
        f.unsynced.push(op);
        Ok(())
    }

    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.spend()?;
        let f = self.file(path)?;
        f.durable = f.current.clone();
        f.unsynced.clear();
        Ok(())
    }
}

/// The simulated disk. Clones share it.
#[derive(Debug, Clone, Default)]
pub(super) struct SimDisk(Arc<Mutex<Inner>>);

impl SimDisk {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The power goes off after `n` more operations.
    pub(super) fn fail_after(&self, n: u64) {
        self.lock().ops_left = Some(n);
    }

    /// Make the log's `sync` do nothing.
    pub(super) fn without_log_sync(self) -> Self {
        self.lock().log_sync_is_a_no_op = true;
        self
    }

    /// The disk as it comes back after a power cut, `pick(n)` choosing a
    /// number below `n` for each random choice. The old disk is left as it
    /// was (handles still open on it write there, unseen).
    pub(super) fn power_cut(&self, mut pick: impl FnMut(u64) -> u64) -> Self {
        let inner = self.lock();
        let mut files = HashMap::new();
        let mut paths: Vec<_> = inner.files.keys().cloned().collect();
        paths.sort();
        for path in paths {
            let f = &inner.files[&path];
            if !f.name_durable {
                continue;
            }
            let mut bytes = f.durable.clone();
            let kept = pick(f.unsynced.len() as u64 + 1) as usize;
            for (i, op) in f.unsynced.iter().take(kept).enumerate() {
                match op {
                    Op::Write(at, data) if i + 1 == kept => {
                        let torn = pick(data.len() as u64 + 1) as usize;
                        apply(&mut bytes, &Op::Write(*at, data[..torn].to_vec()));
                    }
                    other => apply(&mut bytes, other),
                }
            }
            let file = File {
                durable: bytes.clone(),
                current: bytes,
                unsynced: Vec::new(),
                name_durable: true,
            };
            files.insert(path, file);
        }
        Self(Arc::new(Mutex::new(Inner {
            files,
            ops_left: None,
            log_sync_is_a_no_op: inner.log_sync_is_a_no_op,
        })))
    }

    /// A file's current content (what a reader would see now).
    pub(super) fn read(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).map(|f| f.current.clone())
    }

    /// Replace a file's content, durably.
    pub(super) fn write(&self, path: &Path, bytes: &[u8]) {
        let mut inner = self.lock();
        let f = inner.files.entry(path.to_owned()).or_default();
        *f = File {
            durable: bytes.to_vec(),
            current: bytes.to_vec(),
            unsynced: Vec::new(),
            name_durable: true,
        };
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.files.contains_key(path) {
            inner.spend()?;
            inner.files.insert(path.to_owned(), File::default());
        }
        Ok(())
    }
}

#[derive(Debug)]
struct SimLog {
    disk: SimDisk,
    path: PathBuf,
}

impl LogFile for SimLog {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        Ok(self.disk.lock().file(&self.path)?.current.clone())
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut inner = self.disk.lock();
        let at = inner.file(&self.path)?.current.len() as u64;
        inner.op(&self.path, Op::Write(at, bytes.to_vec()))
    }
    fn sync(&mut self) -> io::Result<()> {
        let mut inner = self.disk.lock();
        if inner.log_sync_is_a_no_op {
            return inner.spend();
        }
        inner.sync(&self.path)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.disk.lock().op(&self.path, Op::SetLen(len))
    }
}

/// The index database's file, as redb sees it.
#[derive(Debug)]
struct SimIndex {
    disk: SimDisk,
    path: PathBuf,
}

impl redb::StorageBackend for SimIndex {
    fn len(&self) -> io::Result<u64> {
        Ok(self.disk.lock().file(&self.path)?.current.len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut inner = self.disk.lock();
        let f = inner.file(&self.path)?;
        let at = offset as usize;
        let src = f
            .current
            .get(at..at + out.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(src);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk.lock().op(&self.path, Op::SetLen(len))
    }
    fn sync_data(&self) -> io::Result<()> {
        self.disk.lock().sync(&self.path)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.disk
            .lock()
            .op(&self.path, Op::Write(offset, data.to_vec()))
    }
}

impl Disk for SimDisk {
    fn open_log(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        self.create(path)?;
        Ok(Box::new(SimLog {
            disk: self.clone(),
            path: path.to_owned(),
        }))
    }
    fn open_index(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError> {
        self.create(path).map_err(redb::StorageError::from)?;
        // One process at a time: redb's exclusive mode needs no file locks.
        let mut b = redb::Builder::new();
        b.set_concurrency_mode(redb::ConcurrencyMode::ExclusiveWriter);
        b.create_with_backend(SimIndex {
            disk: self.clone(),
            path: path.to_owned(),
        })
    }
    fn exists(&self, path: &Path) -> bool {
        self.lock().files.contains_key(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut inner = self.lock();
        inner.spend()?;
        for (path, f) in inner.files.iter_mut() {
            if path.parent() == Some(dir) {
                f.name_durable = true;
            }
        }
        Ok(())
    }
}
