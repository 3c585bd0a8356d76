//! The ledger's index: redb tables (copy-on-write B-trees with checksummed
//! commits) holding what the log says up to a head, for lookups and lists.
//! It takes the log's entries in bulk at checkpoints; it is never the only
//! copy of anything.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

mod upgrade;

use super::log::{Effects, Head};
use super::records::{CertRecord, RevocationRecord};
use super::rules::Lookup;

/// Certificates: serial → [`encode_record`].
const CERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
/// Revocations: serial → JSON of [`RevocationRecord`].
const REVOKED: TableDefinition<&str, &[u8]> = TableDefinition::new("revocations");
/// Burnt token ids → until when they are kept: the replay check.
const TOKEN_IDS: TableDefinition<&str, u64> = TableDefinition::new("burnt_token_ids");
/// The same ids keyed `burn_until (u64 BE) || jti`, for pruning by range.
const TOKENS: TableDefinition<&[u8], ()> = TableDefinition::new("burnt_tokens");
/// Serial renewed → the serial of its successor.
const RENEWED: TableDefinition<&str, &str> = TableDefinition::new("renewed_by");
/// `KEY/SERIAL` (KEY: [`CertRecord::key`]): every certificate of a key, by
/// a range over `KEY/`.
const BY_KEY: TableDefinition<&str, ()> = TableDefinition::new("certificates_by_key");
/// Keys revoked for compromise → the serial whose revocation said so.
const COMPROMISED: TableDefinition<&str, &str> = TableDefinition::new("compromised_keys");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The layout this code reads and writes. Another one is refused.
const FORMAT: &[u8] = b"fedpki-store/3";
/// The layout before keys were indexed: taken up (see [`Index::new`]).
const FORMAT_2: &[u8] = b"fedpki-store/2";
const FORMAT_KEY: &str = "format";
const HEAD_KEY: &str = "log_head";
const PRUNED_KEY: &str = "pruned_before";

fn db_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn token_key(jti: &str, burn_until: u64) -> Vec<u8> {
    let mut k = burn_until.to_be_bytes().to_vec();
    k.extend_from_slice(jti.as_bytes());
    k
}

fn key_row(key: &str, serial: &str) -> String {
    format!("{key}/{serial}")
}

/// A certificate record as stored: a version byte (3), issued_at and
/// notAfter (u64 BE), the subject, the SANs, the key and the issuer (each
/// u16 BE length, then UTF-8; SANs joined by newlines), then the DER.
/// Version 1 had neither key nor issuer, version 2 no issuer: read from
/// the DER.
fn encode_record(rec: &CertRecord) -> Vec<u8> {
    let sans = rec.sans.join("\n");
    let texts = [
        rec.subject.as_str(),
        sans.as_str(),
        rec.key.as_str(),
        rec.issuer.as_str(),
    ];
    let mut v =
        Vec::with_capacity(17 + texts.iter().map(|t| 2 + t.len()).sum::<usize>() + rec.der.len());
    v.push(3);
    v.extend_from_slice(&rec.issued_at.to_be_bytes());
    v.extend_from_slice(&rec.not_after.to_be_bytes());
    for text in texts {
        // Subjects are at most 64 characters and SANs bounded by the body
        // limit, far below u16::MAX.
        v.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes());
        v.extend_from_slice(text.as_bytes());
    }
    v.extend_from_slice(&rec.der);
    v
}

fn decode_record(serial: &str, bytes: &[u8]) -> Result<CertRecord, String> {
    let bad = || format!("certificate record {serial} is unreadable");
    let (texts_len, mut rest) = match bytes.split_first() {
        Some((1, rest)) => (2, rest),
        Some((2, rest)) => (3, rest),
        Some((3, rest)) => (4, rest),
        _ => return Err(bad()),
    };
    let mut u64_field = || -> Result<u64, String> {
        let (n, r) = rest.split_at_checked(8).ok_or_else(bad)?;
        rest = r;
        Ok(u64::from_be_bytes(n.try_into().map_err(db_err)?))
    };
    let issued_at = u64_field()?;
    let not_after = u64_field()?;
    let mut texts = Vec::with_capacity(texts_len);
    for _ in 0..texts_len {
        let (len, r) = rest.split_at_checked(2).ok_or_else(bad)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (text, r) = r.split_at_checked(len).ok_or_else(bad)?;
        texts.push(String::from_utf8(text.to_vec()).map_err(db_err)?);
        rest = r;
    }
    let mut texts = texts.into_iter();
    let (subject, sans) = (texts.next(), texts.next());
    let (key, issuer) = match (texts.next(), texts.next()) {
        (Some(key), Some(issuer)) => (key, issuer),
        (key, _) => {
            let (of_der, issuer) = CertRecord::key_and_issuer_of_der(rest);
            (key.unwrap_or(of_der), issuer)
        }
    };
    Ok(CertRecord {
        serial: serial.to_owned(),
        subject: subject.unwrap_or_default(),
        sans: sans
            .unwrap_or_default()
            .split('\n')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        not_after,
        issued_at,
        der: rest.to_vec(),
        key,
        issuer,
    })
}

