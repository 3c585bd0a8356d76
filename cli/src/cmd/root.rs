//! The offline root's commands (`pki root …`), and the online CA's side of
//! it: an install that waits for the root, completing it, the root's CRL,
//! rotating the intermediate (`pki intermediate …`).

use std::time::Duration;

use fedpki_core::{Certificate, issue};

use crate::ca::offline_root::{self, FIRST_INTERMEDIATE_NAME};
use crate::ca::{self, CaCerts, CaConfig};
use crate::cmd::args::{
    InstallArgs, IntermediateActivateArgs, IntermediateRequestArgs, PasswordArgs, RootCrlArgs,
    RootDir, RootExportArgs, RootInitArgs, RootRevokeArgs, RootSignArgs,
};
use crate::cmd::ca::runtime;
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::{now, time_text, write_atomic};
use crate::root::{self, RootPaths};

/// `pki root init`
pub(crate) fn init(a: &RootInitArgs) -> Result<()> {
    check_ca_name(&a.name)?;
    let paths = RootPaths::new(&a.root.root_path);
    let pw = password::obtain(a.password.password_file.as_deref(), true)?;
    let config = root::init(&paths, a.key_type, &a.name, &pw)?;
    eprintln!(
        "Created the offline root {:?} in {} ({}, 10 years).\n\
         Root fingerprint (SHA-256): {}\n\
         Keep this folder offline. Next, on the online CA's host:\n  \
         fedpki pki install -p CA_DIR --ca-url HOST:PORT --offline-root -o intermediate.req",
        config.name,
        paths.dir().display(),
        a.key_type.as_str(),
        config.fingerprint
    );
    Ok(())
}

fn check_ca_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > 64 || name.chars().any(char::is_control) {
        return Err(CliError::usage(format!(
            "--name {name:?}: a CA name is 1 to 64 printable characters"
        )));
    }
    Ok(())
}

/// `pki root sign`: show the request, ask, sign, record, write.
pub(crate) fn sign(a: &RootSignArgs) -> Result<()> {
    let text = crate::platform::sys::read_text(&a.request)?;
    let (request, csr, name) = root::review(&text)?;
    let (rt, open) = open_root(&a.root, &a.password)?;
    rt.block_on(async {
        if let Some(prior) = root::signed_before(&open, &csr).await? {
            return Err(CliError::usage(format!(
                "{}: this root signed this request before (serial {}, {}); carry that signed \
                 file back, or make a new request; nothing was signed",
                a.request.display(),
                prior.serial,
                time_text(prior.issued_at)
            )));
        }
        eprintln!(
            "Intermediate request from the CA at {}:\n  subject:  CN={name}\n  key:      {}\n  \
             SHA-256:  {}\nCompare this hash with the one `pki install --offline-root` or \
             `pki intermediate request` printed on that host.",
            request.ca_url,
            csr.public_key(),
            request.csr_sha256
        );
        let question = format!("Sign it as an intermediate of {:?}?", open.config.name);
        if !a.yes && !password::confirm(&question) {
            return Err(CliError::usage(
                "not confirmed; nothing was signed (use --yes once the hash is compared)",
            ));
        }
        let (cert, signed) = open.sign(&request, &csr, &name, now()).await?;
        write_atomic(&a.out, signed.to_json()?.as_bytes(), 0o644)?;
        eprintln!(
            "Signed the intermediate {name:?}: serial {}, key id {}, valid until {}.\n\
             Carry {} back to the CA and run there:\n  fedpki pki install -p CA_DIR --complete {}   \
             (a new CA)\n  fedpki pki intermediate activate -p CA_DIR {}   (a rotation)",
            issue::serial_hex(&cert),
            ca::issuers::key_id_hex(&cert),
            cert.not_after_text(),
            a.out.display(),
            a.out.display(),
            a.out.display()
        );
        Ok(())
    })
}

/// Open a root folder with its password (asked once, dropped at once).
fn open_root(
    dir: &RootDir,
    pw: &PasswordArgs,
) -> Result<(tokio::runtime::Runtime, root::OpenRoot)> {
    let password = password::obtain(pw.password_file.as_deref(), false)?;
    let open = root::open(&RootPaths::new(&dir.root_path), &password)?;
    Ok((runtime()?, open))
}

