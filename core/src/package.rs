//! The files of the air-gapped flow: a request carried to a CA that has no
//! network, and the signed answer carried back. Each is one JSON text file,
//! so the CLI, the air-gapped CA and the browser page read and write the
//! same thing.
//!
//! ```json
//! {"fedpki": "certificate-request", "version": 1, "name": "col1",
//!  "csr": "-----BEGIN CERTIFICATE REQUEST-----…", "token": "<bundle>" | null}
//! {"fedpki": "signed-certificate", "version": 1, "name": "col1",
//!  "crt": "<leaf PEM>", "ca": "<intermediate PEM>", "root": "<root PEM>"}
//! {"fedpki": "intermediate-request", "version": 1, "caUrl": "ca.example:9123",
//!  "csr": "<intermediate CSR PEM>", "csrSha256": "<hex SHA-256 of the CSR DER>"}
//! {"fedpki": "signed-intermediate", "version": 1, "requestSha256": "<the csrSha256 answered>",
//!  "crt": "<intermediate PEM>", "root": "<root PEM>"}
//! ```
//! The last two cross the air gap between an online CA and its offline root.

use alloc::string::String;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::csr::Csr;
use crate::error::malformed;

/// Largest request or signed file accepted.
pub const MAX_FILE: usize = 64 * 1024;

const REQUEST_KIND: &str = "certificate-request";
const SIGNED_KIND: &str = "signed-certificate";
const INTERMEDIATE_REQUEST_KIND: &str = "intermediate-request";
const SIGNED_INTERMEDIATE_KIND: &str = "signed-intermediate";

