//! The operator's side of a certificate's life: revoke, the CRL, the
//! ledger (`pki list`) and `pki audit` (a node's side is `cmd::node`).
//!
//! Operator commands work whether the server runs or not. While it runs it
//! holds the database and the unlocked intermediate key, so `revoke` and
//! `crl` go through its HTTPS API (`revoke` with a revoke token signed by
//! the provisioner key, as step does), and `list` and `audit` read the
//! database read-only beside it. When it is stopped they open the CA folder
//! themselves, under its lock.

use std::io::Write;

use fedpki_core::crl::{Crl, Reason};
use fedpki_core::issue;

use crate::ca::{self, CaCerts, CaConfig, CaPaths};
use crate::client;
use crate::cmd::args::CaDir;
use crate::cmd::args::{AuditArgs, CrlArgs, ListArgs, RevokeArgs};
use crate::cmd::ca::{open_ca, runtime};
use crate::error::{CliError, Result};
use crate::platform::sys::{now, time_text, write_atomic};
use crate::store::{self, Ledger, StoreLocation, log as audit};
use crate::wire::{RevokeRequest, RevokeResponse, serial_to_wire};

/// `pki revoke`: through the running server's API, or on the folder
/// itself when it is stopped.
pub(crate) fn revoke(a: &RevokeArgs) -> Result<()> {
    let paths = a.ca.paths();
    let config = CaConfig::load(&paths)?;
    let (reason, serial) = (a.reason, a.serial.as_str());
    let rt = runtime()?;
    if ca::server_pid(&paths)?.is_some() {
        return rt.block_on(revoke_through_server(a, &paths, &config, serial, reason));
    }
    let open = open_ca(
        &a.ca,
        a.password.password_file.as_deref(),
        crate::cmd::ca::Purpose::Operate,
    )?;
    rt.block_on(async {
        let done = open
            .authority
            .revoke_by_operator(serial, reason, now())
            .await
            .map_err(CliError::from)?;
        report_revocation(
            serial,
            done.already,
            done.record.revoked_at,
            done.record.reason,
        );
        // Signed again either way: a crash may have come between an
        // earlier revocation and its CRL.
        let der = sign_crl(&paths, &open.authority).await?;
        if done.already {
            eprintln!("The CRL in {} lists it.", paths.crl().display());
        } else {
            eprintln!(
                "Signed a new CRL: {} ({} bytes).",
                paths.crl().display(),
                der.len()
            );
        }
        Ok(())
    })
}

/// The server holds the store: ask it, with a revoke token signed by the
/// provisioner key (as step does).
async fn revoke_through_server(
    a: &RevokeArgs,
    paths: &CaPaths,
    config: &CaConfig,
    serial: &str,
    reason: Reason,
) -> Result<()> {
    let certs = CaCerts::load(paths, config)?;
    let purpose = crate::cmd::token::TokenFor::Revoke { serial_hex: serial };
    let password_file = a.password.password_file.as_deref();
    let ott = crate::cmd::token::sign(
        paths,
        config,
        &certs,
        password_file,
        &purpose,
        &config.ca_url,
        300,
    )?;
    let root_der = issue::cert_der(&certs.root)?;
    let (host, port) = ca::parse_ca_url(&config.ca_url)?;
    let body = serde_json::to_vec(&RevokeRequest {
        serial: serial_to_wire(serial)?,
        ott: Some(ott),
        reason_code: Some(reason.code()),
        passive: Some(true),
    })
    .map_err(|e| CliError::usage(e.to_string()))?;
    let resp = client::https_request(&host, port, &root_der, "POST", "/1.0/revoke", Some(body));
    let done: RevokeResponse = resp.await?.answer(200)?;
    report_revocation(
        serial,
        done.already_revoked,
        done.revoked_at,
        done.reason_code,
    );
    if done.already_revoked {
        eprintln!("The running CA's CRL (GET /crl) lists it.");
    } else {
        eprintln!("The running CA has signed a new CRL (GET /crl).");
    }
    Ok(())
}

fn report_revocation(serial: &str, already: bool, at: u64, code: u8) {
    let reason = Reason::from_code(code).map_or("unknown", Reason::name);
    if already {
        eprintln!(
            "Certificate {serial} was already revoked at {} ({reason}); nothing changed.",
            time_text(at)
        );
    } else {
        eprintln!(
            "Revoked certificate {serial} at {} ({reason}).",
            time_text(at)
        );
    }
}

/// Sign the CRLs offline (one per intermediate in use) and keep them in
/// the CA folder; the active intermediate's.
async fn sign_crl(paths: &CaPaths, authority: &crate::authority::Authority) -> Result<Vec<u8>> {
    let last = ca::crl_number_in(&paths.crl()).unwrap_or(0);
    let signed = authority.publish_crls(last, Some(paths), now()).await?;
    Ok(signed.active().to_vec())
}

