//! `pki passwd`: every key of a CA or root folder (all of `secrets/`)
//! encrypted again under a new password, all or none. The new keys are
//! written and synced in a staging folder beside `secrets/`, then the two
//! folders trade places in one atomic rename (`renameat2` with
//! `RENAME_EXCHANGE`): after a crash at any point, `secrets/` holds every
//! key under the old password or every key under the new one. The staging
//! folder, which then holds the old keys, is removed last; one a crash
//! left is removed by the next `pki passwd`.

use std::path::{Path, PathBuf};

use fedpki_core::PrivateKey;
use fedpki_core::key::PBKDF2_ITERATIONS;
use zeroize::Zeroizing;

use super::{CaPaths, unlock_key};
use crate::error::{CliError, Result};
use crate::platform::faults;
use crate::platform::sys::{self, OsEntropy};

/// Where the new keys are made (a `.tmp-` name: a backup leaves it out).
const STAGING: &str = ".secrets.tmp-passwd";

/// Re-encrypt every key under `paths`' `secrets/` from `old` to `new`. The
/// caller holds the folder's lock. How many keys.
pub(crate) fn change(paths: &CaPaths, old: &str, new: &str) -> Result<usize> {
    let secrets = paths.dir.join("secrets");
    let staging = paths.dir.join(STAGING);
    remove_staging(&staging)?;
    let mut names = Vec::new();
    key_files(&secrets, &secrets, &mut names)?;
    if names.is_empty() {
        return Err(CliError::usage(format!(
            "{} holds no keys: is {} a CA or root folder?",
            secrets.display(),
            paths.dir.display()
        )));
    }
    // Every key opens with the old password before anything is written.
    let keys: Vec<(PathBuf, PrivateKey)> = names
        .into_iter()
        .map(|rel| unlock_key(&secrets.join(&rel), old).map(|k| (rel, k)))
        .collect::<Result<_>>()?;
    faults::point("passwd:unlocked");
    sys::create_dir(&staging, true)?;
    for (i, (rel, key)) in keys.iter().enumerate() {
        let target = staging.join(rel);
        if let Some(folder) = target.parent() {
            sys::create_dir(folder, true)?;
        }
        let pem = Zeroizing::new(key.to_encrypted_pem(
            new.as_bytes(),
            PBKDF2_ITERATIONS,
            &mut OsEntropy,
        )?);
        sys::write_atomic(&target, pem.as_bytes(), 0o600)?;
        if i == keys.len() / 2 {
            faults::point("passwd:half-written");
        }
    }
    faults::point("passwd:staged");
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &staging,
        rustix::fs::CWD,
        &secrets,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        CliError::io(
            "swap in the re-encrypted keys at",
            &secrets,
            std::io::Error::from(e),
        )
    })?;
    sync_folder(&paths.dir)?;
    faults::point("passwd:exchanged");
    remove_staging(&staging)?;
    Ok(keys.len())
}

/// Remove a staging folder (left by a crash, or holding the old keys).
fn remove_staging(staging: &Path) -> Result<()> {
    match std::fs::symlink_metadata(staging) {
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(staging).map_err(|e| CliError::io("remove", staging, e))?;
            staging.parent().map_or(Ok(()), sync_folder)
        }
        Ok(_) => Err(CliError::usage(format!(
            "{} is not a folder fedpki made; move it away",
            staging.display()
        ))),
        Err(_) => Ok(()),
    }
}

fn sync_folder(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::io("sync", dir, e))
}

/// The key files under `dir`, relative to `root`: regular files only.
fn key_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io("read the folder", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io("read the folder", dir, e))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(|e| CliError::io("read", &path, e))?;
        if meta.is_dir() {
            key_files(root, &path, out)?;
        } else if meta.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        } else {
            return Err(CliError::usage(format!(
                "{} is not a key file (a link or a special file); move it out of the folder",
                path.display()
            )));
        }
    }
    out.sort();
    Ok(())
}
