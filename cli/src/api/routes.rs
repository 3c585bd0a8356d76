//! The route table: which request goes where, the per-address limits in
//! front of the changing ones, and the read-only answers (health, roots,
//! CRL, the page).

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::answer::{error, json, page_response, too_many};
use super::body::read_body;
use super::handlers::{answer_sign, renew, revoke};
use super::{App, Peer};
use crate::wire::{Health, Root, Roots};

/// The route a request is counted under in the metrics: one of a fixed
/// few, whatever path a client sends (a label's values must stay few).
pub(super) fn name_of(method: &Method, path: &str) -> &'static str {
    let path = path.strip_prefix("/1.0").unwrap_or(path);
    match (method, path) {
        (&Method::POST, "/sign") => "/1.0/sign",
        (&Method::POST, "/renew") => "/1.0/renew",
        (&Method::POST, "/revoke") => "/1.0/revoke",
        (&Method::GET, "/health") => "/health",
        (&Method::GET, "/roots") => "/roots",
        (&Method::GET, "/provisioners") => "/provisioners",
        (&Method::GET, "/crl") => "/crl",
        (&Method::GET, "/crl/root") => "/crl/root",
        (&Method::GET, p) if p.starts_with("/crl/") => "/crl/{kid}",
        (&Method::GET, p) if p.starts_with("/crt/") => "/crt/{kid}",
        (&Method::GET, p) if p.starts_with("/root/") => "/root/{sha256}",
        (&Method::GET, p) if super::web::asset(p).is_some() || p == "/" => "page",
        _ => "other",
    }
}

pub(super) async fn route(app: &App, req: Request<Incoming>, peer: &Peer) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let issuers = app.authority.issuers();
    let certs = issuers.certs();
    if method == Method::GET
        && let Some((content_type, bytes)) = super::web::asset(&path)
    {
        return page_response(content_type, Bytes::from_static(bytes));
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/health" | "/1.0/health") => health(app),
        (&Method::GET, "/roots" | "/1.0/roots") => json(
            StatusCode::OK,
            &Roots {
                crts: vec![certs.root_pem.clone()],
            },
        ),
        (&Method::GET, p) if p.starts_with("/root/") || p.starts_with("/1.0/root/") => {
            let sha = p.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            if sha == app.root_sha {
                json(
                    StatusCode::OK,
                    &Root {
                        ca: certs.root_pem.clone(),
                    },
                )
            } else {
                error(
                    StatusCode::NOT_FOUND,
                    "no root certificate with that SHA-256 here",
                )
            }
        }
        (&Method::GET, "/provisioners" | "/1.0/provisioners") => {
            let mut resp = Response::new(Full::new(app.provisioners.clone()));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            resp
        }
        (&Method::GET, "/crl" | "/1.0/crl") => crl_response(app.crl.current()),
        (&Method::GET, "/crl/root" | "/1.0/crl/root") => {
            // The one the authority acts on, not whatever the file holds now.
            match issuers.root_crl() {
                Some(der) => crl_response(Bytes::copy_from_slice(der)),
                None => error(
                    StatusCode::NOT_FOUND,
                    "this CA was given no root CRL (its operator installs one with \
                     `fedpki pki install --root-crl FILE`)",
                ),
            }
        }
        (&Method::GET, p) if p.starts_with("/crl/") || p.starts_with("/1.0/crl/") => {
            let kid = p.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            match app.crl.of(&kid) {
                Some(der) => crl_response(der),
                None => error(
                    StatusCode::NOT_FOUND,
                    "no intermediate in use here has that key id (a retired one's CRL is \
                     served until its last certificate expires)",
                ),
            }
        }
        (&Method::GET, p) if p.starts_with("/crt/") || p.starts_with("/1.0/crt/") => {
            let kid = p.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            let der = match kid.as_str() {
                "root" => fedpki_core::issue::cert_der(&certs.root).ok(),
                kid => issuers
                    .certificate_of(kid)
                    .and_then(|c| fedpki_core::issue::cert_der(c).ok()),
            };
            match der {
                Some(der) => {
                    let mut resp = Response::new(Full::new(Bytes::from(der)));
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/pkix-cert"),
                    );
                    resp
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "no intermediate in use here has that key id",
                ),
            }
        }
        (&Method::POST, "/1.0/sign" | "/sign" | "/1.0/renew" | "/renew" | "/1.0/revoke" | "/revoke") => {
            changing(app, req, peer, &path).await
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
        ) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}

/// `GET /health`: 503 while the disk is full or the CRLs could not be
/// re-signed (both heal by themselves once the cause is gone).
fn health(app: &App) -> Response<Full<Bytes>> {
    let store = if app.authority.store().disk_full() {
        "disk full"
    } else if app.authority.store().unavailable() {
        "database unavailable"
    } else {
        "ok"
    };
    let crl = if app.crl.is_stale() { "stale" } else { "ok" };
    let healthy = store == "ok" && crl == "ok";
    json(
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &Health {
            status: if healthy { "ok" } else { "unavailable" }.into(),
            store: store.into(),
            crl: crl.into(),
        },
    )
}

fn crl_response(der: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(der));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/pkix-crl"),
    );
    resp
}

/// A request that changes the ledger (sign, renew, revoke): the per-address
/// limits, the body, the handler; failed checks are counted per address.
async fn changing(
    app: &App,
    req: Request<Incoming>,
    peer: &Peer,
    path: &str,
) -> Response<Full<Bytes>> {
    let ip = peer.addr.ip();
    let is_renewal = matches!(path, "/1.0/renew" | "/renew");
    if is_renewal && let Some(wait) = app.renewals.over(ip, app.limits.renewals_per_minute) {
        return too_many(
            wait,
            "too many renewals from this address; try again in a minute",
            ip,
        );
    }
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let resp = match path {
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
            ip,
        ),
        None => resp,
    }
}
