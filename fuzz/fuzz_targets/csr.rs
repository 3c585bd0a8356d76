//! CSR parsing and verification: PEM and DER, then the signature, the
//! names and the OpenFL hash, as the CA and `pki sign` run them.
#![no_main]

use fedpki_core::RUST_CRYPTO;
use fedpki_core::csr::Csr;
use fedpki_core::name::{San, Subject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = match std::str::from_utf8(data) {
        Ok(text) => Csr::from_pem(text),
        Err(_) => Csr::from_der(data),
    };
    let Ok(csr) = parsed else { return };
    let _ = csr.openfl_hash();
    let _ = csr.common_name();
    let _ = csr.sans();
    if let Ok(verified) = csr.verify(&RUST_CRYPTO) {
        let subject = Subject::new("node").expect("fixed subject");
        let sans = [San::parse("node").expect("fixed san")];
        let _ = verified.check_names(&subject, &sans);
        let _ = fedpki::facade::csr_names(&verified);
    }
});
