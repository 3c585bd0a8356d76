//! `GET /metrics` on the address `pki run --metrics-bind` names, in plain
//! HTTP (a scraper on the operator's network, as Prometheus expects), and
//! nothing else on it: the CA's own port never serves metrics.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::answer::error;
use crate::error::{CliError, Result};
use crate::platform::log;
use crate::platform::metrics::{self, LedgerNow};
use crate::platform::sys::now;
use crate::platform::tls::IO_TIMEOUT;
use crate::store::{InForce, Store};

/// Bind `addr` for the metrics (before the CA serves, so a taken port
/// stops the start with a clear error) and turn the counting on.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        CliError::usage(format!(
            "--metrics-bind {addr}: cannot listen there: {e}. Choose a free ADDRESS:PORT \
             (127.0.0.1:9100 keeps the metrics on this machine)"
        ))
    })?;
    metrics::enable();
    log::info("metrics_listening", &[("address", &addr.to_string())]);
    Ok(listener)
}

/// Answer scrapes on `listener` until the runtime stops.
pub(crate) async fn serve(listener: TcpListener, store: Store, key_age: KeyAge) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (store, key_age) = (store.clone(), key_age.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (store, key_age) = (store.clone(), key_age.clone());
                async move {
                    let resp = match (req.method(), req.uri().path()) {
                        (&Method::GET, "/metrics") => scrape(&store, &key_age).await,
                        (_, "/metrics") => {
                            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
                        }
                        _ => error(StatusCode::NOT_FOUND, "only GET /metrics is served here"),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(IO_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// The metrics, with the ledger's certificates in force read now.
/// The CA's key-age limit and the key it does not bind (its own TLS key).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyAge {
    /// `pki install --max-key-age`.
    pub max_secs: Option<u64>,
    /// The CA server's key pin.
    pub server_key: Option<String>,
}

async fn scrape(store: &Store, key_age: &KeyAge) -> Response<Full<Bytes>> {
    let t = now().0;
    let (certificates, revocations) = match (store.certificates().await, store.revocations().await)
    {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the ledger cannot be read now: {e}"),
            );
        }
    };
    let in_force = InForce::with_key_age(
        &certificates,
        &revocations,
        t,
        InForce::SOON,
        (key_age.max_secs, key_age.server_key.as_deref()),
    );
    let Some(text) = metrics::render(LedgerNow {
        valid: in_force.valid as u64,
        expiring_30d: in_force.expiring as u64,
        keys_near_age_limit: in_force.keys_near_limit as u64,
        now: t,
    }) else {
        return error(StatusCode::NOT_FOUND, "metrics are off");
    };
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    resp
}
