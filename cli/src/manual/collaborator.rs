//! `fedpki collaborator certify`: on the aggregator, sign a collaborator's
//! request package (or its CSR) into a signed package; on the
//! collaborator, import that package.

use super::*;
use crate::node::{Answer, Expected};

/// Options of `fedpki collaborator certify`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CollaboratorCertify<'a> {
    /// `-n NAME`.
    pub name: Option<&'a str>,
    /// `-s`.
    pub silent: bool,
    /// `-r ZIP`: sign a request package.
    pub request_pkg: Option<&'a Path>,
    /// `-i ZIP`: import a signed package.
    pub import: Option<&'a Path>,
    /// `--password-file`.
    pub password_file: Option<&'a Path>,
}

/// `fedpki collaborator certify …`
pub(crate) fn collaborator_certify(ws: &Workspace, o: &CollaboratorCertify<'_>) -> Result<()> {
    match (o.request_pkg, o.import) {
        (Some(_), Some(_)) => Err(CliError::usage(
            "use either -r (sign a request) or -i (import a signed package)",
        )),
        (None, Some(zip)) => import_signed(ws, o.name, zip),
        (Some(zip), None) => sign_request_package(ws, o, zip),
        (None, None) => {
            let name = check_fqdn(
                o.name
                    .ok_or_else(|| CliError::usage("give -n NAME, -r ZIP or -i ZIP"))?,
            )?;
            let csr = read_verified_csr(&ws.client(&name, "csr"))?;
            sign_collaborator(ws, o, &name, &csr)
        }
    }
}

fn name_from_zip(zip: &Path, prefix: &str, suffix: &str) -> Option<String> {
    let file = zip.file_name()?.to_str()?;
    file.strip_prefix(prefix)?
        .strip_suffix(suffix)
        .map(str::to_owned)
}

fn sign_request_package(ws: &Workspace, o: &CollaboratorCertify<'_>, zip: &Path) -> Result<()> {
    let entries = package_zip::read(zip)?;
    let csrs: Vec<_> = entries
        .iter()
        .filter(|e| e.name.ends_with(".csr"))
        .collect();
    let entry = match csrs.as_slice() {
        [one] => *one,
        [] => {
            return Err(CliError::usage(format!(
                "{} holds no CSR; nothing was signed",
                zip.display()
            )));
        }
        many => {
            return Err(CliError::usage(format!(
                "{} holds {} CSRs; a request package must hold exactly one (nothing was signed)",
                zip.display(),
                many.len()
            )));
        }
    };
    let name = entry
        .name
        .strip_prefix("col_")
        .and_then(|n| n.strip_suffix(".csr"))
        .filter(|n| !n.contains('/'))
        .ok_or_else(|| {
            CliError::usage(format!(
                "the CSR in {} is named {:?}, not col_<name>.csr; nothing was signed",
                zip.display(),
                entry.name
            ))
        })?;
    let name = check_fqdn(name)?;
    for expected in [
        o.name.map(str::to_owned),
        name_from_zip(zip, "col_", "_to_agg_cert_request.zip"),
    ]
    .into_iter()
    .flatten()
    {
        if expected.to_ascii_lowercase() != name {
            return Err(CliError::usage(format!(
                "the package holds a CSR for {name:?} but is for {expected:?}; nothing was signed"
            )));
        }
    }
    let text = std::str::from_utf8(&entry.data)
        .map_err(|_| CliError::usage(format!("{} in {} is not text", entry.name, zip.display())))?;
    let csr = verified_csr(text, &fedpki_core::RUST_CRYPTO).map_err(|r| {
        CliError::usage(format!(
            "{} in {}: {}",
            entry.name,
            zip.display(),
            r.message
        ))
    })?;
    sign_collaborator(ws, o, &name, &csr)?;
    let crt = read_text(&ws.client(&name, "crt"))?;
    let chain = read_text(&ws.cert_chain())?;
    let out = ws.signed_zip(&name);
    package_zip::write(
        &out,
        &[
            (&format!("client/col_{name}.crt"), crt.as_bytes()),
            ("cert_chain.crt", chain.as_bytes()),
        ],
    )?;
    println!(
        "Archive {} with the signed certificate and the certificate chain created",
        out.display()
    );
    println!("This file should be sent back to the collaborator {name}");
    Ok(())
}

