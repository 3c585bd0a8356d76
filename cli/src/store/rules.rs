//! The store's rules, in one place: which changes of a batch apply, each
//! seeing those before it. Used by the durable store (over its index and
//! what it has logged since) and by the in-memory one alike.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::log::{Effects, Entry};
use super::records::{CertRecord, Change, Outcome, RevocationRecord};

/// RFC 5280's keyCompromise: the reason that reaches every certificate of
/// a key.
const KEY_COMPROMISE: u8 = 1;

/// What the rules ask of the CA's state.
pub(crate) trait Lookup {
    /// Whether a token id is burnt.
    fn burnt(&self, jti: &str) -> Result<bool, String>;
    /// Whether a certificate with this serial was issued here.
    fn issued(&self, serial: &str) -> Result<bool, String>;
    /// Its record, if issued here.
    fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, String>;
    /// Its revocation, if revoked.
    fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, String>;
    /// The serial that renewed it, if renewed.
    fn successor(&self, serial: &str) -> Result<Option<String>, String>;
    /// The serials of every certificate of the key `key` (see
    /// [`CertRecord::key`]).
    fn same_key(&self, key: &str) -> Result<BTreeSet<String>, String>;
    /// Whether a certificate of the key `key` was revoked for compromise.
    fn compromised(&self, key: &str) -> Result<bool, String>;
    /// Burnt ids that expired before this time were forgotten.
    fn pruned_before(&self) -> u64;
}

/// When the key `key` (a [`CertRecord::key`]) was first certified here:
/// the earliest issuance of any certificate of it, whoever asked for it.
/// A key's age counts from this, so a new token cannot make it young.
pub(crate) fn key_birth(now: &impl Lookup, key: &str) -> Result<Option<u64>, String> {
    let mut birth: Option<u64> = None;
    for serial in now.same_key(key)? {
        if let Some(c) = now.certificate(&serial)? {
            birth = Some(birth.map_or(c.issued_at, |b| b.min(c.issued_at)));
        }
    }
    Ok(birth)
}

/// Some of the CA's state, in memory: all of it for the in-memory store,
/// what the log holds beyond the index for the durable one.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    /// Burnt token ids → until when they are kept.
    pub tokens: HashMap<String, u64>,
    /// Certificates, by serial.
    pub certs: BTreeMap<String, CertRecord>,
    /// Revocations, by serial.
    pub revoked: BTreeMap<String, RevocationRecord>,
    /// Serial renewed → its successor.
    pub renewed: HashMap<String, String>,
    /// Key → the serials of its certificates.
    pub by_key: HashMap<String, BTreeSet<String>>,
    /// Keys revoked for compromise.
    pub compromised: HashSet<String>,
    /// See [`Lookup::pruned_before`].
    pub pruned_before: u64,
}

impl State {
    /// Take in what an entry changes.
    pub(crate) fn apply(&mut self, fx: Effects) {
        if let Some((jti, until)) = fx.token {
            self.tokens.insert(jti, until);
        }
        if let Some(rec) = fx.cert {
            if !rec.key.is_empty() {
                self.by_key
                    .entry(rec.key.clone())
                    .or_default()
                    .insert(rec.serial.clone());
            }
            self.certs.insert(rec.serial.clone(), rec);
        }
        for rec in fx.revoked {
            self.revoked.insert(rec.serial.clone(), rec);
        }
        if let Some(key) = fx.compromised {
            self.compromised.insert(key);
        }
        if let Some((old, new)) = fx.renewed {
            self.renewed.insert(old, new);
        }
    }

    /// Forget burnt ids that expired before `now`; how many.
    pub(crate) fn prune(&mut self, now: u64) -> usize {
        let before = self.tokens.len();
        self.tokens.retain(|_, until| *until >= now);
        self.pruned_before = self.pruned_before.max(now);
        before - self.tokens.len()
    }
}

/// `State` first, then `base`: the newer layer over the older.
pub(crate) struct Layered<'a, B: Lookup + ?Sized> {
    /// The newer layer.
    pub top: &'a State,
    /// The older.
    pub base: &'a B,
}

impl<B: Lookup + ?Sized> std::fmt::Debug for Layered<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered")
            .field("top", self.top)
            .finish_non_exhaustive()
    }
}

impl Lookup for State {
    fn burnt(&self, jti: &str) -> Result<bool, String> {
        Ok(self.tokens.contains_key(jti))
    }
    fn issued(&self, serial: &str) -> Result<bool, String> {
        Ok(self.certs.contains_key(serial))
    }
    fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, String> {
        Ok(self.certs.get(serial).cloned())
    }
    fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, String> {
        Ok(self.revoked.get(serial).cloned())
    }
    fn successor(&self, serial: &str) -> Result<Option<String>, String> {
        Ok(self.renewed.get(serial).cloned())
    }
    fn same_key(&self, key: &str) -> Result<BTreeSet<String>, String> {
        Ok(self.by_key.get(key).cloned().unwrap_or_default())
    }
    fn compromised(&self, key: &str) -> Result<bool, String> {
        Ok(self.compromised.contains(key))
    }
    fn pruned_before(&self) -> u64 {
        self.pruned_before
    }
}

