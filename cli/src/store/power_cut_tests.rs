//! Power cuts: random workloads on the simulated disk, the power cut at a
//! random operation (in a batch, in a checkpoint), unsynced bytes lost or
//! torn; then the store reopens and must hold everything it answered.

use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;

use super::durable::{Durable, StorePaths};
use super::log;
use super::records::*;
use super::sim::SimDisk;
use super::{Backend, StoreError};

fn paths() -> StorePaths {
    StorePaths {
        index: PathBuf::from("/ca/db/fedpki.redb"),
        log: PathBuf::from("/ca/db/audit.log"),
    }
}

/// One change of a workload, by small numbers.
#[derive(Debug, Clone)]
enum Step {
    /// Issue with token `t` (tokens repeat: some are replays).
    Issue(u8),
    /// A token spent by a request refused after it (no certificate).
    Burn(u8),
    /// Revoke the certificate picked by the number (an unknown serial when
    /// it picks none), with or without a revoke token.
    Revoke(u8, Option<u8>),
    /// Renew the certificate picked.
    Renew(u8),
    /// Take a checkpoint before the next batch.
    Checkpoint,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..24).prop_map(Step::Issue),
        1 => (0u8..24).prop_map(Step::Burn),
        2 => (any::<u8>(), proptest::option::of(0u8..24)).prop_map(|(c, t)| Step::Revoke(c, t)),
        2 => any::<u8>().prop_map(Step::Renew),
        1 => Just(Step::Checkpoint),
    ]
}

/// Turns steps into changes, numbering serials. Keys repeat (one in
/// five), so a key-compromise revocation has others to reach.
#[derive(Default)]
struct Workload {
    next: u64,
    /// Serials whose issuance was answered.
    issued: Vec<String>,
    /// The key of each certificate made.
    keys: std::collections::HashMap<String, String>,
    /// The DER of each certificate made, which its renewal presents.
    ders: std::collections::HashMap<String, Vec<u8>>,
}

/// The key of the `n`th certificate issued with a token.
fn key_of(n: u64) -> String {
    format!("{:064x}", n % 5)
}

impl Workload {
    fn cert(&mut self, key: Option<String>) -> CertRecord {
        self.next += 1;
        let key = key.unwrap_or_else(|| key_of(self.next));
        let serial = format!("{:016x}", self.next);
        let der = vec![0x30, 0x03, 0x02, 0x01, self.next as u8];
        self.keys.insert(serial.clone(), key.clone());
        self.ders.insert(serial.clone(), der.clone());
        CertRecord {
            serial,
            subject: format!("node-{}", self.next),
            sans: vec![format!("node-{}", self.next)],
            not_after: 2_000_000_000,
            issued_at: 1_700_000_000 + self.next,
            der,
            key,
            // As the log's replay reads it from this DER (not a certificate).
            issuer: String::new(),
        }
    }

    fn pick(&self, n: u8) -> String {
        match self.issued.get(usize::from(n) % (self.issued.len() + 1)) {
            Some(s) => s.clone(),
            None => format!("ffff{n:012x}"),
        }
    }

    fn change(&mut self, step: &Step) -> Option<Change> {
        let token = |jti: String| Burn {
            jti,
            until: 1_800_000_000,
        };
        Some(match step {
            Step::Issue(t) => Change::Issue {
                token: Some(token(format!("t{t}"))),
                cert: self.cert(None),
                by: None,
                from: None,
            },
            Step::Burn(t) => Change::Burn {
                token: token(format!("t{t}")),
                at: 1_700_000_000,
                from: None,
            },
            Step::Renew(c) => {
                // A renewal keeps the key and presents the old certificate.
                let old = self.pick(*c);
                let presented = self.ders.get(&old).cloned().unwrap_or_default();
                let cert = self.cert(self.keys.get(&old).cloned());
                Change::Renew {
                    old,
                    presented,
                    cert,
                    from: None,
                }
            }
            Step::Revoke(c, t) => Change::Revoke {
                record: RevocationRecord {
                    serial: self.pick(*c),
                    revoked_at: 1_700_000_500,
                    reason: 1,
                },
                token: t.map(|t| token(format!("r{t}"))),
                by: "test".into(),
                presented: None,
                from: None,
            },
            Step::Checkpoint => return None,
        })
    }
}

