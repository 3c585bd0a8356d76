//! The audit log, `db/audit.log`: every change to the CA's state, one JSON
//! line each, hash-chained. It is also the store's write-ahead log: a batch
//! is answered once its lines are appended and synced, and each line holds
//! everything needed to redo it (the certificate's DER, the token spent),
//! so the database is only an index rebuilt from the log's tail after a
//! crash.
//!
//! Each line ends with `"hash":"H"}` where `H` is the SHA-256 of the line's
//! exact bytes before `,"hash":"`; those bytes include `"prev"`, the previous
//! line's hash. Altering a line breaks its own hash; removing or reordering
//! lines breaks the `prev` link or the sequence; the database records the
//! head it has indexed, so removing the tail shows too.

use serde::{Deserialize, Serialize};

use fedpki_core::encoding::{hex, sha256};

use super::records::{CertRecord, RevocationRecord};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_FIELD: &str = ",\"hash\":\"";

/// One change, as logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `issue`, `renew`, `revoke`, or `burn` (a token spent by a request
    /// that was then refused).
    pub event: String,
    /// Unix seconds.
    pub time: u64,
    /// Certificate serial, hex (empty for `burn`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial: String,
    /// Subject CN.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// SANs (issue and renew).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// notAfter (issue and renew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<u64>,
    /// Who asked: `token <jti>`, `holder of <serial>`, `operator, …`.
    pub by: String,
    /// The client's address, for a request that came over the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Revocation reason, by name (revoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its RFC 5280 code (revoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<u8>,
    /// The token spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Until when that token must stay burnt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burn_until: Option<u64>,
    /// Renew: the serial renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renews: Option<String>,
    /// Issue and renew: the certificate, DER in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub der: Option<String>,
    /// Issue and renew: the key certified (hex SHA-256 of its
    /// SubjectPublicKeyInfo). A revocation for key compromise: that key,
    /// never certified again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A revocation for key compromise: the other certificates of that key
    /// it revokes too, in the same entry (so a crash cannot stop it
    /// halfway), at the same time and for the same reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_key: Vec<String>,
    /// Repair: what was found and done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What an entry changes in the ledger.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    /// A token id burnt, until when.
    pub token: Option<(String, u64)>,
    /// A certificate recorded.
    pub cert: Option<CertRecord>,
    /// Revocations recorded (several for a key compromise).
    pub revoked: Vec<RevocationRecord>,
    /// A key revoked for compromise: never certified again.
    pub compromised: Option<String>,
    /// A renewal: the serial renewed and its successor.
    pub renewed: Option<(String, String)>,
}

impl Entry {
    /// The ledger rows this entry stands for.
    pub fn effects(&self) -> Result<Effects, String> {
        let token = match (&self.jti, self.burn_until) {
            (Some(j), Some(u)) => Some((j.clone(), u)),
            (None, None) => None,
            _ => {
                return Err(format!(
                    "entry for {:?}: a token without its expiry",
                    self.serial
                ));
            }
        };
        let mut out = Effects {
            token,
            ..Effects::default()
        };
        match self.event.as_str() {
            "issue" | "renew" => {
                let der = self
                    .der
                    .as_deref()
                    .ok_or_else(|| format!("entry for {}: no certificate", self.serial))?;
                let der = fedpki_core::encoding::unb64(der).map_err(|e| e.to_string())?;
                // The issuer is not logged, and keys were not at first:
                // from the certificate.
                let (key, issuer) = CertRecord::key_and_issuer_of_der(&der);
                out.cert = Some(CertRecord {
                    serial: self.serial.clone(),
                    subject: self.subject.clone(),
                    sans: self.sans.clone(),
                    not_after: self.not_after.unwrap_or(0),
                    issued_at: self.time,
                    key: self.key.clone().unwrap_or(key),
                    issuer,
                    der,
                });
                out.renewed = self.renews.clone().map(|old| (old, self.serial.clone()));
            }
            "revoke" => {
                let reason = self
                    .reason_code
                    .ok_or_else(|| format!("revocation of {}: no reason code", self.serial))?;
                out.revoked = std::iter::once(&self.serial)
                    .chain(&self.same_key)
                    .map(|serial| RevocationRecord {
                        serial: serial.clone(),
                        revoked_at: self.time,
                        reason,
                    })
                    .collect();
                if reason == fedpki_core::crl::Reason::KeyCompromise.code() {
                    out.compromised.clone_from(&self.key);
                }
            }
            "burn" | "repair" => {}
            other => return Err(format!("unknown event {other:?}")),
        }
        Ok(out)
    }
}