/// The index's tables at one moment.
pub(crate) struct View {
    certs: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    revoked: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    tokens: redb::ReadOnlyTable<&'static str, u64>,
    renewed: redb::ReadOnlyTable<&'static str, &'static str>,
    by_key: redb::ReadOnlyTable<&'static str, ()>,
    compromised: redb::ReadOnlyTable<&'static str, &'static str>,
    meta: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    /// A read-only database the tables come from, kept open with them.
    _db: Option<redb::ReadOnlyDatabase>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").finish_non_exhaustive()
    }
}

impl View {
    fn of(txn: &redb::ReadTransaction) -> Result<Self, String> {
        Ok(Self {
            certs: txn.open_table(CERTS).map_err(db_err)?,
            revoked: txn.open_table(REVOKED).map_err(db_err)?,
            tokens: txn.open_table(TOKEN_IDS).map_err(db_err)?,
            renewed: txn.open_table(RENEWED).map_err(db_err)?,
            by_key: txn.open_table(BY_KEY).map_err(db_err)?,
            compromised: txn.open_table(COMPROMISED).map_err(db_err)?,
            meta: txn.open_table(META).map_err(db_err)?,
            _db: None,
        })
    }

    /// The log head the index holds everything up to.
    pub(crate) fn head(&self) -> Result<Head, String> {
        match self.meta.get(HEAD_KEY).map_err(db_err)? {
            Some(v) => serde_json::from_slice(v.value()).map_err(db_err),
            None => Ok(Head::default()),
        }
    }

