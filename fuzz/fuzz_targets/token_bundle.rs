//! The token a user pastes: the bundle split, the root check, the claims,
//! and full verification against a fixed provisioner key.
#![no_main]

use std::sync::OnceLock;

use fedpki_core::UnixTime;
use fedpki_core::token::{self, Bundle, Expectations};
use libfuzzer_sys::fuzz_target;

fn provisioner() -> &'static p256::ecdsa::VerifyingKey {
    static KEY: OnceLock<p256::ecdsa::VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let secret = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("fixed key");
        *secret.verifying_key()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Bundle::parse(text);
    let _ = token::peek_claims(text);
    let audiences = [token::sign_audience("localhost:9123")];
    let expect = Expectations {
        issuer: "provisioner",
        audiences: &audiences,
        max_lifetime_secs: fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS,
    };
    let _ = token::verify(text, provisioner(), &expect, UnixTime(1_800_000_000));
});
