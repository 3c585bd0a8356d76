//! The sign, renew and revoke request bodies, decoded as the server does
//! and run through a real `Authority` (in-memory store) up to issuance.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fedpki::facade::fuzz_requests(data);
});
