//! The one-time enrollment token, compatible with OpenFL's `fx pki`.
//!
//! A bundle is `base64(JWT) + "." + base64(root CA PEM)` (standard alphabet,
//! padded). The JWT is a step-ca JWK-provisioner one-time token: compact JWS,
//! ES256, `kid` = RFC 7638 thumbprint of the provisioner key, claims `iss`,
//! `sub`, `sans`, `aud`, `sha` (hex SHA-256 of the root DER), `nbf`, `iat`,
//! `exp`, `jti`.
//!
//! Verification order (SPEC §3): signature, `iss`, `aud`, time. Burning the
//! `jti` is the caller's (it needs a store); only a [`VerifiedToken`] can be
//! burnt, and only [`verify`] makes one.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::encoding::{b64url, hex, sha256, unb64url};
use crate::name::{San, Subject};
use crate::{Entropy, Error, PrivateKey, SigningKey, UnixTime};

mod bundle;
pub use bundle::Bundle;

/// Clock skew tolerated on `nbf`, `iat` and `exp`, as step-ca does.
pub const LEEWAY_SECS: u64 = 60;
/// Longest token accepted, so a hostile one costs little to refuse.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// The longest a token may live (`exp - nbf`) unless the CA says otherwise:
/// a bearer secret that lives for years is a standing credential.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 30 * 24 * 3600;

/// Why a token was refused. Texts are safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS with the expected header, or bad JSON/base64.
    Malformed(String),
    /// The signature does not verify with this CA's provisioner key: the
    /// token is of another CA, or was altered.
    BadSignature,
    /// `iss` is not this CA's provisioner.
    WrongIssuer,
    /// `aud` is not this CA's sign URL.
    WrongAudience,
    /// `exp` (plus leeway) has passed.
    Expired,
    /// `nbf` or `iat` (minus leeway) is in the future.
    NotYetValid,
    /// The `jti` was used before.
    AlreadyUsed,
    /// The bundle's root certificate does not hash to the token's `sha`.
    RootMismatch,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "the token is malformed: {what}"),
            Self::BadSignature => f.write_str(
                "the token's signature is not valid for this CA (a token of another CA, or altered)",
            ),
            Self::WrongIssuer => f.write_str("the token was not issued by this CA's provisioner"),
            Self::WrongAudience => f.write_str("the token is for another CA address (aud)"),
            Self::Expired => f.write_str("the token has expired; ask the CA operator for a new one"),
            Self::NotYetValid => f.write_str("the token is not valid yet (check the clocks)"),
            Self::AlreadyUsed => {
                f.write_str("the token was already used; a token works once, ask for a new one")
            }
            Self::RootMismatch => f.write_str(
                "the root certificate in the token does not match the token's sha claim",
            ),
        }
    }
}

fn bad(what: &str) -> TokenError {
    TokenError::Malformed(what.into())
}

/// The JOSE header fedpki writes and expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// RFC 7515 §4.1.11: extensions the verifier must understand. fedpki
    /// understands none, so any token that lists one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crit: Option<serde_json::Value>,
}

/// `aud` may be a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// The token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Provisioner name.
    pub iss: String,
    /// The subject (common name) the token authorizes.
    pub sub: String,
    /// The SANs the token authorizes.
    #[serde(default)]
    pub sans: Vec<String>,
    /// `https://HOST:PORT/1.0/sign`.
    pub aud: Audience,
    /// Lowercase hex SHA-256 of the root certificate's DER.
    #[serde(default)]
    pub sha: String,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires (Unix seconds).
    pub exp: u64,
    /// Unique id, burnt on use: 64 hex characters.
    pub jti: String,
    /// fedpki's own claim (step ignores it): lowercase hex SHA-256 of the
    /// SubjectPublicKeyInfo of the CA server's TLS key. A client that sees
    /// it sends the token only to a server proving that key, so a node
    /// holding an ordinary certificate for the CA's host name cannot pose
    /// as the CA and collect the token.
    #[serde(
        rename = "tlsKeySha256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_key_sha256: Option<String>,
}

/// The `aud` of a sign request to a CA at `host_port`.
pub fn sign_audience(host_port: &str) -> String {
    alloc::format!("https://{host_port}/1.0/sign")
}

/// RFC 7638 JWK thumbprint of a P-256 key: base64url(SHA-256 of the
/// canonical JWK `{"crv","kty","x","y"}`).
pub fn jwk_thumbprint(x: &[u8; 32], y: &[u8; 32]) -> String {
    let canonical = alloc::format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        b64url(x),
        b64url(y)
    );
    b64url(&sha256(canonical.as_bytes()))
}

