//! The CA's HTTPS server: TLS (rustls, ring provider), HTTP/1.1 (hyper),
//! step-ca's JSON API. This layer only decodes, limits and maps errors; the
//! [`Authority`] decides.

pub(crate) mod limits;
pub(crate) mod web;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use fedpki_core::name::{San, Subject};
use fedpki_core::{PrivateKey, SigningKey};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authority::Authority;
use crate::authority::crl_number;
use crate::error::{CliError, Result};
use crate::platform::log;
use crate::platform::sys::now;
use crate::platform::tls::{IO_TIMEOUT, crypto_provider};

/// Largest request body accepted (413 beyond).
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Lifetime of the server's own TLS certificate; renewed at two thirds.
pub(crate) const TLS_CERT_LIFETIME_SECS: u64 = 24 * 3600;

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
        let mut names = vec![San::parse(host)?];
        if host == "localhost" {
            names.push(San::parse("127.0.0.1")?);
            names.push(San::parse("::1")?);
        }
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
                &authority.certs().intermediate,
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

pub(crate) use crate::api::limits::Limits;
use crate::api::limits::{ConnectionsByAddress, LogThrottle, RateWindow};

/// The current CRL, re-signed after each revocation and at two thirds of
/// its life. Refreshes run one at a time, and a refresh that started after
/// a revocation was committed always covers it: each caller takes a ticket
/// after its commit, and a CRL is built only after reading the highest
/// ticket so far, so concurrent revocations can never leave an older CRL
/// served (each returns once a CRL with its revocation is published).
struct CrlCache {
    der: RwLock<Bytes>,
    tickets: std::sync::atomic::AtomicU64,
    state: tokio::sync::Mutex<CrlState>,
}

struct CrlState {
    /// Every ticket up to this one is covered by the published CRL.
    published: u64,
    last_number: u64,
}

impl CrlCache {
    /// `last_number`: the number of the CRL on disk, so numbers keep
    /// growing across restarts whatever the clock does.
    fn new(last_number: u64) -> Self {
        Self {
            der: RwLock::new(Bytes::new()),
            tickets: std::sync::atomic::AtomicU64::new(0),
            state: tokio::sync::Mutex::new(CrlState {
                published: 0,
                last_number,
            }),
        }
    }

    /// Publish a CRL that holds every revocation committed before this call
    /// (and write it to the CA folder).
    async fn refresh(&self, authority: &Authority, file: Option<&std::path::Path>) -> Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        let ticket = self.tickets.fetch_add(1, SeqCst) + 1;
        let mut state = self.state.lock().await;
        if state.published >= ticket {
            return Ok(());
        }
        let covers = self.tickets.load(SeqCst);
        let number = crl_number(state.last_number);
        let der = authority.crl(number, now()).await?;
        if let Some(path) = file {
            crate::platform::sys::write_atomic(path, &der, 0o644)?;
        }
        if let Ok(mut cur) = self.der.write() {
            *cur = Bytes::from(der);
        }
        state.last_number = number;
        state.published = covers;
        Ok(())
    }
}

/// The cRLNumber of the CRL in `file`, or 0.
fn crl_number_on_disk(file: Option<&std::path::Path>) -> u64 {
    file.and_then(|p| std::fs::read(p).ok())
        .and_then(|der| fedpki_core::crl::Crl::parse(&der).ok())
        .and_then(|crl| crl.number())
        .unwrap_or(0)
}

struct App {
    authority: Authority,
    /// Hex SHA-256 of the root's DER, for `GET /root/{sha}`.
    root_sha: String,
    crl: CrlCache,
    crl_file: Option<std::path::PathBuf>,
    /// Failed token and certificate checks per address.
    failures: RateWindow,
    /// Renewals per address.
    renewals: RateWindow,
    limits: Limits,
}

/// What a connection's TLS handshake established about the client.
struct Peer {
    addr: SocketAddr,
    /// The certificate the client presented (already verified by rustls
    /// to chain to the root and to be valid now), if any.
    cert: Option<x509_cert::Certificate>,
}

