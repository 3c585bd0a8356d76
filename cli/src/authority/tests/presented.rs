//! What the second attacker tried on the authority (issue 21): forged
//! leaves, a native CA and an adopted one on first sight, an intermediate
//! the root revoked, a compromised key, the CA's own host name.

use fedpki_core::crl::Reason;
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenRequest};
use fedpki_core::{KeyType, PrivateKey, SigningKey, UnixTime};

use super::{Ca, Seeded, T0, URL, block, new_ca, refused};
use crate::authority::{Authority, Platform, Why};
use crate::ca::CaConfig;
use crate::store::{MemoryBackend, Store};

/// A leaf for `name` signed with `key` as the intermediate `int`, ten
/// years, under `serial` (a victim's, say) or a fresh one.
fn forge(
    ca: &mut Ca,
    int: &fedpki_core::Certificate,
    key: &PrivateKey,
    name: &str,
    serial: Option<&str>,
) -> fedpki_core::Certificate {
    let serial = match serial {
        Some(hex) => {
            let bytes: [u8; 16] = fedpki_core::encoding::unhex(hex)
                .unwrap()
                .try_into()
                .unwrap();
            Serial::from_bytes(bytes).unwrap()
        }
        None => Serial::random(&mut ca.rng).unwrap(),
    };
    let holder = PrivateKey::generate(KeyType::P256, &mut ca.rng).unwrap();
    Issuer { cert: int, key }
        .leaf(
            &holder.public_key(),
            &Subject::new(name).unwrap(),
            &[San::parse(name).unwrap()],
            fedpki_core::profile::LeafUsage::Node,
            serial,
            UnixTime(T0 - 60),
            UnixTime(T0 + 10 * 365 * 86_400),
            &Default::default(),
        )
        .unwrap()
}

#[test]
fn a_forged_leaf_is_not_renewed_revoked_or_recorded_by_a_native_ca() {
    let mut ca = new_ca(11);
    let (ott, csr) = (ca.sign_token("victim"), ca.csr("victim"));
    let victim = block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    let int = ca.authority.issuers().certs().intermediate.clone();
    let int_key = ca.int_key.clone();
    // Under the victim's serial, with the intermediate's own key.
    let twin = forge(&mut ca, &int, &int_key, "victim", Some(&victim.serial));
    refused(
        block(ca.authority.renew(&twin, ca.now(), None)),
        Why::NotAuthorized,
        "not the one this CA issued under its serial",
    );
    refused(
        block(ca.authority.revoke_by_holder(
            &twin,
            &victim.serial,
            Reason::Unspecified,
            ca.now(),
            None,
        )),
        Why::NotAuthorized,
        "not the one this CA issued",
    );
    assert!(
        block(ca.authority.store().revocations())
            .unwrap()
            .is_empty()
    );
    // Under a serial never issued: a native CA records only what it issued.
    let stranger = forge(&mut ca, &int, &int_key, "aggregator.example", None);
    refused(
        block(ca.authority.renew(&stranger, ca.now(), None)),
        Why::NotAuthorized,
        "not in this CA's ledger",
    );
    let serial = issue::serial_hex(&stranger);
    refused(
        block(ca.authority.revoke_by_holder(
            &stranger,
            &serial,
            Reason::Unspecified,
            ca.now(),
            None,
        )),
        Why::NotAuthorized,
        "not in this CA's ledger",
    );
    let certs = block(ca.authority.store().certificates()).unwrap();
    assert_eq!(certs.len(), 1, "only the victim's certificate: {certs:?}");
    // The genuine certificate still renews.
    let genuine = issue::parse_cert_pem(&victim.crt).unwrap();
    block(ca.authority.renew(&genuine, ca.now(), None)).unwrap();
}

