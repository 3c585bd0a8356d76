//! Property tests of fedpki-core's round trips: whatever is written can be
//! read back to the same value, and a single altered byte is caught where
//! a signature or a check protects it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fedpki_core::crl::{self, Reason, Revoked};
use fedpki_core::encoding::{b64, b64url, hex, unb64, unb64url, unhex};
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::name::{San, Subject};
use fedpki_core::package::{RequestFile, SignedFile};
use fedpki_core::token::{self, Bundle, Expectations, TokenRequest};
use fedpki_core::{Entropy, Error, KeyType, PrivateKey, RUST_CRYPTO, SigningKey, UnixTime};
use proptest::prelude::*;

/// Deterministic entropy from a seed (xorshift64), so a failing case
/// replays exactly.
struct Seeded(u64);

impl Entropy for Seeded {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        for b in dest.iter_mut() {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 32) as u8;
        }
        Ok(())
    }
}

fn seeded(seed: u64) -> Seeded {
    Seeded(seed | 1)
}

fn key_type() -> impl Strategy<Value = KeyType> {
    prop_oneof![
        Just(KeyType::P256),
        Just(KeyType::P384),
        Just(KeyType::Ed25519)
    ]
}

/// DNS-style names: the shape of federation hosts and collaborator names.
fn dns_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,10}(-[a-z0-9]{1,8})?(\\.[a-z][a-z0-9]{0,10}){0,3}"
}

fn san_set() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            dns_name(),
            (1u8..=254, 0u8..=255, 0u8..=255, 1u8..=254)
                .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        ],
        1..5,
    )
}

