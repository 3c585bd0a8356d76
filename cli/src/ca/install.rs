//! Creating a CA folder (`pki install`): new keys and certificates, staged
//! beside the folder's contents and moved into place whole.

use std::fs::{self, File};

use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::key::PBKDF2_ITERATIONS;
use fedpki_core::package::IntermediateRequest;
use fedpki_core::{KeyType, PrivateKey, SigningKey};

use super::offline_root::stage_request;
use super::{
    CaConfig, CaPaths, DEFAULT_PROVISIONER, FolderLock, MIN_LEAF_LIFETIME_SECS, ProvisionerConfig,
    parse_ca_url, server_pid, tls_key_pin,
};
use crate::error::{CliError, Result};
use crate::platform::sys::{OsEntropy, create_dir, now, write_atomic};

/// Create a CA in `paths.dir`. Stages everything in a temporary folder
/// inside it and moves it into place last, config file last of all: a crash
/// leaves either no CA or a whole one.
pub(crate) fn install(
    paths: &CaPaths,
    ca_url: &str,
    password: &str,
    force: bool,
    lifetimes: InstallOptions,
) -> Result<CaConfig> {
    parse_ca_url(ca_url)?;
    lifetimes.check()?;
    check_replaceable(paths, force)?;
    install_keys(
        paths,
        ca_url,
        password,
        lifetimes,
        CaKeys::generate(&mut OsEntropy)?,
    )
}

/// Write `keys` as the CA in `paths.dir` (checked replaceable by the caller).
pub(super) fn install_keys(
    paths: &CaPaths,
    ca_url: &str,
    password: &str,
    lifetimes: InstallOptions,
    keys: CaKeys,
) -> Result<CaConfig> {
    let created = !paths.dir.exists();
    create_dir(&paths.dir, true)?;
    crate::ca::guard::tighten(&paths.dir)?;
    // Held to the end: no server can start on the folder while it is
    // replaced (the pid check above only gives the friendlier message).
    let _lock = FolderLock::acquire(paths)?;
    let mut rng = OsEntropy;
    let config = CaConfig::for_keys(ca_url, &keys, &lifetimes)?;
    let stage = stage_folder(paths)?;
    keys.write(&stage, password, &mut rng)?;
    config.save(&stage)?;
    if let Some(db) = &lifetimes.store {
        // The database takes this CA's (empty) ledger, or nothing is moved
        // into place.
        let made = crate::store::postgres::PgBackend::open(
            db.clone(),
            &config.root_fingerprint,
            crate::store::postgres::Expect::Empty,
        );
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&stage.dir);
            if created {
                drop(_lock);
                let _ = fs::remove_dir_all(&paths.dir);
            }
            return Err(CliError::from(e));
        }
    }
    move_into_place(paths, &stage)?;
    Ok(config)
}

/// Create a CA in `paths.dir` whose root stays offline: the provisioner,
/// the server's TLS key, the config (marked waiting) and a staged
/// intermediate key with its request, which is returned for the root.
pub(crate) fn install_awaiting_root(
    paths: &CaPaths,
    ca_url: &str,
    password: &str,
    force: bool,
    lifetimes: InstallOptions,
    intermediate_name: &str,
) -> Result<(CaConfig, IntermediateRequest)> {
    parse_ca_url(ca_url)?;
    lifetimes.check()?;
    check_replaceable(paths, force)?;
    create_dir(&paths.dir, true)?;
    crate::ca::guard::tighten(&paths.dir)?;
    let _lock = FolderLock::acquire(paths)?;
    let mut rng = OsEntropy;
    let prov_key = PrivateKey::generate(KeyType::P256, &mut rng)?;
    let tls_key = PrivateKey::generate(KeyType::P256, &mut rng)?;
    let mut config = CaConfig::fresh(
        ca_url,
        (&prov_key, DEFAULT_PROVISIONER, None),
        &tls_key,
        String::new(),
        &lifetimes,
    )?;
    config.awaiting_root = true;
    let stage = stage_folder(paths)?;
    for (key, path) in [
        (&prov_key, stage.provisioner_key()),
        (&tls_key, stage.tls_key()),
    ] {
        let pem = key.to_encrypted_pem(password.as_bytes(), PBKDF2_ITERATIONS, &mut rng)?;
        write_atomic(&path, pem.as_bytes(), 0o600)?;
    }
    let request = stage_request(&stage, ca_url.trim(), intermediate_name, password)?;
    config.save(&stage)?;
    move_into_place(paths, &stage)?;
    Ok((config, request))
}

