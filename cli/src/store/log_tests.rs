use super::*;

fn ev(i: u64) -> Entry {
    Entry {
        event: "issue".into(),
        time: 1_700_000_000 + i,
        serial: format!("{i:032x}"),
        subject: format!("col{i}"),
        sans: vec![format!("col{i}")],
        not_after: Some(1_800_000_000),
        by: "token abc".into(),
        jti: Some(format!("jti-{i}")),
        burn_until: Some(1_700_000_600),
        der: Some("MAMCAQE=".into()),
        ..Entry::default()
    }
}

fn log(n: u64) -> (Vec<u8>, Head) {
    let events: Vec<Entry> = (1..=n).map(ev).collect();
    // Two appends, as two batches would.
    let (mut a, h) = chain(&Head::default(), &events[..2]);
    let (b, h) = chain(&h, &events[2..]);
    a.extend(b);
    (a, h)
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
        Verdict::Intact { .. } => panic!("tampering not detected"),
        Verdict::Tampered { entry, .. } => entry,
    }
}

#[test]
fn entries_read_back_as_written_with_their_effects() {
    let (text, head) = log(5);
    assert_eq!(head.len, text.len() as u64);
    let (entries, end, tail) = scan(&text, &Head::default());
    assert_eq!(tail, Tail::Clean);
    assert_eq!(end, head);
    assert_eq!(entries, (1..=5).map(ev).collect::<Vec<_>>());
    let fx = entries[0].effects().unwrap();
    assert_eq!(fx.token, Some(("jti-1".into(), 1_700_000_600)));
    assert_eq!(fx.cert.unwrap().der, vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    // From the middle, as the store reads the part not yet indexed.
    let l = lines(&text);
    let mid = Head {
        seq: 2,
        hash: serde_json::from_str::<serde_json::Value>(&l[1]).unwrap()["hash"]
            .as_str()
            .unwrap()
            .into(),
        len: (l[0].len() + l[1].len()) as u64,
    };
    check_head(&text, &mid).unwrap();
    let (rest, end, _) = scan(&text[mid.len as usize..], &mid);
    assert_eq!(rest.len(), 3);
    assert_eq!(end, head);
    assert_eq!(
        verify(&text, Some(&mid)),
        Verdict::Intact {
            entries: 5,
            head: head.clone()
        }
    );
}

#[test]
fn a_torn_tail_is_told_from_damage() {
    let (text, head) = log(5);
    let l = lines(&text);
    let four = l[..4].concat().len();
    // Cut anywhere in the last line: four entries, the rest torn.
    for cut in [four + 1, four + 40, text.len() - 1] {
        let (entries, end, tail) = scan(&text[..cut], &Head::default());
        assert_eq!(entries.len(), 4, "cut at {cut}");
        assert_eq!(end.len, four as u64);
        assert_eq!(
            tail,
            Tail::Torn {
                bytes: (cut - four) as u64
            }
        );
    }
    // Zeros after the last line (a file extended, its data lost).
    let mut zeros = text.clone();
    zeros.extend([0u8; 100]);
    assert_eq!(scan(&zeros, &Head::default()).2, Tail::Torn { bytes: 100 });
    // A bad line with good ones after it is damage, not a crash.
    let mut t = l.clone();
    t[2] = t[2].replace("col3", "evil");
    let (entries, _, tail) = scan(t.concat().as_bytes(), &Head::default());
    assert_eq!(entries.len(), 2);
    assert!(matches!(tail, Tail::Damaged { entry: 3, .. }), "{tail:?}");
    // The indexed head must be in the log.
    assert!(check_head(&text[..four], &head).is_err());
    assert!(
        check_head(
            &text,
            &Head {
                hash: GENESIS.into(),
                ..head.clone()
            }
        )
        .is_err()
    );
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
    let prev: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
    let (fake, _) = chain(
        &Head {
            seq: 2,
            hash: prev["hash"].as_str().unwrap().into(),
            len: 0,
        },
        &[Entry {
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
    // A removed tail: only the indexed head shows it.
    let t = l[..4].concat();
    assert!(matches!(verify(t.as_bytes(), None), Verdict::Intact { .. }));
    assert_eq!(entry_of(verify(t.as_bytes(), Some(&head))), 5);
    // Garbage and a cut line.
    assert_eq!(entry_of(verify(b"not json\n", None)), 1);
    assert_eq!(entry_of(verify(&text[..text.len() - 3], None)), 5);
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
        let events: Vec<Entry> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| Entry { subject: s.clone(), ..ev(i as u64) })
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
