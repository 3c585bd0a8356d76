//! The store's journal: a batch of changes is appended here and synced (one
//! small sequential write, one `fdatasync`) before its callers are
//! answered. The database takes the journal's records in bulk at
//! checkpoints, then the journal is emptied.
//!
//! Why: a database commit costs about 350 µs of CPU and ~1 ms of disk
//! whatever it carries (page writes scattered over the file, a flush of
//! each); an append costs a third of that. Under load the hot path pays
//! only the append, and the database's fixed cost is paid once per
//! hundreds of certificates.
//!
//! A record: payload length (u32 BE), sequence number (u64 BE), the payload
//! (JSON of [`Effects`]), then SHA-256 over the twelve header bytes and the
//! payload. Sequence numbers run on across checkpoints; the database
//! records the last one it holds, so a journal the crash left unemptied
//! is harmless. Reading stops at the first record that is short, fails its
//! hash, or does not follow its predecessor: a torn tail is never taken.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit;
use crate::store::{CertRecord, RevocationRecord};

/// What one batch changed, as it is to be written into the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    /// Token ids burnt, with the time until which they must be remembered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<(String, u64)>,
    /// Certificates recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<CertRecord>,
    /// Revocations recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<RevocationRecord>,
    /// Renewals recorded: the serial renewed, and its successor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renewed: Vec<(String, String)>,
    /// Audit lines (offset in the log file, the line with its newline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<(u64, String)>,
    /// The audit head after these lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<audit::Head>,
}

impl Effects {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
            && self.certs.is_empty()
            && self.revoked.is_empty()
            && self.renewed.is_empty()
            && self.audit.is_empty()
    }

    /// How many rows these effects add.
    pub fn rows(&self) -> usize {
        self.tokens.len()
            + self.certs.len()
            + self.revoked.len()
            + self.renewed.len()
            + self.audit.len()
    }
}

const HEADER: usize = 12;
const HASH: usize = 32;
/// A record larger than this is not one we wrote (the store's batches are
/// bounded far below it).
const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

fn encode(seq: u64, effects: &Effects) -> std::io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(effects).map_err(std::io::Error::other)?;
    frame(seq, &payload).ok_or_else(|| std::io::Error::other("a journal record over 256 MiB"))
}

/// Frame a payload as a record: header, payload, hash. `None` when the
/// payload is over the size limit.
pub fn frame(seq: u64, payload: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_PAYLOAD)?;
    let mut rec = Vec::with_capacity(HEADER + payload.len() + HASH);
    rec.extend_from_slice(&len.to_be_bytes());
    rec.extend_from_slice(&seq.to_be_bytes());
    rec.extend_from_slice(payload);
    let digest = ring::digest::digest(&ring::digest::SHA256, &rec);
    rec.extend_from_slice(digest.as_ref());
    Some(rec)
}

/// The records of `bytes` that follow `after` (the last sequence number the
/// database holds), in order, up to the first bad, torn or out-of-sequence
/// one. Records at or before `after` (left by a crash before the journal
/// was emptied) are skipped.
pub fn decode(bytes: &[u8], after: u64) -> Vec<(u64, Effects)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut expect = after + 1;
    while let Some((header, body)) = rest.split_at_checked(HEADER) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&header[4..HEADER]);
        let seq = u64::from_be_bytes(seq_bytes);
        if len > MAX_PAYLOAD {
            break;
        }
        let Some((payload, tail)) = body.split_at_checked(len) else {
            break;
        };
        let Some((hash, next)) = tail.split_at_checked(HASH) else {
            break;
        };
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(header);
        ctx.update(payload);
        if ctx.finish().as_ref() != hash {
            break;
        }
        if seq > after {
            if seq != expect {
                break;
            }
            let Ok(effects) = serde_json::from_slice::<Effects>(payload) else {
                break;
            };
            out.push((seq, effects));
            expect += 1;
        }
        rest = next;
    }
    out
}

/// Read a journal file without taking it from its writer (`pki list` beside
/// the running server): the records after `after`.
pub fn read(path: &Path, after: u64) -> std::io::Result<Vec<(u64, Effects)>> {
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    }
    Ok(decode(&bytes, after))
}

/// The journal beside a database file: `<database>.journal`.
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// The open journal, owned by the store's writer thread.
#[derive(Debug)]
pub struct Journal {
    file: std::fs::File,
    /// Bytes of whole records in the file.
    len: u64,
    next_seq: u64,
}