impl InstallOptions {
    pub(super) fn check(&self) -> Result<()> {
        Self::check_leaf(self.leaf_secs).map_err(CliError::usage)
    }

    /// The one rule for a leaf lifetime (also `--cert-lifetime`'s check).
    pub(crate) fn check_leaf(secs: u64) -> std::result::Result<(), String> {
        if !(MIN_LEAF_LIFETIME_SECS..=issue::YEAR_SECS).contains(&secs) {
            return Err(format!(
                "the certificate lifetime must be between {MIN_LEAF_LIFETIME_SECS} s and one year (8760h); {secs} s was asked"
            ));
        }
        Ok(())
    }
}

/// A folder may receive a new CA when it holds none, or with `--force`
/// when the one it holds is not being served.
pub(super) fn check_replaceable(paths: &CaPaths, force: bool) -> Result<()> {
    if !paths.exists() {
        return Ok(());
    }
    if !force {
        return Err(CliError::usage(format!(
            "a CA already exists in {}; keep it, or replace it with --force \
             (this destroys its keys and every certificate's trust)",
            paths.dir.display()
        )));
    }
    if let Some(pid) = server_pid(paths)? {
        return Err(CliError::usage(format!(
            "the CA in {} is being served (pid {pid}); stop it before replacing it",
            paths.dir.display()
        )));
    }
    Ok(())
}

/// An empty CA layout beside the real one, to be moved into place whole.
fn stage_folder(paths: &CaPaths) -> Result<CaPaths> {
    let stage = CaPaths::new(paths.dir.join(format!(".install-{}", std::process::id())));
    let _ = fs::remove_dir_all(&stage.dir);
    for sub in ["config", "certs", "secrets", "db"] {
        create_dir(&stage.dir.join(sub), true)?;
    }
    Ok(stage)
}

impl CaConfig {
    /// The configuration of a new CA made of `keys`.
    fn for_keys(ca_url: &str, keys: &CaKeys, lifetimes: &InstallOptions) -> Result<Self> {
        let mut config = Self::fresh(
            ca_url,
            (&keys.prov_key, &keys.prov_name, keys.prov_kid.as_deref()),
            &keys.tls_key,
            issue::fingerprint(&keys.root)?,
            lifetimes,
        )?;
        config.adopted.clone_from(&keys.adopted);
        Ok(config)
    }

    /// The configuration of a new CA: its provisioner (key, name, `kid`
    /// when adopted), its server's TLS key, its root's fingerprint.
    fn fresh(
        ca_url: &str,
        (prov_key, prov_name, prov_kid): (&PrivateKey, &str, Option<&str>),
        tls_key: &PrivateKey,
        root_fingerprint: String,
        lifetimes: &InstallOptions,
    ) -> Result<Self> {
        let (x, y) = prov_key
            .p256_coordinates()
            .ok_or_else(|| CliError::Store("internal: the provisioner key is not P-256".into()))?;
        Ok(Self {
            version: 1,
            ca_url: ca_url.trim().to_owned(),
            provisioner: ProvisionerConfig {
                name: prov_name.to_owned(),
                kid: prov_kid
                    .map_or_else(|| fedpki_core::token::jwk_thumbprint(&x, &y), str::to_owned),
                public_key: prov_key.public_key().to_pem()?,
            },
            leaf_lifetime_secs: lifetimes.leaf_secs,
            root_fingerprint,
            max_token_lifetime_secs: lifetimes.max_token_secs,
            tls_key_sha256: Some(tls_key_pin(tls_key)),
            awaiting_root: false,
            active_intermediate: None,
            retired_intermediates: Vec::new(),
            adopted: None,
            allow_node_on_ca_host: lifetimes.allow_node_on_ca_host,
            dns: lifetimes.dns.clone(),
            store: lifetimes.store.as_ref().map(|s| s.url.clone()),
            max_key_age_secs: lifetimes.max_key_age_secs,
        })
    }
}

