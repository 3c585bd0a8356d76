//! The audit log: every issuance, renewal and revocation, one JSON line each,
//! hash-chained, in `db/audit.log` of the CA folder.
//!
//! Each line ends with `"hash":"H"}` where `H` is the SHA-256 of the line's
//! exact bytes before `,"hash":"`; those bytes include `"prev"`, the previous
//! line's hash. Altering a line breaks its own hash; removing or reordering
//! lines breaks the `prev` link or the sequence. The store keeps the head
//! (last sequence number, its hash, the file length) inside the same redb
//! transaction as the change itself, so truncating the tail is detected too,
//! and a crash between the file append and the database commit is undone at
//! the next open (the file is cut back to the committed length).

use serde::{Deserialize, Serialize};

use fedpki_core::encoding::{hex, sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_FIELD: &str = ",\"hash\":\"";

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `issue`, `renew` or `revoke`.
    pub event: String,
    /// Unix seconds.
    pub time: u64,
    /// Certificate serial, hex.
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
    /// Who asked: `token <jti>`, `confirmed by hash`, `holder <serial>`,
    /// `operator`.
    pub by: String,
    /// Revocation reason (revoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One line as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    seq: u64,
    #[serde(flatten)]
    event: Event,
    prev: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
}

/// [`Line`] as written: the same fields in the same order, without
/// `flatten` (which serializes through a map, several times slower).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LineOut<'a> {
    seq: u64,
    event: &'a str,
    time: u64,
    serial: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subject: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    sans: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    not_after: Option<u64>,
    by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    prev: &'a str,
}

/// The last entry: what the store commits with every change.
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