fn sign_collaborator(
    ws: &Workspace,
    o: &CollaboratorCertify<'_>,
    name: &str,
    csr: &VerifiedCsr,
) -> Result<()> {
    if aggregator_names(ws).iter().any(|a| a == name) {
        return Err(CliError::usage(format!(
            "{name:?} is this workspace's aggregator; a collaborator cannot have its name \
             (nothing was signed)"
        )));
    }
    let ca = load_signing_ca(ws, o.password_file)?;
    confirm_signing(csr, &format!("client/col_{name}.csr"), o.silent)?;
    let pem = sign_for(&ca, csr, Role::Collaborator, name)?;
    create_dir(&ws.cert().join("client"), false)?;
    write_atomic(&ws.client(name, "crt"), pem.as_bytes(), 0o644)?;
    let _ = std::fs::remove_file(ws.client(name, "csr"));
    add_to_plan(ws, name)?;
    println!(
        "Signed certificate written to {}",
        ws.client(name, "crt").display()
    );
    Ok(())
}

/// Append `name` to `plan/cols.yaml` when the workspace has a `plan/`
/// folder, as OpenFL does; a name already listed is left alone.
fn add_to_plan(ws: &Workspace, name: &str) -> Result<()> {
    let plan = ws.root.join("plan");
    if !plan.is_dir() {
        return Ok(());
    }
    let path = plan.join("cols.yaml");
    let text = if path.exists() {
        crate::platform::sys::read_text(&path)?
    } else {
        String::new()
    };
    let listed = text
        .lines()
        .any(|l| l.trim().strip_prefix('-').map(str::trim) == Some(name));
    if listed {
        return Ok(());
    }
    let body = text.trim_end();
    let new = if body.is_empty()
        || body == "collaborators:"
        || body == "collaborators: []"
        || body == "collaborators: null"
    {
        format!("collaborators:\n- {name}\n")
    } else if body.starts_with("collaborators:") && !body.contains('[') {
        format!("{body}\n- {name}\n")
    } else {
        return Err(CliError::usage(format!(
            "{} is not a block list under `collaborators:`; add {name:?} to it by hand",
            path.display()
        )));
    };
    write_atomic(&path, new.as_bytes(), 0o644)?;
    println!("Collaborator {name} added to {}", path.display());
    Ok(())
}

/// A signed package, read: the collaborator's name, the two files as they
/// are to be written, and the certificates they hold.
struct SignedPackage {
    name: String,
    crt_pem: String,
    chain_pem: String,
    answer: Answer,
}