/// Serve until `shutdown` resolves, then finish in-flight requests (up to
/// 10 s) and return. `crl_file`, when given, receives every CRL signed.
pub(crate) async fn serve(
    listener: TcpListener,
    authority: Authority,
    tls_key: PrivateKey,
    host: &str,
    limits: Limits,
    crl_file: Option<std::path::PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let identity = Arc::new(TlsIdentity::new(&authority, host, tls_key).await?);
    let root_der = fedpki_core::issue::cert_der(&authority.certs().root)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(identity.clone(), &root_der)?));
    let root_sha = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&root_der));
    let app = Arc::new(App {
        authority,
        root_sha,
        crl: CrlCache::new(crl_number_on_disk(crl_file.as_deref())),
        crl_file,
        failures: RateWindow::default(),
        renewals: RateWindow::default(),
        limits,
    });
    app.crl
        .refresh(&app.authority, app.crl_file.as_deref())
        .await?;
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let by_address = Arc::new(ConnectionsByAddress::default());
    let refused_log = LogThrottle::default();
    let handshake_log = Arc::new(LogThrottle::default());

    // Renew the TLS certificate at two thirds of its life; prune burnt
    // token ids that can no longer be replayed.
    let housekeeping = {
        let app = app.clone();
        let identity = identity.clone();
        tokio::spawn(async move {
            let mut renew =
                tokio::time::interval(Duration::from_secs(TLS_CERT_LIFETIME_SECS * 2 / 3));
            let mut prune = tokio::time::interval(Duration::from_secs(3600));
            let mut crl = tokio::time::interval(Duration::from_secs(
                crate::authority::CRL_LIFETIME_SECS * 2 / 3,
            ));
            renew.tick().await;
            crl.tick().await;
            loop {
                tokio::select! {
                    _ = renew.tick() => match identity.renew(&app.authority).await {
                        Ok(()) => log::info("tls_renewed", &[]),
                        Err(e) => log::error("tls_renew_failed", &[("error", &e.to_string())]),
                    },
                    _ = crl.tick() => {
                        if let Err(e) = app.crl.refresh(&app.authority, app.crl_file.as_deref()).await {
                            log::error("crl_refresh_failed", &[("error", &e.to_string())]);
                        }
                    }
                    _ = prune.tick() => {
                        if let Ok(n) = app.authority.store().prune(now().0).await
                            && n > 0
                        {
                            log::info("pruned_tokens", &[("count", &n.to_string())]);
                        }
                    }
                }
            }
        })
    };

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    let store = app.authority.store().clone();
    let store_failed = store.failed();
    tokio::pin!(store_failed);
    let mut failure = None;
    loop {
        let (tcp, peer) = tokio::select! {
            why = &mut store_failed => {
                log::error("store_failed", &[("reason", &why)]);
                failure = Some(why);
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    log::warn("accept_failed", &[("error", &e.to_string())]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Beyond either cap: close at once rather than queue (the kernel's
        // backlog would only delay the refusal).
        let Some(slot) = by_address.take(peer.ip(), limits.max_connections_per_address) else {
            drop(tcp);
            refused_log.warn("connection_refused_per_address", &peer);
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(tcp);
            refused_log.warn("connection_refused_at_cap", &peer);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let handshake_log = handshake_log.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let tls = match tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    handshake_log.warn_with("tls_handshake_failed", &peer, &e.to_string());
                    return;
                }
                Err(_) => return,
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|der| fedpki_core::issue::parse_cert_der(der.as_ref()).ok());
            let who = Arc::new(Peer { addr: peer, cert });
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                let who = who.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(with_transport_headers(
                        route(&app, req, &who).await,
                    ))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(IO_TIMEOUT)
                .max_buf_size(MAX_BODY + 16 * 1024)
                .serve_connection(TokioIo::new(tls), service);
            let _ = watcher.watch(conn).await;
        });
    }
    housekeeping.abort();
    log::info("shutting_down", &[]);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        log::warn("shutdown_timeout", &[]);
    }
    match failure {
        // A store that can no longer vouch for its writes must not answer:
        // stop, and let the next start recover from the audit log.
        Some(why) => Err(CliError::Store(format!(
            "the CA stopped: {why}. Start it again (`fedpki pki run`): it recovers from the audit log"
        ))),
        None => Ok(()),
    }
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// 429 with `Retry-After: wait`.
fn too_many(wait: u64, message: &str) -> Response<Full<Bytes>> {
    let mut resp = error(429, message);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    resp
}

/// The HTTP status of each reason for a refusal (step-ca's choices).
fn status_of(why: crate::authority::Why) -> u16 {
    use crate::authority::Why;
    match why {
        Why::Malformed => 400,
        Why::NotAuthorized => 401,
        Why::Forbidden => 403,
        Why::Unknown => 404,
        Why::Internal => 500,
        Why::Unavailable => 503,
    }
}

