//! wasm-bindgen wrappers over `fedpki-core` for the certify page.
//!
//! Only wrappers: every check and format is the core's, so the browser and
//! the CLI cannot disagree. Exports return `Result<_, JsError>` and never
//! panic; time comes from JavaScript (`Date.now()`), randomness from
//! `crypto.getRandomValues` (getrandom's `wasm_js` backend). Structured
//! results are returned as JSON text, which keeps the bindings free of
//! serialisation glue.

use fedpki_core::name::{San, Subject};
use fedpki_core::package::{RequestFile, SignedFile};
use fedpki_core::token::Bundle;
use fedpki_core::{Entropy, KeyType, PrivateKey, SigningKey, UnixTime, chain, csr, issue};
use wasm_bindgen::prelude::*;

/// The browser's CSPRNG.
struct BrowserEntropy;

impl Entropy for BrowserEntropy {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), fedpki_core::Error> {
        getrandom::fill(dest).map_err(|_| fedpki_core::Error::Entropy)
    }
}

fn js(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A private key that lives in this page's memory only. `Debug` prints no
/// secret.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Key {
    inner: PrivateKey,
}

#[wasm_bindgen]
impl Key {
    /// Generate a key: `"p256"` (default), `"p384"` or `"ed25519"`.
    pub fn generate(key_type: &str) -> Result<Key, JsError> {
        let kt: KeyType = if key_type.is_empty() {
            KeyType::P256
        } else {
            key_type.parse().map_err(js)?
        };
        Ok(Key {
            inner: PrivateKey::generate(kt, &mut BrowserEntropy).map_err(js)?,
        })
    }

    /// Load a key this page saved earlier (unencrypted PKCS#8 PEM), for the
    /// offline flow when the signed file comes back. Reading only plain
    /// PKCS#8 keeps the PBES2 decryption code out of the module.
    #[wasm_bindgen(js_name = fromPkcs8Pem)]
    pub fn from_pkcs8_pem(pem: &str) -> Result<Key, JsError> {
        let der = fedpki_core::encoding::pem_one(pem, "PRIVATE KEY").map_err(js)?;
        Ok(Key {
            inner: PrivateKey::from_pkcs8_der(&der).map_err(js)?,
        })
    }

    /// Unencrypted PKCS#8 PEM, as `fedpki pki certify` writes `<name>.key`.
    #[wasm_bindgen(js_name = pkcs8Pem)]
    pub fn pkcs8_pem(&self) -> Result<String, JsError> {
        Ok(self.inner.to_pkcs8_pem().map_err(js)?.to_string())
    }

    /// PKCS#8 PBES2 PEM encrypted with `password` (PBKDF2-SHA256 with
    /// `iterations` rounds, AES-256-CBC): what `openssl pkey -passin` reads.
    #[wasm_bindgen(js_name = encryptedPkcs8Pem)]
    pub fn encrypted_pkcs8_pem(&self, password: &str, iterations: u32) -> Result<String, JsError> {
        if password.is_empty() {
            return Err(JsError::new("the passphrase is empty"));
        }
        self.inner
            .to_encrypted_pem(
                password.as_bytes(),
                iterations.max(10_000),
                &mut BrowserEntropy,
            )
            .map_err(js)
    }

    /// A CSR (PEM) for `name` with `sans` (the name alone when empty).
    #[wasm_bindgen(js_name = csrPem)]
    pub fn csr_pem(&self, name: &str, sans: Vec<String>) -> Result<String, JsError> {
        let subject = Subject::new(name).map_err(js)?;
        let sans = San::for_subject(name, &sans).map_err(js)?;
        csr::build(&self.inner, &subject, &sans)
            .and_then(|c| c.to_pem())
            .map_err(js)
    }
}

/// Split a token bundle and check its root against `sha`, before anything
/// is sent anywhere. Returns JSON `{name, sans, aud, exp, jwt, rootPem,
/// rootSha256}`.
#[wasm_bindgen(js_name = parseToken)]
pub fn parse_token(token: &str) -> Result<String, JsError> {
    let (bundle, claims, _) = Bundle::parse(token).map_err(js)?;
    let aud = match &claims.aud {
        fedpki_core::token::Audience::One(a) => a.clone(),
        fedpki_core::token::Audience::Many(v) => v.first().cloned().unwrap_or_default(),
    };
    Ok(serde_json::json!({
        "name": claims.sub,
        "sans": claims.sans,
        "aud": aud,
        "exp": claims.exp,
        "jwt": bundle.jwt,
        "rootPem": bundle.root_pem,
        "rootSha256": claims.sha,
    })
    .to_string())
}