/// What a token should say, before it is signed.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    /// Provisioner name (`iss`).
    pub issuer: &'a str,
    /// Subject.
    pub subject: &'a Subject,
    /// SANs; the subject alone when empty.
    pub sans: &'a [San],
    /// Audience URL.
    pub audience: &'a str,
    /// Root certificate DER, for `sha`.
    pub root_der: &'a [u8],
    /// Issue time.
    pub now: UnixTime,
    /// Lifetime in seconds.
    pub ttl_secs: u64,
    /// The CA server's TLS key pin (the `tlsKeySha256` claim), if it has one.
    pub tls_key_sha256: Option<&'a str>,
}

/// Sign a token with the provisioner key (P-256, ES256).
pub fn sign(
    req: &TokenRequest<'_>,
    provisioner: &PrivateKey,
    entropy: &mut dyn Entropy,
) -> Result<String, Error> {
    sign_with(req, provisioner, entropy)
}

/// The affine coordinates of a P-256 public key.
fn p256_xy(key: &crate::PublicKey) -> Option<([u8; 32], [u8; 32])> {
    if key.algorithm() != crate::KeyAlgorithm::P256 {
        return None;
    }
    let point = key.key_bytes()?;
    if point.len() != 65 || point[0] != 4 {
        return None;
    }
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    x.copy_from_slice(&point[1..33]);
    y.copy_from_slice(&point[33..65]);
    Some((x, y))
}

/// An ECDSA signature from DER (X.509's form) to JWS's fixed `r || s`.
pub fn ecdsa_der_to_fixed(der_sig: &[u8]) -> Result<[u8; 64], Error> {
    let sig = p256::ecdsa::Signature::from_der(der_sig)
        .map_err(|e| crate::error::malformed("ECDSA signature", e))?;
    Ok(sig.to_bytes().into())
}

/// [`sign`] with any P-256 [`SigningKey`] (an HSM, a faster backend).
pub fn sign_with(
    req: &TokenRequest<'_>,
    provisioner: &dyn SigningKey,
    entropy: &mut dyn Entropy,
) -> Result<String, Error> {
    let (x, y) = p256_xy(&provisioner.public_key())
        .ok_or_else(|| Error::Unsupported("the provisioner key must be P-256 (ES256)".into()))?;
    let mut jti = [0u8; 32];
    entropy.fill(&mut jti)?;
    let given: Vec<String> = req.sans.iter().map(ToString::to_string).collect();
    let sans: Vec<String> = San::for_subject(req.subject.as_str(), &given)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let header = Header {
        alg: "ES256".into(),
        kid: Some(jwk_thumbprint(&x, &y)),
        typ: Some("JWT".into()),
        crit: None,
    };
    let claims = Claims {
        iss: req.issuer.into(),
        sub: req.subject.as_str().into(),
        sans,
        aud: Audience::One(req.audience.into()),
        sha: crate::issue::fingerprint_der(req.root_der),
        nbf: req.now.0,
        iat: req.now.0,
        exp: req.now.0.saturating_add(req.ttl_secs),
        jti: hex(&jti),
        tls_key_sha256: req.tls_key_sha256.map(Into::into),
    };
    let json = |v: &dyn erased::Json| v.to_json();
    let signing_input = alloc::format!(
        "{}.{}",
        b64url(json(&header)?.as_bytes()),
        b64url(json(&claims)?.as_bytes())
    );
    let sig = ecdsa_der_to_fixed(&provisioner.sign(signing_input.as_bytes())?)?;
    Ok(alloc::format!("{signing_input}.{}", b64url(&sig)))
}

mod erased {
    use super::*;
    pub(super) trait Json {
        fn to_json(&self) -> Result<String, Error>;
    }
    impl<T: Serialize> Json for T {
        fn to_json(&self) -> Result<String, Error> {
            serde_json::to_string(self).map_err(|e| crate::error::malformed("JSON", e))
        }
    }
}

