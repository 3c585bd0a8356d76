//! The store's rules, in one place: which changes of a batch apply, each
//! seeing those before it. Used by the durable store (over its index and
//! what it has logged since) and by the in-memory one alike.

use std::collections::{BTreeMap, HashMap};

use super::log::{Effects, Entry};
use super::records::{Change, Outcome, RevocationRecord};

/// What the rules ask of the CA's state.
pub(crate) trait Lookup {
    /// Whether a token id is burnt.
    fn burnt(&self, jti: &str) -> Result<bool, String>;
    /// Whether a certificate with this serial was issued here.
    fn issued(&self, serial: &str) -> Result<bool, String>;
    /// Its record, if issued here.
    fn certificate(&self, serial: &str) -> Result<Option<super::records::CertRecord>, String>;
    /// Its revocation, if revoked.
    fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, String>;
    /// The serial that renewed it, if renewed.
    fn successor(&self, serial: &str) -> Result<Option<String>, String>;
    /// Burnt ids that expired before this time were forgotten.
    fn pruned_before(&self) -> u64;
}

/// Some of the CA's state, in memory: all of it for the in-memory store,
/// what the log holds beyond the index for the durable one.
#[derive(Debug, Default, Clone)]
pub(crate) struct State {
    /// Burnt token ids → until when they are kept.
    pub tokens: HashMap<String, u64>,
    /// Certificates, by serial.
    pub certs: BTreeMap<String, super::records::CertRecord>,
    /// Revocations, by serial.
    pub revoked: BTreeMap<String, RevocationRecord>,
    /// Serial renewed → its successor.
    pub renewed: HashMap<String, String>,
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
            self.certs.insert(rec.serial.clone(), rec);
        }
        if let Some(rec) = fx.revoked {
            self.revoked.insert(rec.serial.clone(), rec);
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
    fn certificate(&self, serial: &str) -> Result<Option<super::records::CertRecord>, String> {
        Ok(self.certs.get(serial).cloned())
    }
    fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, String> {
        Ok(self.revoked.get(serial).cloned())
    }
    fn successor(&self, serial: &str) -> Result<Option<String>, String> {
        Ok(self.renewed.get(serial).cloned())
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
    fn certificate(&self, serial: &str) -> Result<Option<super::records::CertRecord>, String> {
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
        if let Some((jti, until)) = change.token() {
            if now.burnt(jti)? {
                out.push(Outcome::TokenUsed);
                continue;
            }
            if until < now.pruned_before() {
                out.push(Outcome::TokenTooOld);
                continue;
            }
        }
        let outcome = match change {
            Change::Issue(c) => match &c.renews {
                // Only adoption can name a serial the ledger has: fedpki's
                // own serials are random.
                None => match &c.cert {
                    Some(rec) if now.issued(&rec.serial)? => Outcome::AlreadyRecorded,
                    _ => Outcome::Done,
                },
                Some(old) => match now.revocation(old)? {
                    Some(prior) => Outcome::Revoked(prior),
                    None if !now.issued(old)? => Outcome::UnknownSerial,
                    None => match now.successor(old)? {
                        Some(next) if now.revocation(&next)?.is_none() => {
                            Outcome::AlreadyRenewed(next)
                        }
                        _ => Outcome::Done,
                    },
                },
            },
            Change::Revoke(r) => match now.revocation(&r.record.serial)? {
                Some(prior) => Outcome::Revoked(prior),
                None if !now.issued(&r.record.serial)? => Outcome::UnknownSerial,
                None => Outcome::Done,
            },
        };
        // A token is spent by any attempt that passed its own checks.
        if let Some(entry) = entry_for(change, outcome == Outcome::Done) {
            // From the change itself: decoding the entry's DER back would
            // cost more than the rest of the decision.
            let fx = effects_for(change, outcome == Outcome::Done);
            staged.apply(fx.clone());
            entries.push((entry, fx));
        }
        out.push(outcome);
    }
    Ok((out, entries))
}

/// The log entry of a change: what it did if `applies`, else only the
/// token it spent (if any).
fn entry_for(change: &Change, applies: bool) -> Option<Entry> {
    let (jti, burn_until) = match change.token() {
        Some((j, u)) => (Some(j.to_owned()), Some(u)),
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
    match change {
        Change::Issue(c) => match (&c.cert, applies) {
            (Some(rec), true) => Some(Entry {
                event: if c.renews.is_some() { "renew" } else { "issue" }.into(),
                time: rec.issued_at,
                serial: rec.serial.clone(),
                subject: rec.subject.clone(),
                sans: rec.sans.clone(),
                not_after: Some(rec.not_after),
                by: match (&c.jti, &c.renews, &c.by) {
                    (Some(jti), _, _) => format!("token {jti}"),
                    (None, Some(old), _) => format!("holder of {old}"),
                    (None, None, Some(by)) => by.clone(),
                    (None, None, None) => "operator, confirmed by CSR hash".into(),
                },
                jti: jti.clone(),
                burn_until,
                renews: c.renews.clone(),
                der: Some(fedpki_core::encoding::b64(&rec.der)),
                ..Entry::default()
            }),
            _ => jti.is_some().then(|| burn(c.at)),
        },
        Change::Revoke(r) if applies => Some(Entry {
            event: "revoke".into(),
            time: r.record.revoked_at,
            serial: r.record.serial.clone(),
            by: r.by.clone(),
            reason: Some(
                fedpki_core::crl::Reason::from_code(r.record.reason)
                    .map_or("unknown", |x| x.name())
                    .into(),
            ),
            reason_code: Some(r.record.reason),
            jti: jti.clone(),
            burn_until,
            ..Entry::default()
        }),
        Change::Revoke(r) => jti.is_some().then(|| burn(r.record.revoked_at)),
    }
}

/// What [`entry_for`]'s entry changes, taken from the change.
fn effects_for(change: &Change, applies: bool) -> Effects {
    let token = change.token().map(|(j, u)| (j.to_owned(), u));
    let mut fx = Effects {
        token,
        ..Effects::default()
    };
    if applies {
        match change {
            Change::Issue(c) => {
                fx.cert = c.cert.clone();
                if let (Some(old), Some(rec)) = (&c.renews, &c.cert) {
                    fx.renewed = Some((old.clone(), rec.serial.clone()));
                }
            }
            Change::Revoke(r) => fx.revoked = Some(r.record.clone()),
        }
    }
    fx
}
