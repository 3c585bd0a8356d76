//! TLS settings both ends share: the one rustls provider the binary uses,
//! and how long any step of a connection may take.

use std::sync::Arc;
use std::time::Duration;

/// Time allowed for the TLS handshake, the request head, and the body.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The ring provider, the only one the binary uses.
pub(crate) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
