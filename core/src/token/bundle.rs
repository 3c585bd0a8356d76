//! The bundle a user copies and pastes: the JWT and the root it trusts,
//! checked against each other before anything is sent anywhere.

use alloc::string::String;

use super::{Claims, MAX_TOKEN_LEN, TokenError, bad, peek_claims};
use crate::encoding::{b64, unb64};

/// The token a user copies: the JWT and the root certificate it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The JWT.
    pub jwt: String,
    /// The root CA certificate, PEM.
    pub root_pem: String,
}

impl Bundle {
    /// `base64(JWT) + "." + base64(root PEM)`.
    pub fn encode(&self) -> String {
        alloc::format!(
            "{}.{}",
            b64(self.jwt.as_bytes()),
            b64(self.root_pem.as_bytes())
        )
    }

    /// Split and decode a bundle, and check that the root hashes to the
    /// token's `sha` (the client's first check, before any connection).
    pub fn parse(token: &str) -> Result<(Self, Claims, crate::Certificate), TokenError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN * 2 {
            return Err(bad("longer than any token fedpki makes"));
        }
        let (a, b) = token
            .split_once('.')
            .ok_or_else(|| bad("expected base64(JWT) \".\" base64(root certificate)"))?;
        if b.contains('.') {
            return Err(bad(
                "expected exactly one \".\" between the JWT and the root certificate",
            ));
        }
        let jwt = String::from_utf8(unb64(a).map_err(|_| bad("the JWT part is not base64"))?)
            .map_err(|_| bad("the JWT part is not text"))?;
        let root_pem = String::from_utf8(
            unb64(b).map_err(|_| bad("the root certificate part is not base64"))?,
        )
        .map_err(|_| bad("the root certificate part is not text"))?;
        Self::from_parts(jwt, root_pem)
    }

    /// A bare JWT (step's token) and the root fetched for it: the same
    /// check, that the root hashes to the token's `sha`.
    pub fn from_parts(
        jwt: String,
        root_pem: String,
    ) -> Result<(Self, Claims, crate::Certificate), TokenError> {
        let claims = peek_claims(&jwt)?;
        let root_der = crate::encoding::pem_one(&root_pem, "CERTIFICATE")
            .map_err(|_| bad("the root certificate part is not a PEM certificate"))?;
        if crate::issue::fingerprint_der(&root_der) != claims.sha.to_ascii_lowercase() {
            return Err(TokenError::RootMismatch);
        }
        let root = crate::issue::parse_cert_der(&root_der)
            .map_err(|_| bad("the root certificate does not parse"))?;
        Ok((Self { jwt, root_pem }, claims, root))
    }
}
