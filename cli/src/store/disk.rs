//! The one seam between the store and storage: the log file, the index
//! database, and the directory entries that name them. [`OsDisk`] is the
//! real one; the tests put a simulated disk here that loses, at a power
//! cut, every byte not synced (see `sim.rs`).

use std::fmt::Debug;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// An append-only file.
pub trait LogFile: Send + Debug {
    /// Its whole content.
    fn read_all(&mut self) -> io::Result<Vec<u8>>;
    /// Append bytes at the end (not durable until [`sync`](Self::sync)).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Make every byte appended so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cut the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// Where the store's files live.
pub trait Disk: Send + Sync + Debug {
    /// Open the log, creating it (mode 0600) if missing.
    fn open_log(&self, path: &Path) -> io::Result<Box<dyn LogFile>>;
    /// Open the index database, creating it if missing.
    fn open_index(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError>;
    /// Whether a file exists.
    fn exists(&self, path: &Path) -> bool;
    /// Make the names created in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The machine's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsDisk;

#[derive(Debug)]
struct OsLog(std::fs::File);

impl LogFile for OsLog {
    fn read_all(&mut self) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.0.seek(io::SeekFrom::Start(0))?;
        self.0.read_to_end(&mut bytes)?;
        Ok(bytes)
    }
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// redb's settings for the index: one writer process (the server or an
/// offline command, never both: the folder lock sees to that), and any
/// number of read-only readers (`pki list`, `pki audit`) alongside it.
pub(crate) fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_concurrency_mode(redb::ConcurrencyMode::SingleWriter);
    b
}

impl Disk for OsDisk {
    fn open_log(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Box::new(OsLog(file)))
    }
    fn open_index(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError> {
        builder().create(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }
}