/// `pki root revoke`
pub(crate) fn revoke(a: &RootRevokeArgs) -> Result<()> {
    let (rt, open) = open_root(&a.root, &a.password)?;
    let paths = &open.paths;
    rt.block_on(async {
        match open.revoke(&a.serial, a.reason, now()).await? {
            Some(prior) => eprintln!(
                "Intermediate {} was already revoked at {}; nothing changed.",
                a.serial,
                time_text(prior.revoked_at)
            ),
            None => eprintln!(
                "Revoked intermediate {} ({}). Sign the root's CRL and carry it to the CAs:\n  \
                 fedpki pki root crl -p {} -o root.crl",
                a.serial,
                a.reason.name(),
                paths.dir().display()
            ),
        }
        Ok(())
    })
}

/// `pki root crl`
pub(crate) fn crl(a: &RootCrlArgs) -> Result<()> {
    let (rt, open) = open_root(&a.root, &a.password)?;
    let der = rt.block_on(open.crl(now()))?;
    write_atomic(&a.out, &der, 0o644)?;
    eprintln!(
        "Wrote the root's CRL to {} ({} bytes, valid {} days). On each online CA:\n  \
         fedpki pki install -p CA_DIR --root-crl {}",
        a.out.display(),
        der.len(),
        root::ROOT_CRL_LIFETIME_SECS / 86400,
        a.out.display()
    );
    Ok(())
}

/// `pki root export`
pub(crate) fn export(a: &RootExportArgs) -> Result<()> {
    let ca_paths = a.ca.paths();
    let root_paths = RootPaths::new(&a.out);
    let pw = password::obtain(a.password.password_file.as_deref(), false)?;
    let rt = runtime()?;
    let opened = rt.block_on(root::export(&ca_paths, &root_paths, &pw))?;
    drop(opened);
    eprintln!(
        "Wrote the root to {} (fingerprint {}); it reads back with this password.",
        root_paths.dir().display(),
        CaConfig::load(&ca_paths)?.root_fingerprint
    );
    if !a.yes
        && !password::confirm(&format!(
            "Remove the root key from {} now (the CA keeps serving without it)?",
            ca_paths.dir.display()
        ))
    {
        return Err(CliError::usage(format!(
            "not confirmed: {} still holds the root key; {} is a copy (run again with --yes, \
             or delete one)",
            ca_paths.root_key().display(),
            root_paths.dir().display()
        )));
    }
    root::remove_root_key(&ca_paths)?;
    eprintln!(
        "Removed {}. Move {} to offline media. The old key file was unlinked, not wiped: on a \
         disk that keeps old blocks, rotate to a new root if that copy may be read.",
        ca_paths.root_key().display(),
        root_paths.dir().display()
    );
    Ok(())
}

/// `pki install --offline-root`
pub(crate) fn install_awaiting_root(a: &InstallArgs, force: bool, pw: &str) -> Result<()> {
    let paths = a.ca.paths();
    let out = a
        .out
        .as_deref()
        .ok_or_else(|| CliError::usage("--offline-root needs -o REQ"))?;
    let name = a.name.as_deref().unwrap_or(FIRST_INTERMEDIATE_NAME);
    check_ca_name(name)?;
    let lifetimes = ca::Lifetimes {
        leaf_secs: a.cert_lifetime,
        max_token_secs: a.max_token_ttl,
    };
    let ca_url = a.ca_url.as_deref().unwrap_or(ca::DEFAULT_CA_URL);
    let (_, request) = ca::install_awaiting_root(&paths, ca_url, pw, force, lifetimes, name)?;
    write_atomic(out, request.to_json()?.as_bytes(), 0o644).map_err(|e| {
        CliError::usage(format!(
            "{e}; the CA was created, and its request is also in {}: carry that file",
            paths.next_request().display()
        ))
    })?;
    eprintln!(
        "Created a CA in {} for https://{ca_url}, waiting for its root: it holds no root key.\n\
         Intermediate request: {} (SHA-256 {})\n\
         Carry it to the root's host and run there:\n  \
         fedpki pki root sign -p ROOT_DIR {} -o intermediate.signed\n\
         then here:\n  fedpki pki install -p {} --complete intermediate.signed",
        paths.dir.display(),
        out.display(),
        request.csr_sha256,
        out.display(),
        paths.dir.display()
    );
    println!("The CSR Hash {}", request.csr_sha256);
    Ok(())
}

