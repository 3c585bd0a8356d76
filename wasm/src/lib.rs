//! wasm-bindgen wrappers over `fedpki-core` for the certify page.
//!
//! Only wrappers live here: every check and every format is the core's, so
//! the browser and the CLI cannot disagree. The page's bindings arrive with
//! the browser flow; until then this crate proves the core links for wasm.

pub use fedpki_core::RUST_CRYPTO;
