//! The certify client: HTTPS to the CA named in a token, trusting only the
//! token's root; nothing is sent until the server has proven it holds a
//! certificate chaining to that root for the token's host.

mod bootstrap;
mod certify;
pub(crate) mod inspect;
pub(crate) mod revocation;

pub(crate) use self::certify::certify;

use std::sync::Arc;

use bytes::Bytes;
use fedpki_core::PrivateKey;
use fedpki_core::issue;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{CliError, Result};
use crate::wire::ErrorBody;

/// An `https://HOST:PORT/PATH` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpsUrl {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
}

impl HttpsUrl {
    /// Parse; only `https` is accepted.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| CliError::usage(format!("{url:?} is not an https:// URL")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let at = crate::address::CaAddress::parse(&format!("https://{authority}"))?;
        Ok(Self {
            host: at.host,
            port: at.port,
            path: path.to_owned(),
        })
    }
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Bytes,
}

/// A client certificate chain and its key, for mutual TLS.
#[derive(Debug)]
pub struct ClientAuth {
    /// Leaf first, then the intermediate.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 DER of the key.
    pub key: rustls_pki_types::PrivateKeyDer<'static>,
}

impl ClientAuth {
    /// From a `<name>.crt` chain and a PKCS#8 key.
    pub fn new(chain: &[fedpki_core::Certificate], key: &PrivateKey) -> Result<Self> {
        let chain = chain
            .iter()
            .map(|c| issue::cert_der(c).map(CertificateDer::from))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let der = key.to_pkcs8_der()?;
        Ok(Self {
            chain,
            key: rustls_pki_types::PrivateKeyDer::Pkcs8(der.to_vec().into()),
        })
    }
}

