//! OpenFL's zip packages, read without trusting them.
//!
//! Nothing is extracted to disk as the archive says: entries are read into
//! memory under limits, their names are checked, and callers write only the
//! files they expect, to paths they choose. A zip cannot write outside the
//! workspace, follow a symlink, or exhaust memory.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use crate::error::{CliError, Result};

/// Largest zip file read.
pub(crate) const MAX_ZIP: u64 = 1024 * 1024;
/// Most entries in a package (OpenFL's hold one or two).
pub(crate) const MAX_ENTRIES: usize = 16;
/// Largest uncompressed entry (a certificate chain or CSR is a few KiB).
pub(crate) const MAX_ENTRY: u64 = 64 * 1024;
/// Largest uncompressed total.
pub(crate) const MAX_TOTAL: u64 = 256 * 1024;

/// One file from a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path inside the zip, `/`-separated, relative, no `..`.
    pub name: String,
    /// Its contents.
    pub data: Vec<u8>,
}

fn refuse(path: &Path, why: impl std::fmt::Display) -> CliError {
    CliError::usage(format!(
        "refusing the package {}: {why}; nothing was written",
        path.display()
    ))
}

/// Read every regular file of the zip at `path`, checking names and sizes.
pub(crate) fn read(path: &Path) -> Result<Vec<Entry>> {
    let bytes = crate::platform::sys::read_bounded(path, MAX_ZIP)?;
    read_bytes(&bytes, path)
}

/// [`read`] of a zip already in memory; `path` names it in errors.
pub fn read_bytes(bytes: &[u8], path: &Path) -> Result<Vec<Entry>> {
    if bytes.len() as u64 > MAX_ZIP {
        return Err(refuse(path, format!("it is larger than {MAX_ZIP} bytes")));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| refuse(path, format!("not a valid zip file ({e})")))?;
    // The zip crate keys entries by name, so two entries of one name would
    // collapse into one (while `unzip` shows the other): count them in the
    // central directory itself.
    if declared_entries(bytes) != Some(archive.len()) {
        return Err(refuse(
            path,
            "two entries have the same name (or its directory is inconsistent)",
        ));
    }
    if archive.len() > MAX_ENTRIES {
        return Err(refuse(
            path,
            format!("it has {} entries (at most {MAX_ENTRIES})", archive.len()),
        ));
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| refuse(path, format!("entry {i} is unreadable ({e})")))?;
        let raw_name = file
            .name()
            .map_err(|e| refuse(path, format!("entry {i} has an unreadable name ({e})")))?
            .into_owned();
        if file.is_symlink() {
            return Err(refuse(path, format!("{raw_name:?} is a symbolic link")));
        }
        if file.is_dir() {
            continue;
        }
        let name = safe_name(&raw_name).ok_or_else(|| {
            refuse(
                path,
                format!("entry {raw_name:?} has an absolute or parent (..) path"),
            )
        })?;
        if file.size() > MAX_ENTRY {
            return Err(refuse(
                path,
                format!(
                    "{name:?} unpacks to {} bytes (at most {MAX_ENTRY})",
                    file.size()
                ),
            ));
        }
        // The declared size can lie: read one byte past the limit to know.
        let mut data = Vec::new();
        (&mut file)
            .take(MAX_ENTRY + 1)
            .read_to_end(&mut data)
            .map_err(|e| refuse(path, format!("{name:?} does not unpack ({e})")))?;
        if data.len() as u64 > MAX_ENTRY {
            return Err(refuse(
                path,
                format!("{name:?} unpacks to more than {MAX_ENTRY} bytes"),
            ));
        }
        total += data.len() as u64;
        if total > MAX_TOTAL {
            return Err(refuse(
                path,
                format!("it unpacks to more than {MAX_TOTAL} bytes"),
            ));
        }
        out.push(Entry { name, data });
    }
    Ok(out)
}

/// The total entry count of the zip's end-of-central-directory record
/// (APPNOTE 4.3.16), found from the end as readers do.
fn declared_entries(bytes: &[u8]) -> Option<usize> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    let at = bytes.len().checked_sub(22)?;
    let lowest = at.saturating_sub(u16::MAX as usize);
    let start = (lowest..=at).rev().find(|&i| bytes[i..i + 4] == EOCD)?;
    let total = bytes.get(start + 10..start + 12)?;
    Some(usize::from(u16::from_le_bytes([total[0], total[1]])))
}

/// A relative, normalised name, or `None` for absolute paths, `..`,
/// backslashes, drive letters and NUL.
fn safe_name(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') || name.contains(':') {
        return None;
    }
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Write a zip with `entries` (deflated) to `path`, atomically.
pub(crate) fn write(path: &Path, entries: &[(&str, &[u8])]) -> Result<()> {
    let mut buf = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        for (name, data) in entries {
            zip.start_file(*name, options)
                .map_err(|e| CliError::usage(format!("zip {}: {e}", path.display())))?;
            zip.write_all(data)
                .map_err(|e| CliError::io("write", path, e))?;
        }
        zip.finish()
            .map_err(|e| CliError::usage(format!("zip {}: {e}", path.display())))?;
    }
    crate::platform::sys::write_atomic(path, &buf.into_inner(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            safe_name("client/col_a.crt").as_deref(),
            Some("client/col_a.crt")
        );
        assert_eq!(
            safe_name("./cert_chain.crt").as_deref(),
            Some("cert_chain.crt")
        );
        for bad in ["/etc/passwd", "../x", "a/../../x", "a\\b", "C:x", "", "."] {
            assert!(safe_name(bad).is_none(), "{bad}");
        }
    }
}