/// A line as read back.
#[derive(Deserialize)]
struct LineIn {
    seq: u64,
    prev: String,
    hash: String,
    #[serde(flatten)]
    entry: Entry,
}

/// The last entry, as the database records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Sequence number of the last entry (0: none yet).
    pub seq: u64,
    /// Its hash ([`GENESIS`] when none).
    pub hash: String,
    /// Length of the file up to and including it.
    pub len: u64,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.into(),
            len: 0,
        }
    }
}

/// A line's hash: SHA-256 (hex) of its bytes before `,"hash":"`.
fn line_hash(body: &[u8]) -> String {
    hex(&sha256(body))
}

/// Append `entries` after `head`: the bytes to write and the new head.
pub fn chain(head: &Head, entries: &[Entry]) -> (Vec<u8>, Head) {
    chain_refs(head, &entries.iter().collect::<Vec<_>>())
}

/// [`chain`] over borrowed entries.
pub fn chain_refs(head: &Head, entries: &[&Entry]) -> (Vec<u8>, Head) {
    let mut out = Vec::new();
    let mut next = head.clone();
    for entry in entries {
        let start = out.len();
        // `{"seq":N,` + the entry's fields + `,"prev":"…"`; no serde
        // `flatten` on the hot path (it goes through a map).
        out.extend_from_slice(format!("{{\"seq\":{},", next.seq + 1).as_bytes());
        // Serializing strings and integers cannot fail.
        let json = serde_json::to_vec(entry).unwrap_or_default();
        out.extend_from_slice(json.get(1..json.len().saturating_sub(1)).unwrap_or(&[]));
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(next.hash.as_bytes());
        out.push(b'"');
        let hash = line_hash(&out[start..]);
        out.extend_from_slice(HASH_FIELD.as_bytes());
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(b"\"}\n");
        next.seq += 1;
        next.hash = hash;
    }
    next.len = head.len + out.len() as u64;
    (out, next)
}

/// Parse one line (with its newline) that should follow `prev`.
fn parse_line(raw: &[u8], prev: &Head) -> Result<(Entry, Head), String> {
    let line = std::str::from_utf8(raw).map_err(|_| "the line is not UTF-8".to_owned())?;
    let content = line
        .strip_suffix('\n')
        .ok_or_else(|| "the last line is cut short (no newline)".to_owned())?;
    let at = content
        .rfind(HASH_FIELD)
        .ok_or_else(|| "the line has no hash".to_owned())?;
    let parsed: LineIn = serde_json::from_str(content)
        .map_err(|e| format!("the line is not a valid entry ({e})"))?;
    let actual = line_hash(&content.as_bytes()[..at]);
    if parsed.hash != actual {
        return Err("its content does not match its hash: the entry was altered".into());
    }
    if parsed.seq != prev.seq + 1 {
        return Err(format!(
            "the entry numbered {} stands where entry {} should: entries were removed or reordered",
            parsed.seq,
            prev.seq + 1
        ));
    }
    if parsed.prev != prev.hash {
        return Err(if prev.seq == 0 {
            "it does not start the chain: it was altered".into()
        } else {
            format!(
                "it links to a different version of entry {}: that one was altered and re-hashed",
                prev.seq
            )
        });
    }
    Ok((
        parsed.entry,
        Head {
            seq: parsed.seq,
            hash: actual,
            len: prev.len + raw.len() as u64,
        },
    ))
}

/// Whether a line carries a valid hash of itself, whatever it follows.
fn self_consistent(raw: &[u8]) -> Option<u64> {
    let content = std::str::from_utf8(raw).ok()?.strip_suffix('\n')?;
    let at = content.rfind(HASH_FIELD)?;
    let parsed: LineIn = serde_json::from_str(content).ok()?;
    (parsed.hash == line_hash(&content.as_bytes()[..at])).then_some(parsed.seq)
}