#[test]
fn an_adopted_ca_records_only_what_its_step_ca_issued_before_adoption() {
    let mut ca = new_ca(12);
    let int = ca.authority.issuers().certs().intermediate.clone();
    let int_key = ca.int_key.clone();
    let kid = crate::ca::issuers::key_id_hex(&int);
    let mut config = ca.authority.config().clone();
    // Adopted a minute after the forged leaves' notBefore, then before it.
    config.adopted = Some(crate::ca::Adoption {
        at: T0,
        intermediate: kid,
    });
    let adopted = rebuild(&ca, config.clone());
    let before = forge(&mut ca, &int, &int_key, "old-node", None);
    block(adopted.renew(&before, ca.now(), None)).unwrap();
    let listed = block(adopted.store().certificates()).unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c.serial == issue::serial_hex(&before))
    );
    config.adopted = Some(crate::ca::Adoption {
        at: T0 - 3600,
        intermediate: config.adopted.unwrap().intermediate,
    });
    let later = rebuild(&ca, config);
    let after = forge(&mut ca, &int, &int_key, "new-node", None);
    refused(
        block(later.renew(&after, ca.now(), None)),
        Why::NotAuthorized,
        "not in this CA's ledger",
    );
    assert!(block(later.store().certificates()).unwrap().is_empty());
}

/// An authority over `ca`'s intermediate with `config`, its own store.
fn rebuild(ca: &Ca, config: CaConfig) -> Authority {
    let certs = ca.authority.issuers().certs().clone();
    let platform = Platform {
        crypto: fedpki_core::RUST_CRYPTO_PROVIDER,
        clock: Box::new(ca.clock.clone()),
        entropy: Box::new(Seeded(99)),
    };
    let store = Store::start(MemoryBackend::default()).unwrap();
    Authority::on(config, certs, ca.int_key.clone(), store, platform).unwrap()
}

#[test]
fn an_intermediate_the_root_revoked_no_longer_vouches_for_its_leaves() {
    use crate::ca::issuers::RootCrl;
    let mut ca = new_ca(13);
    let (ott, csr) = (ca.sign_token("col1"), ca.csr("col1"));
    let first = block(ca.authority.sign(&csr, &ott, ca.now(), None)).unwrap();
    let old = ca.authority.issuers().certs().clone();
    let mut der = Vec::new();
    let now = ca.now();
    ca.switch(T0 + 86_400, |root| {
        der = fedpki_core::crl::build(
            root,
            &[fedpki_core::crl::Revoked {
                serial_hex: issue::serial_hex(&old.intermediate),
                at: now,
                reason: Reason::KeyCompromise,
            }],
            1,
            now,
            now.plus(86_400),
        )
        .unwrap();
        Some(RootCrl {
            crl: fedpki_core::crl::Crl::parse(&der).unwrap(),
            der: der.clone(),
        })
    });
    assert_eq!(ca.authority.issuers().root_crl(), Some(der.as_slice()));
    // Its genuine leaf, and one forged with its key, are both refused.
    let genuine = issue::parse_cert_pem(&first.crt).unwrap();
    let old_key = ca.int_key.clone();
    let forged = forge(
        &mut ca,
        &old.intermediate,
        &old_key,
        "aggregator.example",
        None,
    );
    for cert in [&genuine, &forged] {
        refused(
            block(ca.authority.renew(cert, ca.now(), None)),
            Why::NotAuthorized,
            "was revoked by the root (keyCompromise",
        );
        let serial = issue::serial_hex(cert);
        refused(
            block(ca.authority.revoke_by_holder(
                cert,
                &serial,
                Reason::Unspecified,
                ca.now(),
                None,
            )),
            Why::NotAuthorized,
            "was revoked by the root",
        );
    }
    assert_eq!(block(ca.authority.store().certificates()).unwrap().len(), 1);
}

