//! The authority alone: a CA made in memory, a fixed clock, seeded
//! randomness, the in-memory store, the portable crypto.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fedpki_core::crl::Reason;
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenRequest};
use fedpki_core::{Entropy, KeyType, PrivateKey, SigningKey, UnixTime};

use super::{Authority, Platform, Refusal, Why};
use crate::ca::{CaCerts, CaConfig, ProvisionerConfig};
use crate::platform::sys::Clock;
use crate::store::{MemoryBackend, Store};

const T0: u64 = 1_800_000_000;
const URL: &str = "ca.test:9443";

/// Randomness from a seed (SplitMix64): the same seed, the same bytes.
struct Seeded(u64);

impl Entropy for Seeded {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), fedpki_core::Error> {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// A clock the test sets.
#[derive(Debug, Clone, Default)]
struct Fixed(Arc<AtomicU64>);

impl Clock for Fixed {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst) * 1000
    }
}

struct Ca {
    authority: Authority,
    /// The root, to sign another intermediate with.
    root: (fedpki_core::Certificate, PrivateKey),
    /// The intermediate's key.
    int_key: PrivateKey,
    provisioner: PrivateKey,
    root_der: Vec<u8>,
    clock: Fixed,
    rng: Seeded,
}

fn new_ca(seed: u64) -> Ca {
    new_ca_with(seed, |_| {})
}

/// [`new_ca`] with its configuration changed by `configure` first.
fn new_ca_with(seed: u64, configure: impl FnOnce(&mut CaConfig)) -> Ca {
    let mut rng = Seeded(seed);
    let t = UnixTime(T0 - 86_400);
    let root_key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let root =
        issue::root_ca(&root_key, "Test Root", Serial::random(&mut rng).unwrap(), t).unwrap();
    let int_key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let int = Issuer {
        cert: &root,
        key: &root_key,
    }
    .intermediate_ca(
        &int_key.public_key(),
        "Test Intermediate",
        Serial::random(&mut rng).unwrap(),
        t,
    )
    .unwrap();
    let provisioner = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let (x, y) = provisioner.p256_coordinates().unwrap();
    let mut config = CaConfig {
        version: 1,
        ca_url: URL.into(),
        provisioner: ProvisionerConfig {
            name: "provisioner".into(),
            kid: token::jwk_thumbprint(&x, &y),
            public_key: provisioner.public_key().to_pem().unwrap(),
        },
        leaf_lifetime_secs: 3600,
        root_fingerprint: issue::fingerprint(&root).unwrap(),
        max_token_lifetime_secs: token::DEFAULT_MAX_LIFETIME_SECS,
        tls_key_sha256: None,
        awaiting_root: false,
        active_intermediate: None,
        retired_intermediates: Vec::new(),
        adopted: None,
        allow_node_on_ca_host: false,
        dns: Vec::new(),
        store: None,
        max_key_age_secs: None,
    };
    configure(&mut config);
    let certs = CaCerts {
        root_pem: issue::cert_pem(&root).unwrap(),
        intermediate_pem: issue::cert_pem(&int).unwrap(),
        root,
        intermediate: int,
    };
    let clock = Fixed::default();
    clock.0.store(T0, Ordering::SeqCst);
    let platform = Platform {
        crypto: fedpki_core::RUST_CRYPTO_PROVIDER,
        clock: Box::new(clock.clone()),
        entropy: Box::new(Seeded(seed ^ 1)),
    };
    let store = Store::start(MemoryBackend::default()).unwrap();
    Ca {
        root_der: issue::cert_der(&certs.root).unwrap(),
        root: (certs.root.clone(), root_key),
        int_key: int_key.clone(),
        authority: Authority::on(config, certs, int_key, store, platform).unwrap(),
        provisioner,
        clock,
        rng: Seeded(seed ^ 2),
    }
}

