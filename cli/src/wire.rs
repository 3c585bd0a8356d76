//! step-ca's JSON API, the one home of its shapes: the server (`api`)
//! decodes the requests and encodes the answers with these, the client
//! (`client`, `cmd`) the other way round, so the two cannot drift apart.
//!
//! Serials on the wire are decimal strings, as step-ca's (Go's
//! `big.Int.String()`), which the step CLI sends and expects; everywhere
//! else fedpki writes them in hex. [`serial_from_wire`] and
//! [`serial_to_wire`] are the crossing.

use serde::{Deserialize, Serialize};

/// `POST /1.0/sign`: a CSR and the one-time token that authorizes it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignRequest {
    /// PEM.
    pub csr: String,
    /// The token's JWT.
    pub ott: String,
    /// step clients may ask for a validity; this CA sets its own, so a
    /// non-empty value is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// As `not_before`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// The answer to a sign or renew: the leaf, the CA that signed it, and
/// both as step's `certChain`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignResponse {
    /// The leaf, PEM.
    pub crt: String,
    /// The intermediate, PEM.
    pub ca: String,
    /// `[crt, ca]`.
    #[serde(default)]
    pub cert_chain: Vec<String>,
}

impl SignResponse {
    /// A leaf and its issuer.
    pub(crate) fn new(crt: String, ca: String) -> Self {
        let cert_chain = vec![crt.clone(), ca.clone()];
        Self {
            crt,
            ca,
            cert_chain,
        }
    }
}

/// `POST /1.0/revoke`, as step-ca's: `{"serial", "ott"?, "reasonCode"?,
/// "reason"?, "passive"?}` (`reason` is accepted and not used).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevokeRequest {
    /// The serial, in decimal.
    pub serial: String,
    /// A revoke token; without one the client must present the
    /// certificate itself over mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ott: Option<String>,
    /// RFC 5280 reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<u8>,
    /// step-ca implements only passive revocation (a CRL entry, no OCSP
    /// push) and refuses `false`; the step CLI always sends `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<bool>,
}

/// The answer to a revocation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevokeResponse {
    /// `"ok"`.
    pub status: String,
    /// The serial revoked, in decimal.
    pub serial: String,
    /// When, Unix seconds (the first revocation's, when it already was).
    pub revoked_at: u64,
    /// RFC 5280 reason code.
    pub reason_code: u8,
    /// True when nothing changed: it was revoked before.
    pub already_revoked: bool,
}

/// Every refusal: step-ca's `{"status", "message"}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What was wrong, for a person.
    pub message: String,
}

/// `GET /health`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Health {
    /// `"ok"` or `"unavailable"`.
    pub status: String,
    /// The store's state: `"ok"` or why it cannot take changes.
    pub store: String,
    /// The CRLs': `"ok"`, or `"stale"` while the last re-signing failed
    /// (retried until it succeeds).
    pub crl: String,
}

/// `GET /roots`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Roots {
    /// The roots, PEM.
    pub crts: Vec<String>,
}

/// `GET /root/{sha256}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Root {
    /// The root, PEM.
    pub ca: String,
}

/// `GET /provisioners`, as step-ca's: `step ca token` (and so `fx pki
/// get-token`) looks its provisioner up here, even with `--key`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Provisioners {
    /// The one JWK provisioner.
    pub provisioners: Vec<Provisioner>,
    /// Paging, as step-ca's; always empty.
    pub next_cursor: String,
}

/// A JWK provisioner: its public key only (step-ca also lists its
/// password-encrypted private key; fedpki keeps none to list).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Provisioner {
    /// `"JWK"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name (the tokens' `iss`).
    pub name: String,
    /// The public key.
    pub key: PublicJwk,
}

/// An EC P-256 public JWK.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PublicJwk {
    /// `"sig"`.
    #[serde(rename = "use")]
    pub usage: String,
    /// `"EC"`.
    pub kty: String,
    /// The key id (the tokens' `kid`).
    pub kid: String,
    /// `"P-256"`.
    pub crv: String,
    /// `"ES256"`.
    pub alg: String,
    /// base64url x.
    pub x: String,
    /// base64url y.
    pub y: String,
}

impl Provisioners {
    /// The listing for a provisioner `name` with `kid` and a P-256 `key`.
    pub(crate) fn of(name: &str, kid: &str, key: &fedpki_core::PublicKey) -> Option<Self> {
        let point = key.key_bytes().filter(|p| p.len() == 65 && p[0] == 4)?;
        Some(Self {
            provisioners: vec![Provisioner {
                kind: "JWK".into(),
                name: name.into(),
                key: PublicJwk {
                    usage: "sig".into(),
                    kty: "EC".into(),
                    kid: kid.into(),
                    crv: "P-256".into(),
                    alg: "ES256".into(),
                    x: fedpki_core::encoding::b64url(&point[1..33]),
                    y: fedpki_core::encoding::b64url(&point[33..]),
                },
            }],
            next_cursor: String::new(),
        })
    }
}

/// A serial from the wire (decimal) → fedpki's hex.
pub(crate) fn serial_from_wire(decimal: &str) -> Result<String, fedpki_core::Error> {
    fedpki_core::serial::decimal_to_hex(decimal)
}

/// fedpki's hex → the wire's decimal.
pub(crate) fn serial_to_wire(hex: &str) -> Result<String, fedpki_core::Error> {
    fedpki_core::serial::hex_to_decimal(hex)
}
