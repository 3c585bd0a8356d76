//! The CA server's own TLS identity: its fixed key (`secrets/tls_key`,
//! pinned by every token) and a certificate over it from the authority,
//! renewed at two thirds of its life.

use std::sync::{Arc, RwLock};

use fedpki_core::name::{San, Subject};
use fedpki_core::{PrivateKey, SigningKey};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::authority::Authority;
use crate::error::{CliError, Result};
use crate::platform::sys::now;
use crate::platform::tls::crypto_provider;

pub(crate) use crate::ca::TLS_CERT_LIFETIME_SECS;

/// Serves the current TLS certificate; [`TlsIdentity::renew`] swaps it.
/// The key is the CA folder's `secrets/tls_key`, the one every token pins
/// (`tlsKeySha256`); only the certificate over it is renewed.
#[derive(Debug)]
pub(crate) struct TlsIdentity {
    current: RwLock<Arc<CertifiedKey>>,
    key: PrivateKey,
    signing: Arc<dyn rustls::sign::SigningKey>,
    names: Vec<San>,
    subject: Subject,
}

impl ResolvesServerCert for TlsIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl TlsIdentity {
    /// A certificate over `key` for the CA's own host names.
    pub(crate) async fn new(authority: &Authority, host: &str, key: PrivateKey) -> Result<Self> {
        let names = authority.config().host_names()?;
        let subject = Subject::new(host)?;
        let der = key.to_pkcs8_der()?;
        let signing = crypto_provider()
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec())))
            .map_err(|e| CliError::Network(format!("TLS key: {e}")))?;
        let me = Self {
            current: RwLock::new(Arc::new(CertifiedKey::new(Vec::new(), signing.clone()))),
            key,
            signing,
            names,
            subject,
        };
        me.renew(authority).await?;
        Ok(me)
    }

    /// Replace the certificate with a fresh one over the same key.
    pub(crate) async fn renew(&self, authority: &Authority) -> Result<()> {
        let leaf = authority
            .issue_server_certificate(
                &self.key.public_key(),
                &self.subject,
                &self.names,
                TLS_CERT_LIFETIME_SECS,
                now(),
            )
            .await
            .map_err(|r| CliError::Store(format!("the CA's TLS certificate: {}", r.message)))?;
        let chain = vec![
            CertificateDer::from(leaf),
            CertificateDer::from(fedpki_core::issue::cert_der(
                &authority.issuers().certs().intermediate,
            )?),
        ];
        let fresh = Arc::new(CertifiedKey::new(chain, self.signing.clone()));
        if let Ok(mut cur) = self.current.write() {
            *cur = fresh;
        }
        Ok(())
    }
}

/// The rustls server config over a resolver. Clients may present a
/// certificate chaining to `root_der` (for renew and revoke); most do not.
pub(crate) fn tls_config(
    identity: Arc<TlsIdentity>,
    root_der: &[u8],
) -> Result<rustls::ServerConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root_der.to_vec()))
        .map_err(|e| CliError::Network(format!("TLS root: {e}")))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        crypto_provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| CliError::Network(format!("TLS client verifier: {e}")))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Network(format!("TLS config: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}
