//! OpenFL's manual flow, with the aggregator as the CA: `workspace certify`,
//! `aggregator generate-cert-request / certify`, `collaborator
//! generate-cert-request / certify`. Same paths under `./cert`, same
//! messages, same zip packages, so a real `fx` can sit on the other side.
//!
//! What fedpki does differently (OpenFL's defects, SPEC §7): leaves carry
//! keyUsage and extKeyUsage; the CSR's signature is checked; the root lives
//! 10 years; a package must hold exactly one CSR, named for its
//! collaborator; keys are P-384 (SHA-384 signatures, as OpenFL's RSA
//! certificates use), written 0600, and the CA keys are encrypted when a
//! password is given.

mod collaborator;
pub(crate) mod package_zip;

pub(crate) use collaborator::{CollaboratorCertify, collaborator_certify};

use std::path::{Path, PathBuf};

use fedpki_core::csr::{self, Csr, VerifiedCsr};
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::name::{San, Subject, escaped};
use fedpki_core::profile::LeafUsage;
use fedpki_core::{KeyType, PrivateKey, SigningKey};
use zeroize::Zeroizing;

use crate::authority::verified_csr;
use crate::error::{CliError, Result};
use crate::platform::sys::{OsEntropy, create_dir, now, read_text, write_atomic};

/// The key algorithm of every key the manual flow makes.
const KEY_TYPE: KeyType = KeyType::P384;

/// Paths of the manual flow, relative to the workspace.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// The workspace in `dir` (OpenFL's: the current folder).
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Self { root: dir.into() }
    }
    fn cert(&self) -> PathBuf {
        self.root.join("cert")
    }
    fn root_ca_cert(&self) -> PathBuf {
        self.cert().join("ca/root-ca.crt")
    }
    fn root_ca_key(&self) -> PathBuf {
        self.cert().join("ca/root-ca/private/root-ca.key")
    }
    fn signing_ca_cert(&self) -> PathBuf {
        self.cert().join("ca/signing-ca.crt")
    }
    fn signing_ca_key(&self) -> PathBuf {
        self.cert().join("ca/signing-ca/private/signing-ca.key")
    }
    fn cert_chain(&self) -> PathBuf {
        self.cert().join("cert_chain.crt")
    }
    fn server(&self, fqdn: &str, ext: &str) -> PathBuf {
        self.cert().join("server").join(format!("agg_{fqdn}.{ext}"))
    }
    fn client(&self, name: &str, ext: &str) -> PathBuf {
        self.cert().join("client").join(format!("col_{name}.{ext}"))
    }
    fn request_zip(&self, name: &str) -> PathBuf {
        self.root
            .join(format!("col_{name}_to_agg_cert_request.zip"))
    }
    fn signed_zip(&self, name: &str) -> PathBuf {
        self.root.join(format!("agg_to_col_{name}_signed_cert.zip"))
    }
}

/// OpenFL's name check: 2–252 characters of dot-separated labels of letters,
/// digits and inner hyphens; returned lower-cased.
pub(crate) fn check_fqdn(name: &str) -> Result<String> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if lower.len() < 2 || lower.len() > 252 || !lower.split('.').all(label_ok) {
        return Err(CliError::usage(format!(
            "{name:?} is not a valid name: use 2 to 252 characters of letters, digits and \
             hyphens, in dot-separated labels that do not start or end with a hyphen"
        )));
    }
    Ok(lower)
}

/// `--fqdn`, else `$FQDN`, else this host's fully qualified name.
pub(crate) fn default_fqdn(given: Option<&str>) -> Result<String> {
    if let Some(f) = given {
        return check_fqdn(f);
    }
    if let Ok(f) = std::env::var("FQDN")
        && !f.is_empty()
    {
        return check_fqdn(&f);
    }
    let from_hostname = std::process::Command::new("hostname")
        .arg("--fqdn")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty());
    let name = match from_hostname {
        Some(n) => n,
        None => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    };
    check_fqdn(&name)
}

