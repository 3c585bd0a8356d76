//! The online CA's side of an offline root: an install that waits for the
//! root (`pki install --offline-root`, `--complete`), the root's CRL
//! (`--root-crl`), and rotating the intermediate (`pki intermediate …`).

use std::time::Duration;

use fedpki_core::{Certificate, issue};

use crate::ca::offline_root::{self, FIRST_INTERMEDIATE_NAME};
use crate::ca::{self, CaCerts, CaConfig};
use crate::cmd::args::{InstallArgs, IntermediateActivateArgs, IntermediateRequestArgs};
use crate::cmd::ca::runtime;
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::{time_text, write_atomic};

/// `pki install --offline-root`
pub(crate) fn install_awaiting_root(a: &InstallArgs, force: bool, pw: &str) -> Result<()> {
    let paths = a.ca.paths();
    let out = a
        .out
        .as_deref()
        .ok_or_else(|| CliError::usage("--offline-root needs -o REQ"))?;
    let name = a.name.as_deref().unwrap_or(FIRST_INTERMEDIATE_NAME);
    let lifetimes = a.options()?;
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
         then here, with the fingerprint `pki root init` printed on the root's host:\n  \
         fedpki pki install -p {} --complete intermediate.signed --root-fingerprint FINGERPRINT",
        paths.dir.display(),
        out.display(),
        request.csr_sha256,
        out.display(),
        paths.dir.display()
    );
    // Named by what it is: OpenFL's "CSR Hash" is a SHA-384 of another text.
    println!("Request SHA-256 {}", request.csr_sha256);
    Ok(())
}

/// `pki install --complete`: the root it takes, the one every node will
/// trust, is pinned by `--root-fingerprint`, or shown and confirmed on
/// the terminal (never taken unasked).
pub(crate) fn complete(a: &InstallArgs, signed: &std::path::Path) -> Result<()> {
    let paths = a.ca.paths();
    let pw = password::obtain(a.password.password_file.as_deref(), false)?;
    let confirm = |fingerprint: &str| {
        password::confirm(&format!(
            "The signed intermediate chains to the root with SHA-256\n  {fingerprint}\nIs it the \
             fingerprint `pki root init` printed on the root's host?"
        ))
    };
    let expected = match a.root_fingerprint.as_deref() {
        Some(fp) => offline_root::ExpectedRoot::Fingerprint(fp),
        None => offline_root::ExpectedRoot::Confirmed(&confirm),
    };
    let config = offline_root::complete(&paths, signed, &pw, expected)?;
    eprintln!(
        "The CA in {} is complete: its intermediate chains to the root with SHA-256\n  {}\n\
         Check it is the fingerprint `pki root init` printed. Next: fedpki pki run -p {}",
        paths.dir.display(),
        config.root_fingerprint,
        paths.dir.display()
    );
    Ok(())
}

/// `pki install --root-crl`: keep it, then have a running server take it
/// up (SIGHUP) and wait until it serves it.
pub(crate) fn install_root_crl(a: &InstallArgs, file: &std::path::Path) -> Result<()> {
    let paths = a.ca.paths();
    let crl = offline_root::install_root_crl(&paths, file)?;
    let config = CaConfig::load(&paths)?;
    if let crate::store::StoreLocation::Postgres { location, .. } = a.ca.ledger(&config)? {
        ca::replica::publish(&paths, &config, &location)?;
        eprintln!("Published to the CA's replicas: each takes it up now.");
    }
    eprintln!(
        "Installed the root's CRL ({} revoked, next update {}); served at GET /crl/root. The \
         certificates of an intermediate it revokes are no longer renewed or revoked by their \
         holders.",
        crl.entries().len(),
        crl.next_update()
            .map_or_else(|| "none".into(), |t| time_text(t.0))
    );
    let Some(pid) = ca::server_pid(&paths)? else {
        return Ok(());
    };
    signal_reload(pid)?;
    let config = CaConfig::load(&paths)?;
    let certs = CaCerts::load(&paths, &config)?;
    let der = crl.to_der()?;
    runtime()?.block_on(wait_until_served(
        &config,
        &certs.root,
        "/crl/root",
        |body| body == der.as_slice(),
    ))?;
    eprintln!("The running CA (pid {pid}) acts on it now.");
    Ok(())
}

/// `pki intermediate request`
pub(crate) fn request(a: &IntermediateRequestArgs) -> Result<()> {
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
    // Named by what it is: OpenFL's "CSR Hash" is a SHA-384 of another text.
    println!("Request SHA-256 {}", request.csr_sha256);
    Ok(())
}

/// `pki intermediate activate`: switch, then have a running server take
/// it up (SIGHUP) and wait until it serves the new intermediate's CRL.
pub(crate) fn activate(a: &IntermediateActivateArgs) -> Result<()> {
    let paths = a.ca.paths();
    let pw = password::obtain(a.password.password_file.as_deref(), false)?;
    let ledger = a.ca.ledger(&CaConfig::load(&paths)?)?;
    let done = offline_root::activate(&paths, &a.signed, &pw, &ledger)?;
    if let crate::store::StoreLocation::Postgres { location, .. } = &ledger {
        ca::replica::publish(&paths, &done.config, location)?;
        eprintln!("Published to the CA's replicas: each takes it up now.");
    }
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
    let path = format!("/crl/{}", done.kid);
    runtime()?.block_on(wait_until_served(&done.config, &certs.root, &path, |_| {
        true
    }))?;
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

/// Poll the running server until it answers `path` with 200 and a body
/// `taken` accepts: it has taken up what it was signalled for.
async fn wait_until_served(
    config: &CaConfig,
    root: &Certificate,
    path: &str,
    taken: impl Fn(&[u8]) -> bool,
) -> Result<()> {
    let (host, port) = ca::parse_ca_url(&config.ca_url)?;
    let root_der = issue::cert_der(root)?;
    for _ in 0..100 {
        let served = crate::client::https_request(&host, port, &root_der, "GET", path, None).await;
        if matches!(&served, Ok(r) if r.status == 200 && taken(&r.body)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(CliError::usage(format!(
        "the CA server at {} did not take it up within 20 s (GET {path}); see its log (it \
         takes it up at its next start in any case)",
        config.ca_url
    )))
}