impl Ca {
    fn token(&mut self, name: &str, audience: &str, now: u64, ttl: u64) -> String {
        token::sign(
            &TokenRequest {
                issuer: "provisioner",
                subject: &Subject::new(name).unwrap(),
                sans: &[],
                audience,
                root_der: &self.root_der,
                now: UnixTime(now),
                ttl_secs: ttl,
                tls_key_sha256: None,
            },
            &self.provisioner,
            &mut self.rng,
        )
        .unwrap()
    }

    fn sign_token(&mut self, name: &str) -> String {
        self.token(name, &token::sign_audience(URL), T0, 600)
    }

    fn csr(&mut self, name: &str) -> String {
        let key = PrivateKey::generate(KeyType::P256, &mut self.rng).unwrap();
        fedpki_core::csr::build(
            &key,
            &Subject::new(name).unwrap(),
            &[San::parse(name).unwrap()],
        )
        .unwrap()
        .to_pem()
        .unwrap()
    }

    fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Activate a second intermediate from the same root; the one before
    /// is retired (its CRL signed until `crl_until`), and the root's CRL is
    /// what `root_crl` makes with the root as its issuer. The new one.
    fn switch(
        &mut self,
        crl_until: u64,
        root_crl: impl FnOnce(&Issuer<'_>) -> Option<crate::ca::issuers::RootCrl>,
    ) -> fedpki_core::Certificate {
        use crate::ca::issuers::{IssuerKeys, RetiredIssuer};
        let old = self.authority.issuers().certs().clone();
        let key = PrivateKey::generate(KeyType::P256, &mut self.rng).unwrap();
        let root = Issuer {
            cert: &self.root.0,
            key: &self.root.1,
        };
        let serial = Serial::random(&mut self.rng).unwrap();
        let new = root
            .intermediate_ca(&key.public_key(), "Next", serial, self.now())
            .unwrap();
        let mut certs = old.clone();
        certs.intermediate = new.clone();
        certs.intermediate_pem = issue::cert_pem(&new).unwrap();
        self.authority.replace_issuers(IssuerKeys {
            certs,
            key,
            retired: vec![RetiredIssuer {
                cert: old.intermediate,
                pem: old.intermediate_pem,
                key: self.int_key.clone(),
                crl_until,
            }],
            root_crl: root_crl(&root),
        });
        new
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn refused<T: std::fmt::Debug>(r: Result<T, Refusal>, why: Why, needle: &str) {
    let e = r.expect_err("refused");
    assert_eq!(e.why, why, "{e}");
    assert!(e.message.contains(needle), "{e}");
}

#[test]
fn a_token_issues_once_and_the_certificate_is_in_the_ledger() {
    let mut ca = new_ca(1);
    let (ott, csr) = (ca.sign_token("col1"), ca.csr("col1"));
    let issued = block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    assert_eq!(issued.subject, "col1");
    let again = ca.csr("col1");
    refused(
        block(ca.authority.sign(&again, &ott, ca.now(), None)),
        Why::NotAuthorized,
        "used",
    );
    let ledger = block(ca.authority.store().certificates()).unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].serial, issued.serial);
    assert_eq!(ledger[0].issued_at, T0);
}

#[test]
fn a_genuine_token_is_spent_even_when_its_csr_is_refused() {
    let mut ca = new_ca(2);
    let ott = ca.sign_token("col1");
    let wrong = ca.csr("col2");
    refused(
        block(ca.authority.sign(&wrong, &ott, ca.now(), None)),
        Why::Forbidden,
        "col2",
    );
    let jti = token::peek_claims(&ott).unwrap().jti;
    assert!(block(ca.authority.store().is_burnt(&jti)).unwrap());
    let right = ca.csr("col1");
    refused(
        block(ca.authority.sign(&right, &ott, ca.now(), None)),
        Why::NotAuthorized,
        "used",
    );
    assert!(
        block(ca.authority.store().certificates())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn tokens_that_fail_their_own_checks_are_refused_and_not_spent() {
    let mut ca = new_ca(3);
    let csr = ca.csr("col1");
    let cases = [
        (
            ca.token("col1", "https://other:1/1.0/sign", T0, 600),
            "another CA address",
        ),
        (
            ca.token("col1", &token::sign_audience(URL), T0 - 3600, 600),
            "expired",
        ),
        (
            ca.token("col1", &token::sign_audience(URL), T0 + 3600, 600),
            "not valid yet",
        ),
    ];
    for (ott, needle) in cases {
        refused(
            block(ca.authority.sign(&csr, &ott, ca.now(), None)),
            Why::NotAuthorized,
            needle,
        );
        let jti = token::peek_claims(&ott).unwrap().jti;
        assert!(
            !block(ca.authority.store().is_burnt(&jti)).unwrap(),
            "{needle}"
        );
    }
    // Another CA's provisioner.
    let mut other = new_ca(4);
    let foreign = other.sign_token("col1");
    refused(
        block(ca.authority.sign(&csr, &foreign, ca.now(), None)),
        Why::NotAuthorized,
        "signature",
    );
}

#[test]
fn a_revoked_certificate_is_not_renewed_and_a_renewal_is_answered_once() {
    let mut ca = new_ca(5);
    let (ott, csr) = (ca.sign_token("col1"), ca.csr("col1"));
    let first = block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    let cert = issue::parse_cert_pem(&first.crt).unwrap();
    let renewed = block(ca.authority.renew(&cert, ca.now(), None)).unwrap();
    assert_ne!(renewed.serial, first.serial);
    // Asked again (an answer lost): the same successor, not a new one.
    let again = block(ca.authority.renew(&cert, ca.now(), None)).unwrap();
    assert_eq!(again.serial, renewed.serial);
    let newer = issue::parse_cert_pem(&renewed.crt).unwrap();
    block(
        ca.authority
            .revoke_by_operator(&renewed.serial, Reason::Superseded, ca.now()),
    )
    .unwrap();
    refused(
        block(ca.authority.renew(&newer, ca.now(), None)),
        Why::NotAuthorized,
        "revoked",
    );
    // A certificate of another CA is not renewed.
    let mut other = new_ca(6);
    let (ott, csr) = (other.sign_token("col1"), other.csr("col1"));
    let foreign = block(other.authority.sign(&csr, &ott, other.now(), None)).unwrap();
    let foreign = issue::parse_cert_pem(&foreign.crt).unwrap();
    refused(
        block(ca.authority.renew(&foreign, ca.now(), None)),
        Why::NotAuthorized,
        "not issued by this CA",
    );
}

#[test]
fn racing_revocations_of_one_serial_record_it_once() {
    let mut ca = new_ca(7);
    let (ott, csr) = (ca.sign_token("col1"), ca.csr("col1"));
    let issued = block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    let now = ca.now();
    let authority = Arc::new(ca.authority);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let fresh = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (authority, serial) = (authority.clone(), issued.serial.clone());
            tasks.spawn(async move {
                authority
                    .revoke_by_operator(&serial, Reason::KeyCompromise, now)
                    .await
                    .unwrap()
                    .already
            });
        }
        let mut fresh = 0;
        while let Some(already) = tasks.join_next().await {
            fresh += usize::from(!already.unwrap());
        }
        fresh
    });
    assert_eq!(fresh, 1, "exactly one revocation is new");
    assert_eq!(block(authority.store().revocations()).unwrap().len(), 1);
    refused(
        block(authority.revoke_by_operator("ffee", Reason::Unspecified, now)),
        Why::Unknown,
        "no certificate with serial",
    );
}