fn ca(seed: u64) -> (PrivateKey, fedpki_core::Certificate) {
    let mut e = seeded(seed);
    let key = PrivateKey::generate(KeyType::P256, &mut e).unwrap();
    let root = issue::root_ca(
        &key,
        "Prop Root",
        Serial::random(&mut e).unwrap(),
        UnixTime(1_700_000_000),
    )
    .unwrap();
    (key, root)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn encodings_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes.clone());
        prop_assert_eq!(unb64(&b64(&bytes)).unwrap(), bytes.clone());
        prop_assert_eq!(unb64url(&b64url(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn keys_round_trip_through_pkcs8(kt in key_type(), seed in any::<u64>()) {
        let key = PrivateKey::generate(kt, &mut seeded(seed)).unwrap();
        let back = PrivateKey::from_pem(&key.to_pkcs8_pem().unwrap(), None).unwrap();
        prop_assert_eq!(back.public_key(), key.public_key());
        prop_assert_eq!(back.algorithm(), fedpki_core::KeyAlgorithm::from(kt));
    }

    #[test]
    fn encrypted_keys_open_only_with_their_password(
        kt in key_type(),
        seed in any::<u64>(),
        password in "[ -~]{8,40}",
        other in "[ -~]{8,40}",
    ) {
        let key = PrivateKey::generate(kt, &mut seeded(seed)).unwrap();
        // Few PBKDF2 rounds: the property is the format, not the cost.
        let pem = key.to_encrypted_pem(password.as_bytes(), 1000, &mut seeded(seed ^ 1)).unwrap();
        let back = PrivateKey::from_pem(&pem, Some(password.as_bytes())).unwrap();
        prop_assert_eq!(back.public_key(), key.public_key());
        if other != password {
            prop_assert!(PrivateKey::from_pem(&pem, Some(other.as_bytes())).is_err());
        }
    }

    #[test]
    fn tokens_verify_and_bundles_round_trip(
        seed in any::<u64>(),
        sub in dns_name(),
        sans in san_set(),
        ttl in 60u64..=86_400,
        flip in any::<prop::sample::Index>(),
    ) {
        let mut e = seeded(seed);
        let (root_key, root) = ca(seed);
        let prov = PrivateKey::generate(KeyType::P256, &mut e).unwrap();
        let subject = Subject::new(&sub).unwrap();
        let sans = San::parse_set(&sans).unwrap();
        let aud = token::sign_audience("ca.example:9123");
        let root_der = issue::cert_der(&root).unwrap();
        let now = UnixTime(1_800_000_000);
        let jwt = token::sign(
            &TokenRequest {
                issuer: "provisioner",
                subject: &subject,
                sans: &sans,
                audience: &aud,
                root_der: &root_der,
                now,
                ttl_secs: ttl,
                tls_key_sha256: None,
            },
            &prov,
            &mut e,
        )
        .unwrap();
        let vk = prov.public_key();
        let auds = [aud.clone()];
        let expect = Expectations { issuer: "provisioner", audiences: &auds, max_lifetime_secs: fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS };
        let v = token::verify_with(&jwt, &vk, &fedpki_core::RUST_CRYPTO, &expect, now).unwrap();
        prop_assert_eq!(v.subject(), &subject);
        let mut sorted = sans.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(v.sans(), sorted.as_slice());
        prop_assert!(token::verify_with(&jwt, &vk, &fedpki_core::RUST_CRYPTO, &expect, now.plus(ttl + 61)).is_err());

        let bundle = Bundle { jwt: jwt.clone(), root_pem: issue::cert_pem(&root).unwrap() };
        let (back, claims, root_back) = Bundle::parse(&bundle.encode()).unwrap();
        prop_assert_eq!(back, bundle);
        prop_assert_eq!(claims.sub, sub);
        prop_assert_eq!(root_back, root);

        // One altered character anywhere in the JWT: refused.
        let mut chars: Vec<char> = jwt.chars().collect();
        let i = flip.index(chars.len());
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        if altered != jwt {
            prop_assert!(token::verify_with(&altered, &vk, &fedpki_core::RUST_CRYPTO, &expect, now).is_err());
        }
        drop(root_key);
    }

    #[test]
    fn request_and_signed_files_round_trip(
        kt in key_type(),
        seed in any::<u64>(),
        name in dns_name(),
        with_token in any::<bool>(),
    ) {
        let key = PrivateKey::generate(kt, &mut seeded(seed)).unwrap();
        let subject = Subject::new(&name).unwrap();
        let csr = fedpki_core::csr::build(&key, &subject, &[San::parse(&name).unwrap()]).unwrap();
        let token = with_token.then(|| "eyJhbGciOiJFUzI1NiJ9.e30.c2ln.cm9vdA==".to_owned());
        let req = RequestFile::new(&name, &csr, token).unwrap();
        let (back, csr_back) = RequestFile::parse(&req.to_json().unwrap()).unwrap();
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(csr_back.der(), csr.der());
        prop_assert!(csr_back.verify(&RUST_CRYPTO).is_ok());

        let (_, root) = ca(seed);
        let pem = issue::cert_pem(&root).unwrap();
        let signed = SignedFile::new(&name, pem.clone(), pem.clone(), pem);
        prop_assert_eq!(SignedFile::parse(&signed.to_json().unwrap()).unwrap(), signed);
    }

    #[test]
    fn crls_round_trip(
        seed in any::<u64>(),
        entries in prop::collection::vec((any::<[u8; 15]>(), 0u64..1_000_000, 0usize..6), 0..20),
        number in any::<u64>(),
    ) {
        let (key, root) = ca(seed);
        let issuer = Issuer { cert: &root, key: &key };
        let revoked: Vec<Revoked> = entries
            .iter()
            .map(|(bytes, at, r)| {
                let mut serial = vec![0x40];
                serial.extend_from_slice(bytes);
                Revoked {
                    serial_hex: hex(&serial),
                    at: UnixTime(1_700_000_000 + at),
                    reason: Reason::ALL[*r],
                }
            })
            .collect();
        let now = UnixTime(1_800_000_000);
        let der = crl::build(&issuer, &revoked, number, now, now.plus(86_400)).unwrap();
        let parsed = crl::Crl::parse(&der).unwrap();
        prop_assert!(parsed.verify(&root, &RUST_CRYPTO).is_ok());
        prop_assert_eq!(parsed.entries(), revoked);
        prop_assert_eq!(parsed.number(), Some(number));
        prop_assert_eq!(parsed.next_update(), Some(now.plus(86_400)));
    }

    #[test]
    fn leaves_chain_to_their_issuer(kt in key_type(), seed in any::<u64>(), name in dns_name(), sans in san_set()) {
        let mut e = seeded(seed);
        let (root_key, root) = ca(seed);
        let leaf_key = PrivateKey::generate(kt, &mut e).unwrap();
        let subject = Subject::new(&name).unwrap();
        let sans = San::parse_set(&sans).unwrap();
        let now = UnixTime(1_750_000_000);
        let leaf = Issuer { cert: &root, key: &root_key }
            .leaf(&leaf_key.public_key(), &subject, &sans, fedpki_core::profile::LeafUsage::Node, Serial::random(&mut e).unwrap(), now, now.plus(3600), &Default::default())
            .unwrap();
        let back = issue::parse_cert_pem(&issue::cert_pem(&leaf).unwrap()).unwrap();
        prop_assert_eq!(&back, &leaf);
        prop_assert!(fedpki_core::chain::check_signed_by(&back, &root, &RUST_CRYPTO).is_ok());
        let mut want = sans.clone();
        want.sort();
        prop_assert!(fedpki_core::chain::check_leaf_is_ours(&back, &leaf_key.public_key(), &subject, &want).is_ok());
    }
}
