//! `pki status` and `pki stop`: what an operator asks of a CA folder
//! before reaching for `ps` and `kill`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::ca::{self, CaCerts, CaConfig};
use crate::cmd::args::{StatusArgs, StopArgs};
use crate::error::{CliError, Result};
use crate::platform::sys::{now, time_text};
use crate::store::InForce;

/// What `pki status` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    folder: String,
    /// The addresses the CA is reached at.
    addresses: Vec<String>,
    /// `running` or `stopped`.
    server: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    /// The running server's `/health` answer, as it gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<serde_json::Value>,
    /// The active intermediate's key id and notAfter.
    intermediate: String,
    intermediate_not_after: String,
    /// Where the ledger lives.
    store: String,
    certificates: Counts,
    /// The active intermediate's last CRL in the folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    crl: Option<CrlState>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    issued: usize,
    valid: usize,
    expiring_in_30_days: usize,
    revoked: usize,
    /// Keys whose age limit (`pki install --max-key-age`) falls within 30
    /// days: their holders need a new key soon.
    keys_at_age_limit_in_30_days: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CrlState {
    number: u64,
    this_update: String,
    age_seconds: u64,
    next_update: String,
}

/// `pki status`: exit 0 when the server runs and says it is well, 3 when
/// it does not run (as LSB's `status`), 1 when it runs unwell.
pub(crate) fn status(a: &StatusArgs) -> Result<std::process::ExitCode> {
    let paths = a.ca.paths();
    let config = CaConfig::load(&paths)?;
    let certs = CaCerts::load(&paths, &config)?;
    let pid = ca::server_pid(&paths)?;
    let health = pid.map(|_| health(&config, &certs));
    let location = a.ca.ledger(&config)?;
    let ledger = crate::store::Ledger::read_at(&location)?;
    let t = now().0;
    let in_force = InForce::with_key_age(
        &ledger.certificates,
        &ledger.revocations,
        t,
        InForce::SOON,
        (config.max_key_age_secs, config.tls_key_sha256.as_deref()),
    );
    let crl = std::fs::read(paths.crl())
        .ok()
        .and_then(|der| fedpki_core::crl::Crl::parse(&der).ok())
        .map(|c| CrlState {
            number: c.number().unwrap_or(0),
            this_update: time_text(c.this_update().0),
            age_seconds: t.saturating_sub(c.this_update().0),
            next_update: c
                .next_update()
                .map_or_else(|| "none".into(), |n| time_text(n.0)),
        });
    let status = Status {
        folder: paths.dir.display().to_string(),
        addresses: config.addresses(),
        server: if pid.is_some() { "running" } else { "stopped" },
        pid: pid.filter(|p| *p > 0),
        health: health
            .clone()
            .map(|h| h.unwrap_or_else(|e| serde_json::json!({ "error": e }))),
        intermediate: ca::issuers::key_id_hex(&certs.intermediate),
        intermediate_not_after: time_text(certs.intermediate.not_after().0),
        store: match &location {
            crate::store::StoreLocation::Embedded(p) => p.index.display().to_string(),
            crate::store::StoreLocation::Postgres { location, .. } => location.url.clone(),
        },
        certificates: Counts {
            issued: ledger.certificates.len(),
            valid: in_force.valid,
            expiring_in_30_days: in_force.expiring,
            revoked: ledger.revocations.len(),
            keys_at_age_limit_in_30_days: in_force.keys_near_limit,
        },
        crl,
    };
    if a.json {
        let text =
            serde_json::to_string_pretty(&status).map_err(|e| CliError::usage(e.to_string()))?;
        println!("{text}");
    } else {
        print_status(&status);
    }
    let well = match &health {
        Some(Ok(h)) => h["status"] == "ok",
        _ => false,
    };
    Ok(std::process::ExitCode::from(match (pid, well) {
        (None, _) => 3,
        (Some(_), true) => 0,
        (Some(_), false) => 1,
    }))
}

fn print_status(s: &Status) {
    let server = match (s.server, s.pid) {
        ("running", Some(pid)) => format!("running (pid {pid})"),
        (other, _) => other.to_owned(),
    };
    println!("CA folder      {}", s.folder);
    println!("addresses      {}", s.addresses.join(", "));
    println!("server         {server}");
    if let Some(h) = &s.health {
        println!("health         {h}");
    }
    println!(
        "intermediate   {} (until {})",
        s.intermediate, s.intermediate_not_after
    );
    println!("ledger         {}", s.store);
    let c = &s.certificates;
    println!(
        "certificates   {} issued, {} valid, {} of them expiring within 30 days, {} revoked",
        c.issued, c.valid, c.expiring_in_30_days, c.revoked
    );
    if c.keys_at_age_limit_in_30_days > 0 {
        println!(
            "keys           {} reach their age limit within 30 days: their holders need a new key",
            c.keys_at_age_limit_in_30_days
        );
    }
    match &s.crl {
        Some(crl) => println!(
            "CRL            number {}, signed {} ({} s ago), next update {}",
            crl.number, crl.this_update, crl.age_seconds, crl.next_update
        ),
        None => println!("CRL            none signed yet"),
    }
}

/// The running server's `/health`, or why it could not be asked.
fn health(config: &CaConfig, certs: &CaCerts) -> std::result::Result<serde_json::Value, String> {
    let (host, port) = ca::parse_ca_url(&config.ca_url).map_err(|e| e.to_string())?;
    let root = fedpki_core::issue::cert_der(&certs.root).map_err(|e| e.to_string())?;
    let rt = crate::cmd::ca::runtime().map_err(|e| e.to_string())?;
    let resp = rt
        .block_on(crate::client::https_request(
            &host, port, &root, "GET", "/health", None,
        ))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&resp.body)
        .map_err(|e| format!("GET /health answered {}: {e}", resp.status))
}

/// `pki stop`: SIGTERM to the server holding the folder, then wait for it
/// to finish its requests in flight, flush its ledger and let go.
pub(crate) fn stop(a: &StopArgs) -> Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let paths = a.ca.paths();
    CaConfig::load_any(&paths)?;
    let Some(pid) = ca::server_pid(&paths)? else {
        eprintln!(
            "No CA server runs on {}; nothing to stop.",
            paths.dir.display()
        );
        return Ok(());
    };
    let target = Pid::from_raw(pid).ok_or_else(|| {
        CliError::usage(format!(
            "{} is locked by a process whose pid is unknown; find it with `fuser {}`",
            paths.lock().display(),
            paths.lock().display()
        ))
    })?;
    let started = Instant::now();
    kill_process(target, Signal::TERM)
        .map_err(|e| CliError::usage(format!("cannot signal the CA server (pid {pid}): {e}")))?;
    let deadline = Duration::from_secs(a.wait);
    while ca::server_pid(&paths)?.is_some() {
        if started.elapsed() >= deadline {
            return Err(CliError::usage(format!(
                "the CA server (pid {pid}) has not stopped within {} s; it may still be \
                 finishing requests. Wait longer (--wait), or `kill -9 {pid}` to stop it now \
                 (its ledger recovers from the audit log at the next start)",
                a.wait
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "Stopped the CA server of {} (pid {pid}) in {:.1} s.",
        paths.dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