impl<B: Lookup + ?Sized> Lookup for Layered<'_, B> {
    fn burnt(&self, jti: &str) -> Result<bool, String> {
        Ok(self.top.tokens.contains_key(jti) || self.base.burnt(jti)?)
    }
    fn issued(&self, serial: &str) -> Result<bool, String> {
        Ok(self.top.certs.contains_key(serial) || self.base.issued(serial)?)
    }
    fn certificate(&self, serial: &str) -> Result<Option<CertRecord>, String> {
        match self.top.certs.get(serial) {
            Some(c) => Ok(Some(c.clone())),
            None => self.base.certificate(serial),
        }
    }
    fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, String> {
        match self.top.revoked.get(serial) {
            Some(r) => Ok(Some(r.clone())),
            None => self.base.revocation(serial),
        }
    }
    fn successor(&self, serial: &str) -> Result<Option<String>, String> {
        match self.top.renewed.get(serial) {
            Some(s) => Ok(Some(s.clone())),
            None => self.base.successor(serial),
        }
    }
    fn same_key(&self, key: &str) -> Result<BTreeSet<String>, String> {
        let mut all = self.base.same_key(key)?;
        all.extend(self.top.same_key(key)?);
        Ok(all)
    }
    fn compromised(&self, key: &str) -> Result<bool, String> {
        Ok(self.top.compromised.contains(key) || self.base.compromised(key)?)
    }
    fn pruned_before(&self) -> u64 {
        self.top.pruned_before.max(self.base.pruned_before())
    }
}

/// What [`decide`] makes of a batch: each change's outcome, and for those
/// that change anything, in order, the log entry and what it changes.
pub(crate) type Decision = (Vec<Outcome>, Vec<(Entry, Effects)>);

/// Decide a batch against `state`.
pub(crate) fn decide(batch: &[Change], state: &impl Lookup) -> Result<Decision, String> {
    let mut staged = State::default();
    let mut entries = Vec::new();
    let mut out = Vec::with_capacity(batch.len());
    for change in batch {
        let now = Layered {
            top: &staged,
            base: state,
        };
        let (outcome, fx) = decide_one(change, &now)?;
        if let Some(entry) = entry_for(change, &fx) {
            staged.apply(fx.clone());
            entries.push((entry, fx));
        }
        out.push(outcome);
    }
    Ok((out, entries))
}

/// One change's outcome and what it changes. A token is spent by any
/// attempt that passed its own checks, whatever the outcome.
fn decide_one(change: &Change, now: &impl Lookup) -> Result<(Outcome, Effects), String> {
    let mut fx = Effects::default();
    if let Some((jti, until)) = change.token() {
        if now.burnt(jti)? {
            return Ok((Outcome::TokenUsed, fx));
        }
        if until < now.pruned_before() {
            return Ok((Outcome::TokenTooOld, fx));
        }
        fx.token = Some((jti.to_owned(), until));
    }
    let outcome = match change {
        Change::Issue { cert, .. } => issue(cert, now, &mut fx)?,
        Change::Burn { .. } => Outcome::Done,
        Change::Renew {
            old,
            presented,
            cert,
            ..
        } => renew(old, presented, cert, now, &mut fx)?,
        Change::Record { cert, .. } => issue(cert, now, &mut fx)?,
        Change::Revoke {
            record, presented, ..
        } => revoke(record, presented.as_ref(), now, &mut fx)?,
    };
    Ok((outcome, fx))
}

/// The certificate presented for `serial` is the one recorded, if the
/// change presented one.
fn as_issued(record: &CertRecord, presented: Option<&Vec<u8>>) -> bool {
    presented.is_none_or(|der| *der == record.der)
}

/// Record a new certificate: refused when its serial is known (only a
/// first sight can name one; fedpki's own serials are random) or its key
/// is barred.
fn issue(cert: &CertRecord, now: &impl Lookup, fx: &mut Effects) -> Result<Outcome, String> {
    if now.issued(&cert.serial)? {
        return Ok(Outcome::AlreadyRecorded);
    }
    if !cert.key.is_empty() && now.compromised(&cert.key)? {
        return Ok(Outcome::KeyCompromised);
    }
    fx.cert = Some(cert.clone());
    Ok(Outcome::Done)
}

fn renew(
    old: &str,
    presented: &[u8],
    cert: &CertRecord,
    now: &impl Lookup,
    fx: &mut Effects,
) -> Result<Outcome, String> {
    let Some(record) = now.certificate(old)? else {
        return Ok(Outcome::UnknownSerial);
    };
    if record.der != presented {
        return Ok(Outcome::NotAsIssued);
    }
    if let Some(prior) = now.revocation(old)? {
        return Ok(Outcome::Revoked(prior));
    }
    if let Some(next) = now.successor(old)?
        && now.revocation(&next)?.is_none()
    {
        return Ok(Outcome::AlreadyRenewed(next));
    }
    let outcome = issue(cert, now, fx)?;
    if outcome == Outcome::Done {
        fx.renewed = Some((old.to_owned(), cert.serial.clone()));
    }
    Ok(outcome)
}

