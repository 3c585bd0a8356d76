//! The offline root's commands (`pki root …`), on the root's host; the
//! online CA's side is `cmd::intermediate`.

use fedpki_core::issue;

use crate::ca::{self, CaConfig};
use crate::cmd::args::{
    PasswordArgs, RootCrlArgs, RootDir, RootExportArgs, RootInitArgs, RootRevokeArgs, RootSignArgs,
};
use crate::cmd::ca::runtime;
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::{now, time_text, write_atomic};
use crate::root::{self, RootPaths};

/// `pki root init`
pub(crate) fn init(a: &RootInitArgs) -> Result<()> {
    let paths = RootPaths::new(&a.root.root_path);
    let pw = password::obtain(a.password.password_file.as_deref(), true)?;
    let config = root::init(&paths, a.key_type, &a.name, &pw)?;
    eprintln!(
        "Created the offline root {:?} in {} ({}, 10 years).",
        config.name,
        paths.dir().display(),
        a.key_type.as_str(),
    );
    println!("Root fingerprint (SHA-256): {}", config.fingerprint);
    eprintln!(
        "Keep this folder offline. Next, on the online CA's host:\n  \
         fedpki pki install -p CA_DIR --ca-url HOST:PORT --offline-root -o intermediate.req"
    );
    Ok(())
}

/// `pki root sign`: show the request, ask, sign, record, write.
pub(crate) fn sign(a: &RootSignArgs) -> Result<()> {
    let text = crate::platform::sys::read_text(&a.request)?;
    if a.profile == "job-ca" {
        return sign_job_ca(a, &text);
    }
    let (request, csr, name) = root::review(&text)?;
    let (rt, open) = open_root(&a.root, &a.password)?;
    rt.block_on(async {
        let review = || {
            eprintln!(
                "Intermediate request from the CA at {}:\n  subject:  CN={name}\n  key:      {}\n  \
                 SHA-256:  {}\nCompare this hash with the one `pki install --offline-root` or \
                 `pki intermediate request` printed on that host.",
                request.ca_url,
                csr.public_key(),
                request.csr_sha256
            );
            let question = format!("Sign it as an intermediate of {:?}?", open.config.name);
            a.yes || password::confirm(&question)
        };
        let (cert, signed) = open.sign(&request, &csr, &name, now(), review).await?;
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

/// `pki root sign --profile job-ca`: NVFlare's job CA from its CSR.
fn sign_job_ca(a: &RootSignArgs, text: &str) -> Result<()> {
    let (csr, name, org, hash) = root::review_job_ca(text)?;
    let (rt, open) = open_root(&a.root, &a.password)?;
    rt.block_on(async {
        let review = || {
            eprintln!(
                "NVFlare job CA request:\n  subject:  CN={}{}\n  key:      {}\n  SHA-256:  {hash}\n\
                 It may sign leaves only (pathlen 0), for a year. Compare this hash with the \
                 CSR's on the NVFlare server (openssl req -in job_ca.csr -outform DER | sha256sum).",
                fedpki_core::name::escaped(&name),
                org.as_deref()
                    .map(|o| format!(", O={}", fedpki_core::name::escaped(o)))
                    .unwrap_or_default(),
                csr.public_key(),
            );
            let question = format!("Sign it as a job CA of {:?}?", open.config.name);
            a.yes || password::confirm(&question)
        };
        let who = (name.as_str(), org.as_deref(), hash.as_str());
        let cert = open.sign_job_ca(&csr, who, now(), review).await?;
        write_atomic(&a.out, issue::cert_pem(&cert)?.as_bytes(), 0o644)?;
        eprintln!(
            "Signed the job CA {name:?}: serial {}, valid until {}. Put {} in the NVFlare \
             server's startup kit as job_ca.crt, beside its key.",
            issue::serial_hex(&cert),
            cert.not_after_text(),
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