/// The CA-key password for the manual flow: `--password-file`, else
/// `FEDPKI_PASSWORD`, else asked on a terminal (empty keeps the key
/// unencrypted, as OpenFL's). `None` without any of them.
fn optional_password(file: Option<&Path>, new: bool) -> Result<Option<Zeroizing<String>>> {
    use std::io::IsTerminal;
    if file.is_some() || std::env::var(crate::platform::password::ENV).is_ok() {
        return crate::platform::password::obtain(file, new).map(Some);
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let pw = crate::platform::password::prompt(
        "Password for the CA keys (empty: store them unencrypted, 0600): ",
        new,
    )?;
    if pw.is_empty() {
        return Ok(None);
    }
    crate::platform::password::obtain_from(pw, new).map(Some)
}

fn write_key(path: &Path, key: &PrivateKey, password: Option<&str>) -> Result<()> {
    let pem = match password {
        Some(pw) => Zeroizing::new(key.to_encrypted_pem(
            pw.as_bytes(),
            fedpki_core::key::PBKDF2_ITERATIONS,
            &mut OsEntropy,
        )?),
        None => key.to_pkcs8_pem()?,
    };
    write_atomic(path, pem.as_bytes(), 0o600)
}

fn read_key(path: &Path, password_file: Option<&Path>) -> Result<PrivateKey> {
    let pem = Zeroizing::new(read_text(path)?);
    if pem.contains("ENCRYPTED PRIVATE KEY") {
        let pw = crate::platform::password::obtain(password_file, false)?;
        return crate::ca::unlock_key(path, &pw);
    }
    Ok(PrivateKey::from_pem(&pem, None)?)
}

/// `fedpki workspace certify`: the workspace's root and signing CA.
pub(crate) fn workspace_certify(ws: &Workspace, password_file: Option<&Path>) -> Result<()> {
    if ws.root_ca_cert().exists() {
        return Err(CliError::usage(format!(
            "{} already exists; this workspace has a CA (remove cert/ca to start over)",
            ws.root_ca_cert().display()
        )));
    }
    let pw = optional_password(password_file, true)?;
    if pw.is_none() {
        eprintln!(
            "Note: the CA keys are stored unencrypted (mode 0600); pass --password-file to encrypt them."
        );
    }
    for dir in ["ca/root-ca/private", "ca/signing-ca/private"] {
        create_dir(&ws.cert().join(dir), true)?;
    }
    let t = now();
    let root_key = PrivateKey::generate(KEY_TYPE, &mut OsEntropy)?;
    let root = issue::root_ca(
        &root_key,
        "fedpki Workspace Root CA",
        Serial::random(&mut OsEntropy)?,
        t,
    )?;
    let signing_key = PrivateKey::generate(KEY_TYPE, &mut OsEntropy)?;
    let signing = Issuer {
        cert: &root,
        key: &root_key,
    }
    .intermediate_ca(
        &signing_key.public_key(),
        "fedpki Workspace Signing CA",
        Serial::random(&mut OsEntropy)?,
        t,
    )?;
    let pw = pw.as_deref().map(String::as_str);
    write_key(&ws.root_ca_key(), &root_key, pw)?;
    write_key(&ws.signing_ca_key(), &signing_key, pw)?;
    let (root_pem, signing_pem) = (issue::cert_pem(&root)?, issue::cert_pem(&signing)?);
    write_atomic(&ws.root_ca_cert(), root_pem.as_bytes(), 0o644)?;
    write_atomic(&ws.signing_ca_cert(), signing_pem.as_bytes(), 0o644)?;
    write_atomic(
        &ws.cert_chain(),
        format!("{root_pem}{signing_pem}").as_bytes(),
        0o644,
    )?;
    println!(
        "Root CA and signing CA created in {}",
        ws.cert().join("ca").display()
    );
    println!("Certificate chain: {}", ws.cert_chain().display());
    Ok(())
}

/// Which side a certificate is for, for OpenFL's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Aggregator,
    Collaborator,
}

