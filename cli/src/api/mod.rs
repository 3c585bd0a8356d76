//! The CA's HTTPS server: TLS (rustls, ring provider), HTTP/1.1 (hyper),
//! step-ca's JSON API. This layer only decodes, limits and maps errors; the
//! [`Authority`] decides.

mod answer;
mod body;
mod crl;
pub(crate) mod fuzz;
pub(crate) mod handlers;
pub(crate) mod limits;
pub(crate) mod listen;
pub(crate) mod metrics;
mod replicas;
mod routes;
mod stall;
mod tls;
pub(crate) mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fedpki_core::PrivateKey;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use self::answer::with_transport_headers;
use self::crl::CrlCache;
use self::routes::route;
use self::tls::{TLS_CERT_LIFETIME_SECS, TlsIdentity, tls_config};
use crate::authority::Authority;
use crate::error::{CliError, Result};
use crate::platform::events::{self, Event};
use crate::platform::log;
use crate::platform::sys::now;
use crate::platform::tls::IO_TIMEOUT;

/// Largest request body accepted (413 beyond).
pub(crate) const MAX_BODY: usize = 64 * 1024;
pub(crate) use crate::api::limits::Limits;
use crate::api::limits::{ConnectionsByAddress, RateWindow};
use crate::platform::log::LogThrottle;

struct App {
    authority: Authority,
    /// Hex SHA-256 of the root's DER, for `GET /root/{sha}`.
    root_sha: String,
    /// `GET /provisioners`, encoded once.
    provisioners: bytes::Bytes,
    crl: CrlCache,
    folder: Option<Folder>,
    /// Failed token and certificate checks per address.
    failures: RateWindow,
    /// Renewals per address.
    renewals: RateWindow,
    limits: Limits,
}

/// What the server knows of its CA folder.
pub(crate) struct Folder {
    /// Where every CRL signed is written and the root's CRL is read.
    pub paths: crate::ca::CaPaths,
    /// Unlock the folder's intermediates (and the root's CRL) again: on
    /// SIGHUP, which `pki intermediate activate` and `pki install
    /// --root-crl` send, the server takes up what this returns.
    pub reload: Arc<dyn Fn() -> Result<crate::ca::issuers::IssuerKeys> + Send + Sync>,
    /// The shared ledger this replica hears the others on, if any.
    pub replicas: Option<crate::store::postgres::PgLocation>,
}

impl App {
    fn paths(&self) -> Option<&crate::ca::CaPaths> {
        self.folder.as_ref().map(|f| &f.paths)
    }
}

/// How long one connection may serve requests: its answers after this
/// close it (`Connection: close`), so a keep-alive client reconnects.
const CONNECTION_SOFT_AGE: Duration = Duration::from_secs(60);
/// How long one connection may live at all, its handshake included: a
/// client that keeps a slow read just ahead of every deadline is cut off
/// here.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(120);

/// What a connection's TLS handshake established about the client.
struct Peer {
    addr: SocketAddr,
    /// When the connection was accepted.
    since: std::time::Instant,
    /// The certificate the client presented (already verified by rustls
    /// to chain to the root and to be valid now), if any.
    cert: Option<fedpki_core::Certificate>,
}

