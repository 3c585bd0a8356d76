//! `config/ca.json`: what a CA is (its address, provisioner, lifetimes,
//! root fingerprint, TLS key pin, intermediates, adoption, ledger), read
//! and written whole.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CaPaths, ca_host_names, parse_ca_url, revoke_audience};
use crate::error::{CliError, Result};
use crate::platform::sys::read_text;

/// `config/ca.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaConfig {
    /// Format version.
    pub version: u32,
    /// `HOST:PORT` clients reach the CA at; tokens' `aud` is built from it.
    pub ca_url: String,
    /// The provisioner (`iss` of tokens).
    pub provisioner: ProvisionerConfig,
    /// Leaf certificate lifetime, seconds.
    pub leaf_lifetime_secs: u64,
    /// Hex SHA-256 of the root certificate DER.
    pub root_fingerprint: String,
    /// The longest a token may live (`exp - nbf`), seconds.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_secs: u64,
    /// Hex SHA-256 of the SubjectPublicKeyInfo of `secrets/tls_key`, put in
    /// every token (`tlsKeySha256`). Absent in CAs made before it existed:
    /// `pki run` then creates the key and records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_sha256: Option<String>,
    /// Set while an offline-root install waits for its signed intermediate
    /// (`pki install --complete`): nothing may be served or signed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_root: bool,
    /// The key id (hex) of the intermediate that issues, when it is not the
    /// first one (`certs/intermediate_ca.crt`): set by `pki intermediate
    /// activate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_intermediate: Option<String>,
    /// Intermediates that issued before the active one: they still sign
    /// their CRLs, and their certificates still renew and revoke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_intermediates: Vec<RetiredIntermediate>,
    /// Set when the CA was adopted from a step-ca (`pki install
    /// --from-step-ca`): what step-ca issued before may be taken into the
    /// ledger when its holder presents it, and what step-ca spent is not
    /// known here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<Adoption>,
    /// Whether a node may be certified for the CA's own host names
    /// ([`ca_host_names`]). Off unless the operator allows it (`pki install
    /// --node-on-ca-host allow`): a node holding such a certificate could
    /// pose as the CA to a client whose token does not pin the CA's key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_node_on_ca_host: bool,
    /// Other names (or IP addresses) the CA is reached under, on the same
    /// port (`pki install --dns`): its TLS certificate carries them and
    /// tokens made for them are accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// Where the ledger lives when not in this folder: a `postgresql://`
    /// URL (no password) shared by the CA's replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The oldest a key may be at any certificate's notAfter, counted from
    /// the ledger's first certificate of it (`pki install --max-key-age`,
    /// NVFlare's key-age limit). None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_age_secs: Option<u64>,
}

/// When and with which intermediate a CA was adopted from a step-ca.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    /// When (Unix seconds): step-ca issued only before it, and tokens made
    /// before it may have been spent there.
    pub at: u64,
    /// The key id (hex) of the intermediate step-ca issued with.
    pub intermediate: String,
}

/// An intermediate that no longer issues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RetiredIntermediate {
    /// Its key id, hex.
    pub key_id: String,
    /// When it stopped issuing (Unix seconds).
    pub retired_at: u64,
    /// When the last certificate it can have signed expires: its CRL is
    /// signed until then.
    pub crl_until: u64,
}

fn default_max_token_lifetime() -> u64 {
    fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS
}

/// The provisioner's public half.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionerConfig {
    /// Name.
    pub name: String,
    /// RFC 7638 thumbprint of its key (the tokens' `kid`).
    pub kid: String,
    /// Its public key, PEM SubjectPublicKeyInfo.
    pub public_key: String,
}

impl CaConfig {
    /// Read and check `config/ca.json` of a CA ready to sign.
    pub fn load(paths: &CaPaths) -> Result<Self> {
        let config = Self::load_any(paths)?;
        if config.awaiting_root {
            return Err(CliError::usage(format!(
                "the CA in {dir} is not complete: its intermediate has not been signed by \
                 the offline root yet. Carry the request (the file `pki install -o` wrote; \
                 the same request is kept in {req}) to the root host, run `fedpki pki root \
                 sign -p ROOT_DIR REQUEST -o SIGNED` there, then `fedpki pki install -p {dir} \
                 --complete SIGNED --root-fingerprint FINGERPRINT` here (the fingerprint \
                 `pki root init` printed); nothing was served or signed",
                dir = paths.dir.display(),
                req = paths.next_request().display()
            )));
        }
        Ok(config)
    }