fn generate_request(role: Role, name: &str, key_path: &Path, csr_path: &Path) -> Result<Csr> {
    let label = match role {
        Role::Aggregator => "AGGREGATOR",
        Role::Collaborator => "COLLABORATOR",
    };
    println!(
        "Creating {label} certificate key pair with following settings: CN={name}, SAN=DNS:{name}"
    );
    let key = PrivateKey::generate(KEY_TYPE, &mut OsEntropy)?;
    let request = csr::build(&key, &Subject::new(name)?, &[San::parse(name)?])?;
    if let Some(dir) = key_path.parent() {
        create_dir(dir, false)?;
    }
    println!(
        "  Writing {label} certificate key pair to: {}",
        key_path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    write_atomic(key_path, key.to_pkcs8_pem()?.as_bytes(), 0o600)?;
    write_atomic(csr_path, request.to_pem()?.as_bytes(), 0o644)?;
    println!("The CSR Hash {}", request.openfl_hash()?);
    Ok(request)
}

/// `fedpki aggregator generate-cert-request [--fqdn F]`
pub(crate) fn aggregator_request(ws: &Workspace, fqdn: Option<&str>) -> Result<()> {
    let fqdn = default_fqdn(fqdn)?;
    generate_request(
        Role::Aggregator,
        &fqdn,
        &ws.server(&fqdn, "key"),
        &ws.server(&fqdn, "csr"),
    )?;
    Ok(())
}

/// `fedpki collaborator generate-cert-request -n NAME [-x]`
pub(crate) fn collaborator_request(ws: &Workspace, name: &str, skip_package: bool) -> Result<()> {
    let name = check_fqdn(name)?;
    let request = generate_request(
        Role::Collaborator,
        &name,
        &ws.client(&name, "key"),
        &ws.client(&name, "csr"),
    )?;
    if !skip_package {
        let zip = ws.request_zip(&name);
        package_zip::write(
            &zip,
            &[(&format!("col_{name}.csr"), request.to_pem()?.as_bytes())],
        )?;
        println!(
            "Archive {} with certificate signing request created",
            zip.display()
        );
        println!(
            "This file should be sent to the certificate authority (typically hosted by the aggregator) for signing"
        );
    }
    Ok(())
}

/// Show what would be signed (OpenFL's hash line, then the names and the
/// key the CSR asks for) and ask, as OpenFL does; `silent` skips the question.
fn confirm_signing(csr: &VerifiedCsr, shown_path: &str, silent: bool) -> Result<()> {
    println!(
        "The CSR Hash for file {shown_path} = {}",
        csr.openfl_hash()?
    );
    crate::platform::review::print_request(csr);
    if silent {
        println!(" Warning: manual check of certificate hashes is bypassed in silent mode.");
        return Ok(());
    }
    println!("Make sure the two hashes above are the same.");
    if crate::platform::password::confirm("Do you want to sign this certificate?") {
        Ok(())
    } else {
        Err(CliError::usage(
            "not signed (not confirmed; on a terminal answer y, in scripts pass -s after checking the hash)",
        ))
    }
}

struct SigningCa {
    cert: fedpki_core::Certificate,
    key: PrivateKey,
}

fn load_signing_ca(ws: &Workspace, password_file: Option<&Path>) -> Result<SigningCa> {
    if !ws.signing_ca_cert().exists() {
        return Err(CliError::usage(format!(
            "no signing CA in {} (run `fedpki workspace certify` first)",
            ws.cert().display()
        )));
    }
    let cert = issue::parse_cert_pem(&read_text(&ws.signing_ca_cert())?)?;
    let key = read_key(&ws.signing_ca_key(), password_file)?;
    if &key.public_key() != cert.public_key() {
        return Err(CliError::usage(format!(
            "{} does not match {}",
            ws.signing_ca_key().display(),
            ws.signing_ca_cert().display()
        )));
    }
    Ok(SigningCa { cert, key })
}

/// Sign a CSR for `name` with the workspace's signing CA. The CA decides
/// the names: CN = SAN = `name`, and the purpose by role (OpenFL's: the
/// aggregator serverAuth, a collaborator clientAuth). A CSR asking for any
/// other name is refused with the names it asked for, so a collaborator
/// cannot obtain a certificate that passes for the aggregator.
fn sign_for(ca: &SigningCa, csr: &VerifiedCsr, role: Role, name: &str) -> Result<String> {
    let (asked_cn, asked_sans) = crate::platform::review::asked_names(csr)?;
    let subject = Subject::new(name)?;
    let san = San::parse(name)?;
    let sans_ok = asked_sans.is_empty() || asked_sans == [san.clone()];
    if asked_cn.to_ascii_lowercase() != name || !sans_ok {
        return Err(CliError::usage(format!(
            "the CSR asks for CN={} SANs={}, but a {} here gets exactly CN={name} SAN={name}; \
             refusing to sign it (ask for a new request made for {name})",
            escaped(&asked_cn),
            crate::platform::review::san_list(&asked_sans),
            match role {
                Role::Aggregator => "aggregator",
                Role::Collaborator => "collaborator",
            }
        )));
    }
    let usage = match role {
        Role::Aggregator => LeafUsage::TlsServer,
        Role::Collaborator => LeafUsage::TlsClient,
    };
    let t = now();
    let leaf = Issuer {
        cert: &ca.cert,
        key: &ca.key,
    }
    .leaf(
        csr.public_key(),
        &subject,
        &[san],
        usage,
        Serial::random(&mut OsEntropy)?,
        t.minus(issue::BACKDATE_SECS),
        t.plus(issue::YEAR_SECS),
        &Default::default(),
    )?;
    Ok(issue::cert_pem(&leaf)?)
}

/// The names the aggregator of this workspace goes by: its certificate
/// files under `cert/server`, and this host's FQDN.
fn aggregator_names(ws: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.cert().join("server"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_str()?.to_owned();
            let stem = file.strip_prefix("agg_")?;
            let (n, _ext) = stem.rsplit_once('.')?;
            Some(n.to_ascii_lowercase())
        })
        .collect();
    if let Ok(fqdn) = default_fqdn(None) {
        names.push(fqdn);
    }
    names
}

fn read_verified_csr(path: &Path) -> Result<VerifiedCsr> {
    verified_csr(&read_text(path)?, &fedpki_core::RUST_CRYPTO)
        .map_err(|r| CliError::usage(format!("{}: {}", path.display(), r.message)))
}

/// `fedpki aggregator certify [--fqdn F] [-s]`
pub(crate) fn aggregator_certify(
    ws: &Workspace,
    fqdn: Option<&str>,
    silent: bool,
    password_file: Option<&Path>,
) -> Result<()> {
    let fqdn = default_fqdn(fqdn)?;
    let csr_path = ws.server(&fqdn, "csr");
    let csr = read_verified_csr(&csr_path)?;
    let ca = load_signing_ca(ws, password_file)?;
    confirm_signing(&csr, &format!("server/agg_{fqdn}.csr"), silent)?;
    let pem = sign_for(&ca, &csr, Role::Aggregator, &fqdn)?;
    write_atomic(&ws.server(&fqdn, "crt"), pem.as_bytes(), 0o644)?;
    println!(
        "Signed certificate written to {}",
        ws.server(&fqdn, "crt").display()
    );
    Ok(())
}