struct Parts<'a> {
    header: Header,
    claims: Claims,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn split(jwt: &str) -> Result<Parts<'_>, TokenError> {
    if jwt.len() > MAX_TOKEN_LEN {
        return Err(bad("longer than any token fedpki makes"));
    }
    let mut it = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad("a JWT has three dot-separated parts"));
    };
    let header: Header = serde_json::from_slice(&unb64url(h).map_err(|_| bad("header base64"))?)
        .map_err(|_| bad("header JSON"))?;
    let claims: Claims = serde_json::from_slice(&unb64url(c).map_err(|_| bad("claims base64"))?)
        .map_err(|_| bad("claims JSON, or a required claim is missing"))?;
    let signature = unb64url(s).map_err(|_| bad("signature base64"))?;
    Ok(Parts {
        header,
        claims,
        signing_input: &jwt[..h.len() + 1 + c.len()],
        signature,
    })
}

/// Read the claims without checking anything: for a client that wants to
/// know where to connect, and for display. Never for authorization.
pub fn peek_claims(jwt: &str) -> Result<Claims, TokenError> {
    split(jwt).map(|p| p.claims)
}

/// What the CA checks a token against.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The provisioner name.
    pub issuer: &'a str,
    /// Audiences this CA answers to (its sign URLs).
    pub audiences: &'a [String],
    /// The longest `exp - nbf` accepted.
    pub max_lifetime_secs: u64,
}

/// A token whose signature, issuer, audience and time checked out. Its
/// `jti` is not yet burnt: that is the store's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    claims: Claims,
    subject: Subject,
    sans: Vec<San>,
}

impl VerifiedToken {
    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
    /// The subject the token authorizes.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }
    /// The SANs the token authorizes (sorted, never empty).
    pub fn sans(&self) -> &[San] {
        &self.sans
    }
    /// The unique id to burn.
    pub fn jti(&self) -> &str {
        &self.claims.jti
    }
    /// When the token stops being acceptable, leeway included: its burnt
    /// id can be forgotten after that.
    pub fn burn_until(&self) -> UnixTime {
        UnixTime(self.claims.exp.saturating_add(LEEWAY_SECS))
    }
}

/// Verify a JWT against the provisioner's public key through `verifier`, in SPEC §3 order:
/// signature, `iss`, `aud`, time.
pub fn verify_with(
    jwt: &str,
    provisioner: &crate::PublicKey,
    verifier: &dyn crate::SignatureVerifier,
    expect: &Expectations<'_>,
    now: UnixTime,
) -> Result<VerifiedToken, TokenError> {
    let alg = crate::SignatureAlgorithm::EcdsaSha256;
    verify_inner(jwt, expect, now, &|msg, sig| {
        p256::ecdsa::Signature::from_slice(sig)
            .ok()
            .is_some_and(|sig| {
                verifier
                    .verify(alg, provisioner, msg, sig.to_der().as_bytes())
                    .is_ok()
            })
    })
}

fn verify_inner(
    jwt: &str,
    expect: &Expectations<'_>,
    now: UnixTime,
    signature_ok: &dyn Fn(&[u8], &[u8]) -> bool,
) -> Result<VerifiedToken, TokenError> {
    let parts = split(jwt.trim())?;
    if parts.header.alg != "ES256" {
        return Err(bad("only ES256 tokens are accepted"));
    }
    if parts.header.crit.is_some() {
        return Err(bad(
            "its header lists critical extensions (crit), which fedpki does not support",
        ));
    }
    if !signature_ok(parts.signing_input.as_bytes(), &parts.signature) {
        return Err(TokenError::BadSignature);
    }

    let c = parts.claims;
    if c.iss != expect.issuer {
        return Err(TokenError::WrongIssuer);
    }
    if !expect.audiences.iter().any(|a| c.aud.contains(a)) {
        return Err(TokenError::WrongAudience);
    }
    if now.0 > c.exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if now.0.saturating_add(LEEWAY_SECS) < c.nbf || now.0.saturating_add(LEEWAY_SECS) < c.iat {
        return Err(TokenError::NotYetValid);
    }
    if c.exp <= c.nbf {
        return Err(bad("it expires (exp) before it becomes valid (nbf)"));
    }
    if c.exp - c.nbf > expect.max_lifetime_secs {
        return Err(bad(&alloc::format!(
            "it lives {} days, longer than this CA accepts ({} days)",
            (c.exp - c.nbf) / 86400,
            expect.max_lifetime_secs / 86400
        )));
    }
    if c.jti.is_empty() || c.jti.len() > 128 {
        return Err(bad("jti is missing or too long"));
    }
    let subject = Subject::new(&c.sub).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let sans =
        San::for_subject(&c.sub, &c.sans).map_err(|e| TokenError::Malformed(e.to_string()))?;
    Ok(VerifiedToken {
        claims: c,
        subject,
        sans,
    })
}

#[cfg(test)]
mod tests;
