//! The CA folder is the CA's alone, checked as OpenSSH checks its keys: the
//! folder, its subfolders and their files must belong to the user running
//! fedpki (or root), may be written by nobody else, no entry may be a
//! symbolic link, and the secrets may be read by nobody else. Another local
//! user who could write there could swap the provisioner key and mint
//! tokens, or point `fedpki.lock` at a file root would then truncate.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::error::{CliError, Result};

/// The subfolders a CA folder has.
const SUBFOLDERS: [&str; 4] = ["config", "certs", "secrets", "db"];

/// Refuse a CA folder that another user owns or could write.
pub(crate) fn check(dir: &Path) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    check_entry(dir, me, false)?;
    for sub in SUBFOLDERS {
        let sub_dir = dir.join(sub);
        if std::fs::symlink_metadata(&sub_dir).is_err() {
            continue;
        }
        check_entry(&sub_dir, me, sub == "secrets")?;
        let entries = std::fs::read_dir(&sub_dir).map_err(|e| CliError::io("read", &sub_dir, e))?;
        for entry in entries.flatten() {
            check_entry(&entry.path(), me, sub == "secrets")?;
        }
    }
    let lock = dir.join("fedpki.lock");
    if std::fs::symlink_metadata(&lock).is_ok() {
        check_entry(&lock, me, false)?;
    }
    Ok(())
}

fn check_entry(path: &Path, me: u32, secret: bool) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| CliError::io("inspect", path, e))?;
    let unsafe_folder = |why: String| {
        CliError::usage(format!(
            "{why}; the CA folder must be yours alone (as OpenSSH requires of its keys): \
             check who changed it, then `chown -R {me} {0}` and `chmod -R go-rwx {0}`",
            path.display()
        ))
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_folder(format!(
            "{} is a symbolic link",
            path.display()
        )));
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_folder(format!(
            "{} belongs to user {}, not to you ({me})",
            path.display(),
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(unsafe_folder(format!(
            "{} can be written by other users (mode {mode:o})",
            path.display()
        )));
    }
    if secret && mode & 0o077 != 0 {
        return Err(unsafe_folder(format!(
            "{} can be read by other users (mode {mode:o})",
            path.display()
        )));
    }
    Ok(())
}

/// Make an existing folder private (0700) before a CA is created in it.
pub(crate) fn tighten(dir: &Path) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    check_entry_owner(dir, me)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| CliError::io("make private", dir, e))
}

fn check_entry_owner(dir: &Path, me: u32) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| CliError::io("inspect", dir, e))?;
    if meta.file_type().is_symlink() || (meta.uid() != me && meta.uid() != 0) {
        return Err(CliError::usage(format!(
            "{} is a symbolic link or belongs to another user; create the CA in a folder of yours",
            dir.display()
        )));
    }
    Ok(())
}

/// The pid holding an flock on the file `lock` (inode and device as
/// /proc/locks lists them), so a pid written into the lock file is trusted
/// only when the kernel says that process holds the lock.
pub(crate) fn lock_holders(lock: &Path) -> Vec<i32> {
    let Ok(meta) = std::fs::metadata(lock) else {
        return Vec::new();
    };
    let dev = meta.dev();
    let want = format!(
        "{:02x}:{:02x}:{}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev),
        meta.ino()
    );
    let Ok(text) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF"
            (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
                .then(|| f.get(4)?.parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn others_writing_or_a_symlink_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        std::fs::create_dir_all(dir.join("secrets")).unwrap();
        std::fs::write(dir.join("secrets/k"), b"k").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.join("secrets"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::set_permissions(
            dir.join("secrets/k"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        check(&dir).unwrap();
        std::fs::set_permissions(
            dir.join("secrets/k"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = check(&dir).unwrap_err().to_string();
        assert!(e.contains("can be read by other users (mode 644)"), "{e}");
        std::fs::set_permissions(
            dir.join("secrets/k"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check(&dir).unwrap_err().to_string();
        assert!(
            e.contains("can be written by other users (mode 777)"),
            "{e}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", dir.join("fedpki.lock")).unwrap();
        let e = check(&dir).unwrap_err().to_string();
        assert!(e.contains("fedpki.lock is a symbolic link"), "{e}");
    }
}
