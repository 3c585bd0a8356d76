//! A small tmpfs mounted for a test (the tests run as root), so a write
//! can find the disk full.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size, unmounted when dropped.
#[derive(Debug)]
pub struct SmallDisk {
    at: PathBuf,
    /// Holds the mount point when it is a folder of its own.
    _dir: Option<tempfile::TempDir>,
}

impl SmallDisk {
    /// A tmpfs of `size` (as mount's `size=`) on a new temporary folder.
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut disk = Self::mount_at(dir.path(), size);
        disk._dir = Some(dir);
        disk
    }

    /// A tmpfs of `size` over the folder `at` (what it held is hidden
    /// until the disk is dropped), 0700 as a CA's folders are.
    pub fn mount_at(at: &Path, size: &str) -> Self {
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs (the tests run as root)");
        Self {
            at: at.to_owned(),
            _dir: None,
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.at
    }

    /// Fill every byte left; the filler's path.
    pub fn fill(&self) -> PathBuf {
        let filler = self.at.join("filler");
        let mut f = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
    }
}
