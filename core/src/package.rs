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
//! ```

use alloc::string::String;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::csr::Csr;
use crate::error::malformed;

/// Largest request or signed file accepted.
pub const MAX_FILE: usize = 64 * 1024;

const REQUEST_KIND: &str = "certificate-request";
const SIGNED_KIND: &str = "signed-certificate";

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
}
