//! OpenFL zip packages: the reader that enforces names, sizes and counts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fedpki::facade::read_bytes(data, std::path::Path::new("fuzz.zip"));
});