/// Serve until `shutdown` resolves, then finish in-flight requests (up to
/// 10 s) and return. `folder`, when given, receives every CRL signed.
pub(crate) async fn serve(
    listeners: listen::Listeners,
    authority: Authority,
    tls_key: PrivateKey,
    host: &str,
    limits: Limits,
    folder: Option<Folder>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let identity = Arc::new(TlsIdentity::new(&authority, host, tls_key).await?);
    let root_der = fedpki_core::issue::cert_der(&authority.issuers().certs().root)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(identity.clone(), &root_der)?));
    let config = authority.config();
    let listing = crate::wire::Provisioners::of(
        &config.provisioner.name,
        &config.provisioner.kid,
        &config.provisioner_key()?,
    )
    .ok_or_else(|| CliError::CorruptCa("the provisioner key is not P-256".into()))?;
    let provisioners = bytes::Bytes::from(
        serde_json::to_vec(&listing).map_err(|e| CliError::Store(e.to_string()))?,
    );
    let app = Arc::new(App {
        authority,
        provisioners,
        root_sha: fedpki_core::issue::fingerprint_der(&root_der),
        // The active intermediate's last CRL: numbers keep growing across
        // restarts whatever the clock does.
        crl: CrlCache::new(
            folder
                .as_ref()
                .and_then(|f| crate::ca::crl_number_in(&f.paths.crl()))
                .unwrap_or(0),
        ),
        folder,
        failures: RateWindow::default(),
        renewals: RateWindow::default(),
        limits,
    });
    app.crl.refresh(&app.authority, app.paths()).await?;
    let housekeeping = housekeeping(app.clone(), identity.clone());
    let listening = app
        .folder
        .as_ref()
        .and_then(|f| f.replicas.clone())
        .map(|location| tokio::spawn(replicas::listen(app.clone(), identity.clone(), location)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Its TLS identity and CRLs made: a service manager may send clients.
    crate::platform::service::ready(&format!(
        "serving https://{}",
        app.authority.config().ca_url
    ));
    let failure = accept_until(&listeners, &acceptor, &app, &graceful, shutdown).await;
    crate::platform::service::stopping();
    housekeeping.abort();
    if let Some(l) = listening {
        l.abort();
    }
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

/// What stands in front of every connection: the caps on connections in
/// all and per address, and the throttled logs of what they turn away.
#[derive(Default)]
struct Gates {
    by_address: Arc<ConnectionsByAddress>,
    refused_log: LogThrottle,
    handshake_log: Arc<LogThrottle>,
}

/// Accept connections until `shutdown` resolves (`None`) or the store
/// fails (`Some(why)`), each served on its own task.
async fn accept_until(
    listeners: &listen::Listeners,
    acceptor: &TlsAcceptor,
    app: &Arc<App>,
    graceful: &hyper_util::server::graceful::GracefulShutdown,
    shutdown: impl std::future::Future<Output = ()>,
) -> Option<String> {
    let limits = app.limits;
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let gates = Gates::default();
    tokio::pin!(shutdown);
    let store = app.authority.store().clone();
    let store_failed = store.failed();
    tokio::pin!(store_failed);
    loop {
        let (tcp, peer) = tokio::select! {
            why = &mut store_failed => {
                log::error("store_failed", &[("reason", &why)]);
                return Some(why);
            }
            accepted = listeners.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    log::warn("accept_failed", &[("error", &e.to_string())]);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return None,
        };
        // Beyond either cap: close at once rather than queue (the kernel's
        // backlog would only delay the refusal).
        let Some(slot) = gates
            .by_address
            .take(peer.ip(), limits.max_connections_per_address)
        else {
            gates
                .refused_log
                .warn("connection_refused_per_address", &peer);
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            gates.refused_log.warn("connection_refused_at_cap", &peer);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, watcher) = (acceptor.clone(), app.clone(), graceful.watcher());
        let handshake_log = gates.handshake_log.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            let served = async {
                let Some(conn) = connection(tcp, peer, &acceptor, app, &handshake_log).await else {
                    return;
                };
                let _ = watcher.watch(conn).await;
            };
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, served).await;
        });
    }
}

/// How often a CRL re-signing that failed is tried again.
const CRL_RETRY: Duration = Duration::from_secs(2);

