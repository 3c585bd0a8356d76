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
use fedpki_core::{
    Entropy, KeyType, PrivateKey, PublicKey, SignatureAlgorithm, SigningKey, UnixTime, chain, csr,
    issue,
};
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
    inner: Held,
}

/// Where the key's secret is: here (made or read by the core), or in
/// WebCrypto, which made it and signs with it at native speed. Either way
/// the file saved is PKCS#8 and the CSR is the core's.
#[derive(Debug)]
enum Held {
    Here(PrivateKey),
    WebCrypto {
        /// The PKCS#8 DER WebCrypto exported (`exportKey("pkcs8")`).
        pkcs8: zeroize::Zeroizing<Vec<u8>>,
        /// Its public half.
        public: PublicKey,
    },
}

impl Key {
    fn public_key(&self) -> PublicKey {
        match &self.inner {
            Held::Here(k) => k.public_key(),
            Held::WebCrypto { public, .. } => public.clone(),
        }
    }

    fn pkcs8_der(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, JsError> {
        match &self.inner {
            Held::Here(k) => k.to_pkcs8_der().map_err(js),
            Held::WebCrypto { pkcs8, .. } => Ok(pkcs8.clone()),
        }
    }
}

#[wasm_bindgen]
impl Key {
    /// Generate a key here: `"p256"` (default), `"p384"` or `"ed25519"`.
    /// (The page makes its P-256 keys with WebCrypto: [`Key::from_webcrypto`].)
    pub fn generate(key_type: &str) -> Result<Key, JsError> {
        let kt: KeyType = if key_type.is_empty() {
            KeyType::P256
        } else {
            key_type.parse().map_err(js)?
        };
        Ok(Key {
            inner: Held::Here(PrivateKey::generate(kt, &mut BrowserEntropy).map_err(js)?),
        })
    }

    /// A key WebCrypto made: its `exportKey("pkcs8")` and
    /// `exportKey("spki")`. Signing stays with WebCrypto
    /// ([`Key::to_be_signed`], [`Key::csr_with_signature`]).
    #[wasm_bindgen(js_name = fromWebCrypto)]
    pub fn from_webcrypto(pkcs8: Vec<u8>, spki: Vec<u8>) -> Result<Key, JsError> {
        let public = PublicKey::from_der(&spki).map_err(js)?;
        Ok(Key {
            inner: Held::WebCrypto {
                pkcs8: zeroize::Zeroizing::new(pkcs8),
                public,
            },
        })
    }

    /// Load a key this page saved earlier (unencrypted PKCS#8 PEM), for the
    /// offline flow when the signed file comes back. Reading only plain
    /// PKCS#8 keeps the PBES2 decryption code out of the module.
    #[wasm_bindgen(js_name = fromPkcs8Pem)]
    pub fn from_pkcs8_pem(pem: &str) -> Result<Key, JsError> {
        let der = fedpki_core::encoding::pem_one(pem, "PRIVATE KEY").map_err(js)?;
        Ok(Key {
            inner: Held::Here(PrivateKey::from_pkcs8_der(&der).map_err(js)?),
        })
    }

    /// Unencrypted PKCS#8 PEM, as `fedpki pki certify` writes `<name>.key`.
    #[wasm_bindgen(js_name = pkcs8Pem)]
    pub fn pkcs8_pem(&self) -> Result<String, JsError> {
        fedpki_core::encoding::pem("PRIVATE KEY", &self.pkcs8_der()?).map_err(js)
    }

    /// PKCS#8 PBES2 PEM encrypted with `password` (PBKDF2-SHA256 with
    /// `iterations` rounds, AES-256-CBC): what `openssl pkey -passin` reads.
    #[wasm_bindgen(js_name = encryptedPkcs8Pem)]
    pub fn encrypted_pkcs8_pem(&self, password: &str, iterations: u32) -> Result<String, JsError> {
        if password.is_empty() {
            return Err(JsError::new("the passphrase is empty"));
        }
        fedpki_core::key::encrypt_pkcs8_der(
            &self.pkcs8_der()?,
            password.as_bytes(),
            iterations.max(10_000),
            &mut BrowserEntropy,
        )
        .map_err(js)
    }

    /// A CSR (PEM) for `name` with `sans` (the name alone when empty),
    /// signed here (a key made or read by the core).
    #[wasm_bindgen(js_name = csrPem)]
    pub fn csr_pem(&self, name: &str, sans: Vec<String>) -> Result<String, JsError> {
        let Held::Here(key) = &self.inner else {
            return Err(JsError::new(
                "this key signs in WebCrypto: use draft(), then finish() with its signature",
            ));
        };
        let subject = Subject::new(name).map_err(js)?;
        let sans = San::for_subject(name, &sans).map_err(js)?;
        csr::build(key, &subject, &sans)
            .and_then(|c| c.to_pem())
            .map_err(js)
    }

