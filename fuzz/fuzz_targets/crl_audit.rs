//! CRLs as `pki verify` and `pki inspect` read them, and the audit log as
//! `pki audit` checks it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = fedpki_core::crl::Crl::parse(data) {
        let _ = crl.entries();
        let _ = crl.number();
        let _ = crl.next_update();
        let _ = crl.issuer();
    }
    let _ = fedpki::audit::verify(data, None);
    let _ = fedpki::inspect::describe_bytes(data);
});
