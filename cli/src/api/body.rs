//! Reading a request body: at most [`MAX_BODY`] bytes within
//! [`IO_TIMEOUT`], an oversized one drained a little before its 413.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::MAX_BODY;
use super::answer::error;
use crate::platform::tls::IO_TIMEOUT;

/// How much of an oversized body is read and thrown away before the 413,
/// so a client still writing it gets the answer instead of a reset
/// (nginx's "lingering close"); beyond this the connection is just closed.
pub(crate) const LINGER_LIMIT: usize = 2 * 1024 * 1024;

pub(super) async fn read_body(
    req: Request<Incoming>,
) -> std::result::Result<Bytes, Response<Full<Bytes>>> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
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
            let frame = frame.map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            })?;
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
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
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