/// `pki install --complete`
pub(crate) fn complete(a: &InstallArgs, signed: &std::path::Path) -> Result<()> {
    let paths = a.ca.paths();
    let pw = password::obtain(a.password.password_file.as_deref(), false)?;
    let config = offline_root::complete(&paths, signed, &pw, a.root_fingerprint.as_deref())?;
    eprintln!(
        "The CA in {} is complete: its intermediate chains to the root with SHA-256\n  {}\n\
         Check it is the fingerprint `pki root init` printed. Next: fedpki pki run -p {}",
        paths.dir.display(),
        config.root_fingerprint,
        paths.dir.display()
    );
    Ok(())
}

/// `pki install --root-crl`
pub(crate) fn install_root_crl(a: &InstallArgs, file: &std::path::Path) -> Result<()> {
    let paths = a.ca.paths();
    let crl = offline_root::install_root_crl(&paths, file)?;
    eprintln!(
        "Installed the root's CRL ({} revoked, next update {}); served at GET /crl/root.",
        crl.entries().len(),
        crl.next_update()
            .map_or_else(|| "none".into(), |t| time_text(t.0))
    );
    Ok(())
}

/// `pki intermediate request`
pub(crate) fn request(a: &IntermediateRequestArgs) -> Result<()> {
    if let Some(name) = &a.name {
        check_ca_name(name)?;
    }
    let paths = a.ca.paths();
    let pw = password::obtain(a.password.password_file.as_deref(), false)?;
    let request = offline_root::request_next(&paths, a.name.as_deref(), &pw, a.force)?;
    write_atomic(&a.out, request.to_json()?.as_bytes(), 0o644)?;
    eprintln!(
        "Staged a new intermediate key in {} (the active one keeps issuing).\n\
         Request: {} (SHA-256 {}). On the root's host:\n  \
         fedpki pki root sign -p ROOT_DIR {} -o next.signed\nthen here:\n  \
         fedpki pki intermediate activate -p {} next.signed",
        paths.dir.display(),
        a.out.display(),
        request.csr_sha256,
        a.out.display(),
        paths.dir.display()
    );
    println!("The CSR Hash {}", request.csr_sha256);
    Ok(())
}

/// `pki intermediate activate`: switch, then have a running server take
/// it up (SIGHUP) and wait until it serves the new intermediate's CRL.
pub(crate) fn activate(a: &IntermediateActivateArgs) -> Result<()> {
    let paths = a.ca.paths();
    let pw = password::obtain(a.password.password_file.as_deref(), false)?;
    let done = offline_root::activate(&paths, &a.signed, &pw)?;
    eprintln!(
        "Activated the intermediate {}: new and renewed certificates come from it. The one \
         before ({}) still renews its certificates and signs its CRL (GET /crl/{}) until {}.",
        done.kid,
        done.retired.key_id,
        done.retired.key_id,
        time_text(done.retired.crl_until)
    );
    let Some(pid) = ca::server_pid(&paths)? else {
        eprintln!("The CA is not running: `fedpki pki run` starts with it.");
        return Ok(());
    };
    signal_reload(pid)?;
    let certs = CaCerts::load(&paths, &done.config)?;
    runtime()?.block_on(wait_for_issuer(&done.config, &certs.root, &done.kid))?;
    eprintln!("The running CA (pid {pid}) issues from it now.");
    Ok(())
}

fn signal_reload(pid: i32) -> Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let target = Pid::from_raw(pid)
        .ok_or_else(|| CliError::usage(format!("the CA server's pid {pid} is not valid")))?;
    kill_process(target, Signal::HUP).map_err(|e| {
        CliError::usage(format!(
            "could not signal the CA server (pid {pid}): {e}; restart it to take up the new \
             intermediate"
        ))
    })
}

/// Poll the server until it serves the CRL of the intermediate `kid`.
async fn wait_for_issuer(config: &CaConfig, root: &Certificate, kid: &str) -> Result<()> {
    let (host, port) = ca::parse_ca_url(&config.ca_url)?;
    let root_der = issue::cert_der(root)?;
    let path = format!("/crl/{kid}");
    for _ in 0..100 {
        let served = crate::client::https_request(&host, port, &root_der, "GET", &path, None).await;
        if matches!(served, Ok(r) if r.status == 200) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(CliError::usage(format!(
        "the CA server at {} did not take up the intermediate {kid} within 20 s; see its log \
         (it takes it up at its next start in any case)",
        config.ca_url
    )))
}