/// Check the CA's answer before offering any download: the chain leaf →
/// intermediate → root at `now_ms`, the leaf is for `key`, `name` and `sans`.
#[wasm_bindgen(js_name = verifyAnswer)]
pub fn verify_answer(
    key: &Key,
    name: &str,
    sans: Vec<String>,
    crt_pem: &str,
    ca_pem: &str,
    root_pem: &str,
    now_ms: f64,
) -> Result<(), JsError> {
    let leaf = issue::parse_cert_pem(crt_pem).map_err(js)?;
    let intermediate = issue::parse_cert_pem(ca_pem).map_err(js)?;
    let root = issue::parse_cert_pem(root_pem).map_err(js)?;
    let now = UnixTime((now_ms / 1000.0).max(0.0) as u64);
    chain::verify_chain(&leaf, &intermediate, &root, now, &fedpki_core::RUST_CRYPTO).map_err(js)?;
    let subject = Subject::new(name).map_err(js)?;
    chain::check_leaf_is_ours(
        &leaf,
        &key.inner.public_key(),
        &subject,
        &San::for_subject(name, &sans).map_err(js)?,
    )
    .map_err(js)
}

/// The air-gapped request file for `key` (see the README), with the token
/// when there is one (then the names are the token's).
#[wasm_bindgen(js_name = requestFile)]
pub fn request_file(key: &Key, name: &str, token: Option<String>) -> Result<String, JsError> {
    let sans = match &token {
        Some(t) => {
            let (_, claims, _) = Bundle::parse(t).map_err(js)?;
            if claims.sub != name {
                return Err(JsError::new(&format!(
                    "this token is for {:?}, not {name:?}",
                    claims.sub
                )));
            }
            claims.sans
        }
        None => Vec::new(),
    };
    let subject = Subject::new(name).map_err(js)?;
    let request = csr::build(
        &key.inner,
        &subject,
        &San::for_subject(name, &sans).map_err(js)?,
    )
    .map_err(js)?;
    RequestFile::new(name, &request, token)
        .and_then(|r| r.to_json())
        .map_err(js)
}

/// Read a signed file. Returns JSON `{name, crt, ca, root}`; check it with
/// [`accept_signed_file`] before use.
#[wasm_bindgen(js_name = readSignedFile)]
pub fn read_signed_file(text: &str) -> Result<String, JsError> {
    let f = SignedFile::parse(text).map_err(js)?;
    Ok(serde_json::json!({"name": f.name, "crt": f.crt, "ca": f.ca, "root": f.root}).to_string())
}

/// Check a signed file that came back by hand before offering anything:
/// its root must be the one the page holds from the request's token
/// (`trusted_root_pem`), or have the fingerprint the user typed; with
/// neither it is refused (`pki import`'s rule and words). Then the answer
/// checks of [`verify_answer`].
#[wasm_bindgen(js_name = acceptSignedFile)]
pub fn accept_signed_file(
    key: &Key,
    text: &str,
    sans: Vec<String>,
    trusted_root_pem: Option<String>,
    root_fingerprint: Option<String>,
    now_ms: f64,
) -> Result<(), JsError> {
    use fedpki_core::package::{TrustedRoot, check_returned_root, normalize_fingerprint};
    let f = SignedFile::parse(text).map_err(js)?;
    let root = issue::parse_cert_pem(&f.root).map_err(js)?;
    let held = match trusted_root_pem.as_deref() {
        Some(pem) => Some(issue::parse_cert_pem(pem).map_err(js)?),
        None => None,
    };
    let fingerprint = match root_fingerprint.as_deref().map(str::trim) {
        Some(fp) if !fp.is_empty() => Some(normalize_fingerprint(fp).map_err(js)?),
        _ => None,
    };
    let mut trusted = Vec::new();
    if let Some(fp) = &fingerprint {
        trusted.push(TrustedRoot::Fingerprint(fp));
    }
    if let Some(ours) = &held {
        trusted.push(TrustedRoot::Held(ours));
    }
    check_returned_root(&root, &trusted).map_err(js)?;
    verify_answer(key, &f.name, sans, &f.crt, &f.ca, &f.root, now_ms)
}

/// OpenFL's CSR hash (hex SHA-384 of the PEM), for comparing by phone.
#[wasm_bindgen(js_name = csrHash)]
pub fn csr_hash(csr_pem: &str) -> Result<String, JsError> {
    csr::Csr::from_pem(csr_pem)
        .and_then(|c| c.openfl_hash())
        .map_err(js)
}