    /// Read `config/ca.json`, complete or waiting for its root.
    pub(crate) fn load_any(paths: &CaPaths) -> Result<Self> {
        if !paths.exists() {
            return Err(CliError::usage(format!(
                "no fedpki CA in {} (no config/ca.json); create one with `fedpki pki install -p {}`",
                paths.dir.display(),
                paths.dir.display()
            )));
        }
        crate::ca::guard::check(&paths.dir)?;
        let text = read_text(&paths.config())?;
        let mut config: Self = serde_json::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is corrupt ({e}); restore the CA folder from a backup",
                paths.config().display()
            ))
        })?;
        // A CA installed before addresses had one form may hold another
        // (`https://…/`): taken in the one form from now on.
        if let Ok(at) = crate::address::CaAddress::parse(&config.ca_url) {
            config.ca_url = at.to_string();
        }
        Ok(config)
    }

    /// The names the CA's own HTTPS server answers for, as its TLS
    /// certificate carries them: [`ca_host_names`] of its URL's host and
    /// of each `--dns` name.
    pub(crate) fn host_names(&self) -> Result<Vec<fedpki_core::name::San>> {
        let (host, _) = parse_ca_url(&self.ca_url)?;
        let mut names = Vec::new();
        for one in std::iter::once(&host).chain(&self.dns) {
            for name in ca_host_names(one)? {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    /// Every address the CA is reached at, each in the one form: its URL
    /// first, then each of its other host names on the same port.
    pub(crate) fn addresses(&self) -> Vec<String> {
        let mut all = vec![self.ca_url.clone()];
        let (Ok(at), Ok(names)) = (
            crate::address::CaAddress::parse(&self.ca_url),
            self.host_names(),
        ) else {
            return all;
        };
        for name in names {
            let other = crate::address::CaAddress {
                host: name.to_string(),
                port: at.port,
            }
            .to_string();
            if !all.contains(&other) {
                all.push(other);
            }
        }
        all
    }

    /// Whether `address` (a CA address in the one form) is one of this
    /// CA's.
    pub(crate) fn serves_at(&self, address: &str) -> bool {
        self.addresses().iter().any(|a| a == address)
    }

    /// Where the leaves of the intermediate `kid` (hex key id) say its CRL
    /// and its certificate are: the routes `GET /crl/KID` and `GET
    /// /crt/KID` at the CA's URL.
    pub(crate) fn published(&self, kid: &str) -> fedpki_core::profile::Published {
        fedpki_core::profile::Published {
            crl: Some(format!("https://{}/crl/{kid}", self.ca_url)),
            ca_issuers: Some(format!("https://{}/crt/{kid}", self.ca_url)),
        }
    }

    /// The audiences this CA accepts in tokens: for each of its addresses.
    pub fn audiences(&self) -> Vec<String> {
        self.addresses()
            .iter()
            .flat_map(|a| {
                [
                    fedpki_core::token::sign_audience(a),
                    format!("https://{a}/sign"),
                ]
            })
            .collect()
    }

    /// The audiences this CA accepts in revoke tokens.
    pub fn revoke_audiences(&self) -> Vec<String> {
        self.addresses()
            .iter()
            .map(|a| revoke_audience(a))
            .collect()
    }

    /// Write `config/ca.json` (atomically: the switch of every change that
    /// ends with it).
    pub(crate) fn save(&self, paths: &CaPaths) -> Result<()> {
        crate::platform::sys::write_json(&paths.config(), self, 0o600)
    }

    /// Where this CA's ledger lives: its folder's `db/`, or the shared
    /// database its config names (reached with the password from
    /// `store_password`, else libpq's conventions).
    pub(crate) fn ledger(
        &self,
        paths: &CaPaths,
        store_password: Option<&Path>,
    ) -> Result<crate::store::StoreLocation> {
        Ok(match &self.store {
            None => crate::store::StoreLocation::Embedded(paths.store()),
            Some(url) => crate::store::StoreLocation::Postgres {
                location: Box::new(crate::store::postgres::PgLocation::parse(
                    url,
                    store_password,
                )?),
                root_fingerprint: self.root_fingerprint.clone(),
            },
        })
    }

    /// The provisioner's verifying key.
    pub fn provisioner_key(&self) -> Result<fedpki_core::PublicKey> {
        fedpki_core::PublicKey::from_pem(&self.provisioner.public_key).map_err(|e| {
            CliError::CorruptCa(format!(
                "the provisioner key in config/ca.json is corrupt: {e}"
            ))
        })
    }
}
