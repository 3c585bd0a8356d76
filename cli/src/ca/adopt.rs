//! `pki install --from-step-ca PATH`: a CA step-ca made (a STEPPATH, or an
//! OpenFL `fx pki install` folder holding one in `step_config/`) becomes a
//! fedpki CA with the same root, intermediate and JWK provisioner, so every
//! node keeps trusting it and old tokens keep working. PATH is only read.

use std::path::{Path, PathBuf};

use fedpki_core::{PrivateKey, SigningKey, chain, issue};
use serde_json::Value;
use zeroize::Zeroizing;

use super::install::{CaKeys, InstallOptions, check_replaceable, install_keys};
use super::{CaConfig, CaPaths};
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::{OsEntropy, read_text};

/// Where a step-ca keeps things, found from PATH.
struct StepFolder {
    /// The STEPPATH.
    home: PathBuf,
    /// `config/ca.json`, parsed.
    config: Value,
    /// OpenFL's `cert/pass_file`, when PATH is an `fx` folder holding one.
    fx_pass_file: Option<PathBuf>,
}

/// Adopt the step-ca in `from` as the CA in `paths`, encrypted with
/// `password`. `ca_url` overrides the address step's config gives.
pub(crate) fn adopt(
    paths: &CaPaths,
    from: &Path,
    step_password_file: Option<&Path>,
    ca_url: Option<&str>,
    password: &str,
    force: bool,
    lifetimes: InstallOptions,
) -> Result<CaConfig> {
    lifetimes.check()?;
    check_replaceable(paths, force)?;
    let folder = StepFolder::find(from)?;
    let ca_url = match ca_url {
        Some(u) => u.to_owned(),
        None => folder.ca_url()?,
    };
    super::parse_ca_url(&ca_url)?;
    let step_password = folder.password(step_password_file)?;
    let keys = folder.keys(&step_password)?;
    install_keys(paths, &ca_url, password, lifetimes, keys)
}

impl StepFolder {
    fn find(from: &Path) -> Result<Self> {
        let (home, fx_pass_file) = if from.join("config/ca.json").is_file() {
            (from.to_owned(), None)
        } else if from.join("step_config/config/ca.json").is_file() {
            let pass = from.join("cert/pass_file");
            (from.join("step_config"), pass.is_file().then_some(pass))
        } else {
            return Err(CliError::usage(format!(
                "{} is not a step-ca CA: it has no config/ca.json (a STEPPATH) and no \
                 step_config/config/ca.json (an `fx pki install` folder)",
                from.display()
            )));
        };
        let path = home.join("config/ca.json");
        let config = serde_json::from_str(&read_text(&path)?)
            .map_err(|e| CliError::usage(format!("{}: not JSON: {e}", path.display())))?;
        Ok(Self {
            home,
            config,
            fx_pass_file,
        })
    }

    fn field(&self, pointer: &str) -> Option<&str> {
        self.config.pointer(pointer).and_then(Value::as_str)
    }

    /// A file ca.json names: at that path, or, when the folder was moved,
    /// under the STEPPATH by its usual name.
    fn file(&self, pointer: &str, usual: &str) -> Result<PathBuf> {
        let named = self.field(pointer).map(PathBuf::from);
        let local = self.home.join(usual);
        match named {
            Some(p) if p.is_file() => Ok(p),
            _ if local.is_file() => Ok(local),
            Some(p) => Err(CliError::usage(format!(
                "ca.json names {} for {pointer}, and neither it nor {} exists (a key in a \
                 KMS or an HSM cannot be adopted)",
                p.display(),
                local.display()
            ))),
            None => Err(CliError::usage(format!(
                "{} has no {pointer} and there is no {}",
                self.home.join("config/ca.json").display(),
                local.display()
            ))),
        }
    }

