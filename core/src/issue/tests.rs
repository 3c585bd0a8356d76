use super::*;
use crate::chain::{check_leaf_is_ours, verify_chain};
use crate::csr;
use crate::key::tests::TestEntropy;
use crate::{KeyType, PrivateKey, RUST_CRYPTO};

const NOW: UnixTime = UnixTime(1_790_000_000);

struct Ca {
    root_key: PrivateKey,
    root: Certificate,
    int_key: PrivateKey,
    int: Certificate,
}

fn ca(seed: u64) -> Ca {
    let rng = &mut TestEntropy(seed);
    let root_key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let root = root_ca(&root_key, "Test Root", Serial::random(rng).unwrap(), NOW).unwrap();
    let int_key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let int = Issuer {
        cert: &root,
        key: &root_key,
    }
    .intermediate_ca(
        &int_key.public_key(),
        "Test Intermediate",
        Serial::random(rng).unwrap(),
        NOW,
    )
    .unwrap();
    Ca {
        root_key,
        root,
        int_key,
        int,
    }
}

#[test]
fn csr_to_leaf_to_verified_chain_for_every_key_type() {
    let ca = ca(10);
    let rng = &mut TestEntropy(11);
    let kinds = [
        KeyType::P256,
        KeyType::P384,
        KeyType::Ed25519,
        #[cfg(feature = "rsa")]
        KeyType::Rsa2048,
    ];
    for kt in kinds {
        let key = PrivateKey::generate(kt, rng).unwrap();
        assert_eq!(key.public_key().algorithm(), kt.into());
        let subject = crate::name::Subject::new("agg.example").unwrap();
        let sans = [crate::name::San::parse("agg.example").unwrap()];
        let req = csr::build(&key, &subject, &sans).unwrap();
        let req = csr::Csr::from_pem(&req.to_pem().unwrap()).unwrap();
        let verified = req.verify(&RUST_CRYPTO).unwrap();
        verified.check_names(&subject, &sans).unwrap();
        let leaf = Issuer {
            cert: &ca.int,
            key: &ca.int_key,
        }
        .leaf(
            verified.public_key(),
            &subject,
            &sans,
            LeafUsage::Node,
            Serial::random(rng).unwrap(),
            NOW.minus(BACKDATE_SECS),
            NOW.plus(YEAR_SECS),
            &Default::default(),
        )
        .unwrap();
        verify_chain(&leaf, &ca.int, &ca.root, NOW, &RUST_CRYPTO).unwrap();
        check_leaf_is_ours(&leaf, &key.public_key(), &subject, &sans).unwrap();
        // Someone else's key, another name, another time: each refused.
        let other = PrivateKey::generate(kt, rng).unwrap();
        assert!(check_leaf_is_ours(&leaf, &other.public_key(), &subject, &sans).is_err());
        let bob = crate::name::Subject::new("bob").unwrap();
        assert!(check_leaf_is_ours(&leaf, &key.public_key(), &bob, &sans).is_err());
        assert!(
            verify_chain(
                &leaf,
                &ca.int,
                &ca.root,
                NOW.plus(2 * YEAR_SECS),
                &RUST_CRYPTO
            )
            .is_err()
        );
        assert!(verify_chain(&leaf, &ca.int, &ca.root, NOW.minus(3600), &RUST_CRYPTO).is_err());
    }
}

#[test]
fn a_chain_from_another_ca_is_refused() {
    let (a, b) = (ca(20), ca(30));
    let rng = &mut TestEntropy(21);
    let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let subject = crate::name::Subject::new("x").unwrap();
    let sans = [crate::name::San::parse("x").unwrap()];
    let leaf = Issuer {
        cert: &a.int,
        key: &a.int_key,
    }
    .leaf(
        &key.public_key(),
        &subject,
        &sans,
        LeafUsage::Node,
        Serial::random(rng).unwrap(),
        NOW,
        NOW.plus(100),
        &Default::default(),
    )
    .unwrap();
    // Same names on both CAs: only the signatures tell them apart.
    assert!(verify_chain(&leaf, &b.int, &b.root, NOW, &RUST_CRYPTO).is_err());
    assert!(verify_chain(&leaf, &a.int, &b.root, NOW, &RUST_CRYPTO).is_err());
    assert!(verify_chain(&leaf, &a.int, &a.root, NOW, &RUST_CRYPTO).is_ok());
    let _ = &a.root_key;
}