impl Journal {
    /// Open (or create) the journal and return the records that follow
    /// `after`. The caller writes them into the database, then
    /// [`reset`](Self::reset)s the journal before appending (which also
    /// cuts a torn tail).
    pub fn open(path: &Path, after: u64) -> std::io::Result<(Self, Vec<(u64, Effects)>)> {
        let existed = path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        if !existed {
            // The new name must survive a power cut too.
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let records = decode(&bytes, after);
        let next_seq = records.last().map_or(after, |(s, _)| *s) + 1;
        Ok((
            Self {
                file,
                len: bytes.len() as u64,
                next_seq,
            },
            records,
        ))
    }

    /// Append a record and make it durable; returns its sequence number.
    pub fn append(&mut self, effects: &Effects) -> std::io::Result<u64> {
        let seq = self.next_seq;
        let rec = encode(seq, effects)?;
        if let Err(e) = self
            .file
            .write_all(&rec)
            .and_then(|()| self.file.sync_data())
        {
            // The record may be partly written: cut it, so that the next one
            // does not follow garbage (readers would stop there).
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += rec.len() as u64;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Empty the journal once the database holds every record in it. Not
    /// synced: if a crash brings the old records back, the database's
    /// sequence number makes them skipped.
    pub fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fedpki-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn effects(i: u64) -> Effects {
        Effects {
            tokens: vec![(format!("jti-{i}"), 1_000 + i)],
            certs: vec![CertRecord {
                serial: format!("{i:032x}"),
                subject: format!("node-{i}"),
                sans: vec![format!("node-{i}")],
                not_after: 2_000,
                issued_at: 1_000,
                der: vec![0x30, 0x03, 0x02, 0x01, i as u8],
            }],
            revoked: Vec::new(),
            renewed: vec![(format!("{:032x}", i + 1000), format!("{i:032x}"))],
            audit: vec![(i * 10, format!("{{\"seq\":{i}}}\n"))],
            head: Some(audit::Head {
                seq: i,
                hash: format!("h{i}"),
                len: i * 10 + 10,
            }),
        }
    }

    #[test]
    fn records_round_trip_and_run_on_after_a_reset() {
        let dir = scratch("round-trip");
        let path = dir.join("j");
        let (mut j, old) = Journal::open(&path, 0).unwrap();
        assert!(old.is_empty());
        assert_eq!(j.append(&effects(1)).unwrap(), 1);
        assert_eq!(j.append(&effects(2)).unwrap(), 2);
        assert_eq!(
            read(&path, 0).unwrap(),
            vec![(1, effects(1)), (2, effects(2))]
        );
        // The database holds 1: only 2 is replayed.
        assert_eq!(read(&path, 1).unwrap(), vec![(2, effects(2))]);
        j.reset().unwrap();
        assert_eq!(j.append(&effects(3)).unwrap(), 3);
        drop(j);
        let (j, records) = Journal::open(&path, 2).unwrap();
        assert_eq!(records, vec![(3, effects(3))]);
        assert_eq!(j.next_seq(), 4);
        drop(j);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_or_altered_tail_is_not_taken() {
        let dir = scratch("torn");
        let path = dir.join("j");
        let (mut j, _) = Journal::open(&path, 0).unwrap();
        for i in 1..=3 {
            j.append(&effects(i)).unwrap();
        }
        drop(j);
        let full = std::fs::read(&path).unwrap();
        // Cut anywhere inside the third record: two records remain.
        let two = encode(1, &effects(1)).unwrap().len() + encode(2, &effects(2)).unwrap().len();
        for cut in [two + 1, two + HEADER, full.len() - 1] {
            assert_eq!(decode(&full[..cut], 0).len(), 2, "cut at {cut}");
        }
        // One byte changed in the second record's payload: one record.
        let mut bad = full.clone();
        bad[encode(1, &effects(1)).unwrap().len() + HEADER + 3] ^= 1;
        assert_eq!(decode(&bad, 0).len(), 1);
        // A gap in the sequence stops the replay too.
        let mut gap = encode(1, &effects(1)).unwrap();
        gap.extend(encode(3, &effects(3)).unwrap());
        assert_eq!(decode(&gap, 0).len(), 1);
        // Opening the torn file replays the good records, then appends
        // after them.
        std::fs::write(&path, &full[..full.len() - 5]).unwrap();
        let (j, records) = Journal::open(&path, 0).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(j.next_seq(), 3);
        drop(j);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
