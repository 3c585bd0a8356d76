//! A CA folder in one archive and back: `pki backup` (while the server
//! runs) and `pki restore`. The archive is a zip whose `manifest.json`
//! lists every file with its size, mode and SHA-256. The ledger travels as
//! its audit log (a consistent copy, [`store::log_snapshot`]), which
//! rebuilds the index on restore; a ledger in PostgreSQL stays out (its
//! database is backed up with `pg_dump`). Keys go as the folder holds
//! them, encrypted; no password is in the archive.

use std::io::{Cursor, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CaConfig, CaPaths};
use crate::error::{CliError, Result};
use crate::platform::sys;
use crate::store;

/// The archive's format, in its manifest.
pub(crate) const FORMAT: &str = "fedpki-backup/1";
const MANIFEST: &str = "manifest.json";
/// The largest archive `pki restore` reads.
const MAX_ARCHIVE: u64 = 4 << 30;

/// What an archive holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When it was taken (RFC 3339).
    pub created: String,
    /// The CA's address.
    pub ca_url: String,
    /// Its root's SHA-256.
    pub root_fingerprint: String,
    /// `embedded` (the audit log is in the archive) or `postgresql` (the
    /// ledger is in the database, backed up apart).
    pub store: String,
    /// Entries in the audit log copied (0 for `postgresql`).
    pub audit_entries: u64,
    /// The last one's hash.
    pub audit_hash: String,
    /// Every file but this manifest.
    pub files: Vec<FileEntry>,
}

/// One file of the folder.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileEntry {
    /// Relative to the folder, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256.
    pub sha256: String,
    /// Unix permissions.
    pub mode: u32,
}

/// Write a backup of the CA at `paths` to `out` (which must not exist, or
/// be a pipe or device): its manifest.
pub(crate) fn backup(paths: &CaPaths, config: &CaConfig, out: &Path) -> Result<Manifest> {
    if std::fs::symlink_metadata(out).is_ok_and(|m| m.is_file() || m.is_symlink()) {
        return Err(CliError::usage(format!(
            "{} exists; a backup never replaces a file: give a new name",
            out.display()
        )));
    }
    let shared = config.store.is_some();
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    collect(&paths.dir, &paths.dir, paths, &mut files)?;
    let (audit_entries, audit_hash) = if shared {
        (0, String::new())
    } else {
        let (log, head) = store::log_snapshot(&paths.store())?;
        files.push(("db/audit.log".into(), log, 0o600));
        (head.seq, head.hash)
    };
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let manifest = Manifest {
        format: FORMAT.into(),
        created: sys::time_text(sys::now().0),
        ca_url: config.ca_url.clone(),
        root_fingerprint: config.root_fingerprint.clone(),
        store: if shared { "postgresql" } else { "embedded" }.into(),
        audit_entries,
        audit_hash,
        files: files
            .iter()
            .map(|(path, data, mode)| FileEntry {
                path: path.clone(),
                size: data.len() as u64,
                sha256: fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(data)),
                mode: *mode,
            })
            .collect(),
    };
    let zip_err = |e: zip::result::ZipError| CliError::usage(format!("zip {}: {e}", out.display()));
    let mut buf = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o600);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| CliError::usage(e.to_string()))?;
    zip.start_file(MANIFEST, options).map_err(zip_err)?;
    zip.write_all(&json)
        .map_err(|e| CliError::io("write", out, e))?;
    for (path, data, _) in &files {
        zip.start_file(path.as_str(), options).map_err(zip_err)?;
        zip.write_all(data)
            .map_err(|e| CliError::io("write", out, e))?;
    }
    zip.finish().map_err(zip_err)?;
    // It holds the encrypted keys: readable by its owner only.
    sys::write_atomic(out, &buf.into_inner(), 0o600)?;
    Ok(manifest)
}

/// Every regular file under `dir`, but the lock, the store's own files
/// (the log is copied apart) and files a writer is still renaming into
/// place; anything else (a link, a pipe) is refused.
fn collect(
    root: &Path,
    dir: &Path,
    paths: &CaPaths,
    out: &mut Vec<(String, Vec<u8>, u32)>,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::io("read the folder", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io("read the folder", dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path == paths.lock() || path == root.join("db") || name.contains(".tmp-") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| CliError::io("read", &path, e))?;
        if meta.is_dir() {
            collect(root, &path, paths, out)?;
        } else if meta.is_file() {
            let data = std::fs::read(&path).map_err(|e| CliError::io("read", &path, e))?;
            let relative = relative_name(root, &path)?;
            out.push((relative, data, meta.permissions().mode() & 0o777));
        } else {
            return Err(CliError::usage(format!(
                "{} is not a regular file or folder; a CA folder holds none (move it out, then \
                 back up again)",
                path.display()
            )));
        }
    }
    Ok(())
}

fn relative_name(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts
        .map(|p| p.join("/"))
        .ok_or_else(|| CliError::usage(format!("{} is not a UTF-8 name", path.display())))
}

fn refuse(archive: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::Check(format!(
        "refusing the backup {}: {why}; nothing was restored",
        archive.display()
    ))
}