#[test]
fn csr_names_and_signatures_are_enforced() {
    let rng = &mut TestEntropy(40);
    let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let subject = crate::name::Subject::new("col1").unwrap();
    let sans = [crate::name::San::parse("col1").unwrap()];
    let req = csr::build(&key, &subject, &sans).unwrap();
    let v = req.clone().verify(&RUST_CRYPTO).unwrap();
    let col2 = crate::name::Subject::new("col2").unwrap();
    assert!(matches!(v.check_names(&col2, &sans), Err(Error::Policy(_))));
    let more = [
        sans[0].clone(),
        crate::name::San::parse("evil.example").unwrap(),
    ];
    assert!(matches!(
        v.check_names(&subject, &more),
        Err(Error::Policy(_))
    ));
    // A CSR without SANs is fine: the certificate's names come from the token.
    let bare = csr::build(&key, &subject, &[])
        .unwrap()
        .verify(&RUST_CRYPTO)
        .unwrap();
    bare.check_names(&subject, &sans).unwrap();
    // Corrupt the signature's last byte: refused.
    let mut der = req.der().to_vec();
    let n = der.len();
    der[n - 1] ^= 1;
    let bad = csr::Csr::from_der(&der).unwrap();
    assert!(matches!(
        bad.verify(&RUST_CRYPTO),
        Err(Error::BadSignature(_))
    ));
    assert!(
        csr::Csr::from_pem(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        )
        .is_err()
    );
    assert_eq!(req.openfl_hash().unwrap().len(), 96);
}

#[test]
fn serials_are_positive_sixteen_bytes() {
    let rng = &mut TestEntropy(50);
    for _ in 0..100 {
        let s = Serial::random(rng).unwrap();
        let x = s.to_x509().unwrap();
        assert_eq!(x.as_bytes().len(), 16);
        assert!(x.as_bytes()[0] & 0x80 == 0 && x.as_bytes()[0] != 0);
    }
}

#[test]
fn time_ordered_serials_sort_by_time_and_keep_80_random_bits() {
    let rng = &mut TestEntropy(51);
    let mut last = String::new();
    for ms in (1_800_000_000_000u64..).step_by(7).take(200) {
        let s = Serial::time_ordered(ms, rng).unwrap();
        let x = s.to_x509().unwrap();
        assert_eq!(x.as_bytes().len(), 16);
        assert_eq!(x.as_bytes()[0] & 0xc0, 0x40, "positive, no leading zero");
        let hex = s.to_hex();
        assert!(hex > last, "{hex} after {last}");
        last = hex;
    }
    // Same millisecond: the random tail differs.
    let a = Serial::time_ordered(5, rng).unwrap();
    let b = Serial::time_ordered(5, rng).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.to_hex()[..12], b.to_hex()[..12]);
}

#[test]
fn only_an_intermediate_of_fedpkis_profile_passes_its_check() {
    use crate::chain::check_intermediate_profile;
    use alloc::string::ToString;
    let ca = ca(60);
    check_intermediate_profile(&ca.int).unwrap();
    // A root (pathlen 1) and a leaf are not intermediates.
    let e = check_intermediate_profile(&ca.root)
        .unwrap_err()
        .to_string();
    assert!(e.contains("pathlen 1"), "{e}");
    let rng = &mut TestEntropy(61);
    let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let name = Subject::new("node").unwrap();
    let leaf = Issuer {
        cert: &ca.int,
        key: &ca.int_key,
    }
    .leaf(
        &key.public_key(),
        &name,
        &[San::parse("node").unwrap()],
        LeafUsage::Node,
        Serial::random(rng).unwrap(),
        NOW,
        NOW.plus(60),
        &Default::default(),
    )
    .unwrap();
    let e = check_intermediate_profile(&leaf).unwrap_err().to_string();
    assert!(
        e.contains("CA false") && e.contains("keyCertSign false"),
        "{e}"
    );
    // A serial named again keeps its bytes; a negative one is refused.
    let s = Serial::random(rng).unwrap();
    assert_eq!(Serial::from_bytes(s.0).unwrap(), s);
    assert!(Serial::from_bytes([0x80; 16]).is_err());
}

#[test]
fn no_certificate_outlives_its_issuer() {
    use alloc::string::ToString;
    let rng = &mut TestEntropy(40);
    let root_key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let root = root_ca(&root_key, "Root", Serial::random(rng).unwrap(), NOW).unwrap();
    let issuer = Issuer {
        cert: &root,
        key: &root_key,
    };
    let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    // Signed a year into the root's life: ten years would pass its end.
    let later = NOW.plus(YEAR_SECS);
    let int = issuer
        .intermediate_ca(&key.public_key(), "I", Serial::random(rng).unwrap(), later)
        .unwrap();
    assert_eq!(int.not_after(), root.not_after());
    // Once the root has ended there is nothing left to sign for.
    let err = issuer
        .intermediate_ca(
            &key.public_key(),
            "I",
            Serial::random(rng).unwrap(),
            root.not_after().plus(BACKDATE_SECS + 1),
        )
        .unwrap_err();
    assert!(err.to_string().contains("expires"), "{err}");
}

