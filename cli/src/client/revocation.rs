//! A node's revocation status, as `pki verify` reports it: its certificate
//! against the CRL of the intermediate that signed it (`GET /crl/KID`, or
//! `GET /crl` from a CA that serves one CRL), and, when the CA serves the
//! CRL of an offline root (`GET /crl/root`), that intermediate against it.

use std::path::Path;

use fedpki_core::crl::Crl;
use fedpki_core::{Certificate, RUST_CRYPTO, UnixTime, issue};

use crate::platform::sys::time_text;

/// Where the CRLs come from.
#[derive(Debug)]
pub(crate) enum CrlSource<'a> {
    /// A CRL file the operator gave: the leaf's issuer's, alone.
    File(&'a Path),
    /// The CA at `HOST:PORT`, trusted through the node's root.
    Ca {
        /// Its host.
        host: &'a str,
        /// Its port.
        port: u16,
    },
}

/// `Ok(what was checked)` when neither the leaf nor (where the CA serves
/// the root's CRL) its intermediate is revoked; `Err(why)` otherwise, or
/// when a CRL is missing, unsigned by the right CA or stale.
pub(crate) async fn status(
    source: CrlSource<'_>,
    leaf: &Certificate,
    intermediate: &Certificate,
    root: &Certificate,
    t: UnixTime,
) -> Result<String, String> {
    let serial = issue::serial_hex(leaf);
    let (host, port) = match source {
        CrlSource::File(path) => {
            let der = crate::platform::sys::read_bounded(path, crate::platform::sys::MAX_CRL)
                .map_err(|e| e.to_string())?;
            return check(&der, &path.display().to_string(), intermediate, &serial, t);
        }
        CrlSource::Ca { host, port } => (host, port),
    };
    let root_der = issue::cert_der(root).map_err(|e| e.to_string())?;
    let url = |path: &str| format!("https://{host}:{port}{path}");
    let kid_path = format!(
        "/crl/{}",
        fedpki_core::encoding::hex(&intermediate.key_id())
    );
    let (der, from) = match fetch(host, port, &root_der, &kid_path).await? {
        Some(der) => (der, url(&kid_path)),
        None => match fetch(host, port, &root_der, "/crl").await? {
            Some(der) => (der, url("/crl")),
            None => {
                return Err(format!(
                    "revocation not checked: the CA publishes no CRL ({} answers 404); \
                     --skip-revocation accepts that",
                    url("/crl")
                ));
            }
        },
    };
    let leaf_status = check(&der, &from, intermediate, &serial, t)?;
    match fetch(host, port, &root_der, "/crl/root").await? {
        None => Ok(leaf_status),
        Some(der) => {
            let from = url("/crl/root");
            let int_serial = issue::serial_hex(intermediate);
            check(&der, &from, root, &int_serial, t)
                .map_err(|e| format!("its intermediate {int_serial}: {e}"))?;
            Ok(format!(
                "{leaf_status}; its intermediate not revoked, per {from}"
            ))
        }
    }
}

/// `serial` against a DER CRL that `issuer` must have signed and that is
/// not past its nextUpdate.
fn check(
    der: &[u8],
    source: &str,
    issuer: &Certificate,
    serial: &str,
    t: UnixTime,
) -> Result<String, String> {
    let crl = Crl::parse(der).map_err(|e| format!("{source} is not a CRL: {e}"))?;
    crl.verify(issuer, &RUST_CRYPTO)
        .map_err(|e| format!("{source}: {e}"))?;
    if crl.next_update().is_some_and(|n| n < t) {
        return Err(format!(
            "{source} is stale (its nextUpdate has passed); fetch a fresh one"
        ));
    }
    match crl.find(serial) {
        Some(r) => Err(format!(
            "revoked at {} ({}), per {source}",
            time_text(r.at.0),
            r.reason.name()
        )),
        None => Ok(format!(
            "not revoked, per {source} (CRL number {})",
            crl.number().unwrap_or(0)
        )),
    }
}

/// GET a CRL: `None` when the CA has none there (404).
async fn fetch(
    host: &str,
    port: u16,
    root_der: &[u8],
    path: &str,
) -> Result<Option<Vec<u8>>, String> {
    let resp = super::https_request(host, port, root_der, "GET", path, None)
        .await
        .map_err(|e| format!("cannot fetch the CRL: {e}"))?;
    match resp.status {
        200 => Ok(Some(resp.body.to_vec())),
        404 => Ok(None),
        _ => Err(format!("cannot fetch the CRL: {}", resp.refusal())),
    }
}