/// One HTTPS request to `host:port`, trusting only `root_der`, checking the
/// server's name against `host`.
pub async fn https_request(
    host: &str,
    port: u16,
    root_der: &[u8],
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse> {
    https_request_as(host, port, root_der, None, method, path, body).await
}

/// [`https_request`], presenting a client certificate when `client` is given.
pub async fn https_request_as(
    host: &str,
    port: u16,
    root_der: &[u8],
    client: Option<&ClientAuth>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse> {
    let to = Endpoint {
        host,
        port,
        addr: None,
    };
    request_under_root(&to, root_der, client, method, path, body).await
}

/// [`https_request_as`] to the server at `addr`, which must prove it is
/// `host` (one replica of several that share a name, as a load balancer
/// would reach it).
#[allow(clippy::too_many_arguments)]
pub async fn https_request_at(
    addr: std::net::SocketAddr,
    host: &str,
    root_der: &[u8],
    client: Option<&ClientAuth>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse> {
    let to = Endpoint {
        host,
        port: addr.port(),
        addr: Some(addr),
    };
    request_under_root(&to, root_der, client, method, path, body).await
}

/// One request to `to`, which must show a certificate from `root_der`.
async fn request_under_root(
    to: &Endpoint<'_>,
    root_der: &[u8],
    client: Option<&ClientAuth>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse> {
    let trust = ServerTrust {
        root_der,
        tls_key_sha256: None,
    };
    exchange(tls_config(&trust, client)?, to, None, method, path, body).await
}

/// Whom a request goes to: the name the server must prove, and where it
/// is reached (`addr`, or `host` looked up).
#[derive(Debug, Clone, Copy)]
struct Endpoint<'a> {
    host: &'a str,
    port: u16,
    addr: Option<std::net::SocketAddr>,
}

/// Whom a request may go to: a server with a certificate chaining to
/// `root_der` for the host, and, when `tls_key_sha256` is given (a fedpki
/// token's `tlsKeySha256`), whose key hashes to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerTrust<'a> {
    /// The root's DER.
    pub root_der: &'a [u8],
    /// Hex SHA-256 of the server key's SubjectPublicKeyInfo.
    pub tls_key_sha256: Option<&'a str>,
}

/// One HTTPS request to a server `trust` accepts; nothing is sent to any
/// other.
pub(crate) async fn https_request_to(
    host: &str,
    port: u16,
    trust: &ServerTrust<'_>,
    client: Option<&ClientAuth>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse> {
    let config = tls_config(trust, client)?;
    let to = Endpoint {
        host,
        port,
        addr: None,
    };
    exchange(config, &to, trust.tls_key_sha256, method, path, body).await
}

/// rustls's configuration for a server `trust` accepts.
fn tls_config(
    trust: &ServerTrust<'_>,
    client: Option<&ClientAuth>,
) -> Result<rustls::ClientConfig> {
    let root_der = trust.root_der;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root_der.to_vec()))
        .map_err(|e| CliError::Network(format!("the token's root certificate is unusable: {e}")))?;
    let builder =
        rustls::ClientConfig::builder_with_provider(crate::platform::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| CliError::Network(e.to_string()))?
            .with_root_certificates(roots);
    Ok(match client {
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .map_err(|e| CliError::Network(format!("the client certificate is unusable: {e}")))?,
        None => builder.with_no_client_auth(),
    })
}

/// One request over a TLS connection made with `config`; with `pin`, the
/// server's key must hash to it.
async fn exchange(
    config: rustls::ClientConfig,
    to: &Endpoint<'_>,
    pin: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse> {
    let Endpoint { host, port, addr } = *to;
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| CliError::usage(format!("{host:?} is not a valid server name: {e}")))?;
    let timeout = crate::platform::tls::IO_TIMEOUT;
    let connecting = async {
        match addr {
            Some(a) => TcpStream::connect(a).await,
            None => TcpStream::connect((host, port)).await,
        }
    };
    let tcp = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| CliError::Network(format!("the CA at {host}:{port} did not answer in time")))?
        .map_err(|e| CliError::Network(format!("cannot reach the CA at {host}:{port}: {e}")))?;
    let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| CliError::Network(format!("the TLS handshake with {host}:{port} timed out")))?
        .map_err(|e| {
            CliError::Network(format!(
                "the server at {host}:{port} did not prove it belongs to the token's CA ({e}); \
                 nothing was sent to it"
            ))
        })?;
    if let Some(pin) = pin {
        check_server_key(&tls, pin, host, port)?;
    }
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| CliError::Network(format!("HTTP to {host}:{port}: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, format!("{host}:{port}"));
    if body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| CliError::Network(e.to_string()))?;
    let resp = tokio::time::timeout(timeout, sender.send_request(req))
        .await
        .map_err(|_| CliError::Network(format!("the CA at {host}:{port} did not answer in time")))?
        .map_err(|e| CliError::Network(format!("HTTP to {host}:{port}: {e}")))?;
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(timeout, resp.into_body().collect())
        .await
        .map_err(|_| CliError::Network("the CA's answer did not arrive in time".into()))?
        .map_err(|e| CliError::Network(format!("reading the CA's answer: {e}")))?
        .to_bytes();
    Ok(HttpResponse { status, body })
}

/// The server proved a certificate chaining to the root; a fedpki token
/// also names its key. A node holding an ordinary certificate for the CA's
/// host name has another key, and is refused here, before the request.
fn check_server_key(
    tls: &tokio_rustls::client::TlsStream<TcpStream>,
    pin: &str,
    host: &str,
    port: u16,
) -> Result<()> {
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| CliError::Network(format!("{host}:{port} presented no certificate")))?;
    let cert = issue::parse_cert_der(leaf)?;
    let seen = cert.public_key().pin();
    if !seen.eq_ignore_ascii_case(pin.trim()) {
        return Err(CliError::Network(format!(
            "the server at {host}:{port} has a certificate from the token's CA but not the CA \
             server's key (the token pins {pin}, the server has {seen}): it is not the CA, \
             perhaps a node with a certificate for that name; nothing was sent to it"
        )));
    }
    Ok(())
}

impl HttpResponse {
    /// The CA's refusal: step-ca's `{"message"}`, or the body as text.
    pub(crate) fn refusal(&self) -> CliError {
        let message = serde_json::from_slice::<ErrorBody>(&self.body)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&self.body).into_owned());
        CliError::Remote {
            status: self.status,
            message,
        }
    }

    /// The body as `T` when the status is `expected`, else the refusal.
    pub(crate) fn answer<T: serde::de::DeserializeOwned>(&self, expected: u16) -> Result<T> {
        if self.status != expected {
            return Err(self.refusal());
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            CliError::Network(format!("the CA's answer is not the expected JSON: {e}"))
        })
    }
}