/// Restore the archive at `archive` into `dir` (new, or an empty folder):
/// every file checked against the manifest, the index rebuilt from the
/// audit log and that log checked, all in a folder beside `dir` renamed
/// into place only when everything passed. Its manifest.
pub(crate) fn restore(archive: &Path, dir: &Path) -> Result<Manifest> {
    let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none());
    match empty {
        Ok(false) => {
            return Err(CliError::usage(format!(
                "{} is not empty; restore into a new folder",
                dir.display()
            )));
        }
        Ok(true) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::io("read the folder", dir, e)),
    }
    let bytes = sys::read_bounded(archive, MAX_ARCHIVE)?;
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| refuse(archive, format!("not a zip file ({e})")))?;
    let manifest = read_manifest(&mut zip, archive)?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let staging = staging_dir(dir)?;
    let result = unpack(&mut zip, &manifest, archive, &staging).and_then(|()| {
        if manifest.store == "embedded" {
            check_ledger(&staging, &manifest, archive)?;
        }
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(|e| CliError::io("replace", dir, e))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| CliError::io("restore into", dir, e))?;
        if let Ok(d) = std::fs::File::open(parent.unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|()| manifest)
}

fn staging_dir(dir: &Path) -> Result<PathBuf> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::usage(format!("{} names no folder", dir.display())))?;
    let staging = dir.with_file_name(format!(".{name}.restoring-{}", std::process::id()));
    sys::create_dir(&staging, true)?;
    Ok(staging)
}

fn read_manifest(zip: &mut zip::ZipArchive<Cursor<Vec<u8>>>, archive: &Path) -> Result<Manifest> {
    let mut text = Vec::new();
    zip.by_name(MANIFEST)
        .map_err(|_| refuse(archive, "it has no manifest.json (not a fedpki backup)"))?
        .take(16 << 20)
        .read_to_end(&mut text)
        .map_err(|e| refuse(archive, format!("manifest.json does not unpack ({e})")))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        refuse(
            archive,
            format!("manifest.json is not a backup manifest ({e})"),
        )
    })?;
    if manifest.format != FORMAT {
        return Err(refuse(
            archive,
            format!(
                "its format is {:?}; this fedpki restores {FORMAT:?}",
                manifest.format
            ),
        ));
    }
    let listed: std::collections::HashSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for name in zip.file_names() {
        let name =
            name.map_err(|e| refuse(archive, format!("an entry's name is unreadable ({e})")))?;
        if name != MANIFEST && !listed.contains(name.as_ref()) {
            return Err(refuse(archive, format!("{name:?} is not in its manifest")));
        }
    }
    Ok(manifest)
}

/// Write each listed file under `staging`, checking its size and hash.
fn unpack(
    zip: &mut zip::ZipArchive<Cursor<Vec<u8>>>,
    manifest: &Manifest,
    archive: &Path,
    staging: &Path,
) -> Result<()> {
    for f in &manifest.files {
        let target = safe_join(staging, &f.path)
            .ok_or_else(|| refuse(archive, format!("{:?} is not a relative path", f.path)))?;
        let mut data = Vec::new();
        zip.by_name(&f.path)
            .map_err(|_| refuse(archive, format!("{} is missing", f.path)))?
            .take(f.size + 1)
            .read_to_end(&mut data)
            .map_err(|e| refuse(archive, format!("{} does not unpack ({e})", f.path)))?;
        let sha = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&data));
        if data.len() as u64 != f.size || sha != f.sha256 {
            return Err(refuse(
                archive,
                format!("{} is damaged (its SHA-256 is not the manifest's)", f.path),
            ));
        }
        let private = f.path.starts_with("secrets/") || f.path.starts_with("db/");
        if let Some(folder) = target.parent() {
            sys::create_dir(folder, private)?;
        }
        // Keys and the ledger stay private, whatever the archive says; any
        // other file private in the folder stays so.
        let mode = if private || f.mode & 0o077 == 0 {
            0o600
        } else {
            0o644
        };
        sys::write_atomic(&target, &data, mode)?;
    }
    Ok(())
}

fn safe_join(base: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    let normal = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (normal && !name.is_empty() && !name.contains('\\')).then(|| base.join(rel))
}

/// Rebuild the index from the restored log and check the log ends where
/// the manifest says.
fn check_ledger(staging: &Path, manifest: &Manifest, archive: &Path) -> Result<()> {
    let paths = CaPaths::new(staging).store();
    if !paths.log.is_file() {
        return Err(refuse(archive, "it holds no audit log (db/audit.log)"));
    }
    let location = store::StoreLocation::Embedded(paths);
    store::recover(&location).map_err(|e| refuse(archive, e))?;
    let trail = store::AuditTrail::read_at(&location)?;
    match store::log::verify(&trail.text, trail.head.as_ref()) {
        store::log::Verdict::Intact { entries, head }
            if entries == manifest.audit_entries && head.hash == manifest.audit_hash =>
        {
            Ok(())
        }
        store::log::Verdict::Intact { entries, .. } => Err(refuse(
            archive,
            format!(
                "its audit log holds {entries} entries, its manifest says {}",
                manifest.audit_entries
            ),
        )),
        store::log::Verdict::Tampered { entry, reason } => Err(refuse(
            archive,
            format!("its audit log is damaged at entry {entry}: {reason}"),
        )),
    }
}