#[test]
fn a_key_revoked_for_compromise_is_never_certified_again() {
    let mut ca = new_ca(14);
    let key = PrivateKey::generate(KeyType::P256, &mut ca.rng).unwrap();
    let csr_of = |name: &str| {
        fedpki_core::csr::build(
            &key,
            &Subject::new(name).unwrap(),
            &[San::parse(name).unwrap()],
        )
        .unwrap()
        .to_pem()
        .unwrap()
    };
    let ott = ca.sign_token("col1");
    let first = block(ca.authority.sign(&csr_of("col1"), &ott, ca.now(), None)).unwrap();
    let renewed = block(ca.authority.renew(
        &issue::parse_cert_pem(&first.crt).unwrap(),
        ca.now(),
        None,
    ))
    .unwrap();
    block(
        ca.authority
            .revoke_by_operator(&first.serial, Reason::KeyCompromise, ca.now()),
    )
    .unwrap();
    // The renewal, over the same key, went with it.
    let revoked = block(ca.authority.store().revocations()).unwrap();
    assert!(
        revoked
            .iter()
            .any(|r| r.serial == renewed.serial && r.reason == 1),
        "{revoked:?}"
    );
    let ott = ca.sign_token("col2");
    refused(
        block(ca.authority.sign(&csr_of("col2"), &ott, ca.now(), None)),
        Why::Forbidden,
        "revoked for key compromise",
    );
    // The token was spent all the same.
    let other = ca.csr("col2");
    refused(
        block(ca.authority.sign(&other, &ott, ca.now(), None)),
        Why::NotAuthorized,
        "used",
    );
}

#[test]
fn a_node_is_not_given_the_cas_own_host_name_unless_allowed() {
    let mut ca = new_ca(15);
    for (name, sans) in [("ca.test", vec![]), ("agg", vec!["agg", "CA.test"])] {
        let ott = token::sign(
            &TokenRequest {
                issuer: "provisioner",
                subject: &Subject::new(name).unwrap(),
                sans: &sans
                    .iter()
                    .map(|s| San::parse(s).unwrap())
                    .collect::<Vec<_>>(),
                audience: &token::sign_audience(URL),
                root_der: &ca.root_der,
                now: ca.now(),
                ttl_secs: 600,
                tls_key_sha256: None,
            },
            &ca.provisioner,
            &mut ca.rng,
        )
        .unwrap();
        let key = PrivateKey::generate(KeyType::P256, &mut ca.rng).unwrap();
        let all: Vec<San> = if sans.is_empty() {
            vec![San::parse(name).unwrap()]
        } else {
            sans.iter().map(|s| San::parse(s).unwrap()).collect()
        };
        let csr = fedpki_core::csr::build(&key, &Subject::new(name).unwrap(), &all)
            .unwrap()
            .to_pem()
            .unwrap();
        refused(
            block(ca.authority.sign(&csr, &ott, ca.now(), None)),
            Why::Forbidden,
            "is this CA's own host",
        );
    }
    let mut config = ca.authority.config().clone();
    config.allow_node_on_ca_host = true;
    let allowing = rebuild(&ca, config);
    let (ott, csr) = (ca.sign_token("ca.test"), ca.csr("ca.test"));
    block(allowing.sign(&csr, &ott, ca.now(), None)).unwrap();
}

/// A token made in the very second a CA was adopted may have been spent
/// by its step-ca just before it stopped: refused like an older one; one
/// made a second later is taken.
#[test]
fn a_token_made_in_the_second_of_the_adoption_is_refused() {
    let mut ca = new_ca(13);
    let mut config = ca.authority.config().clone();
    config.adopted = Some(crate::ca::Adoption {
        at: T0,
        intermediate: crate::ca::issuers::key_id_hex(&ca.authority.issuers().certs().intermediate),
    });
    let adopted = rebuild(&ca, config);
    let audience = fedpki_core::token::sign_audience(URL);
    let same_second = ca.token("col1", &audience, T0, 600);
    refused(
        block(adopted.sign(&ca.csr("col1"), &same_second, ca.now(), None)),
        Why::NotAuthorized,
        "before this CA was adopted",
    );
    let next_second = ca.token("col1", &audience, T0 + 1, 600);
    let later = UnixTime(T0 + 1);
    block(adopted.sign(&ca.csr("col1"), &next_second, later, None)).unwrap();
}