/// A revocation; for key compromise, also every other certificate of the
/// key not yet revoked for it, in the same change. Revoked before for
/// another reason, a certificate may move to key compromise (RFC 5280
/// §5.3.1 allows it); revoked for it before, its key's other certificates
/// are still completed (a ledger from before this rule).
fn revoke(
    asked: &RevocationRecord,
    presented: Option<&Vec<u8>>,
    now: &impl Lookup,
    fx: &mut Effects,
) -> Result<Outcome, String> {
    let serial = &asked.serial;
    let Some(record) = now.certificate(serial)? else {
        return Ok(Outcome::UnknownSerial);
    };
    if !as_issued(&record, presented) {
        return Ok(Outcome::NotAsIssued);
    }
    let prior = now.revocation(serial)?;
    if asked.reason != KEY_COMPROMISE {
        if let Some(prior) = prior {
            return Ok(Outcome::Revoked(prior));
        }
        fx.revoked.push(asked.clone());
        return Ok(Outcome::Done);
    }
    let moves = prior.as_ref().is_none_or(|p| p.reason != KEY_COMPROMISE);
    if moves {
        fx.revoked.push(asked.clone());
    }
    if !record.key.is_empty() {
        for sibling in now.same_key(&record.key)? {
            let done = now
                .revocation(&sibling)?
                .is_some_and(|p| p.reason == KEY_COMPROMISE);
            if sibling != *serial && !done {
                fx.revoked.push(RevocationRecord {
                    serial: sibling,
                    ..asked.clone()
                });
            }
        }
        if !fx.revoked.is_empty() {
            fx.compromised = Some(record.key);
        }
    }
    Ok(match prior {
        Some(prior) if !moves => Outcome::Revoked(prior),
        _ => Outcome::Done,
    })
}

/// The log entry of a change: what it did, else only the token it spent
/// (if any), else none.
fn entry_for(change: &Change, fx: &Effects) -> Option<Entry> {
    let entry = entry_of(change, fx)?;
    Some(Entry {
        from: change.from().map(|ip| ip.to_string()),
        ..entry
    })
}

fn entry_of(change: &Change, fx: &Effects) -> Option<Entry> {
    let (jti, burn_until) = match &fx.token {
        Some((j, u)) => (Some(j.clone()), Some(*u)),
        None => (None, None),
    };
    let burn = |time| Entry {
        event: "burn".into(),
        time,
        by: format!("token {}", jti.as_deref().unwrap_or_default()),
        jti: jti.clone(),
        burn_until,
        ..Entry::default()
    };
    let recorded = |event: &str, rec: &CertRecord, by: String, renews: Option<String>| Entry {
        event: event.into(),
        time: rec.issued_at,
        serial: rec.serial.clone(),
        subject: rec.subject.clone(),
        sans: rec.sans.clone(),
        not_after: Some(rec.not_after),
        by,
        jti: jti.clone(),
        burn_until,
        renews,
        der: Some(fedpki_core::encoding::b64(&rec.der)),
        key: (!rec.key.is_empty()).then(|| rec.key.clone()),
        ..Entry::default()
    };
    match (change, &fx.cert) {
        (Change::Issue { token, by, .. }, Some(rec)) => {
            let by = match (token, by) {
                (Some(t), _) => format!("token {}", t.jti),
                (None, Some(by)) => by.clone(),
                (None, None) => "operator, confirmed by CSR hash".into(),
            };
            Some(recorded("issue", rec, by, None))
        }
        (Change::Renew { old, .. }, Some(rec)) => Some(recorded(
            "renew",
            rec,
            format!("holder of {old}"),
            Some(old.clone()),
        )),
        (Change::Record { by, .. }, Some(rec)) => Some(recorded("issue", rec, by.clone(), None)),
        (Change::Revoke { record, by, .. }, _) => match fx.revoked.split_first() {
            Some((first, rest)) => Some(Entry {
                event: "revoke".into(),
                time: first.revoked_at,
                serial: first.serial.clone(),
                by: by.clone(),
                reason: Some(
                    fedpki_core::crl::Reason::from_code(first.reason)
                        .map_or("unknown", |x| x.name())
                        .into(),
                ),
                reason_code: Some(first.reason),
                jti: jti.clone(),
                burn_until,
                key: fx.compromised.clone(),
                same_key: rest.iter().map(|x| x.serial.clone()).collect(),
                note: (first.serial != record.serial).then(|| {
                    format!(
                        "key compromise of {}: the rest of its key's certificates",
                        record.serial
                    )
                }),
                ..Entry::default()
            }),
            None => jti.is_some().then(|| burn(record.revoked_at)),
        },
        (Change::Burn { at, .. }, _) => jti.is_some().then(|| burn(*at)),
        (Change::Issue { cert, .. } | Change::Renew { cert, .. }, None) => {
            jti.is_some().then(|| burn(cert.issued_at))
        }
        (Change::Record { .. }, None) => None,
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
