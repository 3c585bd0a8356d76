//! CRLs as `pki verify` and `pki inspect` read them, and the audit log as
//! `pki audit` checks it and as the store reads it when it opens (every
//! entry turned into the ledger rows it stands for).
#![no_main]

use libfuzzer_sys::fuzz_target;

use fedpki::facade::audit_log as log;

fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = fedpki_core::crl::Crl::parse(data) {
        let _ = crl.entries();
        let _ = crl.number();
        let _ = crl.next_update();
        let _ = crl.issuer();
    }
    let _ = fedpki::facade::describe_bytes(data);
    let _ = log::verify(data, None);
    let (entries, head, _) = log::scan(data, &log::Head::default());
    for entry in &entries {
        let _ = entry.effects();
    }
    let _ = log::check_head(data, &head);
    let _ = log::verify(data, Some(&head));
});