#[test]
fn a_clock_stepped_back_does_not_revive_a_pruned_token() {
    let mut ca = new_ca(8);
    let ott = ca.sign_token("col1");
    let (csr, csr2) = (ca.csr("col1"), ca.csr("col1"));
    block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    // The clock jumps a day ahead; the burnt id is pruned.
    let pruned = block(ca.authority.store().prune(T0 + 86_400)).unwrap();
    assert_eq!(pruned, 1);
    // Back to the real time: the token looks valid again, and is refused.
    refused(
        block(ca.authority.sign(&csr2, &ott, ca.now(), None)),
        Why::NotAuthorized,
        "expired",
    );
    // A fresh token still works.
    let fresh = ca.token("col2", &token::sign_audience(URL), T0 + 86_400, 600);
    let csr3 = ca.csr("col2");
    ca.clock.0.store(T0 + 86_400, Ordering::SeqCst);
    block(ca.authority.sign(&csr3, &fresh, ca.now(), None)).unwrap();
}

#[test]
fn the_same_seed_and_clock_give_the_same_serials() {
    let serial = |seed| {
        let mut ca = new_ca(seed);
        let (ott, csr) = (ca.sign_token("col1"), ca.csr("col1"));
        block(ca.authority.sign(&csr, &ott, ca.now(), None))
            .unwrap()
            .serial
    };
    assert_eq!(serial(9), serial(9));
    assert_ne!(serial(9), serial(10));
}

