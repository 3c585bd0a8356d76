//! What the core leaves to its caller: the OS's randomness, the clock, and
//! files written so that a crash never leaves half of one behind.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use fedpki_core::{Entropy, UnixTime};

use crate::error::{CliError, Result};

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), fedpki_core::Error> {
        getrandom::fill(dest).map_err(|_| fedpki_core::Error::Entropy)
    }
}

/// Where time comes from: the system clock, or a fixed one in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Seconds since the Unix epoch.
    fn now(&self) -> UnixTime {
        UnixTime(self.now_ms() / 1000)
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// Now, from the system clock.
pub fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Create `dir` and its parents; a directory fedpki creates is 0700 when
/// `private`.
pub(crate) fn create_dir(dir: &Path, private: bool) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(if private { 0o700 } else { 0o755 })
        .create(dir)
        .map_err(|e| CliError::io("create the folder", dir, e))
}

/// Write `value` to `path` as pretty JSON, atomically ([`write_atomic`]).
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize, mode: u32) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| CliError::usage(e.to_string()))?;
    write_atomic(path, &json, mode)
}

/// Write `data` to `path` atomically: a temporary file in the same folder
/// with `mode`, fsync, rename over `path`, fsync the folder. A crash leaves
/// either the old file or the new one, never a part. A `path` that exists
/// and is not a regular file (`-o /dev/null`, a pipe) is written through
/// instead ([`write_through`]): never renamed over.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(CliError::usage(format!(
                "{} is a folder; give the path of a file to write",
                path.display()
            )));
        }
        Ok(m) if !m.is_file() => return write_through(path, data),
        _ => {}
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    OsEntropy.fill(&mut suffix)?;
    let tmp = dir.join(format!(
        ".{name}.tmp-{}",
        fedpki_core::encoding::hex(&suffix)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; make it exact.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            d.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CliError::io("write", path, e));
    }
    Ok(())
}

/// Write `data` into the special file at `path` (a device, a FIFO) by
/// opening it, as `openssl -out` does. Opened without blocking, so a FIFO
/// that nothing reads (or a socket) is refused at once instead of waiting
/// forever; then written blocking, so a pipe's reader gets all of it.
fn write_through(path: &Path, data: &[u8]) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NXIO => CliError::usage(format!(
            "{} is a pipe or socket that nothing is reading; give the path of a file, or start \
             its reader first",
            path.display()
        )),
        e => CliError::io("write", path, std::io::Error::from(e)),
    })?;
    rustix::fs::fcntl_setfl(&fd, OFlags::empty())
        .map_err(|e| CliError::io("write", path, std::io::Error::from(e)))?;
    File::from(fd)
        .write_all(data)
        .map_err(|e| CliError::io("write", path, e))
}

/// Open the file at `path` for reading if it is a regular file. Opened
/// without blocking (a FIFO with no writer would block `open` itself) and
/// checked on the open descriptor: a FIFO, a device or a socket is refused
/// at once.
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    use rustix::fs::{Mode, OFlags};
    let not_regular = || {
        CliError::usage(format!(
            "{} is not a regular file (a pipe, a device or a socket: fedpki reads files only, \
             so that nothing can make it wait forever or read without end); give the path of a \
             file",
            path.display()
        ))
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // A socket cannot be opened.
        rustix::io::Errno::NXIO => not_regular(),
        e => CliError::io("read", path, std::io::Error::from(e)),
    })?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| CliError::io("read", path, e))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Keep this process's memory out of core dumps and away from other
/// processes of its user: not dumpable (`PR_SET_DUMPABLE` 0, which also
/// refuses them `ptrace` and `/proc/PID/mem`), and a core limit of 0, soft
/// and hard. A command holds the CA password or an unlocked key; the
/// server holds both for as long as it runs.
pub(crate) fn keep_out_of_core_dumps() {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
}

/// Raise this process's open-file limit to its hard limit (a server with
/// many clients needs more than the usual 1024); the limit now in force.
pub fn raise_fd_limit() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(hard) = lim.maximum
        && lim.current.is_some_and(|cur| cur < hard)
    {
        lim.current = Some(hard);
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile)
        .current
        .map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The most [`read_text`] reads: every local input fedpki takes (keys,
/// certificates, CSRs, tokens, request and signed files) is a few KiB.
pub(crate) const MAX_INPUT: u64 = 1024 * 1024;

/// Read at most `limit` bytes of the regular file at `path`, whatever its
/// metadata says (special files report size 0 and never end): a FIFO, a
/// device or a file over `limit` is refused with a clear error
/// ([`open_regular`]).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| CliError::io("read", path, e))?;
    if data.len() as u64 > limit {
        return Err(CliError::usage(format!(
            "{} is larger than {limit} bytes; it is not a file fedpki reads",
            path.display()
        )));
    }
    Ok(data)
}

/// Read a whole (small, regular) file as text, with a clear error.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_bounded(path, MAX_INPUT)?)
        .map_err(|_| CliError::usage(format!("{} is not text (UTF-8)", path.display())))
}

/// The most a CRL file fedpki reads may hold (a CRL of a million entries
/// is about 40 MiB).
pub(crate) const MAX_CRL: u64 = 64 * 1024 * 1024;

/// RFC 3339 UTC text of a Unix time.
pub(crate) fn time_text(t: u64) -> String {
    fedpki_core::UnixTime(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn atomic_write_sets_mode_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("fedpki-sys-{}", std::process::id()));
        create_dir(&dir, true).unwrap();
        let p = dir.join("k.key");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_at_once_as_input_and_as_an_output_nobody_reads() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read_text(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = write_atomic(&fifo, b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("nothing is reading"), "{e}");
        // Still a FIFO: never renamed over.
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        // With a reader, the bytes go through the pipe.
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = write_atomic(&fifo, b"through", 0o600) {
            assert!(std::time::Instant::now() < deadline, "{e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(reader.join().unwrap(), b"through");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        let e = write_atomic(dir.path(), b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
    }

    #[test]
    fn bounded_reads_refuse_devices_and_big_files() {
        // /dev/zero reports size 0 and never ends.
        let e = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        fs::write(&big, vec![b'a'; 1025]).unwrap();
        let e = read_bounded(&big, 1024).unwrap_err();
        assert!(e.to_string().contains("larger than 1024 bytes"), "{e}");
        fs::write(&big, vec![b'a'; 1024]).unwrap();
        assert_eq!(read_bounded(&big, 1024).unwrap().len(), 1024);
    }
}
