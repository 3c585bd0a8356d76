//! Tokens made inside a test with a CA folder's provisioner key, unlocked
//! once: hundreds of requests without a `pki get-token` (and its PBKDF2)
//! each.

use std::path::Path;

use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenRequest};
use fedpki_core::{KeyType, PrivateKey};

use crate::PASSWORD;

/// A CA's provisioner, as a test holds it.
#[derive(Debug)]
pub struct Provisioner {
    key: PrivateKey,
    root_der: Vec<u8>,
    ca_url: String,
    pin: Option<String>,
}

impl Provisioner {
    /// The provisioner of the CA folder `dir`, serving at `ca_url`.
    pub fn of(dir: &Path, ca_url: &str) -> Self {
        let key = fedpki::facade::unlock_key(&dir.join("secrets/provisioner_key"), PASSWORD)
            .expect("provisioner key");
        let root = std::fs::read_to_string(dir.join("certs/root_ca.crt")).expect("root");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config/ca.json")).unwrap())
                .expect("config");
        Self {
            key,
            root_der: fedpki_core::encoding::pem_one(&root, "CERTIFICATE").expect("root PEM"),
            ca_url: ca_url.to_owned(),
            pin: config["tlsKeySha256"].as_str().map(str::to_owned),
        }
    }

    fn jwt(&self, subject: &str, audience: &str, pin: Option<&str>) -> String {
        token::sign(
            &TokenRequest {
                issuer: "provisioner",
                subject: &Subject::new(subject).expect("subject"),
                sans: &[San::parse(subject).expect("san")],
                audience,
                root_der: &self.root_der,
                now: fedpki::facade::now(),
                ttl_secs: 600,
                tls_key_sha256: pin,
            },
            &self.key,
            &mut fedpki::facade::OsEntropy,
        )
        .expect("token")
    }

    /// A sign token (a bare JWT) for `name`.
    pub fn sign_jwt(&self, name: &str) -> String {
        let audience = token::sign_audience(&self.ca_url);
        self.jwt(name, &audience, self.pin.as_deref())
    }

    /// A sign token for `name` without the CA's key pin, as `step ca
    /// token` and `fx pki get-token` make them.
    pub fn step_jwt(&self, name: &str) -> String {
        self.jwt(name, &token::sign_audience(&self.ca_url), None)
    }

    /// A revoke token for `serial` (hex), as `pki get-token --revoke`.
    pub fn revoke_jwt(&self, serial: &str) -> String {
        let decimal = fedpki_core::serial::hex_to_decimal(serial).expect("hex serial");
        self.jwt(
            &decimal,
            &format!("https://{}/1.0/revoke", self.ca_url),
            None,
        )
    }

    /// A `/1.0/sign` body for `name` over `key`.
    pub fn sign_body(&self, name: &str, key: &PrivateKey) -> Vec<u8> {
        let csr = fedpki_core::csr::build(
            key,
            &Subject::new(name).expect("subject"),
            &[San::parse(name).expect("san")],
        )
        .expect("csr");
        serde_json::to_vec(&serde_json::json!({
            "csr": csr.to_pem().expect("pem"),
            "ott": self.sign_jwt(name),
        }))
        .expect("json")
    }
}

/// A fresh P-256 key.
pub fn new_key() -> PrivateKey {
    PrivateKey::generate(KeyType::P256, &mut fedpki::facade::OsEntropy).expect("key")
}