#[test]
fn after_a_switch_the_new_intermediate_issues_and_the_old_one_keeps_its_crl() {
    let mut ca = new_ca(9);
    let (ott, csr) = (ca.sign_token("col1"), ca.csr("col1"));
    let first = block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    let old = ca.authority.issuers().certs().clone();
    // A second intermediate from the same root; the first retired until a
    // day from now.
    let until = T0 + 86_400;
    let new = ca.switch(until, |_| None);

    // The old certificate renews onto the new intermediate, chain and all.
    let presented = issue::parse_cert_pem(&first.crt).unwrap();
    let renewed = block(ca.authority.renew(&presented, ca.now(), None)).unwrap();
    assert_eq!(renewed.ca, issue::cert_pem(&new).unwrap());
    let leaf = issue::parse_cert_pem(&renewed.crt).unwrap();
    fedpki_core::chain::check_signed_by(&leaf, &new, &fedpki_core::RUST_CRYPTO).unwrap();
    // Asked again: the same successor, with its own issuer's chain.
    let again = block(ca.authority.renew(&presented, ca.now(), None)).unwrap();
    assert_eq!(
        (again.serial, again.ca),
        (renewed.serial.clone(), renewed.ca)
    );

    // Revoked after the switch: in the old intermediate's CRL only.
    block(
        ca.authority
            .revoke_by_operator(&first.serial, Reason::Superseded, ca.now()),
    )
    .unwrap();
    let (crls, listed) = block(ca.authority.crls(1, ca.now())).unwrap();
    assert_eq!(
        listed.get(&first.serial),
        Some(&(ca.now().0, Reason::Superseded.code()))
    );
    assert_eq!(crls.len(), 2);
    let lists = |i: usize, serial: &str| {
        let crl = fedpki_core::crl::Crl::parse(&crls[i].der).unwrap();
        crl.find(serial).is_some()
    };
    assert!(crls[0].active && !crls[1].active);
    assert!(!lists(0, &first.serial) && lists(1, &first.serial));
    for (crl, int) in [(&crls[0], &new), (&crls[1], &old.intermediate)] {
        let parsed = fedpki_core::crl::Crl::parse(&crl.der).unwrap();
        parsed.verify(int, &fedpki_core::RUST_CRYPTO).unwrap();
    }
    // Once its last certificate has expired, its CRL is no longer signed.
    let (later, listed) = block(ca.authority.crls(2, UnixTime(until + 1))).unwrap();
    // What the retired intermediate's CRL no longer lists is not claimed.
    assert!(listed.is_empty());
    assert_eq!(later.len(), 1);
    assert!(later[0].active);
}

mod key_age;
mod presented;