/// `pki crl`
pub(crate) fn crl(a: &CrlArgs) -> Result<()> {
    use std::io::IsTerminal;
    if a.out.is_none() && !a.pem && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "the CRL is binary (DER); write it with -o FILE, or print PEM with --pem",
        ));
    }
    let paths = a.ca.paths();
    let config = CaConfig::load(&paths)?;
    let rt = runtime()?;
    let der = if ca::server_pid(&paths)?.is_some() {
        let certs = CaCerts::load(&paths, &config)?;
        let (host, port) = ca::parse_ca_url(&config.ca_url)?;
        let resp = rt.block_on(client::https_request(
            &host,
            port,
            &issue::cert_der(&certs.root)?,
            "GET",
            "/crl",
            None,
        ))?;
        if resp.status != 200 {
            return Err(resp.refusal());
        }
        resp.body.to_vec()
    } else {
        let open = open_ca(
            &a.ca,
            a.password.password_file.as_deref(),
            crate::cmd::ca::Purpose::Operate,
        )?;
        rt.block_on(sign_crl(&paths, &open.authority))?
    };
    let parsed = Crl::parse(&der)?;
    let out = if a.pem {
        fedpki_core::encoding::pem("X509 CRL", &der)?.into_bytes()
    } else {
        der
    };
    match &a.out {
        Some(path) => write_atomic(path, &out, 0o644)?,
        None => std::io::stdout()
            .lock()
            .write_all(&out)
            .map_err(|e| CliError::io("write", "standard output", e))?,
    }
    eprintln!(
        "CRL number {}: {} revoked, next update {}.",
        parsed.number().unwrap_or(0),
        parsed.entries().len(),
        parsed
            .next_update()
            .map_or("none".into(), |t| time_text(t.0))
    );
    Ok(())
}

/// A ledger folder's kind: a CA's, or an offline root's (the same layout).
fn load_ledger_folder(paths: &CaPaths) -> Result<()> {
    if crate::root::RootPaths::new(&paths.dir).config().exists() {
        return crate::ca::guard::check(&paths.dir);
    }
    CaConfig::load(paths).map(|_| ())
}

/// Where the ledger of a CA folder or an offline root's folder lives.
fn ledger_of(ca: &CaDir) -> Result<StoreLocation> {
    let paths = ca.paths();
    if crate::root::RootPaths::new(&paths.dir).config().exists() {
        return Ok(StoreLocation::Embedded(paths.store()));
    }
    ca.ledger(&CaConfig::load(&paths)?)
}

/// Read the ledger; after a crash (the index needs recovery, which a
/// read-only open cannot do) open the store once when no server runs. A
/// shared ledger is read from its database.
pub(crate) fn read_ledger(ca: &CaDir) -> Result<Ledger> {
    let location = ledger_of(ca)?;
    if location.is_shared() {
        return Ledger::read_at(&location);
    }
    let paths = &ca.paths();
    match Ledger::read_at(&location) {
        Ok(l) => Ok(l),
        Err(first) => {
            if ca::server_pid(paths)?.is_some() {
                return Err(first);
            }
            let lock = ca::FolderLock::acquire(paths)?;
            store::recover(&location)?;
            drop(lock);
            Ledger::read_at(&location)
        }
    }
}

/// `pki list`
pub(crate) fn list(a: &ListArgs) -> Result<()> {
    let paths = a.ca.paths();
    load_ledger_folder(&paths)?;
    let ledger = read_ledger(&a.ca)?;
    let folder = if crate::root::RootPaths::new(&paths.dir).config().exists() {
        super::list::Folder::Root
    } else {
        super::list::Folder::Ca(Box::new(CaConfig::load(&paths)?))
    };
    let t = now().0;
    super::list::print(a, &super::list::rows(&ledger, &folder, t), t)
}

/// `pki audit`
pub(crate) fn audit(a: &AuditArgs) -> Result<()> {
    let paths = a.ca.paths();
    load_ledger_folder(&paths)?;
    let location = ledger_of(&a.ca)?;
    if a.repair && location.is_shared() {
        // Refused, saying why: the database keeps its own log.
        store::repair(&location, now().0)?;
    }
    if !location.is_shared() && ca::server_pid(&paths)?.is_none() && paths.database().exists() {
        // Finish what a crash interrupted, as the server does when it
        // starts (or, asked to, repair a log that lost entries).
        let lock = ca::FolderLock::acquire(&paths)?;
        if a.repair {
            match store::repair(&location, now().0)? {
                Some(note) => eprintln!("repaired: {note}"),
                None => eprintln!("nothing to repair: the log matches the ledger"),
            }
        } else {
            match store::recover(&location) {
                // A log behind the ledger: the check below says where.
                Err(store::StoreError::Corrupt(_)) => {}
                other => other?,
            }
        }
        drop(lock);
    } else if a.repair {
        return Err(CliError::usage(
            "stop the CA server first: the log is repaired with the folder locked",
        ));
    }
    let trail = store::AuditTrail::read_at(&location)?;
    report_audit(&trail.text, trail.head.as_ref(), &trail.source, trail.hint)
}

/// Check an audit log's text against the head its ledger indexed, and say
/// what was found (`where_` names the log, `hint` what to do if broken).
fn report_audit(
    text: &[u8],
    indexed: Option<&audit::Head>,
    where_: &str,
    hint: String,
) -> Result<()> {
    match audit::verify(text, indexed) {
        audit::Verdict::Intact { entries, head } => {
            for (i, e) in audit::scan(text, &audit::Head::default())
                .0
                .iter()
                .enumerate()
            {
                if e.event == "repair" {
                    eprintln!(
                        "note: entry {} records a repair: {}",
                        i + 1,
                        e.note.as_deref().unwrap_or_default()
                    );
                }
            }
            println!(
                "audit log intact: {entries} entries, last hash {}",
                head.hash
            );
            Ok(())
        }
        audit::Verdict::Tampered { entry, reason } => Err(CliError::Check(format!(
            "the audit log {where_} was tampered with: entry {entry}: {reason}. {hint}"
        ))),
    }
}