    /// The CSR of `name` and `sans`, to be signed by WebCrypto:
    /// [`CsrDraft::to_be_signed`], then [`CsrDraft::finish`].
    pub fn draft(&self, name: &str, sans: Vec<String>) -> Result<CsrDraft, JsError> {
        let algorithm = match self.public_key().algorithm() {
            fedpki_core::KeyAlgorithm::P384 => SignatureAlgorithm::EcdsaSha384,
            _ => SignatureAlgorithm::EcdsaSha256,
        };
        Ok(CsrDraft {
            unsigned: Some(self.unsigned(name, &sans)?),
            algorithm,
        })
    }
}

/// A CSR waiting for WebCrypto's ECDSA signature. Built once: the bytes
/// signed are the bytes finished.
#[wasm_bindgen]
#[derive(Debug)]
pub struct CsrDraft {
    unsigned: Option<csr::Unsigned>,
    algorithm: SignatureAlgorithm,
}

#[wasm_bindgen]
impl CsrDraft {
    /// What the key signs (DER of the CertificationRequestInfo).
    #[wasm_bindgen(js_name = toBeSigned)]
    pub fn to_be_signed(&self) -> Result<Vec<u8>, JsError> {
        let unsigned = self.unsigned.as_ref().ok_or_else(finished)?;
        Ok(unsigned.to_be_signed().to_vec())
    }

    /// The CSR (PEM), with WebCrypto's signature (`r || s`) over
    /// [`CsrDraft::to_be_signed`]. Once.
    pub fn finish(&mut self, signature: Vec<u8>) -> Result<String, JsError> {
        let unsigned = self.unsigned.take().ok_or_else(finished)?;
        let der = csr::ecdsa_p1363_to_der(&signature).map_err(js)?;
        unsigned
            .finish(self.algorithm, &der)
            .and_then(|c| c.to_pem())
            .map_err(js)
    }
}

fn finished() -> JsError {
    JsError::new("this CSR is finished already")
}

impl Key {
    fn unsigned(&self, name: &str, sans: &[String]) -> Result<csr::Unsigned, JsError> {
        let subject = Subject::new(name).map_err(js)?;
        let sans = San::for_subject(name, sans).map_err(js)?;
        csr::Unsigned::new(self.public_key(), &subject, &sans).map_err(js)
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
    to_json(&TokenInfo {
        name: &claims.sub,
        sans: &claims.sans,
        aud: &aud,
        exp: claims.exp,
        jwt: &bundle.jwt,
        root_pem: &bundle.root_pem,
        root_sha256: &claims.sha,
    })
}

/// What [`parse_token`] returns. Typed, not a `serde_json::Value`: a
/// value's serializer would bring float formatting into the module.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenInfo<'a> {
    name: &'a str,
    sans: &'a [String],
    aud: &'a str,
    exp: u64,
    jwt: &'a str,
    root_pem: &'a str,
    root_sha256: &'a str,
}

/// What [`read_signed_file`] returns.
#[derive(serde::Serialize)]
struct SignedInfo<'a> {
    name: &'a str,
    crt: &'a str,
    ca: &'a str,
    root: &'a str,
}

fn to_json(value: &impl serde::Serialize) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(js)
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
        &key.public_key(),
        &subject,
        &San::for_subject(name, &sans).map_err(js)?,
    )
    .map_err(js)
}

/// The air-gapped request file for the CSR `csr_pem` of `name` (see the
/// README), with the token when there is one (then the names must be the
/// token's: make the CSR with them).
#[wasm_bindgen(js_name = requestFile)]
pub fn request_file(csr_pem: &str, name: &str, token: Option<String>) -> Result<String, JsError> {
    if let Some(t) = &token {
        let (_, claims, _) = Bundle::parse(t).map_err(js)?;
        if claims.sub != name {
            return Err(JsError::new(&format!(
                "this token is for {:?}, not {name:?}",
                claims.sub
            )));
        }
    }
    let request = csr::Csr::from_pem(csr_pem).map_err(js)?;
    RequestFile::new(name, &request, token)
        .and_then(|r| r.to_json())
        .map_err(js)
}

/// Read a signed file. Returns JSON `{name, crt, ca, root}`; check it with
/// [`accept_signed_file`] before use.
#[wasm_bindgen(js_name = readSignedFile)]
pub fn read_signed_file(text: &str) -> Result<String, JsError> {
    let f = SignedFile::parse(text).map_err(js)?;
    to_json(&SignedInfo {
        name: &f.name,
        crt: &f.crt,
        ca: &f.ca,
        root: &f.root,
    })
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