/// What a node trusts as its CA's root when a signed file comes back over
/// an untrusted path: the root it already holds (its token's), or the
/// fingerprint its operator gave.
#[derive(Debug, Clone, Copy)]
pub enum TrustedRoot<'a> {
    /// The root the node holds, from its token.
    Held(&'a crate::Certificate),
    /// A SHA-256 fingerprint, as [`normalize_fingerprint`] returns it.
    Fingerprint(&'a str),
}

/// That the root a signed file names is one the node trusts: each of
/// `trusted`, which must not be empty. The one rule for the CLI's `pki
/// import` and the page.
pub fn check_returned_root(
    root: &crate::Certificate,
    trusted: &[TrustedRoot<'_>],
) -> Result<(), Error> {
    let got = crate::issue::fingerprint(root)?;
    if trusted.is_empty() {
        return Err(Error::Policy(alloc::format!(
            "there is no root to check it against: give the CA's root fingerprint (`fedpki pki \
             install` printed it; the file names {got})"
        )));
    }
    for t in trusted {
        match t {
            TrustedRoot::Held(ours) if *ours != root => {
                return Err(Error::Policy(alloc::format!(
                    "it chains to another root (SHA-256 {got}) than the one your token vouched \
                     for (SHA-256 {})",
                    crate::issue::fingerprint(ours)?
                )));
            }
            TrustedRoot::Fingerprint(fp) if *fp != got => {
                return Err(Error::Policy(alloc::format!(
                    "it chains to a root with SHA-256 {got}, not the {fp} you gave"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A SHA-256 fingerprint as people write it (`AB:CD…`, any case, an
/// optional `sha256:`) → the lowercase hex fedpki prints.
pub fn normalize_fingerprint(s: &str) -> Result<String, Error> {
    let hex: String = s
        .trim()
        .trim_start_matches("sha256:")
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':')
        .flat_map(char::to_lowercase)
        .collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Malformed(alloc::format!(
            "{:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)",
            s.trim()
        )));
    }
    Ok(hex)
}

/// An online CA's request to its offline root: sign this intermediate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntermediateRequest {
    /// Always `intermediate-request`.
    pub fedpki: String,
    /// Format version (1).
    pub version: u32,
    /// The `HOST:PORT` of the CA asking (shown to the root's operator).
    pub ca_url: String,
    /// The intermediate's CSR, PEM.
    pub csr: String,
    /// Lowercase hex SHA-256 of the CSR's DER: what both operators compare.
    pub csr_sha256: String,
}

/// The root's answer to an [`IntermediateRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIntermediate {
    /// Always `signed-intermediate`.
    pub fedpki: String,
    /// Format version (1).
    pub version: u32,
    /// The `csrSha256` of the request answered.
    pub request_sha256: String,
    /// The intermediate CA certificate, PEM.
    pub crt: String,
    /// The root CA certificate, PEM.
    pub root: String,
}

/// The hash an intermediate request is known by: lowercase hex SHA-256 of
/// its CSR's DER.
pub fn csr_sha256(csr: &Csr) -> String {
    crate::encoding::hex(&crate::encoding::sha256(csr.der()))
}

impl IntermediateRequest {
    /// A request for `csr` from the CA at `ca_url`.
    pub fn new(ca_url: &str, csr: &Csr) -> Result<Self, Error> {
        Ok(Self {
            fedpki: INTERMEDIATE_REQUEST_KIND.into(),
            version: 1,
            ca_url: ca_url.into(),
            csr: csr.to_pem()?,
            csr_sha256: csr_sha256(csr),
        })
    }

    /// Parse a request file, decode its CSR and check the hash it states is
    /// its CSR's (a request edited on the way is refused here).
    pub fn parse(text: &str) -> Result<(Self, Csr), Error> {
        let req: Self = parse_json(text, INTERMEDIATE_REQUEST_KIND, "intermediate request")?;
        let csr = Csr::from_pem(&req.csr)?;
        let actual = csr_sha256(&csr);
        if actual != req.csr_sha256 {
            return Err(Error::Malformed(alloc::format!(
                "the intermediate request was altered: its CSR's SHA-256 is {actual}, \
                 but the file says {}",
                req.csr_sha256
            )));
        }
        Ok((req, csr))
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, Error> {
        to_json(self)
    }
}

impl SignedIntermediate {
    /// The answer to the request known by `request_sha256`.
    pub fn new(request_sha256: &str, crt: String, root: String) -> Self {
        Self {
            fedpki: SIGNED_INTERMEDIATE_KIND.into(),
            version: 1,
            request_sha256: request_sha256.into(),
            crt,
            root,
        }
    }

    /// Parse a signed intermediate (the certificates are checked by the
    /// caller).
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_json(text, SIGNED_INTERMEDIATE_KIND, "signed intermediate")
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, Error> {
        to_json(self)
    }
}

/// A certificate request to carry to the CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFile {
    /// Always `certificate-request`.
    pub fedpki: String,
    /// Format version (1).
    pub version: u32,
    /// The subject asked for.
    pub name: String,
    /// The CSR, PEM.
    pub csr: String,
    /// The enrollment token (bundle), when the request is token-authenticated.
    #[serde(default)]
    pub token: Option<String>,
}

/// A signed certificate to carry back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedFile {
    /// Always `signed-certificate`.
    pub fedpki: String,
    /// Format version (1).
    pub version: u32,
    /// The subject.
    pub name: String,
    /// The leaf certificate, PEM.
    pub crt: String,
    /// The intermediate CA certificate, PEM.
    pub ca: String,
    /// The root CA certificate, PEM.
    pub root: String,
}

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str, kind: &str, what: &str) -> Result<T, Error> {
    if text.len() > MAX_FILE {
        return Err(Error::Malformed(alloc::format!(
            "the {what} is larger than {MAX_FILE} bytes"
        )));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| malformed(&alloc::format!("the {what} is not JSON"), e))?;
    if value.get("fedpki").and_then(|v| v.as_str()) != Some(kind) {
        return Err(Error::Malformed(alloc::format!(
            "this is not a fedpki {what} (\"fedpki\": \"{kind}\" is missing)"
        )));
    }
    if value.get("version").and_then(|v| v.as_u64()) != Some(1) {
        return Err(Error::Unsupported(alloc::format!(
            "{what} version (this fedpki reads version 1)"
        )));
    }
    serde_json::from_str(text).map_err(|e| malformed(&alloc::format!("the {what}"), e))
}

impl RequestFile {
    /// A request for `csr`, optionally carrying a token.
    pub fn new(name: &str, csr: &Csr, token: Option<String>) -> Result<Self, Error> {
        Ok(Self {
            fedpki: REQUEST_KIND.into(),
            version: 1,
            name: name.into(),
            csr: csr.to_pem()?,
            token,
        })
    }

    /// Parse a request file and decode its CSR.
    pub fn parse(text: &str) -> Result<(Self, Csr), Error> {
        let req: Self = parse_json(text, REQUEST_KIND, "request file")?;
        let csr = Csr::from_pem(&req.csr)?;
        Ok((req, csr))
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, Error> {
        to_json(self)
    }
}

impl SignedFile {
    /// A signed answer.
    pub fn new(name: &str, crt: String, ca: String, root: String) -> Self {
        Self {
            fedpki: SIGNED_KIND.into(),
            version: 1,
            name: name.into(),
            crt,
            ca,
            root,
        }
    }

    /// Parse a signed file (the certificates are parsed by the caller).
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_json(text, SIGNED_KIND, "signed file")
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, Error> {
        to_json(self)
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, Error> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| malformed("JSON", e))?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::tests::TestEntropy;
    use crate::name::Subject;
    use crate::{KeyType, PrivateKey};

    #[test]
    fn request_round_trip_and_refusals() {
        let key = PrivateKey::generate(KeyType::P256, &mut TestEntropy(1)).unwrap();
        let csr = crate::csr::build(&key, &Subject::new("col1").unwrap(), &[]).unwrap();
        let req = RequestFile::new("col1", &csr, None).unwrap();
        let (back, back_csr) = RequestFile::parse(&req.to_json().unwrap()).unwrap();
        assert_eq!(back, req);
        assert_eq!(back_csr, csr);
        assert!(RequestFile::parse("{}").is_err());
        assert!(RequestFile::parse("not json").is_err());
        let signed = SignedFile::new("col1", "a".into(), "b".into(), "c".into());
        assert!(
            RequestFile::parse(&signed.to_json().unwrap()).is_err(),
            "kinds are not mixed up"
        );
        let v2 = req
            .to_json()
            .unwrap()
            .replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            RequestFile::parse(&v2),
            Err(Error::Unsupported(_))
        ));
        let bad_csr = req
            .to_json()
            .unwrap()
            .replace("BEGIN CERTIFICATE REQUEST", "BEGIN CERTIFICATE");
        assert!(RequestFile::parse(&bad_csr).is_err());
        assert!(RequestFile::parse(&" ".repeat(MAX_FILE + 1)).is_err());
    }

    #[test]
    fn an_intermediate_request_states_its_hash_and_an_edit_is_refused() {
        use alloc::string::ToString;
        let key = PrivateKey::generate(KeyType::P256, &mut TestEntropy(2)).unwrap();
        let csr = crate::csr::build_for_ca(&key, "fedpki Intermediate CA").unwrap();
        let req = IntermediateRequest::new("ca.example:9123", &csr).unwrap();
        let text = req.to_json().unwrap();
        let (back, back_csr) = IntermediateRequest::parse(&text).unwrap();
        assert_eq!(back, req);
        assert_eq!(back_csr, csr);
        assert_eq!(back.csr_sha256, csr_sha256(&csr));
        // Another CSR under the first one's hash: refused, naming both.
        let other = PrivateKey::generate(KeyType::P256, &mut TestEntropy(3)).unwrap();
        let other_csr = crate::csr::build_for_ca(&other, "fedpki Intermediate CA").unwrap();
        let mut edited = req.clone();
        edited.csr = other_csr.to_pem().unwrap();
        let err = IntermediateRequest::parse(&edited.to_json().unwrap()).unwrap_err();
        assert!(err.to_string().contains("was altered"), "{err}");
        assert!(err.to_string().contains(&csr_sha256(&other_csr)), "{err}");
        // Kinds are not mixed up.
        let signed = SignedIntermediate::new(&req.csr_sha256, "a".into(), "b".into());
        assert!(IntermediateRequest::parse(&signed.to_json().unwrap()).is_err());
        assert!(SignedIntermediate::parse(&text).is_err());
        assert_eq!(
            SignedIntermediate::parse(&signed.to_json().unwrap()).unwrap(),
            signed
        );
        assert!(crate::csr::build_for_ca(&key, "").is_err());
        assert!(crate::csr::build_for_ca(&key, &"x".repeat(65)).is_err());
    }
}
