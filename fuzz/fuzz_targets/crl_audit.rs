//! CRLs as `pki verify` and `pki inspect` read them, the audit log as
//! `pki audit` checks it, and the store's journal as a restart and
//! `pki list` read it (raw, and framed with a valid hash so the payload's
//! own parsing is reached).
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
    let _ = fedpki::journal::decode(data, 0);
    if let Some(framed) = fedpki::journal::frame(1, data) {
        for (_, effects) in fedpki::journal::decode(&framed, 0) {
            let _ = (effects.rows(), effects.is_empty());
        }
    }
});
