//! A certificate's life after issuance: revoke, CRL, renew (and `--watch`),
//! the ledger (`pki list`), `pki verify` and `pki audit`.
//!
//! Operator commands work whether the server runs or not. While it runs it
//! holds the database and the unlocked intermediate key, so `revoke` and
//! `crl` go through its HTTPS API (`revoke` with a revoke token signed by
//! the provisioner key, as step does), and `list` and `audit` read the
//! database read-only beside it. When it is stopped they open the CA folder
//! themselves, under its lock.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use fedpki_core::chain;
use fedpki_core::crl::{Crl, Reason};
use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenRequest};
use fedpki_core::{PrivateKey, RUST_CRYPTO, SigningKey, UnixTime};
use serde::Serialize;
use x509_cert::Certificate;

use crate::authority::normalize_serial;
use crate::ca::{self, CaCerts, CaConfig, CaPaths};
use crate::client::{self, ClientAuth, NodeConfig, ensure_newline};
use crate::cmd::args::{AuditArgs, CrlArgs, ListArgs, RenewArgs, RevokeArgs, VerifyArgs};
use crate::cmd::ca::{open_ca, runtime};
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::{OsEntropy, now, time_text, write_atomic};
use crate::store::{Ledger, durable, log as audit};

fn remote_error(resp: &client::HttpResponse) -> CliError {
    let message = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).into_owned());
    CliError::Remote {
        status: resp.status,
        message,
    }
}

/// `pki revoke`
pub(crate) fn revoke(a: &RevokeArgs) -> Result<()> {
    let paths = CaPaths::new(&a.ca_path);
    let config = CaConfig::load(&paths)?;
    let reason = Reason::parse(&a.reason).map_err(|e| CliError::usage(format!("--reason: {e}")))?;
    let serial = normalize_serial(&a.serial).map_err(|r| CliError::usage(r.message))?;
    let rt = runtime()?;
    if ca::server_pid(&paths)?.is_some() {
        // The server holds the store: ask it, with a revoke token.
        let certs = CaCerts::load(&paths, &config)?;
        let pw = password::obtain(a.password.password_file.as_deref(), false)?;
        let key = ca::unlock_key(&paths.provisioner_key(), &pw)?;
        drop(pw);
        let subject = Subject::new(&serial)?;
        let root_der = issue::cert_der(&certs.root)?;
        let ott = token::sign(
            &TokenRequest {
                issuer: &config.provisioner.name,
                subject: &subject,
                sans: &[San::parse(&serial)?],
                audience: &ca::revoke_audience(&config.ca_url),
                root_der: &root_der,
                now: now(),
                ttl_secs: 300,
                tls_key_sha256: None,
            },
            &key,
            &mut OsEntropy,
        )?;
        let (host, port) = ca::parse_ca_url(&config.ca_url)?;
        let body = serde_json::to_vec(&serde_json::json!({
            "serial": serial, "ott": ott, "reasonCode": reason.code(),
        }))
        .map_err(|e| CliError::usage(e.to_string()))?;
        let resp = rt.block_on(client::https_request(
            &host,
            port,
            &root_der,
            "POST",
            "/1.0/revoke",
            Some(body),
        ))?;
        if resp.status != 200 {
            return Err(remote_error(&resp));
        }
        let v: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| CliError::Network(format!("the CA's answer is not JSON: {e}")))?;
        report_revocation(
            &serial,
            v["alreadyRevoked"].as_bool().unwrap_or(false),
            v["revokedAt"].as_u64().unwrap_or(0),
            v["reasonCode"].as_u64().unwrap_or(0),
        );
        eprintln!("The running CA has signed a new CRL (GET /crl).");
        return Ok(());
    }
    let open = open_ca(
        &paths,
        a.password.password_file.as_deref(),
        crate::cmd::ca::Purpose::Operate,
    )?;
    rt.block_on(async {
        let done = open
            .authority
            .revoke_by_operator(&serial, reason, now())
            .await
            .map_err(CliError::from)?;
        report_revocation(
            &serial,
            done.already,
            done.record.revoked_at,
            u64::from(done.record.reason),
        );
        let der = sign_crl(&paths, &open.authority).await?;
        eprintln!(
            "Signed a new CRL: {} ({} bytes).",
            paths.crl().display(),
            der.len()
        );
        Ok(())
    })
}

