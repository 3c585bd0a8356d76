//! A key's age counts from the ledger's first certificate of it: renewals
//! are cut short to the limit, then refused, and a new token for the same
//! key does not make it young again (NVFlare's key-age rule).

#![allow(clippy::unwrap_used)]

use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::token;
use fedpki_core::{KeyType, PrivateKey, UnixTime};

use super::{Ca, T0, URL, block, new_ca_with, refused};
use crate::authority::Why;

const DAY: u64 = 86_400;

fn csr_of(key: &PrivateKey, name: &str) -> String {
    fedpki_core::csr::build(
        key,
        &Subject::new(name).unwrap(),
        &[San::parse(name).unwrap()],
    )
    .unwrap()
    .to_pem()
    .unwrap()
}

fn sign_at(ca: &mut Ca, key: &PrivateKey, at: u64) -> Result<String, crate::authority::Refusal> {
    let ott = ca.token("node1", &token::sign_audience(URL), at, 600);
    block(
        ca.authority
            .sign(&csr_of(key, "node1"), &ott, UnixTime(at), None),
    )
    .map(|i| i.crt)
}

fn renew_at(ca: &Ca, crt: &str, at: u64) -> Result<String, crate::authority::Refusal> {
    let cert = issue::parse_cert_pem(crt).unwrap();
    block(ca.authority.renew(&cert, UnixTime(at), None)).map(|i| i.crt)
}

fn not_after(crt: &str) -> u64 {
    issue::parse_cert_pem(crt).unwrap().not_after().0
}

#[test]
fn renewals_stop_at_the_keys_age_limit_and_a_new_token_does_not_reset_it() {
    let mut ca = new_ca_with(41, |c| {
        c.leaf_lifetime_secs = 30 * DAY;
        c.max_key_age_secs = Some(60 * DAY);
    });
    let mut rng = super::Seeded(7);
    let key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let first = sign_at(&mut ca, &key, T0).unwrap();
    assert_eq!(not_after(&first), T0 + 30 * DAY);
    // Within the limit: the full lifetime.
    let second = renew_at(&ca, &first, T0 + 25 * DAY).unwrap();
    assert_eq!(not_after(&second), T0 + 55 * DAY);
    // Past it: cut short to the key's 60th day.
    let third = renew_at(&ca, &second, T0 + 50 * DAY).unwrap();
    assert_eq!(not_after(&third), T0 + 60 * DAY);
    // Less than a day would be left: refused, saying why and what to do.
    let late = T0 + 59 * DAY + DAY / 2;
    refused(
        renew_at(&ca, &third, late),
        Why::Forbidden,
        "this key is 59 days old",
    );
    // A new token for the same key keeps its first certificate's date.
    refused(
        sign_at(&mut ca, &key, late),
        Why::Forbidden,
        "make a new key",
    );
    // A new key starts its own count.
    let fresh = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let new = sign_at(&mut ca, &fresh, late).unwrap();
    assert_eq!(not_after(&new), late + 30 * DAY);
}

#[test]
fn without_a_limit_a_key_renews_for_ever() {
    let mut ca = new_ca_with(42, |c| c.leaf_lifetime_secs = 30 * DAY);
    let key = PrivateKey::generate(KeyType::P256, &mut super::Seeded(8)).unwrap();
    let mut crt = sign_at(&mut ca, &key, T0).unwrap();
    for month in 1..=14 {
        crt = renew_at(&ca, &crt, T0 + month * 29 * DAY).unwrap();
        assert_eq!(not_after(&crt), T0 + month * 29 * DAY + 30 * DAY);
    }
}

#[test]
fn a_roles_lifetime_and_key_age_govern_renewals_and_the_roster_can_withdraw_them() {
    use crate::ca::roster::{Roster, RosterWatch};
    let roster = |text: &str| RosterWatch::fixed(Some(Roster::parse(text).unwrap()));
    let rostered = "[roles.site]\nusages = [\"client-auth\"]\nlifetime = \"10d\"\n\
                    max-key-age = \"25d\"\n\n[[participants]]\nname = \"node1\"\nrole = \"site\"\n";
    // The CA's own limits are looser: the role's win.
    let ca = new_ca_with(43, |c| {
        c.leaf_lifetime_secs = 300 * DAY;
        c.max_key_age_secs = Some(900 * DAY);
    });
    let mut ca = Ca {
        authority: ca.authority.with_roster(roster(rostered)),
        ..ca
    };
    let mut rng = super::Seeded(8);
    let key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
    let first = sign_at(&mut ca, &key, T0).unwrap();
    assert_eq!(not_after(&first), T0 + 10 * DAY);
    let second = renew_at(&ca, &first, T0 + 9 * DAY).unwrap();
    assert_eq!(not_after(&second), T0 + 19 * DAY);
    // Cut to the key's 25th day, then refused.
    let third = renew_at(&ca, &second, T0 + 18 * DAY).unwrap();
    assert_eq!(not_after(&third), T0 + 25 * DAY);
    refused(
        renew_at(&ca, &third, T0 + 24 * DAY + DAY / 2),
        Why::Forbidden,
        "this key is 24 days old",
    );
    // Taken off the roster: no renewal, whatever it presents.
    let elsewhere = "[roles.site]\nusages = [\"client-auth\"]\nlifetime = \"10d\"\n\n\
                     [[participants]]\nname = \"node2\"\nrole = \"site\"\n";
    let ca = Ca {
        authority: ca.authority.with_roster(roster(elsewhere)),
        ..ca
    };
    refused(
        renew_at(&ca, &third, T0 + 20 * DAY),
        Why::Forbidden,
        "node1 is not in this federation's roster",
    );
}
