//! The routes: decode a request, check it against the limits, hand it to
//! the authority, and turn its answer or refusal into HTTP (the one place
//! a refusal becomes a status).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::{App, MAX_BODY, Peer};
use crate::authority::Authority;
use crate::platform::log;
use crate::platform::sys::now;
use crate::platform::tls::IO_TIMEOUT;

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

pub(super) async fn route(app: &App, req: Request<Incoming>, peer: &Peer) -> Response<Full<Bytes>> {
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
            let der = app.crl.current();
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
pub(super) fn with_transport_headers(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
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