/// Run the batches until the first failure; what was answered.
fn run(store: &mut Durable, batches: &[Vec<Step>]) -> Vec<(Change, Outcome)> {
    let mut w = Workload::default();
    let mut answered = Vec::new();
    for steps in batches {
        if steps.iter().any(|s| matches!(s, Step::Checkpoint)) {
            let _ = store.checkpoint();
        }
        let changes: Vec<Change> = steps.iter().filter_map(|s| w.change(s)).collect();
        if changes.is_empty() {
            continue;
        }
        let Ok(outcomes) = store.commit(&changes) else {
            break;
        };
        for (c, o) in changes.into_iter().zip(outcomes) {
            if let (Change::Issue { cert, .. } | Change::Renew { cert, .. }, Outcome::Done) =
                (&c, &o)
            {
                w.issued.push(cert.serial.clone());
            }
            answered.push((c, o));
        }
    }
    answered
}

/// What the reopened store lost of what was answered.
fn losses(store: &mut Durable, disk: &SimDisk, answered: &[(Change, Outcome)]) -> Vec<String> {
    let mut lost = Vec::new();
    let certs: Vec<String> = store
        .certificates()
        .unwrap()
        .into_iter()
        .map(|c| c.serial)
        .collect();
    let revoked: Vec<String> = store
        .revocations()
        .unwrap()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    // Key → the certificates of it answered so far, and each one's key.
    let mut of_key: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut key_of_serial: std::collections::HashMap<String, String> = Default::default();
    for (change, outcome) in answered {
        let spent = !matches!(outcome, Outcome::TokenUsed | Outcome::TokenTooOld);
        if let Some((jti, _)) = change.token()
            && spent
            && !store.is_burnt(jti).unwrap()
        {
            lost.push(format!("token {jti} is usable again"));
        }
        if *outcome != Outcome::Done {
            continue;
        }
        match change {
            Change::Issue { cert: rec, .. }
            | Change::Renew { cert: rec, .. }
            | Change::Record { cert: rec, .. } => {
                if !certs.contains(&rec.serial) {
                    lost.push(format!("certificate {} is gone", rec.serial));
                }
                of_key
                    .entry(rec.key.clone())
                    .or_default()
                    .push(rec.serial.clone());
                key_of_serial.insert(rec.serial.clone(), rec.key.clone());
            }
            Change::Revoke { record, .. } => {
                if !revoked.contains(&record.serial) {
                    lost.push(format!("revocation of {} is gone", record.serial));
                }
                // A key compromise reached every certificate of its key.
                let key = key_of_serial.get(&record.serial);
                for sibling in key.and_then(|k| of_key.get(k)).into_iter().flatten() {
                    if record.reason == 1 && !revoked.contains(sibling) {
                        lost.push(format!(
                            "{sibling} shares {}'s compromised key and is not revoked",
                            record.serial
                        ));
                    }
                }
            }
            Change::Burn { .. } => {}
        }
    }
    let text = disk.read(&paths().log).unwrap_or_default();
    if let log::Verdict::Tampered { entry, reason } = log::verify(&text, Some(store.head())) {
        lost.push(format!("audit log broken at {entry}: {reason}"));
    }
    lost
}

/// The cut's random choices, from a seed.
fn chooser(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n.max(1)
    }
}