fn error(status: u16, message: &str) -> Response<Full<Bytes>> {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(
        code,
        &serde_json::json!({"status": status, "message": message}),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignRequest {
    csr: String,
    ott: String,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
}

/// How much of an oversized body is read and thrown away before the 413,
/// so a client still writing it gets the answer instead of a reset
/// (nginx's "lingering close"); beyond this the connection is just closed.
pub(crate) const LINGER_LIMIT: usize = 2 * 1024 * 1024;

async fn read_body(req: Request<Incoming>) -> std::result::Result<Bytes, Response<Full<Bytes>>> {
    let too_large = || {
        error(
            413,
            &format!("the request body is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = req.into_body();
    if declared.is_some_and(|len| len > MAX_BODY) {
        linger(&mut body).await;
        return Err(too_large());
    }
    let mut buf = Vec::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| error(400, "the request body could not be read"))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_BODY {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(IO_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(Bytes::from(buf)),
        Ok(Err(resp)) => {
            linger(&mut body).await;
            Err(resp)
        }
        Err(_) => Err(error(408, "the request body did not arrive in time")),
    }
}

/// Read and discard up to [`LINGER_LIMIT`] bytes, within [`IO_TIMEOUT`].
async fn linger(body: &mut Incoming) {
    let drain = async {
        let mut seen = 0usize;
        while seen < LINGER_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(IO_TIMEOUT, drain).await;
}

async fn route(app: &App, req: Request<Incoming>, peer: &Peer) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let certs = app.authority.certs();
    if method == Method::GET
        && let Some((content_type, bytes)) = crate::api::web::asset(&path)
    {
        return page_response(content_type, Bytes::from_static(bytes));
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/health" | "/1.0/health") => {
            if app.authority.store().disk_full() {
                json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"status": "unavailable", "store": "disk full"}),
                )
            } else {
                json(StatusCode::OK, &serde_json::json!({"status": "ok", "store": "ok"}))
            }
        }
        (&Method::GET, "/roots" | "/1.0/roots") => json(
            StatusCode::OK,
            &serde_json::json!({"crts": [certs.root_pem]}),
        ),
        (&Method::GET, p) if p.starts_with("/root/") || p.starts_with("/1.0/root/") => {
            let sha = p.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            if sha == app.root_sha {
                json(StatusCode::OK, &serde_json::json!({"ca": certs.root_pem}))
            } else {
                error(404, "no root certificate with that SHA-256 here")
            }
        }
        (&Method::GET, "/crl" | "/1.0/crl") => {
            let der = app.crl.der.read().map(|d| d.clone()).unwrap_or_default();
            let mut resp = Response::new(Full::new(der));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/pkix-crl"),
            );
            resp
        }
        (&Method::POST, "/1.0/sign" | "/sign" | "/1.0/renew" | "/renew" | "/1.0/revoke" | "/revoke") => {
            let ip = peer.addr.ip();
            let is_renewal = matches!(path.as_str(), "/1.0/renew" | "/renew");
            if is_renewal && let Some(wait) = app.renewals.over(ip, app.limits.renewals_per_minute) {
                return too_many(wait, "too many renewals from this address; try again in a minute");
            }
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let resp = match path.as_str() {
                "/1.0/sign" | "/sign" => answer_sign(&app.authority, &body, ip).await,
                "/1.0/renew" | "/renew" => renew(app, peer).await,
                _ => revoke(app, &body, peer).await,
            };
            if is_renewal && resp.status() == StatusCode::CREATED {
                app.renewals.count(ip);
            }
            if resp.status() != StatusCode::UNAUTHORIZED {
                return resp;
            }
            // Every request is checked, so a valid token or certificate is
            // never locked out by others' failures from the same address;
            // past the limit, failures only learn that they failed.
            let wait = app.failures.over(ip, app.limits.auth_failures_per_minute);
            app.failures.count(ip);
            match wait {
                Some(wait) => too_many(
                    wait,
                    "too many failed token checks from this address; try again in a minute",
                ),
                None => resp,
            }
        }
        (&Method::GET, "/" | "/index.html") => page_response(
            "text/plain; charset=utf-8",
            Bytes::from_static(
                b"fedpki CA: the certify page is not built into this binary (run scripts/build-wasm, then rebuild).\n",
            ),
        ),
        (
            _,
            "/health" | "/roots" | "/1.0/sign" | "/sign" | "/1.0/renew" | "/1.0/revoke" | "/crl",
        ) => error(405, "method not allowed"),
        _ => error(404, "no such route"),
    }
}