#[test]
fn a_roster_leaf_carries_its_organisation_role_and_uri_sans() {
    let ca = ca(43);
    let rng = &mut TestEntropy(44);
    let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let subject = crate::name::Subject::new("admin1").unwrap();
    let study = "https://nvidia.com/nvflare/v1/project/demo/study/lung";
    let sans = crate::name::San::parse_set(&["admin1", study]).unwrap();
    let attributes = SubjectAttributes {
        organization: Some("Hospital A".into()),
        role: Some("lead".into()),
    };
    let issuer = Issuer {
        cert: &ca.int,
        key: &ca.int_key,
    };
    let leaf = issuer
        .leaf_with(
            &key.public_key(),
            (&subject, &attributes),
            &sans,
            LeafUsage::TlsClient,
            Serial::random(rng).unwrap(),
            (NOW, NOW.plus(3600)),
            &Default::default(),
        )
        .unwrap();
    let name = leaf.x509().tbs_certificate().subject().to_der().unwrap();
    let has = |needle: &[u8]| name.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"Hospital A") && has(b"lead"));
    // unstructuredName's OID, 1.2.840.113549.1.9.2.
    assert!(has(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02]));
    assert_eq!(crate::chain::sans(&leaf), sans);
    check_leaf_is_ours(&leaf, &key.public_key(), &subject, &sans).unwrap();
    verify_chain(&leaf, &ca.int, &ca.root, NOW, &RUST_CRYPTO).unwrap();
    let control = SubjectAttributes {
        organization: Some("a\nb".into()),
        role: None,
    };
    let refused = issuer.leaf_with(
        &key.public_key(),
        (&subject, &control),
        &sans,
        LeafUsage::TlsClient,
        Serial::random(rng).unwrap(),
        (NOW, NOW.plus(3600)),
        &Default::default(),
    );
    assert!(refused.is_err(), "a control character in O is refused");
}

#[test]
fn a_leaf_says_where_its_issuers_crl_and_certificate_are() {
    use alloc::string::ToString;
    use der::Decode;
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    use x509_cert::ext::pkix::{AuthorityInfoAccessSyntax, crl::CrlDistributionPoints};
    let ca = ca(41);
    let rng = &mut TestEntropy(42);
    let key = PrivateKey::generate(KeyType::P256, rng).unwrap();
    let subject = crate::name::Subject::new("node").unwrap();
    let sans = [crate::name::San::parse("node").unwrap()];
    let make = |published: &Published, rng: &mut TestEntropy| {
        Issuer {
            cert: &ca.int,
            key: &ca.int_key,
        }
        .leaf(
            &key.public_key(),
            &subject,
            &sans,
            LeafUsage::Node,
            Serial::random(rng).unwrap(),
            NOW,
            NOW.plus(YEAR_SECS),
            published,
        )
        .unwrap()
    };
    let ext = |cert: &Certificate, oid| {
        cert.x509()
            .tbs_certificate()
            .extensions()
            .into_iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    let published = Published {
        crl: Some("https://ca.example:9123/crl/ab12".into()),
        ca_issuers: Some("https://ca.example:9123/crt/ab12".into()),
    };
    let leaf = make(&published, rng);
    let uri = |g: &GeneralName| match g {
        GeneralName::UniformResourceIdentifier(u) => u.to_string(),
        other => panic!("{other:?}"),
    };
    let cdp = CrlDistributionPoints::from_der(
        &ext(&leaf, const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).unwrap(),
    )
    .unwrap();
    match &cdp.0[0].distribution_point {
        Some(DistributionPointName::FullName(names)) => {
            assert_eq!(uri(&names[0]), "https://ca.example:9123/crl/ab12");
        }
        other => panic!("{other:?}"),
    }
    let aia = AuthorityInfoAccessSyntax::from_der(
        &ext(&leaf, const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS).unwrap(),
    )
    .unwrap();
    assert_eq!(
        aia.0[0].access_method,
        const_oid::db::rfc5280::ID_AD_CA_ISSUERS
    );
    assert_eq!(
        uri(&aia.0[0].access_location),
        "https://ca.example:9123/crt/ab12"
    );
    verify_chain(&leaf, &ca.int, &ca.root, NOW, &RUST_CRYPTO).unwrap();

    // A CA that publishes nothing (the manual flow) says nothing.
    let bare = make(&Published::default(), rng);
    assert!(ext(&bare, const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS).is_none());
    assert!(ext(&bare, const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS).is_none());
}
