//! A mutual-TLS handshake between two holders of fedpki certificates, over
//! loopback TCP with rustls/webpki: the server requires and verifies a
//! client certificate, the client verifies the server's name. Used by the
//! tests and by the README's demo.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// One side's files.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// Certificate chain PEM (leaf first).
    pub cert: &'a Path,
    /// Private key PEM.
    pub key: &'a Path,
    /// Trust anchor(s) PEM.
    pub trust: &'a Path,
}

/// What each side saw of the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The client certificate's common name, as the server verified it.
    pub server_saw_client: String,
    /// The server certificate's common name, as the client verified it.
    pub client_saw_server: String,
    /// The TLS version negotiated.
    pub version: String,
}

fn load(
    id: Identity<'_>,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        PrivateKeyDer<'static>,
        RootCertStore,
    ),
    String,
> {
    let certs = CertificateDer::pem_file_iter(id.cert)
        .map_err(|e| format!("{}: {e}", id.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", id.cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(id.key).map_err(|e| format!("{}: {e}", id.key.display()))?;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(id.trust)
        .map_err(|e| format!("{}: {e}", id.trust.display()))?
    {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", id.trust.display()))?;
    }
    Ok((certs, key, roots))
}

fn cn_of(der: &CertificateDer<'_>) -> String {
    fedpki_core::issue::parse_cert_der(der.as_ref())
        .ok()
        .and_then(|c| fedpki_core::chain::common_name(&c))
        .unwrap_or_default()
}

/// Run the handshake: `server` listens on loopback, `client` connects to
/// `server_name`; each writes a line and reads the other's.
pub async fn handshake(
    server: Identity<'_>,
    client: Identity<'_>,
    server_name: &str,
) -> Result<Handshake, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (s_certs, s_key, s_roots) = load(server)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(s_roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let s_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(s_certs, s_key)
        .map_err(|e| format!("server identity: {e}"))?;
    let (c_certs, c_key, c_roots) = load(client)?;
    let c_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(c_roots)
        .with_client_auth_cert(c_certs, c_key)
        .map_err(|e| format!("client identity: {e}"))?;

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = TlsAcceptor::from(Arc::new(s_cfg));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("server side: {e}"))?;
        let peer = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(cn_of)
            .ok_or("no client certificate")?;
        tls.write_all(b"hello from the aggregator\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await.map_err(|e| e.to_string())?;
        if !buf[..n].starts_with(b"hello from") {
            return Err("the client's message did not arrive".to_string());
        }
        let _ = tls.shutdown().await;
        Ok::<_, String>(peer)
    });

    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let connect = TlsConnector::from(Arc::new(c_cfg)).connect(name, tcp).await;
    let mut tls = match connect {
        Ok(t) => t,
        Err(e) => {
            server_task.abort();
            return Err(format!("client side: {e}"));
        }
    };
    let (conn_version, server_cn) = {
        let conn = tls.get_ref().1;
        (
            conn.protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            conn.peer_certificates()
                .and_then(|c| c.first())
                .map(cn_of)
                .unwrap_or_default(),
        )
    };
    tls.write_all(b"hello from the collaborator\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = tls
        .read(&mut buf)
        .await
        .map_err(|e| format!("client read: {e}"))?;
    if !buf[..n].starts_with(b"hello from") {
        return Err("the server's message did not arrive".into());
    }
    let client_cn = server_task.await.map_err(|e| e.to_string())??;
    Ok(Handshake {
        server_saw_client: client_cn,
        client_saw_server: server_cn,
        version: conn_version,
    })
}