    /// `HOST:PORT` as step's clients reach it: `ca-url` in
    /// `config/defaults.json`, else the first DNS name at ca.json's port.
    fn ca_url(&self) -> Result<String> {
        let defaults = self.home.join("config/defaults.json");
        if let Some(url) = defaults
            .exists()
            .then(|| read_text(&defaults))
            .transpose()?
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("ca-url").and_then(Value::as_str).map(str::to_owned))
        {
            return Ok(crate::address::CaAddress::parse(&url)?.to_string());
        }
        let port = self
            .field("/address")
            .and_then(|a| a.rsplit_once(':'))
            .map(|(_, p)| p.to_owned());
        let host = self.field("/dnsNames/0");
        match (host, port) {
            (Some(h), Some(p)) => {
                let h = if h.contains(':') {
                    format!("[{h}]")
                } else {
                    h.to_owned()
                };
                Ok(crate::address::CaAddress::parse(&format!("{h}:{p}"))?.to_string())
            }
            _ => Err(CliError::usage(
                "step's config gives no address for the CA: pass --ca-url HOST:PORT",
            )),
        }
    }

    /// The step-ca password: `--step-password-file`, else OpenFL's
    /// `cert/pass_file` (with a warning), else asked on the terminal.
    fn password(&self, file: Option<&Path>) -> Result<Zeroizing<String>> {
        if let Some(f) = file {
            return password::obtain(Some(f), false);
        }
        if let Some(f) = &self.fx_pass_file {
            eprintln!(
                "Using the step-ca password in {} (OpenFL's plain-text copy). Once the CA is \
                 adopted, delete it: fedpki keeps no password on disk.",
                f.display()
            );
            return password::obtain(Some(f), false);
        }
        password::prompt("step-ca password: ", false)
    }

    /// Root, intermediate and provisioner, unlocked and checked against
    /// each other.
    fn keys(&self, step_password: &str) -> Result<CaKeys> {
        let pw = step_password.as_bytes();
        let root_pem = read_text(&self.file("/root", "certs/root_ca.crt")?)?;
        let int_pem = read_text(&self.file("/crt", "certs/intermediate_ca.crt")?)?;
        let root = first_cert(&root_pem, "the root")?;
        let int = first_cert(&int_pem, "the intermediate")?;
        let root_key = unlock(&self.home.join("secrets/root_ca_key"), pw)?;
        let int_key = unlock(&self.file("/key", "secrets/intermediate_ca_key")?, pw)?;
        for (key, cert, what) in [(&root_key, &root, "root"), (&int_key, &int, "intermediate")] {
            if &key.public_key() != cert.public_key() {
                return Err(CliError::CorruptCa(format!(
                    "the step-ca's {what} key is not the key of its {what} certificate"
                )));
            }
        }
        chain::check_signed_by(&root, &root, &fedpki_core::RUST_CRYPTO)
            .and_then(|()| chain::check_signed_by(&int, &root, &fedpki_core::RUST_CRYPTO))
            .map_err(|e| CliError::CorruptCa(format!("the step-ca's chain: {e}")))?;
        let (prov_name, prov_kid, prov_key) = self.provisioner(pw)?;
        Ok(CaKeys {
            root_key,
            root,
            root_pem,
            int_key,
            int_pem,
            prov_key,
            prov_name,
            prov_kid: Some(prov_kid),
            tls_key: PrivateKey::generate(fedpki_core::KeyType::P256, &mut OsEntropy)?,
            adopted: Some(super::Adoption {
                at: crate::platform::sys::now().0,
                intermediate: super::issuers::key_id_hex(&int),
            }),
        })
    }

    /// The first JWK provisioner: its name, `kid` and private key (from
    /// `encryptedKey`, else `secrets/priv.json`).
    fn provisioner(&self, pw: &[u8]) -> Result<(String, String, PrivateKey)> {
        let all = self
            .config
            .pointer("/authority/provisioners")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(jwk) = all.iter().find(|p| p["type"].as_str() == Some("JWK")) else {
            let types: Vec<&str> = all.iter().filter_map(|p| p["type"].as_str()).collect();
            return Err(CliError::usage(format!(
                "the step-ca has no JWK provisioner (it has: {}); fedpki's tokens are JWK \
                 tokens, and it adopts only a JWK provisioner",
                if types.is_empty() {
                    "none".into()
                } else {
                    types.join(", ")
                }
            )));
        };
        let name = jwk["name"].as_str().unwrap_or("provisioner").to_owned();
        let others: Vec<&str> = all
            .iter()
            .filter(|p| !std::ptr::eq(*p, jwk))
            .filter_map(|p| p["name"].as_str())
            .collect();
        if !others.is_empty() {
            eprintln!(
                "Adopting the provisioner {name:?} only; these are not carried over (their \
                 tokens will be refused): {}",
                others.join(", ")
            );
        }
        let kid = jwk["key"]["kid"].as_str().unwrap_or_default().to_owned();
        let compact = match jwk["encryptedKey"].as_str() {
            Some(c) => c.to_owned(),
            None => compact_from_json(&self.home.join("secrets/priv.json"))?,
        };
        let key = fedpki_core::jwe::decrypt_p256_jwk(&compact, pw).map_err(|e| match e {
            fedpki_core::Error::Decrypt => wrong_password("the provisioner key"),
            e => CliError::usage(format!("the provisioner {name:?}: {e}")),
        })?;
        let (x, y) = key.p256_coordinates().unwrap_or_default();
        let public = (jwk["key"]["x"].as_str(), jwk["key"]["y"].as_str());
        let own = fedpki_core::encoding::b64url(&x);
        let own_y = fedpki_core::encoding::b64url(&y);
        if public != (Some(own.as_str()), Some(own_y.as_str())) {
            return Err(CliError::CorruptCa(format!(
                "the provisioner {name:?}'s private key is not the public key ca.json lists"
            )));
        }
        Ok((name, kid, key))
    }
}

fn first_cert(pem: &str, what: &str) -> Result<fedpki_core::Certificate> {
    issue::parse_certs_pem(pem)
        .ok()
        .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
        .ok_or_else(|| CliError::CorruptCa(format!("{what} certificate does not parse")))
}

fn wrong_password(what: &str) -> CliError {
    CliError::usage(format!(
        "wrong step-ca password (could not decrypt {what}); nothing was written"
    ))
}

fn unlock(path: &Path, pw: &[u8]) -> Result<PrivateKey> {
    PrivateKey::from_pem(&read_text(path)?, Some(pw)).map_err(|e| match e {
        fedpki_core::Error::Decrypt => wrong_password(&path.display().to_string()),
        e => CliError::usage(format!("{}: {e}", path.display())),
    })
}

/// `secrets/priv.json` is the same JWE in JSON serialization.
fn compact_from_json(path: &Path) -> Result<String> {
    let v: Value = serde_json::from_str(&read_text(path)?)
        .map_err(|e| CliError::usage(format!("{}: not JSON: {e}", path.display())))?;
    let part = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok([
        part("protected"),
        part("encrypted_key"),
        part("iv"),
        part("ciphertext"),
        part("tag"),
    ]
    .join("."))
}