/// The keys and certificates a new CA is made of: made here, or adopted
/// from a step-ca (`super::adopt`), whose PEM text is kept byte for byte.
pub(super) struct CaKeys {
    pub root_key: PrivateKey,
    pub root: fedpki_core::Certificate,
    pub root_pem: String,
    pub int_key: PrivateKey,
    pub int_pem: String,
    pub prov_key: PrivateKey,
    pub prov_name: String,
    /// The provisioner's `kid` when adopted (step's own), else computed.
    pub prov_kid: Option<String>,
    pub tls_key: PrivateKey,
    /// Set when adopted from a step-ca.
    pub adopted: Option<super::Adoption>,
}

impl CaKeys {
    /// A root (10 years, pathlen 1), the intermediate it signs (pathlen 0),
    /// the provisioner's key and the HTTPS server's key, all P-256.
    fn generate(rng: &mut OsEntropy) -> Result<Self> {
        let t = now();
        let root_key = PrivateKey::generate(KeyType::P256, rng)?;
        let root = issue::root_ca(&root_key, "fedpki Root CA", Serial::random(rng)?, t)?;
        let int_key = PrivateKey::generate(KeyType::P256, rng)?;
        let int = Issuer {
            cert: &root,
            key: &root_key,
        }
        .intermediate_ca(
            &int_key.public_key(),
            "fedpki Intermediate CA",
            Serial::random(rng)?,
            t,
        )?;
        Ok(Self {
            root_pem: issue::cert_pem(&root)?,
            root_key,
            root,
            int_pem: issue::cert_pem(&int)?,
            int_key,
            prov_key: PrivateKey::generate(KeyType::P256, rng)?,
            prov_name: DEFAULT_PROVISIONER.into(),
            prov_kid: None,
            tls_key: PrivateKey::generate(KeyType::P256, rng)?,
            adopted: None,
        })
    }

    /// Write the keys (encrypted with `password`, 0600) and the two CA
    /// certificates into `stage`.
    fn write(&self, stage: &CaPaths, password: &str, rng: &mut OsEntropy) -> Result<()> {
        for (key, path) in [
            (&self.root_key, stage.root_key()),
            (&self.int_key, stage.intermediate_key()),
            (&self.prov_key, stage.provisioner_key()),
            (&self.tls_key, stage.tls_key()),
        ] {
            let pem = key.to_encrypted_pem(password.as_bytes(), PBKDF2_ITERATIONS, rng)?;
            write_atomic(&path, pem.as_bytes(), 0o600)?;
        }
        write_atomic(&stage.root_cert(), self.root_pem.as_bytes(), 0o644)?;
        write_atomic(&stage.intermediate_cert(), self.int_pem.as_bytes(), 0o644)
    }
}

/// Move a staged CA into `paths`: the old CA's config goes first (so a
/// crash from here on never shows an old config beside new keys), the new
/// config last.
fn move_into_place(paths: &CaPaths, stage_paths: &CaPaths) -> Result<()> {
    let _ = fs::remove_file(paths.config());
    for sub in ["certs", "secrets", "db"] {
        let target = paths.dir.join(sub);
        let _ = fs::remove_dir_all(&target);
        fs::rename(stage_paths.dir.join(sub), &target)
            .map_err(|e| CliError::io("move into place", &target, e))?;
    }
    create_dir(&paths.dir.join("config"), true)?;
    let _ = fs::remove_file(paths.next_request());
    if stage_paths.next_request().exists() {
        fs::rename(stage_paths.next_request(), paths.next_request())
            .map_err(|e| CliError::io("move into place", paths.next_request(), e))?;
    }
    fs::rename(stage_paths.config(), paths.config())
        .map_err(|e| CliError::io("move into place", paths.config(), e))?;
    let _ = fs::remove_dir_all(&stage_paths.dir);
    if let Ok(d) = File::open(&paths.dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What a new CA is made with, as `pki install` was told: how long what it
/// makes lives, whether a node may take its host's name, where its ledger
/// lives.
#[derive(Debug, Clone)]
pub(crate) struct InstallOptions {
    /// Leaf certificates.
    pub leaf_secs: u64,
    /// The longest token the CA accepts (`exp - nbf`).
    pub max_token_secs: u64,
    /// See [`CaConfig::allow_node_on_ca_host`].
    pub allow_node_on_ca_host: bool,
    /// A shared database for the ledger (`--store`), else the folder's.
    pub store: Option<crate::store::postgres::PgLocation>,
    /// See [`CaConfig::dns`].
    pub dns: Vec<String>,
    /// See [`CaConfig::max_key_age_secs`].
    pub max_key_age_secs: Option<u64>,
}
