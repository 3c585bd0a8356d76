//! The token a user pastes: the bundle split, the root check, the claims,
//! and full verification against a fixed provisioner key.
#![no_main]

use std::sync::OnceLock;

use fedpki_core::token::{self, Bundle, Expectations};
use fedpki_core::{Entropy, Error, KeyType, PrivateKey, RUST_CRYPTO, SigningKey, UnixTime};
use libfuzzer_sys::fuzz_target;

/// Always the same bytes: a fixed provisioner key.
struct Fixed;

impl Entropy for Fixed {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), Error> {
        out.fill(7);
        Ok(())
    }
}

fn provisioner() -> &'static fedpki_core::PublicKey {
    static KEY: OnceLock<fedpki_core::PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PrivateKey::generate(KeyType::P256, &mut Fixed)
            .expect("fixed key")
            .public_key()
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
    let _ = token::verify_with(text, provisioner(), &RUST_CRYPTO, &expect, UnixTime(1_800_000_000));
});
