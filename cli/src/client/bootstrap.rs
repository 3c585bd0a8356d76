//! A step token is a bare JWT: unlike a fedpki token it carries no root,
//! only the root's SHA-256 (`sha`). As step does, fetch `/root/{sha}` from
//! the token's CA over a TLS connection that cannot be verified yet, and
//! keep the answer only if it hashes to `sha`; from then on every
//! connection is verified against that root. The token came over a secure
//! channel, so its `sha` is the trust anchor; the unverified connection
//! carries nothing but a certificate checked against it.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::exchange;
use crate::error::{CliError, Result};
use crate::wire::Root;

/// The root a step token names, from the CA at `host:port`, as PEM.
pub(crate) async fn root_for_token(host: &str, port: u16, sha: &str) -> Result<String> {
    let sha = sha.to_ascii_lowercase();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CliError::usage(format!(
            "the token's root fingerprint (sha) {sha:?} is not a SHA-256"
        )));
    }
    let provider = crate::platform::tls::crypto_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Network(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        .with_no_client_auth();
    let path = format!("/root/{sha}");
    let answer: Root = exchange(
        config,
        &super::Endpoint {
            host,
            port,
            addr: None,
        },
        None,
        "GET",
        &path,
        None,
    )
    .await?
    .answer(200)?;
    let der = fedpki_core::encoding::pem_one(&answer.ca, "CERTIFICATE")
        .map_err(|e| CliError::Network(format!("https://{host}:{port}{path}: {e}")))?;
    if fedpki_core::issue::fingerprint_der(&der) != sha {
        return Err(CliError::Network(format!(
            "https://{host}:{port}{path} answered with a certificate that is not the token's \
             root (its SHA-256 differs): not the CA the token is for; nothing was sent to it"
        )));
    }
    Ok(answer.ca)
}

/// Accepts any certificate chain, and still checks the handshake's
/// signatures: only for the one request above, whose answer is checked
/// by hash.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