    fn format(&self) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .meta
            .get(FORMAT_KEY)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }

    /// Every certificate record, by serial.
    pub(crate) fn certificates(&self) -> Result<Vec<CertRecord>, String> {
        let mut out = Vec::new();
        for row in self.certs.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            out.push(decode_record(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Every renewal: the serial renewed and its successor's.
    pub(crate) fn renewals(&self) -> Result<std::collections::BTreeMap<String, String>, String> {
        let mut out = std::collections::BTreeMap::new();
        for row in self.renewed.iter().map_err(db_err)? {
            let (old, new) = row.map_err(db_err)?;
            out.insert(old.value().to_owned(), new.value().to_owned());
        }
        Ok(out)
    }

    /// Every revocation, by serial.
    pub(crate) fn revocations(&self) -> Result<Vec<RevocationRecord>, String> {
        let mut out = Vec::new();
        for row in self.revoked.iter().map_err(db_err)? {
            let (_, v) = row.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
        }
        Ok(out)
    }
}

impl Lookup for View {
    fn burnt(&self, jti: &str) -> Result<bool, String> {
        Ok(self.tokens.get(jti).map_err(db_err)?.is_some())
    }
    fn issued(&self, serial: &str) -> Result<bool, String> {
        Ok(self.certs.get(serial).map_err(db_err)?.is_some())
    }
    fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, String> {
        match self.certs.get(serial).map_err(db_err)? {
            Some(v) => decode_record(serial, v.value()).map(Some),
            None => Ok(None),
        }
    }
    fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, String> {
        match self.revoked.get(serial).map_err(db_err)? {
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(db_err),
            None => Ok(None),
        }
    }
    fn successor(&self, serial: &str) -> Result<Option<String>, String> {
        Ok(self
            .renewed
            .get(serial)
            .map_err(db_err)?
            .map(|v| v.value().to_owned()))
    }
    fn same_key(&self, key: &str) -> Result<std::collections::BTreeSet<String>, String> {
        let (from, to) = (format!("{key}/"), format!("{key}0"));
        let mut out = std::collections::BTreeSet::new();
        for row in self
            .by_key
            .range::<&str>(from.as_str()..to.as_str())
            .map_err(db_err)?
        {
            let (k, _) = row.map_err(db_err)?;
            if let Some(serial) = k.value().strip_prefix(from.as_str()) {
                out.insert(serial.to_owned());
            }
        }
        Ok(out)
    }
    fn compromised(&self, key: &str) -> Result<bool, String> {
        Ok(self.compromised.get(key).map_err(db_err)?.is_some())
    }
    fn pruned_before(&self) -> u64 {
        self.meta
            .get(PRUNED_KEY)
            .ok()
            .flatten()
            .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0)
    }
}

/// Read an index without writing it (beside the server that owns it).
pub(crate) fn read_only(path: &std::path::Path) -> Result<View, String> {
    let db = super::disk::builder()
        .open_read_only(path)
        .map_err(db_err)?;
    let mut view = View::of(&db.begin_read().map_err(db_err)?)?;
    view._db = Some(db);
    check_format(view.format()?.as_deref(), true)?;
    Ok(view)
}

fn check_format(found: Option<&[u8]>, has_data: bool) -> Result<(), String> {
    match found {
        Some(FORMAT) => Ok(()),
        None if !has_data => Ok(()),
        None => Err(
            "the ledger was written by a development version of fedpki before its store format \
             was versioned; reinstall the CA (`fedpki pki install --force`) or use that version"
                .into(),
        ),
        Some(other) => Err(format!(
            "the ledger is in store format {:?}, which this fedpki does not read (it reads {:?}); use the fedpki that wrote it",
            String::from_utf8_lossy(other),
            String::from_utf8_lossy(FORMAT)
        )),
    }
}

/// The index, open for writing.
#[derive(Debug)]
pub(crate) struct Index {
    db: redb::Database,
}

impl Index {
    /// Open (creating the tables and the format mark) an index database;
    /// one in the layout before keys were indexed is taken up in one
    /// transaction (its keys read from its certificates).
    pub(crate) fn new(db: redb::Database) -> Result<Self, super::StoreError> {
        use super::StoreError::{Corrupt, Failed};
        let failed = |e: redb::Error| Failed(db_err(e));
        let txn = db.begin_write().map_err(|e| failed(e.into()))?;
        {
            let mut certs = txn.open_table(CERTS).map_err(|e| failed(e.into()))?;
            let revoked = txn.open_table(REVOKED).map_err(|e| failed(e.into()))?;
            let ids = txn.open_table(TOKEN_IDS).map_err(|e| failed(e.into()))?;
            txn.open_table(TOKENS).map_err(|e| failed(e.into()))?;
            txn.open_table(RENEWED).map_err(|e| failed(e.into()))?;
            let mut by_key = txn.open_table(BY_KEY).map_err(|e| failed(e.into()))?;
            let mut compromised = txn.open_table(COMPROMISED).map_err(|e| failed(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| failed(e.into()))?;
            let found = meta
                .get(FORMAT_KEY)
                .map_err(|e| failed(e.into()))?
                .map(|v| v.value().to_vec());
            let has_data = !certs.is_empty().map_err(|e| failed(e.into()))?
                || !ids.is_empty().map_err(|e| failed(e.into()))?
                || meta.get(HEAD_KEY).map_err(|e| failed(e.into()))?.is_some();
            if found.as_deref() == Some(FORMAT_2) {
                upgrade::index_keys(&mut certs, &revoked, &mut by_key, &mut compromised)
                    .map_err(Failed)?;
                crate::platform::log::info("store_upgraded", &[("to", "fedpki-store/3")]);
            } else {
                check_format(found.as_deref(), has_data).map_err(Corrupt)?;
            }
            if found.as_deref() != Some(FORMAT) {
                meta.insert(FORMAT_KEY, FORMAT)
                    .map_err(|e| failed(e.into()))?;
            }
        }
        txn.commit().map_err(|e| failed(e.into()))?;
        Ok(Self { db })
    }

    /// The tables as of the last checkpoint.
    pub(crate) fn view(&self) -> Result<View, String> {
        View::of(&self.db.begin_read().map_err(db_err)?)
    }

    /// Take in what the log's entries change (in order, ending at `head`)
    /// in one durable transaction.
    pub(crate) fn checkpoint<'a>(
        &self,
        changes: impl IntoIterator<Item = &'a Effects>,
        head: &Head,
    ) -> Result<(), String> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut certs = txn.open_table(CERTS).map_err(db_err)?;
            let mut revoked = txn.open_table(REVOKED).map_err(db_err)?;
            let mut ids = txn.open_table(TOKEN_IDS).map_err(db_err)?;
            let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
            let mut renewed = txn.open_table(RENEWED).map_err(db_err)?;
            let mut by_key = txn.open_table(BY_KEY).map_err(db_err)?;
            let mut compromised = txn.open_table(COMPROMISED).map_err(db_err)?;
            for fx in changes {
                if let Some((jti, until)) = &fx.token {
                    ids.insert(jti.as_str(), until).map_err(db_err)?;
                    tokens
                        .insert(token_key(jti, *until).as_slice(), ())
                        .map_err(db_err)?;
                }
                if let Some(rec) = &fx.cert {
                    certs
                        .insert(rec.serial.as_str(), encode_record(rec).as_slice())
                        .map_err(db_err)?;
                    if !rec.key.is_empty() {
                        by_key
                            .insert(key_row(&rec.key, &rec.serial).as_str(), ())
                            .map_err(db_err)?;
                    }
                }
                for rec in &fx.revoked {
                    let json = serde_json::to_vec(rec).map_err(db_err)?;
                    revoked
                        .insert(rec.serial.as_str(), json.as_slice())
                        .map_err(db_err)?;
                }
                if let Some(key) = compromised_key(fx, &certs)?
                    && let Some(first) = fx.revoked.first()
                {
                    compromised
                        .insert(key.as_str(), first.serial.as_str())
                        .map_err(db_err)?;
                }
                if let Some((old, new)) = &fx.renewed {
                    renewed.insert(old.as_str(), new.as_str()).map_err(db_err)?;
                }
            }
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let head = serde_json::to_vec(head).map_err(db_err)?;
            meta.insert(HEAD_KEY, head.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Forget burnt ids that expired before `now`, and remember that ids
    /// older than that are gone; how many.
    pub(crate) fn prune(&self, now: u64) -> Result<usize, String> {
        let txn = self.db.begin_write().map_err(db_err)?;
        let pruned = {
            let mut tokens = txn.open_table(TOKENS).map_err(db_err)?;
            let mut ids = txn.open_table(TOKEN_IDS).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let before = meta
                .get(PRUNED_KEY)
                .map_err(db_err)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            // A clock stepped back never lowers the mark.
            let now = now.max(before);
            let upper = now.to_be_bytes();
            let mut expired = Vec::new();
            tokens
                .retain_in::<&[u8], _>(..upper.as_slice(), |key, ()| {
                    expired.push(key.to_vec());
                    false
                })
                .map_err(db_err)?;
            for key in &expired {
                if let Some(jti) = key.get(8..).and_then(|j| std::str::from_utf8(j).ok()) {
                    ids.remove(jti).map_err(db_err)?;
                }
            }
            meta.insert(PRUNED_KEY, upper.as_slice()).map_err(db_err)?;
            expired.len()
        };
        txn.commit().map_err(db_err)?;
        Ok(pruned)
    }
}

/// The key an entry revokes for compromise: as logged, or, for an entry
/// logged before keys were, its certificate's.
fn compromised_key(
    fx: &Effects,
    certs: &Table<'_, &'static str, &'static [u8]>,
) -> Result<Option<String>, String> {
    if fx.compromised.is_some() {
        return Ok(fx.compromised.clone());
    }
    let Some(first) = fx
        .revoked
        .first()
        .filter(|r| r.reason == fedpki_core::crl::Reason::KeyCompromise.code())
    else {
        return Ok(None);
    };
    Ok(match certs.get(first.serial.as_str()).map_err(db_err)? {
        Some(v) => Some(decode_record(&first.serial, v.value())?.key).filter(|k| !k.is_empty()),
        None => None,
    })
}

type Table<'t, K, V> = redb::Table<'t, K, V>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let rec = CertRecord {
            serial: "0a1b".into(),
            subject: "col1".into(),
            sans: vec!["col1".into(), "10.0.0.1".into()],
            not_after: 1_800_000_000,
            issued_at: 1_700_000_000,
            der: vec![0x30, 0x82, 0x01, 0x00, 0xff],
            key: "ab".repeat(32),
            issuer: "cd".repeat(20),
        };
        assert_eq!(decode_record("0a1b", &encode_record(&rec)).unwrap(), rec);
        assert!(decode_record("0a1b", b"{\"serial\":1}").is_err());
    }

    #[test]
    fn an_unknown_or_unversioned_format_is_refused() {
        assert!(check_format(Some(FORMAT), true).is_ok());
        assert!(check_format(None, false).is_ok());
        let old = check_format(None, true).unwrap_err();
        assert!(
            old.contains("before its store format was versioned"),
            "{old}"
        );
        let newer = check_format(Some(b"fedpki-store/9"), true).unwrap_err();
        assert!(newer.contains("fedpki-store/9"), "{newer}");
    }
}
