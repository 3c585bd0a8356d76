//! The store's rules alone, on the in-memory state: what a key compromise
//! reaches, and what a presented certificate must be.

use super::*;

fn cert(serial: &str, key: &str) -> CertRecord {
    CertRecord {
        serial: serial.into(),
        subject: "node".into(),
        sans: vec!["node".into()],
        not_after: 2_000_000_000,
        issued_at: 1_700_000_000,
        der: serial.as_bytes().to_vec(),
        key: key.into(),
        issuer: String::new(),
    }
}

/// Issue `rec`, or renew `renews` with it (presenting the certificate
/// recorded: `cert` makes its DER of its serial).
fn issue(rec: CertRecord, renews: Option<&str>) -> Change {
    match renews {
        Some(old) => Change::Renew {
            old: old.into(),
            presented: old.as_bytes().to_vec(),
            cert: rec,
            from: None,
        },
        None => Change::Issue {
            token: None,
            cert: rec,
            by: None,
            from: None,
        },
    }
}

fn revoke(serial: &str, reason: u8, at: u64, presented: Option<&[u8]>) -> Change {
    Change::Revoke {
        record: RevocationRecord {
            serial: serial.into(),
            revoked_at: at,
            reason,
        },
        token: None,
        by: "test".into(),
        presented: presented.map(<[u8]>::to_vec),
        from: None,
    }
}

/// Decide `batch` against `state` and take in what it changes.
fn apply(state: &mut State, batch: &[Change]) -> Vec<(Outcome, Option<Entry>)> {
    let (out, entries) = decide(batch, state).unwrap();
    let mut logged = entries.iter().map(|(e, _)| e.clone());
    let shown = out
        .iter()
        .map(|o| (o.clone(), logged.next()))
        .collect::<Vec<_>>();
    for (entry, fx) in entries {
        // What is replayed from the log is what was decided.
        let replayed = entry.effects().unwrap();
        assert_eq!(replayed.revoked, fx.revoked);
        assert_eq!(replayed.compromised, fx.compromised);
        state.apply(fx);
    }
    shown
}

#[test]
fn a_key_compromise_revokes_the_whole_key_in_one_entry_and_bars_the_key() {
    let mut state = State::default();
    apply(
        &mut state,
        &[
            issue(cert("a1", "k"), None),
            issue(cert("a2", "k"), Some("a1")),
            issue(cert("b1", "other"), None),
        ],
    );
    // One revocation as superseded: the others stay valid.
    let out = apply(&mut state, &[revoke("a1", 4, 10, None)]);
    assert_eq!(out[0].0, Outcome::Done);
    assert!(state.revocation("a2").unwrap().is_none());
    // The same certificate as keyCompromise: its reason and date move,
    // and a2 is revoked in the same entry.
    let out = apply(&mut state, &[revoke("a1", 1, 20, None)]);
    assert_eq!(out[0].0, Outcome::Done);
    let entry = out[0].1.as_ref().unwrap();
    assert_eq!(
        (entry.serial.as_str(), entry.same_key.as_slice()),
        ("a1", &["a2".to_owned()][..])
    );
    for s in ["a1", "a2"] {
        let r = state.revocation(s).unwrap().unwrap();
        assert_eq!((r.reason, r.revoked_at), (1, 20), "{s}");
    }
    assert!(state.revocation("b1").unwrap().is_none());
    // Asked again: already revoked, nothing written.
    let out = apply(&mut state, &[revoke("a2", 1, 30, None)]);
    assert!(matches!(&out[0], (Outcome::Revoked(r), None) if r.revoked_at == 20));
    // The key is never certified again; another key is.
    let out = apply(
        &mut state,
        &[issue(cert("a3", "k"), None), issue(cert("c1", "new"), None)],
    );
    assert_eq!(out[0].0, Outcome::KeyCompromised);
    assert_eq!(out[1].0, Outcome::Done);
    assert!(!state.issued("a3").unwrap());
}

#[test]
fn a_key_compromise_recorded_before_the_rule_is_completed_by_a_retry() {
    // A ledger that recorded a1's key compromise without its sibling
    // (a crash between the two, before revocations were one entry).
    let mut state = State::default();
    apply(
        &mut state,
        &[issue(cert("a1", "k"), None), issue(cert("a2", "k"), None)],
    );
    state.revoked.insert(
        "a1".into(),
        RevocationRecord {
            serial: "a1".into(),
            revoked_at: 10,
            reason: 1,
        },
    );
    let out = apply(&mut state, &[revoke("a1", 1, 40, None)]);
    let (outcome, entry) = &out[0];
    assert!(
        matches!(outcome, Outcome::Revoked(r) if r.revoked_at == 10),
        "{outcome:?}"
    );
    let entry = entry.as_ref().unwrap();
    assert_eq!(entry.serial, "a2");
    assert!(
        entry
            .note
            .as_deref()
            .unwrap()
            .contains("key compromise of a1")
    );
    assert_eq!(state.revocation("a1").unwrap().unwrap().revoked_at, 10);
    assert_eq!(state.revocation("a2").unwrap().unwrap().reason, 1);
    assert!(state.compromised("k").unwrap());
}

#[test]
fn a_certificate_presented_under_a_known_serial_must_be_the_one_recorded() {
    let mut state = State::default();
    apply(&mut state, &[issue(cert("a1", "k"), None)]);
    let renew = |presented: &[u8]| Change::Renew {
        old: "a1".into(),
        presented: presented.to_vec(),
        cert: cert("a2", "k"),
        from: None,
    };
    let forged = b"a forgery";
    let out = apply(
        &mut state,
        &[renew(forged), revoke("a1", 0, 5, Some(forged))],
    );
    assert_eq!(out[0], (Outcome::NotAsIssued, None));
    assert_eq!(out[1], (Outcome::NotAsIssued, None));
    assert!(!state.issued("a2").unwrap() && state.revoked.is_empty());
    // The certificate recorded is accepted.
    let out = apply(&mut state, &[renew(b"a1"), revoke("a1", 0, 5, Some(b"a1"))]);
    assert_eq!((&out[0].0, &out[1].0), (&Outcome::Done, &Outcome::Done));
}
