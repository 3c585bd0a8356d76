//! Building answers: JSON bodies, refusals as step-ca's `{"status",
//! "message"}` (the one place a refusal becomes an HTTP status), and the
//! headers every answer or page carries.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::authority::{Refusal, Why};
use crate::platform::events::{self, Event, TokenSeen};
use crate::wire::ErrorBody;

/// `value` as JSON with `status`.
pub(super) fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The HTTP status of each reason for a refusal (step-ca's choices).
pub(super) fn status_of(why: Why) -> StatusCode {
    match why {
        Why::Malformed => StatusCode::BAD_REQUEST,
        Why::NotAuthorized => StatusCode::UNAUTHORIZED,
        Why::Forbidden => StatusCode::FORBIDDEN,
        Why::Unknown => StatusCode::NOT_FOUND,
        Why::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Why::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Why::NotImplemented => StatusCode::NOT_IMPLEMENTED,
    }
}

/// A refusal the server itself makes (a route, a limit, a body).
pub(super) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &ErrorBody {
            status: status.as_u16(),
            message: message.to_owned(),
        },
    )
}

/// The authority's refusal, reported (with the token's subject and id,
/// when the request carried one) and answered.
pub(super) fn refused(
    refusal: &Refusal,
    peer: std::net::IpAddr,
    token: Option<&TokenSeen>,
) -> Response<Full<Bytes>> {
    let status = status_of(refusal.why);
    events::report(&Event::Refused {
        reason: refusal.why.name(),
        status: status.as_u16(),
        message: &refusal.message,
        from: peer,
        token,
    });
    let mut resp = error(status, &refusal.message);
    if refusal.why == Why::Unavailable {
        // Transient (a full disk, the database away): when to ask again.
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

/// 429 with `Retry-After: wait`, reported as a refusal.
pub(super) fn too_many(wait: u64, message: &str, peer: std::net::IpAddr) -> Response<Full<Bytes>> {
    events::report(&Event::Refused {
        reason: "rate_limited",
        status: StatusCode::TOO_MANY_REQUESTS.as_u16(),
        message,
        from: peer,
        token: None,
    });
    let mut resp = error(StatusCode::TOO_MANY_REQUESTS, message);
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Headers every answer carries: browsers keep to HTTPS for this host
/// (HSTS, a year) and never guess a type other than the one sent.
pub(super) fn with_transport_headers(mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
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
pub(super) fn page_response(content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
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