/// Headers every answer carries: browsers keep to HTTPS for this host
/// (HSTS, a year) and never guess a type other than the one sent.
fn with_transport_headers(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    use hyper::header::{self, HeaderValue};
    let h = resp.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// A page file with its security headers.
fn page_response(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    use hyper::header::{self, HeaderValue};
    let mut resp = Response::new(Full::new(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::api::web::CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Decode a `/1.0/sign` body: the CSR and the token, or the status and
/// message to refuse it with.
pub(crate) fn decode_sign(body: &[u8]) -> std::result::Result<(String, String), (u16, String)> {
    let req: SignRequest = serde_json::from_slice(body).map_err(|e| {
        (
            400,
            format!("the body must be JSON {{\"csr\": PEM, \"ott\": token}}: {e}"),
        )
    })?;
    if req.not_before.as_deref().is_some_and(|s| !s.is_empty())
        || req.not_after.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Err((
            403,
            "this CA sets the validity itself; omit notBefore and notAfter".into(),
        ));
    }
    Ok((req.csr, req.ott))
}

/// `POST /1.0/sign` once its body is read: the answer, logged. Public for
/// the benchmark of the request path (`fedpki-load path`).
pub async fn answer_sign(
    authority: &Authority,
    body: &[u8],
    peer: std::net::IpAddr,
) -> Response<Full<Bytes>> {
    let (csr, ott) = match decode_sign(body) {
        Ok(r) => r,
        Err((status, message)) => return error(status, &message),
    };
    issued_response("issued", authority.sign(&csr, &ott, now()).await, peer)
}

fn issued_response(
    what: &str,
    result: std::result::Result<crate::authority::Issued, crate::authority::Refusal>,
    peer: std::net::IpAddr,
) -> Response<Full<Bytes>> {
    let peer_s = peer.to_string();
    match result {
        Ok(issued) => {
            log::info(
                what,
                &[
                    ("peer", &peer_s),
                    ("subject", &issued.subject),
                    ("serial", &issued.serial),
                ],
            );
            json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "crt": issued.crt,
                    "ca": issued.ca,
                    "certChain": [issued.crt, issued.ca],
                }),
            )
        }
        Err(refusal) => refused(&refusal, peer),
    }
}

fn refused(refusal: &crate::authority::Refusal, peer: std::net::IpAddr) -> Response<Full<Bytes>> {
    log::warn(
        "refused",
        &[
            ("peer", &peer.to_string()),
            ("status", &status_of(refusal.why).to_string()),
            ("reason", &refusal.message),
        ],
    );
    error(status_of(refusal.why), &refusal.message)
}

async fn renew(app: &App, peer: &Peer) -> Response<Full<Bytes>> {
    let Some(cert) = &peer.cert else {
        return error(
            401,
            "renewal needs the current certificate, presented over mutual TLS",
        );
    };
    issued_response(
        "renewed",
        app.authority.renew(cert, now()).await,
        peer.addr.ip(),
    )
}

/// `POST /1.0/revoke`, as step-ca's: `{"serial", "ott"?, "reasonCode"?,
/// "reason"?, "passive"?}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevokeRequest {
    serial: String,
    #[serde(default)]
    ott: Option<String>,
    #[serde(default)]
    reason_code: Option<u8>,
}

/// A decoded `/1.0/revoke` body.
#[derive(Debug)]
pub(crate) struct Revoke {
    /// The serial, as sent.
    pub serial: String,
    /// The revoke token, if any (empty counts as none).
    pub ott: Option<String>,
    /// The reason.
    pub reason: fedpki_core::crl::Reason,
}

/// Decode a `/1.0/revoke` body, or the status and message to refuse it with.
pub(crate) fn decode_revoke(body: &[u8]) -> std::result::Result<Revoke, (u16, String)> {
    let req: RevokeRequest = serde_json::from_slice(body).map_err(|e| {
        (
            400,
            format!(
                "the body must be JSON {{\"serial\": hex, \"ott\": revoke token, \"reasonCode\": n}}: {e}"
            ),
        )
    })?;
    let reason = match req.reason_code {
        None => fedpki_core::crl::Reason::Unspecified,
        Some(c) => fedpki_core::crl::Reason::from_code(c)
            .ok_or_else(|| (400, format!("reasonCode {c} is not accepted by this CA")))?,
    };
    Ok(Revoke {
        serial: req.serial,
        ott: req.ott.filter(|o| !o.is_empty()),
        reason,
    })
}