fn cut_and_check(
    disk: SimDisk,
    batches: &[Vec<Step>],
    fail_after: Option<u64>,
    seed: u64,
) -> Vec<String> {
    let mut store = Durable::open(Arc::new(disk.clone()), &paths())
        .unwrap()
        .manual_checkpoints();
    if let Some(n) = fail_after {
        disk.fail_after(n);
    }
    let answered = run(&mut store, batches);
    let after = disk.power_cut(chooser(seed));
    drop(store);
    let mut reopened = match Durable::open(Arc::new(after.clone()), &paths()) {
        Ok(s) => s,
        Err(e) => return vec![format!("does not reopen: {e}")],
    };
    let mut lost = losses(&mut reopened, &after, &answered);
    // A second life: the reopened store works and keeps the rules.
    for (change, _) in answered.iter().filter(|(c, _)| c.token().is_some()) {
        match reopened.commit(std::slice::from_ref(change)) {
            Ok(o) if o == [Outcome::TokenUsed] => {}
            other => lost.push(format!("a spent token answered {other:?}")),
        }
    }
    lost
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn nothing_answered_is_lost_at_a_power_cut(
        batches in proptest::collection::vec(proptest::collection::vec(step(), 1..6), 1..24),
        fail_after in proptest::option::of(0u64..400),
        seed in any::<u64>(),
    ) {
        let lost = cut_and_check(SimDisk::default(), &batches, fail_after, seed);
        prop_assert!(lost.is_empty(), "{lost:#?}");
    }
}

/// The test above can fail: a store whose log is not synced (an
/// `fdatasync` removed, or answers sent before it) loses answered
/// changes at a power cut that keeps nothing unsynced.
#[test]
fn a_store_that_does_not_sync_its_log_is_caught() {
    let batches: Vec<Vec<Step>> = (0..6)
        .map(|t| vec![Step::Issue(t), Step::Burn(t + 10)])
        .collect();
    let lose_all = 0;
    let lost = cut_and_check(
        SimDisk::default().without_log_sync(),
        &batches,
        None,
        lose_all,
    );
    assert!(
        lost.iter()
            .any(|l| l.contains("certificate") && l.contains("is gone")),
        "{lost:#?}"
    );
    assert!(lost.iter().any(|l| l.contains("usable again")), "{lost:#?}");
    // The same workload on an honest disk loses nothing.
    assert_eq!(
        cut_and_check(SimDisk::default(), &batches, None, lose_all),
        Vec::<String>::new()
    );
}

/// A failed sync poisons the store: every later change is refused, even
/// if a later sync would succeed.
#[test]
fn a_failed_sync_poisons_the_store() {
    let disk = SimDisk::default();
    let mut store = Durable::open(Arc::new(disk.clone()), &paths())
        .unwrap()
        .manual_checkpoints();
    let mut w = Workload::default();
    let first = w.change(&Step::Issue(1)).unwrap();
    assert_eq!(store.commit(&[first]).unwrap(), vec![Outcome::Done]);
    // The append goes through, its sync fails.
    disk.fail_after(1);
    let second = w.change(&Step::Issue(2)).unwrap();
    assert!(
        matches!(store.commit(std::slice::from_ref(&second)), Err(StoreError::Fatal(m)) if m.contains("fdatasync"))
    );
    disk.fail_after(u64::MAX);
    let third = w.change(&Step::Issue(3)).unwrap();
    assert!(matches!(store.commit(&[third]), Err(StoreError::Fatal(_))));
    // The next start recovers from the log: the first is there; the
    // second (never answered) may or may not be, and its token is then
    // burnt with it.
    let after = disk.power_cut(chooser(7));
    drop(store);
    let mut reopened = Durable::open(Arc::new(after), &paths()).unwrap();
    assert!(reopened.is_burnt("t1").unwrap());
    let certs = reopened.certificates().unwrap();
    assert_eq!(
        certs.iter().any(|c| c.subject == "node-2"),
        reopened.is_burnt("t2").unwrap()
    );
}

/// A removed log tail (a restored backup) refuses to open and says how to
/// repair.
#[test]
fn a_log_shorter_than_the_index_refuses_to_open() {
    let disk = SimDisk::default();
    let mut store = Durable::open(Arc::new(disk.clone()), &paths()).unwrap();
    let mut w = Workload::default();
    for t in 0..3 {
        let c = w.change(&Step::Issue(t)).unwrap();
        store.commit(&[c]).unwrap();
    }
    store.checkpoint().unwrap();
    drop(store);
    let text = disk.read(&paths().log).unwrap();
    let two = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 1;
    disk.write(&paths().log, &text[..two]);
    let err = Durable::open(Arc::new(disk.clone()), &paths())
        .unwrap_err()
        .to_string();
    assert!(err.contains("the end of the log was removed"), "{err}");
    assert!(err.contains("--repair"), "{err}");
}