/// Renew the TLS certificate at two thirds of its life, re-sign the CRL at
/// two thirds of its (and retry a failed one until it succeeds), prune
/// burnt token ids that can no longer be replayed.
fn housekeeping(app: Arc<App>, identity: Arc<TlsIdentity>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut renew = tokio::time::interval(Duration::from_secs(TLS_CERT_LIFETIME_SECS * 2 / 3));
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        let mut retry = tokio::time::interval(CRL_RETRY);
        let mut crl = tokio::time::interval(Duration::from_secs(
            crate::authority::CRL_LIFETIME_SECS * 2 / 3,
        ));
        renew.tick().await;
        crl.tick().await;
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hup => take_up_intermediates(&app, &identity).await,
                _ = renew.tick() => match identity.renew(&app.authority).await {
                    Ok(()) => log::info("tls_renewed", &[]),
                    Err(e) => log::error("tls_renew_failed", &[("error", &e.to_string())]),
                },
                _ = crl.tick() => refresh_crls(&app).await,
                _ = retry.tick() => {
                    // A shared database's health is known without waiting
                    // for a request to find it away.
                    let _ = app.authority.store().ping().await;
                    if app.crl.is_stale() {
                        refresh_crls(&app).await;
                        if !app.crl.is_stale() {
                            log::info("crl_refreshed", &[("note", "after a failed re-signing")]);
                        }
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
}

/// Re-sign the CRLs; a failure is logged (and retried while stale).
async fn refresh_crls(app: &App) {
    if let Err(e) = app.crl.refresh(&app.authority, app.paths()).await {
        log::error("crl_refresh_failed", &[("error", &e.to_string())]);
    }
}

/// Unlock the folder's intermediates again and issue from its active one
/// from now on: its CRL and the server's own certificate follow at once.
async fn take_up_intermediates(app: &Arc<App>, identity: &TlsIdentity) {
    let Some(reload) = app.folder.as_ref().map(|f| f.reload.clone()) else {
        return;
    };
    // Decrypting keys takes a moment of CPU: off the async workers.
    let reloaded = tokio::task::spawn_blocking(move || reload())
        .await
        .unwrap_or_else(|e| Err(CliError::Store(format!("the reload stopped: {e}"))));
    match reloaded {
        Ok(keys) => {
            app.authority.replace_issuers(keys);
            let kid = app.authority.issuers().active_kid().to_owned();
            refresh_crls(app).await;
            if let Err(e) = identity.renew(&app.authority).await {
                log::error("tls_renew_failed", &[("error", &e.to_string())]);
            }
            log::info("intermediate_taken_up", &[("key_id", &kid)]);
        }
        Err(e) => log::error(
            "intermediate_reload_failed",
            &[
                ("error", &e.to_string()),
                ("kept", app.authority.issuers().active_kid()),
            ],
        ),
    }
}

/// Complete one connection's TLS handshake (within [`IO_TIMEOUT`]) and
/// make its HTTP/1.1 connection; `None` when the handshake failed.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    app: Arc<App>,
    handshake_log: &LogThrottle,
) -> Option<impl hyper_util::server::graceful::GracefulConnection> {
    let since = std::time::Instant::now();
    let tls = match tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            handshake_log.warn_with("tls_handshake_failed", &peer, &e.to_string());
            return None;
        }
        Err(_) => return None,
    };
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|der| fedpki_core::issue::parse_cert_der(der.as_ref()).ok());
    let who = Arc::new(Peer {
        addr: peer,
        since,
        cert,
    });
    let service = hyper::service::service_fn(move |req| {
        let app = app.clone();
        let who = who.clone();
        async move {
            let started = std::time::Instant::now();
            let name = routes::name_of(req.method(), req.uri().path());
            let mut resp = with_transport_headers(route(&app, req, &who).await);
            events::report(&Event::Served {
                route: name,
                status: resp.status().as_u16(),
                elapsed: started.elapsed(),
            });
            if who.since.elapsed() >= CONNECTION_SOFT_AGE {
                resp.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    // Reads are bounded by the header and body timeouts; writes here.
    let stream = stall::WriteDeadline::new(tls);
    Some(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(IO_TIMEOUT)
            .max_buf_size(MAX_BODY + 16 * 1024)
            .serve_connection(TokioIo::new(stream), service),
    )
}