async fn revoke(app: &App, body: &[u8], peer: &Peer) -> Response<Full<Bytes>> {
    let req = match decode_revoke(body) {
        Ok(r) => r,
        Err((status, message)) => return error(status, &message),
    };
    let (reason, t) = (req.reason, now());
    let result = match (req.ott.as_deref(), &peer.cert) {
        (Some(ott), _) => {
            app.authority
                .revoke_with_token(&req.serial, ott, reason, t)
                .await
        }
        (None, Some(cert)) => {
            app.authority
                .revoke_by_holder(cert, &req.serial, reason, t)
                .await
        }
        (None, None) => {
            return error(
                401,
                "send a revoke token (ott), or present the certificate itself over mutual TLS",
            );
        }
    };
    match result {
        Ok(done) => {
            if !done.already {
                log::info(
                    "revoked",
                    &[
                        ("peer", &peer.addr.ip().to_string()),
                        ("serial", &done.record.serial),
                        ("reason_code", &done.record.reason.to_string()),
                    ],
                );
                if let Err(e) = app
                    .crl
                    .refresh(&app.authority, app.crl_file.as_deref())
                    .await
                {
                    log::error("crl_refresh_failed", &[("error", &e.to_string())]);
                    return error(
                        500,
                        "the revocation is recorded, but the CRL could not be re-signed; it will be at the next refresh",
                    );
                }
            }
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "status": "ok",
                    "serial": done.record.serial,
                    "revokedAt": done.record.revoked_at,
                    "reasonCode": done.record.reason,
                    "alreadyRevoked": done.already,
                }),
            )
        }
        Err(refusal) => refused(&refusal, peer.addr.ip()),
    }
}

/// Entry points for the fuzzers in `fuzz/`: the request decoders and the
/// authority behind them, over an in-memory store.
#[doc(hidden)]
pub(crate) mod fuzz {
    use std::sync::OnceLock;

    use crate::authority::Authority;
    use crate::ca::{self, CaCerts, CaPaths};
    use crate::store::{MemoryBackend, Store};

    struct Fixture {
        rt: tokio::runtime::Runtime,
        authority: Authority,
    }

    #[allow(clippy::expect_used)] // a fuzzing fixture: it works or the run stops
    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("fedpki-fuzz-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let paths = CaPaths::new(&dir);
            let pw = "fuzz-password";
            let config = ca::install(
                &paths,
                "localhost:9123",
                pw,
                true,
                ca::Lifetimes {
                    leaf_secs: 3600,
                    max_token_secs: fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS,
                },
            )
            .expect("fuzz CA");
            let certs = CaCerts::load(&paths, &config).expect("fuzz CA certs");
            let key = ca::unlock_key(&paths.intermediate_key(), pw).expect("fuzz CA key");
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let store = Store::start(MemoryBackend::default()).expect("store");
            let authority = Authority::new(config, certs, key, store).expect("authority");
            Fixture { rt, authority }
        })
    }

    /// First byte: the route (sign, revoke, renew); the rest: the body, or
    /// for renew the presented certificate's DER.
    pub fn requests(data: &[u8]) {
        let Some((route, body)) = data.split_first() else {
            return;
        };
        let f = fixture();
        let now = crate::platform::sys::now();
        f.rt.block_on(async {
            match route % 3 {
                0 => {
                    if let Ok((csr, ott)) = super::decode_sign(body) {
                        let _ = f.authority.sign(&csr, &ott, now).await;
                    }
                }
                1 => {
                    if let Ok(r) = super::decode_revoke(body) {
                        let _ = match &r.ott {
                            Some(ott) => {
                                f.authority
                                    .revoke_with_token(&r.serial, ott, r.reason, now)
                                    .await
                            }
                            None => {
                                f.authority
                                    .revoke_by_operator(&r.serial, r.reason, now)
                                    .await
                            }
                        };
                    }
                }
                _ => {
                    if let Ok(cert) = fedpki_core::issue::parse_cert_der(body) {
                        let _ = f.authority.renew(&cert, now).await;
                    }
                }
            }
        });
    }
}