/// Append `events` after `head`: the bytes to write and the new head.
pub fn chain(head: &Head, events: &[Event]) -> (Vec<u8>, Head) {
    let mut out = Vec::new();
    let mut next = head.clone();
    for event in events {
        let line = LineOut {
            seq: next.seq + 1,
            event: &event.event,
            time: event.time,
            serial: &event.serial,
            subject: &event.subject,
            sans: &event.sans,
            not_after: event.not_after,
            by: &event.by,
            reason: event.reason.as_deref(),
            prev: &next.hash,
        };
        // Serializing a plain struct of strings and integers cannot fail.
        let json = serde_json::to_string(&line).unwrap_or_default();
        let body = json.strip_suffix('}').unwrap_or(&json);
        let hash = hex(&sha256(body.as_bytes()));
        out.extend_from_slice(body.as_bytes());
        out.extend_from_slice(HASH_FIELD.as_bytes());
        out.extend_from_slice(hash.as_bytes());
        out.extend_from_slice(b"\"}\n");
        next.seq += 1;
        next.hash = hash;
    }
    next.len = head.len + out.len() as u64;
    (out, next)
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

/// Check a log's text, and its end against the head the store committed
/// (when known).
pub fn verify(text: &[u8], committed: Option<&Head>) -> Verdict {
    let mut head = Head::default();
    let mut pos = 0usize;
    for raw in text.split_inclusive(|b| *b == b'\n') {
        let expected = head.seq + 1;
        let tampered = |reason: String| Verdict::Tampered {
            entry: expected,
            reason,
        };
        let Ok(line) = std::str::from_utf8(raw) else {
            return tampered("the line is not UTF-8".into());
        };
        let Some(content) = line.strip_suffix('\n') else {
            return tampered("the last line is cut short (no newline)".into());
        };
        let Some(at) = content.rfind(HASH_FIELD) else {
            return tampered("the line has no hash".into());
        };
        let body = &content[..at];
        let parsed: Line = match serde_json::from_str(content) {
            Ok(l) => l,
            Err(e) => return tampered(format!("the line is not a valid entry ({e})")),
        };
        let actual = hex(&sha256(body.as_bytes()));
        if parsed.hash.as_deref() != Some(actual.as_str()) {
            return tampered("its content does not match its hash: the entry was altered".into());
        }
        if parsed.seq != expected {
            return tampered(format!(
                "the entry numbered {} stands where entry {expected} should: entries were removed or reordered",
                parsed.seq
            ));
        }
        if parsed.prev != head.hash {
            if head.seq == 0 {
                return tampered("it does not start the chain: it was altered".into());
            }
            return Verdict::Tampered {
                entry: head.seq,
                reason: format!(
                    "entry {expected} links to a different version of it: it was altered and re-hashed"
                ),
            };
        }
        pos += raw.len();
        head = Head {
            seq: parsed.seq,
            hash: actual,
            len: pos as u64,
        };
    }
    if let Some(c) = committed {
        if c.seq > head.seq {
            return Verdict::Tampered {
                entry: head.seq + 1,
                reason: format!(
                    "the log ends at entry {} but the CA's database records {} entries: the end of the log was removed",
                    head.seq, c.seq
                ),
            };
        }
        if c.seq == head.seq && c.hash != head.hash {
            return Verdict::Tampered {
                entry: head.seq,
                reason: "the last entry differs from the one the CA's database records".into(),
            };
        }
        if c.seq < head.seq {
            return Verdict::Tampered {
                entry: c.seq + 1,
                reason: format!(
                    "the log has entries after entry {} that the CA's database never committed",
                    c.seq
                ),
            };
        }
    }
    Verdict::Intact {
        entries: head.seq,
        head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u64) -> Event {
        Event {
            event: "issue".into(),
            time: 1_700_000_000 + i,
            serial: format!("{i:032x}"),
            subject: format!("col{i}"),
            sans: vec![format!("col{i}")],
            not_after: Some(1_800_000_000),
            by: "token abc".into(),
            reason: None,
        }
    }

    fn log(n: u64) -> (Vec<u8>, Head) {
        let events: Vec<Event> = (1..=n).map(ev).collect();
        // Two appends, as two batches would.
        let (mut a, h) = chain(&Head::default(), &events[..2]);
        let (b, h) = chain(&h, &events[2..]);
        a.extend(b);
        (a, h)
    }

    #[test]
    fn written_lines_match_the_flattened_layout() {
        for e in [
            ev(1),
            Event {
                reason: Some("keyCompromise".into()),
                sans: vec![],
                not_after: None,
                subject: String::new(),
                ..ev(2)
            },
        ] {
            let (bytes, _) = chain(&Head::default(), std::slice::from_ref(&e));
            let text = String::from_utf8(bytes).unwrap();
            let body = text.rsplit_once(HASH_FIELD).unwrap().0;
            let flat = serde_json::to_string(&Line {
                seq: 1,
                event: e.clone(),
                prev: GENESIS.into(),
                hash: None,
            })
            .unwrap();
            assert_eq!(format!("{body}}}"), flat);
        }
    }

    #[test]
    fn intact_log_verifies() {
        let (text, head) = log(5);
        assert_eq!(head.len, text.len() as u64);
        assert_eq!(
            verify(&text, Some(&head)),
            Verdict::Intact {
                entries: 5,
                head: head.clone()
            }
        );
    }

    fn lines(text: &[u8]) -> Vec<String> {
        String::from_utf8(text.to_vec())
            .unwrap()
            .lines()
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn entry_of(v: Verdict) -> u64 {
        match v {
            Verdict::Tampered { entry, .. } => entry,
            Verdict::Intact { .. } => panic!("tampering not detected"),
        }
    }

    #[test]
    fn tampering_is_located() {
        let (text, head) = log(5);
        let l = lines(&text);
        // An altered field.
        let mut t = l.clone();
        t[2] = t[2].replace("col3", "evil");
        assert_eq!(entry_of(verify(t.concat().as_bytes(), Some(&head))), 3);
        // Altered and re-hashed: the next entry no longer links to it.
        let (fake, _) = chain(
            &Head {
                seq: 2,
                hash: serde_json::from_str::<Line>(&l[1]).unwrap().hash.unwrap(),
                len: 0,
            },
            &[Event {
                subject: "evil".into(),
                ..ev(3)
            }],
        );
        let mut t = l.clone();
        t[2] = String::from_utf8(fake).unwrap();
        assert_eq!(entry_of(verify(t.concat().as_bytes(), Some(&head))), 3);
        // A removed line.
        let mut t = l.clone();
        t.remove(1);
        assert_eq!(entry_of(verify(t.concat().as_bytes(), Some(&head))), 2);
        // Swapped lines.
        let mut t = l.clone();
        t.swap(0, 1);
        assert_eq!(entry_of(verify(t.concat().as_bytes(), Some(&head))), 1);
        // A removed tail: only the committed head shows it.
        let t = l[..4].concat();
        assert!(matches!(verify(t.as_bytes(), None), Verdict::Intact { .. }));
        assert_eq!(entry_of(verify(t.as_bytes(), Some(&head))), 5);
        // Garbage and a cut line.
        assert_eq!(entry_of(verify(b"not json\n", None)), 1);
        let cut = &text[..text.len() - 3];
        assert_eq!(entry_of(verify(cut, None)), 5);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Any log written in any batches verifies; any single changed byte
        /// is found.
        #[test]
        fn any_log_verifies_and_any_changed_byte_is_found(
            subjects in proptest::collection::vec("[a-z][a-z0-9.-]{0,30}", 1..12),
            split in 0usize..12,
            at in proptest::prelude::any::<proptest::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let events: Vec<Event> = subjects
                .iter()
                .enumerate()
                .map(|(i, s)| Event { subject: s.clone(), ..ev(i as u64) })
                .collect();
            let cut = split.min(events.len());
            let (mut text, h) = chain(&Head::default(), &events[..cut]);
            let (more, head) = chain(&h, &events[cut..]);
            text.extend(more);
            proptest::prop_assert_eq!(
                verify(&text, Some(&head)),
                Verdict::Intact { entries: events.len() as u64, head: head.clone() }
            );
            let i = at.index(text.len());
            text[i] ^= xor;
            let tampered = matches!(verify(&text, Some(&head)), Verdict::Tampered { .. });
            proptest::prop_assert!(tampered, "byte {} changed unnoticed", i);
        }
    }
}
