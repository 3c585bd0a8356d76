//! The folder lock: the one server (or command changing the folder) holds
//! `fedpki.lock` with `flock` and writes its pid in it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;

use super::CaPaths;
use crate::error::{CliError, Result};

/// A held lock on the CA folder: proof that this process is its only server.
#[derive(Debug)]
pub(crate) struct FolderLock {
    file: File,
}

impl FolderLock {
    /// Take the lock and write our pid into it, or say who holds it.
    pub(crate) fn acquire(paths: &CaPaths) -> Result<Self> {
        let path = paths.lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // A symbolic link here would make us truncate whatever it names.
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| CliError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = read_pid(&mut file)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default();
                return Err(CliError::usage(format!(
                    "another fedpki server is already serving {}{pid}; stop it first \
                     (or use `fedpki pki uninstall` to remove the CA)",
                    paths.dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(CliError::io("lock", &path, e)),
        }
        file.set_len(0)
            .map_err(|e| CliError::io("write", &path, e))?;
        file.rewind().map_err(|e| CliError::io("write", &path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| CliError::io("write", &path, e))?;
        file.sync_all()
            .map_err(|e| CliError::io("write", &path, e))?;
        Ok(Self { file })
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_pid(file: &mut File) -> Option<i32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// The pid of the server holding `paths`' lock, if one does.
pub fn server_pid(paths: &CaPaths) -> Result<Option<i32>> {
    let path = paths.lock();
    if !path.exists() {
        return Ok(None);
    }
    let mut file = crate::platform::sys::open_regular(&path)?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // Trust the pid written in the file only if the kernel says that
            // process holds the lock.
            let holders = crate::ca::guard::lock_holders(&path);
            Ok(read_pid(&mut file)
                .filter(|p| holders.contains(p))
                .or(Some(0)))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(CliError::io("lock", &path, e)),
    }
}
