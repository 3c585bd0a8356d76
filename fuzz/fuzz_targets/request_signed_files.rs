//! The air-gapped files: request files (CSR and token inside) and signed
//! files (three certificates), as `pki sign`, `pki import` and the page read them.
#![no_main]

use fedpki_core::package::{RequestFile, SignedFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok((req, csr)) = RequestFile::parse(text) {
        let _ = req.to_json();
        let _ = csr.verify(&fedpki_core::RUST_CRYPTO);
    }
    if let Ok(signed) = SignedFile::parse(text) {
        let _ = signed.to_json();
        for pem in [&signed.crt, &signed.ca, &signed.root] {
            let _ = fedpki_core::issue::parse_cert_pem(pem);
        }
    }
    let _ = fedpki::facade::describe(text);
});
