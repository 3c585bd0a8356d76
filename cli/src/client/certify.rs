//! `pki certify`: a token checked before anything is made, a key and a
//! CSR, the CA asked over HTTPS pinned to the token's root, and the answer
//! checked before any file is written.

use std::path::Path;

use fedpki_core::csr;
use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{Audience, Bundle};
use fedpki_core::{Certificate, KeyType, PrivateKey, SigningKey, UnixTime};

use super::{HttpsUrl, ServerTrust, bootstrap, https_request_to};
use crate::error::{CliError, Result};
use crate::node::{Answer, Expected, NodeConfig, NodeFiles};
use crate::platform::sys::{OsEntropy, now};
use crate::wire::{SignRequest, SignResponse};

/// What `pki certify` wrote.
#[derive(Debug, Clone)]
pub(crate) struct Certified {
    /// The files.
    pub files: NodeFiles,
    /// Serial, hex.
    pub serial: String,
    /// notAfter, as text.
    pub not_after: String,
    /// Whether the token pinned the CA server's key (a fedpki token); a
    /// step token trusts its root and the name alone.
    pub pinned: bool,
}

/// A token checked for this node: who it is for and where its CA is.
struct Ticket {
    bundle: Bundle,
    claims: fedpki_core::token::Claims,
    subject: Subject,
    sans: Vec<San>,
    url: HttpsUrl,
}

/// What can be checked before anything is made or sent: the token is for
/// `name`, names its CA and has not expired.
async fn read_ticket(name: &str, token: &str, now: UnixTime) -> Result<(Ticket, Certificate)> {
    let token = token.trim();
    // A JWT has two dots; fedpki's token (base64 JWT "." base64 root) one.
    let (bundle, claims, root) = if token.matches('.').count() == 2 {
        let claims = fedpki_core::token::peek_claims(token)?;
        // Before anything is fetched for it.
        check_claims(name, &claims, now)?;
        let url = HttpsUrl::parse(first_audience(&claims)?)?;
        let root_pem = bootstrap::root_for_token(&url.host, url.port, &claims.sha).await?;
        Bundle::from_parts(token.to_owned(), root_pem)?
    } else {
        let parsed = Bundle::parse(token)?;
        check_claims(name, &parsed.1, now)?;
        parsed
    };
    let ticket = Ticket {
        subject: Subject::new(&claims.sub)?,
        sans: San::for_subject(&claims.sub, &claims.sans)?,
        url: HttpsUrl::parse(first_audience(&claims)?)?,
        bundle,
        claims,
    };
    Ok((ticket, root))
}

/// The token is for `name` and has not expired.
fn check_claims(name: &str, claims: &fedpki_core::token::Claims, now: UnixTime) -> Result<()> {
    if claims.sub != name {
        return Err(CliError::usage(format!(
            "this token is for {:?}, not {name:?}; use -n {:?} or ask for a token for {name:?}",
            claims.sub, claims.sub
        )));
    }
    if now.0 > claims.exp.saturating_add(fedpki_core::token::LEEWAY_SECS) {
        return Err(fedpki_core::token::TokenError::Expired.into());
    }
    Ok(())
}

/// The CA address a token is for: its (first) audience.
fn first_audience(claims: &fedpki_core::token::Claims) -> Result<&str> {
    match &claims.aud {
        Audience::One(a) => Ok(a),
        Audience::Many(v) => v
            .first()
            .map(String::as_str)
            .ok_or_else(|| CliError::usage("the token names no CA address (aud)")),
    }
}

/// `fedpki pki certify`: check the token, make a key and CSR, ask the CA,
/// check the answer, and only then write the files.
pub(crate) async fn certify(
    name: &str,
    token: &str,
    dir: &Path,
    key_type: KeyType,
) -> Result<Certified> {
    let now = now();
    let (ticket, root) = read_ticket(name, token, now).await?;
    let key = PrivateKey::generate(key_type, &mut OsEntropy)?;
    let request = csr::build(&key, &ticket.subject, &ticket.sans)?;
    let body = serde_json::to_vec(&SignRequest {
        csr: request.to_pem()?,
        ott: ticket.bundle.jwt.clone(),
        not_before: None,
        not_after: None,
    })
    .map_err(|e| CliError::usage(e.to_string()))?;
    let root_der = issue::cert_der(&root)?;
    let trust = ServerTrust {
        root_der: &root_der,
        tls_key_sha256: ticket.claims.tls_key_sha256.as_deref(),
    };
    let (host, port) = (&ticket.url.host, ticket.url.port);
    let resp = https_request_to(
        host,
        port,
        &trust,
        None,
        "POST",
        &ticket.url.path,
        Some(body),
    );
    let sent: SignResponse = resp.await?.answer(201)?;
    let answer = Answer::parse(&sent.crt, &sent.ca, &ticket.bundle.root_pem)?;
    let files = NodeFiles::new(dir, name);
    let expected = Expected {
        key: &key.public_key(),
        key_file: &files.key(),
        subject: &ticket.subject,
        sans: Some(&ticket.sans),
    };
    answer.check(&expected, now)?;
    files.install(Some(&key), &answer)?;
    NodeConfig {
        ca_url: format!("{host}:{port}"),
        tls_key_sha256: ticket.claims.tls_key_sha256.clone(),
    }
    .save(dir)?;
    Ok(Certified {
        files,
        serial: answer.serial(),
        not_after: answer.not_after(),
        pinned: ticket.claims.tls_key_sha256.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpsUrl::parse("https://localhost:9123/1.0/sign").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 9123, "/1.0/sign")
        );
        assert_eq!(HttpsUrl::parse("https://ca.example").unwrap().port, 443);
        assert!(HttpsUrl::parse("http://localhost:9123/1.0/sign").is_err());
        assert!(HttpsUrl::parse("https://bad host:1/").is_err());
    }
}
