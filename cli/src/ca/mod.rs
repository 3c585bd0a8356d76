//! The CA folder: its layout, its config, creating it (`pki install`) and
//! unlocking it.
//!
//! ```text
//! DIR/                       0700
//!   config/ca.json           CA URL, provisioner name and public key, lifetimes
//!   certs/root_ca.crt        root certificate (PEM)
//!   certs/intermediate_ca.crt   the first intermediate
//!   certs/intermediate_ca.crl   the active intermediate's last CRL
//!   certs/intermediates/KID.crt intermediates activated since (KID: hex key id)
//!   certs/crl/KID.crl           each intermediate's last CRL
//!   certs/root_ca.crl           the root's CRL, as `pki install --root-crl` gave it
//!   secrets/root_ca_key      encrypted PKCS#8 (PBES2), 0600; absent with an offline root
//!   secrets/intermediate_ca_key
//!   secrets/intermediates/KID_key
//!   secrets/next_intermediate_key  staged by `pki intermediate request` (or an
//!                            offline-root install), with config/next_intermediate.json
//!   secrets/provisioner_key  signs enrollment tokens
//!   secrets/tls_key          the HTTPS server's key, pinned by every token
//!   db/fedpki.redb           burnt token ids, issued certificates
//!   fedpki.lock              held (flock) by the running server, holds its pid
//! ```
//! The layout follows step-ca's, so an operator finds things where they
//! expect them.

mod adopt;
pub(crate) mod backup;
pub(crate) mod guard;
mod install;
pub(crate) mod issuers;
mod lock;
pub(crate) mod offline_root;
pub(crate) mod passwd;
pub(crate) mod replica;
pub(crate) mod roster;

pub(crate) use self::adopt::adopt;
pub(crate) use self::install::{InstallOptions, install, install_awaiting_root};
pub(crate) use self::lock::FolderLock;
pub use self::lock::server_pid;

use std::path::{Path, PathBuf};

use fedpki_core::Certificate;
use fedpki_core::issue;
use fedpki_core::key::PBKDF2_ITERATIONS;
use fedpki_core::{KeyType, PrivateKey, SigningKey};
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::platform::sys::{OsEntropy, read_text, write_atomic};

/// Default CA address, as OpenFL's.
pub(crate) const DEFAULT_CA_URL: &str = "localhost:9123";
/// Default provisioner name, as step's.
pub(crate) const DEFAULT_PROVISIONER: &str = "provisioner";

/// Paths inside a CA folder.
#[derive(Debug, Clone)]
pub struct CaPaths {
    /// The folder.
    pub dir: PathBuf,
}

impl CaPaths {
    /// The layout of `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `config/ca.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config").join("ca.json")
    }
    /// `certs/root_ca.crt`.
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("certs").join("root_ca.crt")
    }
    /// `certs/intermediate_ca.crt`.
    pub fn intermediate_cert(&self) -> PathBuf {
        self.dir.join("certs").join("intermediate_ca.crt")
    }
    /// `secrets/root_ca_key`.
    pub fn root_key(&self) -> PathBuf {
        self.dir.join("secrets").join("root_ca_key")
    }
    /// `secrets/intermediate_ca_key`.
    pub fn intermediate_key(&self) -> PathBuf {
        self.dir.join("secrets").join("intermediate_ca_key")
    }
    /// `secrets/provisioner_key`.
    pub fn provisioner_key(&self) -> PathBuf {
        self.dir.join("secrets").join("provisioner_key")
    }
    /// `secrets/tls_key`: the CA server's TLS key, pinned by its tokens.
    pub fn tls_key(&self) -> PathBuf {
        self.dir.join("secrets").join("tls_key")
    }
    /// `db/fedpki.redb`.
    pub fn database(&self) -> PathBuf {
        self.dir.join("db").join("fedpki.redb")
    }
    /// `db/audit.log`.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("db").join("audit.log")
    }
    /// The store's files: the index and the audit log.
    pub fn store(&self) -> crate::store::StorePaths {
        crate::store::StorePaths {
            index: self.database(),
            log: self.audit_log(),
        }
    }
    /// `certs/intermediate_ca.crl`: the active intermediate's last CRL.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("certs").join("intermediate_ca.crl")
    }
    /// `certs/crl/KID.crl`: the last CRL of the intermediate with key id `kid`.
    pub fn crl_of(&self, kid: &str) -> PathBuf {
        self.dir
            .join("certs")
            .join("crl")
            .join(format!("{kid}.crl"))
    }
    /// `certs/intermediates/KID.crt`: an intermediate activated by rotation.
    pub fn rotated_cert(&self, kid: &str) -> PathBuf {
        self.dir
            .join("certs")
            .join("intermediates")
            .join(format!("{kid}.crt"))
    }
    /// `secrets/intermediates/KID_key`: its key.
    pub fn rotated_key(&self, kid: &str) -> PathBuf {
        self.dir
            .join("secrets")
            .join("intermediates")
            .join(format!("{kid}_key"))
    }
    /// `secrets/next_intermediate_key`: a staged intermediate's key.
    pub fn next_key(&self) -> PathBuf {
        self.dir.join("secrets").join("next_intermediate_key")
    }
    /// `config/next_intermediate.json`: the request it was staged with.
    pub fn next_request(&self) -> PathBuf {
        self.dir.join("config").join("next_intermediate.json")
    }
    /// `certs/root_ca.crl`: the offline root's CRL, as it was given.
    pub fn root_crl(&self) -> PathBuf {
        self.dir.join("certs").join("root_ca.crl")
    }
    /// `fedpki.lock`.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("fedpki.lock")
    }
    /// Whether a CA lives here (its config exists).
    pub fn exists(&self) -> bool {
        self.config().is_file()
    }
}

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

