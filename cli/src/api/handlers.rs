//! The three changing requests: decode the body into the authority's
//! terms, let it decide, answer in step-ca's shapes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use super::answer::{error, json, refused};
use super::{App, Peer};
use crate::authority::{Authority, Issued, Refusal, Why};
use crate::platform::events::TokenSeen;
use crate::platform::log;
use crate::platform::sys::now;
use crate::wire::{
    RevokeRequest, RevokeResponse, SignRequest, SignResponse, serial_from_wire, serial_to_wire,
};

/// Decode a `/1.0/sign` body: the CSR and the token.
pub(crate) fn decode_sign(body: &[u8]) -> Result<(String, String), Refusal> {
    let req: SignRequest = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            Why::Malformed,
            format!("the body must be JSON {{\"csr\": PEM, \"ott\": token}}: {e}"),
        )
    })?;
    if req.not_before.as_deref().is_some_and(|s| !s.is_empty())
        || req.not_after.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Err(Refusal::new(
            Why::Forbidden,
            "this CA sets the validity itself; omit notBefore and notAfter",
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
        Ok(request) => request,
        Err(refusal) => return refused(&refusal, peer, None),
    };
    match authority.sign(&csr, &ott, now(), Some(peer)).await {
        Ok(issued) => issued_response(issued),
        Err(refusal) => refused(&refusal, peer, TokenSeen::of(&ott).as_ref()),
    }
}

fn issued_response(issued: Issued) -> Response<Full<Bytes>> {
    json(
        StatusCode::CREATED,
        &SignResponse::new(issued.crt, issued.ca),
    )
}

/// `POST /1.0/renew`: the certificate presented over mutual TLS, renewed.
pub(super) async fn renew(app: &App, peer: &Peer) -> Response<Full<Bytes>> {
    let ip = peer.addr.ip();
    let Some(cert) = &peer.cert else {
        let refusal = Refusal::new(
            Why::NotAuthorized,
            "renewal needs the current certificate, presented over mutual TLS",
        );
        return refused(&refusal, ip, None);
    };
    let mut resp = match app.authority.renew(cert, now(), Some(ip)).await {
        Ok(issued) => issued_response(issued),
        Err(refusal) => refused(&refusal, ip, None),
    };
    // This connection authenticated with the certificate just renewed, and
    // renewing it again answers the same successor. Close it, so a client
    // that keeps connections alive (`step ca renew --daemon`) presents the
    // new certificate on its next renewal.
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    resp
}

/// A decoded `/1.0/revoke` body.
#[derive(Debug)]
pub(crate) struct Revoke {
    /// The serial, in fedpki's hex (sent in decimal).
    pub serial: String,
    /// The revoke token, if any (empty counts as none).
    pub ott: Option<String>,
    /// The reason.
    pub reason: fedpki_core::crl::Reason,
}

/// Decode a `/1.0/revoke` body.
pub(crate) fn decode_revoke(body: &[u8]) -> Result<Revoke, Refusal> {
    let req: RevokeRequest = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            Why::Malformed,
            format!(
                "the body must be JSON {{\"serial\": decimal, \"ott\": revoke token, \"reasonCode\": n, \"passive\": true}}: {e}"
            ),
        )
    })?;
    let reason = match req.reason_code {
        None => fedpki_core::crl::Reason::Unspecified,
        Some(c) => fedpki_core::crl::Reason::from_code(c).ok_or_else(|| {
            Refusal::new(
                Why::Malformed,
                format!("reasonCode {c} is not accepted by this CA"),
            )
        })?,
    };
    if req.passive == Some(false) {
        return Err(Refusal::new(
            Why::NotImplemented,
            "non-passive revocation is not implemented (as in step-ca): send \"passive\": true",
        ));
    }
    let serial = serial_from_wire(&req.serial).map_err(|e| {
        Refusal::new(
            Why::Malformed,
            format!(
                "{e}; `fedpki pki list` shows serials in hex, `step certificate inspect` in decimal"
            ),
        )
    })?;
    Ok(Revoke {
        serial,
        ott: req.ott.filter(|o| !o.is_empty()),
        reason,
    })
}

/// `POST /1.0/revoke`: by token, or by the holder over mutual TLS. The
/// answer, fresh or `alreadyRevoked`, waits for CRLs that list the
/// revocation as it stands.
pub(super) async fn revoke(app: &App, body: &[u8], peer: &Peer) -> Response<Full<Bytes>> {
    let req = match decode_revoke(body) {
        Ok(r) => r,
        Err(refusal) => return refused(&refusal, peer.addr.ip(), None),
    };
    let (reason, t) = (req.reason, now());
    let result = match (req.ott.as_deref(), &peer.cert) {
        (Some(ott), _) => {
            app.authority
                .revoke_with_token(&req.serial, ott, reason, t, Some(peer.addr.ip()))
                .await
        }
        (None, Some(cert)) => {
            app.authority
                .revoke_by_holder(cert, &req.serial, reason, t, Some(peer.addr.ip()))
                .await
        }
        (None, None) => Err(Refusal::new(
            Why::NotAuthorized,
            "send a revoke token (ott), or present the certificate itself over mutual TLS",
        )),
    };
    let done = match result {
        Ok(done) => done,
        Err(refusal) => {
            let token = req.ott.as_deref().and_then(TokenSeen::of);
            return refused(&refusal, peer.addr.ip(), token.as_ref());
        }
    };
    if let Err(e) = app
        .crl
        .ensure_lists(&app.authority, app.paths(), &done.record)
        .await
    {
        log::error("crl_refresh_failed", &[("error", &e.to_string())]);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the revocation is recorded, but the CRL could not be re-signed; the CA retries \
             until it can (GET /health says when), and asking again answers once it has",
        );
    }
    let Ok(serial) = serial_to_wire(&done.record.serial) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the ledger holds a serial that is not hex",
        );
    };
    json(
        StatusCode::OK,
        &RevokeResponse {
            status: "ok".into(),
            serial,
            revoked_at: done.record.revoked_at,
            reason_code: done.record.reason,
            already_revoked: done.already,
        },
    )
}