/// What follows the last good entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Nothing.
    Clean,
    /// Bytes that no later good entry follows: the unsynced end of a write
    /// a crash interrupted (never answered). Safe to cut.
    Torn {
        /// How many bytes.
        bytes: u64,
    },
    /// A bad entry with good entries after it: damage, not a crash.
    Damaged {
        /// The first bad entry's sequence number.
        entry: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// The entries of `bytes` (the log from `base.len` on), the head after the
/// last good one, and what follows it.
pub fn scan(bytes: &[u8], base: &Head) -> (Vec<Entry>, Head, Tail) {
    let mut head = base.clone();
    let mut entries = Vec::new();
    let mut pos = 0;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        match parse_line(raw, &head) {
            Ok((entry, next)) => {
                entries.push(entry);
                head = next;
                pos += raw.len();
            }
            Err(reason) => {
                let rest = &bytes[pos..];
                let later_good = rest
                    .split_inclusive(|b| *b == b'\n')
                    .skip(1)
                    .filter_map(self_consistent)
                    .any(|seq| seq > head.seq);
                let tail = if later_good {
                    Tail::Damaged {
                        entry: head.seq + 1,
                        reason,
                    }
                } else {
                    Tail::Torn {
                        bytes: rest.len() as u64,
                    }
                };
                return (entries, head, tail);
            }
        }
    }
    (entries, head, Tail::Clean)
}

/// Check that the log's first `head.len` bytes end with the entry `head`
/// names. `Err` says what is wrong.
pub fn check_head(log: &[u8], head: &Head) -> Result<(), String> {
    if head.seq == 0 {
        return Ok(());
    }
    let len = usize::try_from(head.len).unwrap_or(usize::MAX);
    let Some(upto) = log.get(..len) else {
        return Err(format!(
            "the log has {} bytes but the CA's database has indexed {} bytes ({} entries): the end of the log was removed",
            log.len(),
            head.len,
            head.seq
        ));
    };
    let start = upto[..len.saturating_sub(1)]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    match self_consistent(&upto[start..]) {
        Some(seq) if seq == head.seq && upto[start..].ends_with(b"\n") => {
            let content = std::str::from_utf8(&upto[start..len - 1]).unwrap_or_default();
            let at = content.rfind(HASH_FIELD).unwrap_or(0);
            if line_hash(&content.as_bytes()[..at]) == head.hash {
                Ok(())
            } else {
                Err(format!(
                    "entry {} differs from the one the CA's database indexed",
                    head.seq
                ))
            }
        }
        _ => Err(format!(
            "the log does not hold entry {} where the CA's database indexed it: the log was cut or altered",
            head.seq
        )),
    }
}

/// The result of checking a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is intact and links to the one before; `head` is the last.
    Intact {
        /// Entries.
        entries: u64,
        /// The last entry.
        head: Head,
    },
    /// The first entry found altered, removed or out of place.
    Tampered {
        /// Its sequence number (1-based; the line number too, when lines
        /// were not removed).
        entry: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// Check a whole log, and that it holds the head the database indexed
/// (when known). Entries after that head are the ones not indexed yet.
pub fn verify(text: &[u8], indexed: Option<&Head>) -> Verdict {
    let (_, head, tail) = scan(text, &Head::default());
    let tampered = |entry, reason| Verdict::Tampered { entry, reason };
    if tail != Tail::Clean {
        // Re-parse the bad line for its reason.
        let rest = &text[usize::try_from(head.len)
            .unwrap_or(usize::MAX)
            .min(text.len())..];
        let raw = rest.split_inclusive(|b| *b == b'\n').next().unwrap_or(rest);
        let reason = parse_line(raw, &head).err().unwrap_or_default();
        // An altered line re-hashed shows as a bad link in the next one:
        // the altered entry is the one before.
        let entry = if reason.contains("links to a different version") {
            head.seq
        } else {
            head.seq + 1
        };
        return tampered(entry, reason);
    }
    if let Some(c) = indexed {
        if c.seq > head.seq {
            return tampered(
                head.seq + 1,
                format!(
                    "the log ends at entry {} but the CA's database records {} entries: the end of the log was removed",
                    head.seq, c.seq
                ),
            );
        }
        if let Err(reason) = check_head(text, c) {
            return tampered(c.seq, reason);
        }
    }
    Verdict::Intact {
        entries: head.seq,
        head,
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