/// The `aud` of a revoke token for a CA at `host_port`.
pub(crate) fn revoke_audience(host_port: &str) -> String {
    format!("https://{host_port}/1.0/revoke")
}

/// The cRLNumber of the CRL kept in `path` (the last one signed, or the
/// root's as given), if there is one: new CRLs are numbered above it.
pub(crate) fn crl_number_in(path: &Path) -> Option<u64> {
    let der = crate::platform::sys::read_bounded(path, crate::platform::sys::MAX_CRL).ok()?;
    fedpki_core::crl::Crl::parse(&der).ok()?.number()
}

/// Lifetime of the CA server's own TLS certificate; renewed at two thirds.
pub(crate) const TLS_CERT_LIFETIME_SECS: u64 = 24 * 3600;

/// The shortest certificate lifetime a CA may be installed with.
pub(crate) const MIN_LEAF_LIFETIME_SECS: u64 = 10;

/// A CA address's host and port (see [`crate::address::CaAddress`]).
pub fn parse_ca_url(url: &str) -> Result<(String, u16)> {
    let a = crate::address::CaAddress::parse(url)?;
    Ok((a.host, a.port))
}

/// The names the CA's own HTTPS server answers for, as its TLS certificate
/// carries them: its URL's host, and for `localhost` the loopback
/// addresses too.
pub(crate) fn ca_host_names(host: &str) -> Result<Vec<fedpki_core::name::San>> {
    use fedpki_core::name::San;
    let mut names = vec![San::parse(host)?];
    if host.eq_ignore_ascii_case("localhost") {
        names.push(San::parse("127.0.0.1")?);
        names.push(San::parse("::1")?);
    }
    Ok(names)
}

/// The pin of a TLS key (see [`fedpki_core::PublicKey::pin`]).
pub(crate) fn tls_key_pin(key: &PrivateKey) -> String {
    key.public_key().pin()
}

/// The CA server's TLS key, unlocked, and the config that pins it. A CA
/// made before the key existed gets one now, recorded in its config (the
/// caller holds the folder's lock); a key that does not match its pin is
/// refused, since tokens would then be refused by every client.
pub(crate) fn server_tls_key(
    paths: &CaPaths,
    config: &CaConfig,
    password: &str,
) -> Result<(PrivateKey, CaConfig)> {
    let path = paths.tls_key();
    if path.exists() {
        let key = unlock_key(&path, password)?;
        let pin = tls_key_pin(&key);
        if config.tls_key_sha256.as_deref() != Some(pin.as_str()) {
            return Err(CliError::CorruptCa(format!(
                "{} does not match tlsKeySha256 in config/ca.json; the CA folder was altered \
                 (restore it from a backup)",
                path.display()
            )));
        }
        return Ok((key, config.clone()));
    }
    let key = PrivateKey::generate(KeyType::P256, &mut OsEntropy)?;
    let pem = key.to_encrypted_pem(password.as_bytes(), PBKDF2_ITERATIONS, &mut OsEntropy)?;
    write_atomic(&path, pem.as_bytes(), 0o600)?;
    let mut updated = config.clone();
    updated.tls_key_sha256 = Some(tls_key_pin(&key));
    updated.save(paths)?;
    crate::platform::log::info("tls_key_created", &[("path", &path.display().to_string())]);
    Ok((key, updated))
}

/// The loaded public parts of a CA.
#[derive(Debug, Clone)]
pub struct CaCerts {
    /// Root certificate.
    pub root: Certificate,
    /// Root PEM.
    pub root_pem: String,
    /// Intermediate certificate.
    pub intermediate: Certificate,
    /// Intermediate PEM.
    pub intermediate_pem: String,
}

impl CaCerts {
    /// Read the root and the active intermediate, and check the root
    /// against the config.
    pub fn load(paths: &CaPaths, config: &CaConfig) -> Result<Self> {
        let root_pem = read_text(&paths.root_cert())?;
        let intermediate_pem = read_text(&issuers::active_files(paths, config).cert)?;
        let root = issue::parse_cert_pem(&root_pem)?;
        let intermediate = issue::parse_cert_pem(&intermediate_pem)?;
        if issue::fingerprint(&root)? != config.root_fingerprint {
            return Err(CliError::CorruptCa(format!(
                "{} does not match the root fingerprint in config/ca.json; the CA folder was altered",
                paths.root_cert().display()
            )));
        }
        Ok(Self {
            root,
            root_pem,
            intermediate,
            intermediate_pem,
        })
    }
}

/// Decrypt one of the CA's keys.
pub fn unlock_key(path: &Path, password: &str) -> Result<PrivateKey> {
    let pem = read_text(path)?;
    PrivateKey::from_pem(&pem, Some(password.as_bytes())).map_err(|e| match e {
        fedpki_core::Error::Decrypt => CliError::usage(format!(
            "wrong CA password (could not decrypt {})",
            path.display()
        )),
        other => other.into(),
    })
}