fn report_revocation(serial: &str, already: bool, at: u64, code: u64) {
    let reason = u8::try_from(code)
        .ok()
        .and_then(Reason::from_code)
        .map_or("unknown", Reason::name);
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

/// Sign a CRL offline and keep it in the CA folder.
async fn sign_crl(paths: &CaPaths, authority: &crate::authority::Authority) -> Result<Vec<u8>> {
    let last = std::fs::read(paths.crl())
        .ok()
        .and_then(|b| Crl::parse(&b).ok())
        .and_then(|c| c.number())
        .unwrap_or(0);
    let der = authority
        .crl(crate::authority::crl_number(last), now())
        .await?;
    write_atomic(&paths.crl(), &der, 0o644)?;
    Ok(der)
}

/// `pki crl`
pub(crate) fn crl(a: &CrlArgs) -> Result<()> {
    use std::io::IsTerminal;
    if a.out.is_none() && !a.pem && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "the CRL is binary (DER); write it with -o FILE, or print PEM with --pem",
        ));
    }
    let paths = CaPaths::new(&a.ca_path);
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
            return Err(remote_error(&resp));
        }
        resp.body.to_vec()
    } else {
        let open = open_ca(
            &paths,
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

/// One row of `pki list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListRow {
    /// Serial, hex.
    pub serial: String,
    /// Subject CN.
    pub subject: String,
    /// SANs.
    pub sans: Vec<String>,
    /// When issued (RFC 3339).
    pub issued: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// `valid`, `expired` or `revoked`.
    pub status: String,
    /// Revocation reason, when revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When revoked (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// Read the ledger; after a crash (the index needs recovery, which a
/// read-only open cannot do) open the store once when no server runs.
fn read_ledger(paths: &CaPaths) -> Result<Ledger> {
    match Ledger::read(&paths.store()) {
        Ok(l) => Ok(l),
        Err(first) => {
            if ca::server_pid(paths)?.is_some() {
                return Err(first);
            }
            let lock = ca::FolderLock::acquire(paths)?;
            durable::recover(&paths.store())?;
            drop(lock);
            Ledger::read(&paths.store())
        }
    }
}

/// `pki list`
pub(crate) fn list(a: &ListArgs) -> Result<()> {
    let paths = CaPaths::new(&a.ca_path);
    CaConfig::load(&paths)?;
    let ledger = read_ledger(&paths)?;
    let t = now().0;
    let revoked: std::collections::HashMap<&str, _> = ledger
        .revocations
        .iter()
        .map(|r| (r.serial.as_str(), r))
        .collect();
    let mut certs = ledger.certificates.clone();
    certs.sort_by(|a, b| a.issued_at.cmp(&b.issued_at).then(a.serial.cmp(&b.serial)));
    let rows: Vec<ListRow> = certs
        .iter()
        .map(|c| {
            let r = revoked.get(c.serial.as_str());
            ListRow {
                serial: c.serial.clone(),
                subject: c.subject.clone(),
                sans: c.sans.clone(),
                issued: time_text(c.issued_at),
                not_after: time_text(c.not_after),
                status: match r {
                    Some(_) => "revoked",
                    None if c.not_after < t => "expired",
                    None => "valid",
                }
                .into(),
                reason: r.map(|r| {
                    Reason::from_code(r.reason)
                        .map_or("unknown", Reason::name)
                        .into()
                }),
                revoked_at: r.map(|r| time_text(r.revoked_at)),
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let w = |e| CliError::io("write", "standard output", e);
    if a.json {
        let json =
            serde_json::to_string_pretty(&rows).map_err(|e| CliError::usage(e.to_string()))?;
        writeln!(out, "{json}").map_err(w)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32}  {:<24}  {:<20}  {:<10}  SANS",
        "SERIAL", "SUBJECT", "NOT AFTER", "STATUS"
    )
    .map_err(w)?;
    for r in &rows {
        let status = match &r.reason {
            Some(reason) => format!("revoked ({reason})"),
            None => r.status.clone(),
        };
        writeln!(
            out,
            "{:<32}  {:<24}  {:<20}  {:<10}  {}",
            r.serial,
            r.subject,
            r.not_after,
            status,
            r.sans.join(",")
        )
        .map_err(w)?;
    }
    eprintln!(
        "{} certificates, {} revoked.",
        rows.len(),
        ledger.revocations.len()
    );
    Ok(())
}

/// `pki audit`
pub(crate) fn audit(a: &AuditArgs) -> Result<()> {
    let paths = CaPaths::new(&a.ca_path);
    CaConfig::load(&paths)?;
    if ca::server_pid(&paths)?.is_none() && paths.database().exists() {
        // Finish what a crash interrupted, as the server does when it
        // starts (or, asked to, repair a log that lost entries).
        let lock = ca::FolderLock::acquire(&paths)?;
        if a.repair {
            let disk = std::sync::Arc::new(crate::store::disk::OsDisk);
            match durable::repair(disk, &paths.store(), now().0)? {
                Some(note) => eprintln!("repaired: {note}"),
                None => eprintln!("nothing to repair: the log matches the ledger"),
            }
        } else {
            match durable::recover(&paths.store()) {
                // A log behind the ledger: the check below says where.
                Err(crate::store::StoreError::Corrupt(_)) => {}
                other => other?,
            }
        }
        drop(lock);
    } else if a.repair {
        return Err(CliError::usage(
            "stop the CA server first: the log is repaired with the folder locked",
        ));
    }
    let ledger = read_ledger(&paths)?;
    let log = paths.audit_log();
    let text = match std::fs::read(&log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CliError::io("read", &log, e)),
    };
    match audit::verify(&text, ledger.indexed.as_ref()) {
        audit::Verdict::Intact { entries, head } => {
            for (i, e) in audit::scan(&text, &audit::Head::default())
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
            "the audit log {} was tampered with: entry {entry}: {reason}. {}",
            log.display(),
            durable::repair_hint(&log)
        ))),
    }
}

/// A node's files: `<name>.key`, `<name>.crt` (leaf and intermediate),
/// `root_ca.crt`.
struct Node {
    key: PrivateKey,
    leaf: Certificate,
    intermediate: Option<Certificate>,
    root: Certificate,
    cert_path: std::path::PathBuf,
}

fn load_node(dir: &Path, name: &str) -> Result<Node> {
    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.crt"));
    let root_path = dir.join("root_ca.crt");
    let key = PrivateKey::from_pem(&crate::platform::sys::read_text(&key_path)?, None)
        .map_err(|e| CliError::usage(format!("{}: {e}", key_path.display())))?;
    let mut chain = issue::parse_certs_pem(&crate::platform::sys::read_text(&cert_path)?)
        .map_err(|e| CliError::usage(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(CliError::usage(format!(
            "{} holds no certificate",
            cert_path.display()
        )));
    }
    let leaf = chain.remove(0);
    let root = issue::parse_cert_pem(&crate::platform::sys::read_text(&root_path)?)
        .map_err(|e| CliError::usage(format!("{}: {e}", root_path.display())))?;
    Ok(Node {
        key,
        leaf,
        intermediate: chain.into_iter().next(),
        root,
        cert_path,
    })
}

/// Ask the CA for a renewal of `node`'s certificate; check the answer;
/// replace `<name>.crt` atomically. The new certificate.
async fn renew_once(node: &Node, host: &str, port: u16) -> Result<Certificate> {
    let t = now();
    chain::check_valid_at(&node.leaf, t).map_err(|_| {
        CliError::usage(format!(
            "{} has expired (or is not yet valid); renewal needs a valid certificate, so get a new one with a token",
            node.cert_path.display()
        ))
    })?;
    let mut presented = vec![node.leaf.clone()];
    presented.extend(node.intermediate.clone());
    let auth = ClientAuth::new(&presented, &node.key)?;
    let root_der = issue::cert_der(&node.root)?;
    let resp = client::https_request_as(
        host,
        port,
        &root_der,
        Some(&auth),
        "POST",
        "/1.0/renew",
        Some(b"{}".to_vec()),
    )
    .await?;
    if resp.status != 201 {
        return Err(remote_error(&resp));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        crt: String,
        ca: String,
    }
    let answer: Answer = serde_json::from_slice(&resp.body)
        .map_err(|e| CliError::Network(format!("the CA's answer is not the expected JSON: {e}")))?;
    let leaf = issue::parse_cert_pem(&answer.crt)?;
    let intermediate = issue::parse_cert_pem(&answer.ca)?;
    chain::verify_chain(&leaf, &intermediate, &node.root, t, &RUST_CRYPTO)?;
    let cn = chain::common_name(&node.leaf).unwrap_or_default();
    let subject = Subject::new(&cn)?;
    let mut sans = chain::sans(&node.leaf);
    sans.sort();
    chain::check_leaf_is_ours(&leaf, &node.key.public_key(), &subject, &sans)?;
    let pem = format!(
        "{}{}",
        ensure_newline(&answer.crt),
        ensure_newline(&answer.ca)
    );
    write_atomic(&node.cert_path, pem.as_bytes(), 0o644)?;
    Ok(leaf)
}

/// When `--watch` renews: two thirds into the lifetime as issued (the
/// minute a notBefore is backdated by is not counted).
pub(crate) fn renewal_time(cert: &Certificate) -> UnixTime {
    let v = cert.tbs_certificate().validity();
    let nb = v.not_before.to_unix_duration().as_secs();
    let na = v.not_after.to_unix_duration().as_secs();
    let start = if na.saturating_sub(nb) > issue::BACKDATE_SECS {
        nb + issue::BACKDATE_SECS
    } else {
        nb
    };
    UnixTime(start + na.saturating_sub(start) * 2 / 3)
}

/// `pki renew`
pub(crate) fn renew(a: &RenewArgs) -> Result<()> {
    let (host, port) = NodeConfig::ca_url(&a.certs_path, a.ca_url.as_deref())?;
    let rt = runtime()?;
    if !a.watch {
        let node = load_node(&a.certs_path, &a.name)?;
        let leaf = rt.block_on(renew_once(&node, &host, port))?;
        eprintln!(
            "Renewed {} (serial {}, valid until {}): {}",
            a.name,
            issue::serial_hex(&leaf),
            leaf.tbs_certificate().validity().not_after,
            node.cert_path.display()
        );
        return Ok(());
    }
    rt.block_on(watch(a, &host, port))
}

async fn watch(a: &RenewArgs, host: &str, port: u16) -> Result<()> {
    let mut failures = 0u32;
    loop {
        // Re-read every time: another tool may have replaced the files.
        let node = load_node(&a.certs_path, &a.name)?;
        let at = renewal_time(&node.leaf);
        let t = now();
        let not_after = node
            .leaf
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
            .as_secs();
        if t.0 >= not_after {
            return Err(CliError::usage(format!(
                "{} expired before it could be renewed; get a new one with a token",
                node.cert_path.display()
            )));
        }
        if t < at {
            let wait = (at.0 - t.0).min(60);
            crate::platform::log::info(
                "renew_scheduled",
                &[("name", &a.name), ("at", &time_text(at.0))],
            );
            tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
            continue;
        }
        match renew_once(&node, host, port).await {
            Ok(leaf) => {
                failures = 0;
                crate::platform::log::info(
                    "renewed",
                    &[
                        ("name", &a.name),
                        ("serial", &issue::serial_hex(&leaf)),
                        (
                            "not_after",
                            &leaf.tbs_certificate().validity().not_after.to_string(),
                        ),
                    ],
                );
                if let Some(cmd) = &a.exec {
                    match std::process::Command::new("sh").arg("-c").arg(cmd).status() {
                        Ok(s) if s.success() => {}
                        Ok(s) => {
                            crate::platform::log::warn("exec_failed", &[("status", &s.to_string())])
                        }
                        Err(e) => {
                            crate::platform::log::warn("exec_failed", &[("error", &e.to_string())])
                        }
                    }
                }
            }
            Err(
                e @ CliError::Remote {
                    status: 401 | 403, ..
                },
            ) => {
                // Revoked or unknown to the CA: retrying cannot help.
                return Err(e);
            }
            Err(e) => {
                failures += 1;
                let left = not_after.saturating_sub(now().0);
                let wait = (u64::from(failures) * 5).min(60).min(left / 4).max(1);
                crate::platform::log::warn(
                    "renew_failed",
                    &[
                        ("name", &a.name),
                        ("error", &e.to_string()),
                        ("retry_in_s", &wait.to_string()),
                    ],
                );
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        }
    }
}

/// `pki verify`
pub(crate) fn verify(a: &VerifyArgs) -> Result<()> {
    let node = load_node(&a.certs_path, &a.name)?;
    let t = now();
    let mut failed = Vec::new();
    let mut check = |what: &str, result: std::result::Result<String, String>| match result {
        Ok(detail) => println!("ok      {what}: {detail}"),
        Err(why) => {
            println!("FAILED  {what}: {why}");
            failed.push(what.to_owned());
        }
    };
    let serial = issue::serial_hex(&node.leaf);
    check(
        "key",
        if node.key.public_key() == *node.leaf.tbs_certificate().subject_public_key_info() {
            Ok(format!("{}.key matches the certificate", a.name))
        } else {
            Err(format!("{}.key is not the certificate's key", a.name))
        },
    );
    let chain_result = match &node.intermediate {
        None => Err(format!(
            "{} has no intermediate certificate after the leaf",
            node.cert_path.display()
        )),
        Some(int) => chain::check_signed_by(&node.leaf, int, &RUST_CRYPTO)
            .and_then(|()| chain::check_signed_by(int, &node.root, &RUST_CRYPTO))
            .and_then(|()| chain::check_signed_by(&node.root, &node.root, &RUST_CRYPTO))
            .map(|()| "leaf → intermediate → root_ca.crt".to_owned())
            .map_err(|e| e.to_string()),
    };
    let chain_ok = chain_result.is_ok();
    check("chain", chain_result);
    let mut valid = chain::check_valid_at(&node.leaf, t).map_err(|e| e.to_string());
    for c in node.intermediate.iter().chain([&node.root]) {
        if valid.is_ok() {
            valid = chain::check_valid_at(c, t).map_err(|e| e.to_string());
        }
    }
    check(
        "validity",
        valid.map(|()| format!("until {}", node.leaf.tbs_certificate().validity().not_after)),
    );
    let cn = chain::common_name(&node.leaf).unwrap_or_default();
    check(
        "name",
        if cn == a.name {
            Ok(format!(
                "CN {cn}, SANs {}",
                chain::sans(&node.leaf)
                    .iter()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        } else {
            Err(format!("the certificate is for {cn:?}, not {:?}", a.name))
        },
    );
    let revocation = if chain_ok {
        revocation_status(a, &node, &serial, t)
    } else {
        Err("not checked: the chain does not hold".into())
    };
    check("revocation", revocation);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Check(format!(
            "{} of 5 checks failed for {} (serial {serial}): {}",
            failed.len(),
            a.name,
            failed.join(", ")
        )))
    }
}

fn revocation_status(
    a: &VerifyArgs,
    node: &Node,
    serial: &str,
    t: UnixTime,
) -> std::result::Result<String, String> {
    let Some(intermediate) = &node.intermediate else {
        return Err("no intermediate to check the CRL with".into());
    };
    let (der, source) = match &a.crl {
        Some(path) => (
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let (host, port) = NodeConfig::ca_url(&a.certs_path, a.ca_url.as_deref())
                .map_err(|e| e.to_string())?;
            let root_der = issue::cert_der(&node.root).map_err(|e| e.to_string())?;
            let resp = runtime()
                .map_err(|e| e.to_string())?
                .block_on(client::https_request(
                    &host, port, &root_der, "GET", "/crl", None,
                ))
                .map_err(|e| format!("cannot fetch the CRL: {e}"))?;
            if resp.status != 200 {
                return Err(format!("cannot fetch the CRL: {}", remote_error(&resp)));
            }
            (resp.body.to_vec(), format!("https://{host}:{port}/crl"))
        }
    };
    let crl = Crl::parse(&der).map_err(|e| format!("{source} is not a CRL: {e}"))?;
    crl.verify(intermediate, &RUST_CRYPTO)
        .map_err(|e| format!("{source}: {e}"))?;
    if crl.next_update().is_some_and(|n| n < t) {
        return Err(format!(
            "{source} is stale (its nextUpdate has passed); fetch a fresh one"
        ));
    }
    match crl.find(serial) {
        Some(r) => Err(format!(
            "revoked at {} ({}), per {source}",
            time_text(r.at.0),
            r.reason.name()
        )),
        None => Ok(format!(
            "not revoked, per {source} (CRL number {})",
            crl.number().unwrap_or(0)
        )),
    }
}