/// Read `client/col_<name>.crt` and `cert_chain.crt` (root, then the
/// signing CA) out of a signed package.
fn read_signed_package(zip: &Path, name: Option<&str>) -> Result<SignedPackage> {
    let refuse =
        |why: String| CliError::usage(format!("{}: {why}; nothing was installed", zip.display()));
    let entries = package_zip::read(zip)?;
    let crt_entry = entries
        .iter()
        .find(|e| e.name.starts_with("client/col_") && e.name.ends_with(".crt"))
        .ok_or_else(|| refuse("it holds no client/col_<name>.crt".into()))?;
    let entry_name =
        crt_entry.name["client/col_".len()..crt_entry.name.len() - ".crt".len()].to_owned();
    let name = check_fqdn(name.unwrap_or(&entry_name))?;
    if entry_name.to_ascii_lowercase() != name {
        return Err(refuse(format!(
            "the package holds a certificate for {entry_name:?}, not {name:?}"
        )));
    }
    let chain_entry = entries
        .iter()
        .find(|e| e.name == "cert_chain.crt")
        .ok_or_else(|| refuse("it holds no cert_chain.crt".into()))?;
    let as_text = |e: &package_zip::Entry| {
        String::from_utf8(e.data.clone()).map_err(|_| refuse(format!("{} is not text", e.name)))
    };
    let crt_pem = as_text(crt_entry)?;
    let chain_pem = as_text(chain_entry)?;
    let leaf = issue::parse_certs_pem(&crt_pem)?
        .into_iter()
        .next()
        .ok_or_else(|| refuse(format!("{} holds no certificate", crt_entry.name)))?;
    let chain_certs = issue::parse_certs_pem(&chain_pem)?;
    let [root, signing] = chain_certs.as_slice() else {
        return Err(refuse(format!(
            "cert_chain.crt should hold the root then the signing CA ({} certificates found)",
            chain_certs.len()
        )));
    };
    let answer = Answer {
        leaf,
        issuer: signing.clone(),
        root: root.clone(),
    };
    Ok(SignedPackage {
        name,
        crt_pem,
        chain_pem,
        answer,
    })
}

fn import_signed(ws: &Workspace, name: Option<&str>, zip: &Path) -> Result<()> {
    let package = read_signed_package(zip, name)?;
    let name = &package.name;
    let refuse =
        |why: String| CliError::usage(format!("{}: {why}; nothing was installed", zip.display()));
    let key_path = ws.client(name, "key");
    let key = crate::node::read_key_file(&key_path)?;
    let expected = Expected {
        key: &key.public_key(),
        key_file: &key_path,
        subject: &Subject::new(name)?,
        sans: None,
    };
    package
        .answer
        .check(&expected, now())
        .map_err(|e| refuse(e.to_string()))?;
    let new_fp = issue::fingerprint(&package.answer.root)?;
    keep_or_confirm_root(ws, &new_fp).map_err(refuse)?;
    create_dir(&ws.cert().join("client"), false)?;
    write_atomic(&ws.client(name, "crt"), package.crt_pem.as_bytes(), 0o644)?;
    write_atomic(&ws.cert_chain(), package.chain_pem.as_bytes(), 0o644)?;
    println!("Certificate col_{name}.crt installed to PKI directory");
    println!("Trusted root: SHA-256 {new_fp} (compare it with the aggregator's operator)");
    Ok(())
}

/// The package came over an untrusted path: it may not swap the
/// federation's root behind the operator's back. A root other than the
/// one `cert_chain.crt` holds is taken only when the operator says so on
/// a terminal; why not, otherwise.
fn keep_or_confirm_root(ws: &Workspace, new_fp: &str) -> std::result::Result<(), String> {
    if !ws.cert_chain().exists() {
        return Ok(());
    }
    let held = read_text(&ws.cert_chain())
        .and_then(|t| Ok(issue::parse_certs_pem(&t)?))
        .map_err(|e| e.to_string())?;
    let Some(held_root) = held.first() else {
        return Err(format!(
            "{} holds no certificate; move it away to accept the package's root",
            ws.cert_chain().display()
        ));
    };
    let held_fp = issue::fingerprint(held_root).map_err(|e| e.to_string())?;
    if held_fp == new_fp {
        return Ok(());
    }
    println!(
        "{} trusts the root with SHA-256 {held_fp};\nthis package brings another \
         root, SHA-256 {new_fp}.",
        ws.cert_chain().display()
    );
    if crate::platform::password::confirm(
        "Replace the trusted root with the package's (only if the aggregator's operator confirmed its fingerprint)?",
    ) {
        return Ok(());
    }
    Err(format!(
        "it chains to another root than {} (SHA-256 {new_fp}, not {held_fp}); \
         compare the fingerprint with the aggregator's operator, and answer y on a \
         terminal only if it is theirs",
        ws.cert_chain().display()
    ))
}
