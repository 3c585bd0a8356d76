//! `pki list`: what the ledger holds, each certificate with what it is
//! (a node's, the CA's own HTTPS server's, adopted from a step-ca, or an
//! intermediate in a root's ledger) and where it stands (valid, expired,
//! revoked, or superseded by its renewal), filtered, as a table, JSON or
//! CSV.

use std::collections::HashMap;
use std::io::Write;

use fedpki_core::crl::Reason;
use serde::Serialize;

use crate::ca::CaConfig;
use crate::cmd::args::ListArgs;
use crate::error::{CliError, Result};
use crate::platform::sys::time_text;
use crate::store::{CertRecord, Ledger};

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
    /// `node`, `server` (the CA's own HTTPS certificate), `adopted` (a
    /// step-ca's, recorded when first presented) or `intermediate` (in an
    /// offline root's ledger).
    pub kind: &'static str,
    /// When issued (RFC 3339).
    pub issued: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// `valid`, `expired`, `revoked` or `superseded` (renewed, and its
    /// successor, not revoked, is the one in use).
    pub status: &'static str,
    /// Revocation reason, when revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When revoked (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The serial of the certificate that renewed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// The key id (hex) of the CA that signed it: which intermediate (its
    /// CRL is GET /crl/ISSUER), or the root in a root folder's ledger.
    pub issuer: String,
    /// When its key reaches the CA's age limit (`pki install
    /// --max-key-age`, from the key's first certificate): a node's, when
    /// the CA has a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_limit: Option<String>,
    #[serde(skip)]
    not_after_secs: u64,
    #[serde(skip)]
    key_limit_secs: Option<u64>,
}

/// What a ledger's records are, by the folder it belongs to.
pub(crate) enum Folder {
    /// A CA's: its config says which key is its server's and what it
    /// adopted.
    Ca(Box<CaConfig>),
    /// An offline root's: every record is an intermediate.
    Root,
}

impl Folder {
    fn kind(&self, c: &CertRecord) -> &'static str {
        match self {
            Self::Root => {
                let marker =
                    fedpki_core::name::San::Uri(crate::root::NVFLARE_JOB_CA_URI.to_owned());
                let job_ca = fedpki_core::issue::parse_cert_der(&c.der)
                    .is_ok_and(|cert| fedpki_core::chain::sans(&cert).contains(&marker));
                if job_ca { "job-ca" } else { "intermediate" }
            }
            Self::Ca(config) => {
                if config.tls_key_sha256.as_deref() == Some(c.key.as_str()) {
                    "server"
                } else if config
                    .adopted
                    .as_ref()
                    .is_some_and(|a| a.intermediate == c.issuer && c.issued_at <= a.at)
                {
                    "adopted"
                } else {
                    "node"
                }
            }
        }
    }
}

/// The rows of `ledger`, oldest first, as of `now`.
pub(crate) fn rows(ledger: &Ledger, folder: &Folder, now: u64) -> Vec<ListRow> {
    let revoked: HashMap<&str, _> = ledger
        .revocations
        .iter()
        .map(|r| (r.serial.as_str(), r))
        .collect();
    let successor: HashMap<&str, &str> = ledger
        .renewed
        .iter()
        .map(|(old, new)| (old.as_str(), new.as_str()))
        .collect();
    let max_key_age = match folder {
        Folder::Ca(config) => config.max_key_age_secs,
        Folder::Root => None,
    };
    let mut birth: HashMap<&str, u64> = HashMap::new();
    for c in &ledger.certificates {
        let b = birth.entry(c.key.as_str()).or_insert(c.issued_at);
        *b = (*b).min(c.issued_at);
    }
    let mut certs: Vec<&CertRecord> = ledger.certificates.iter().collect();
    certs.sort_by(|a, b| a.issued_at.cmp(&b.issued_at).then(a.serial.cmp(&b.serial)));
    // The CA's server takes a new certificate at each start and renewal:
    // the newest is the one in use.
    let serving = certs
        .iter()
        .rev()
        .find(|c| folder.kind(c) == "server")
        .map(|c| c.serial.clone());
    certs
        .into_iter()
        .map(|c| {
            let r = revoked.get(c.serial.as_str());
            let key_limit = max_key_age
                .filter(|_| folder.kind(c) == "node" && !c.key.is_empty())
                .and_then(|age| birth.get(c.key.as_str()).map(|b| b.saturating_add(age)));
            let next = successor.get(c.serial.as_str()).map(|s| (*s).to_owned());
            let next = match (&serving, folder.kind(c)) {
                (Some(newest), "server") if next.is_none() && *newest != c.serial => {
                    Some(newest.clone())
                }
                _ => next,
            };
            ListRow {
                serial: c.serial.clone(),
                subject: c.subject.clone(),
                sans: c.sans.clone(),
                kind: folder.kind(c),
                issued: time_text(c.issued_at),
                not_after: time_text(c.not_after),
                // Superseded while its successor stands; a revoked
                // successor leaves it the one in use (it renews again).
                status: match (r, &next) {
                    (Some(_), _) => "revoked",
                    (None, _) if c.not_after < now => "expired",
                    (None, Some(s)) if !revoked.contains_key(s.as_str()) => "superseded",
                    (None, _) => "valid",
                },
                reason: r.map(|r| {
                    Reason::from_code(r.reason)
                        .map_or("unknown", Reason::name)
                        .into()
                }),
                revoked_at: r.map(|r| time_text(r.revoked_at)),
                successor: next,
                issuer: c.issuer.clone(),
                key_limit: key_limit.map(time_text),
                not_after_secs: c.not_after,
                key_limit_secs: key_limit,
            }
        })
        .collect()
}

/// Whether `row` passes the filters of `a` at `now`.
fn wanted(a: &ListArgs, row: &ListRow, now: u64) -> bool {
    (a.status.is_empty() || a.status.iter().any(|s| s == row.status))
        && a.expiring.is_none_or(|within| {
            row.status == "valid" && row.not_after_secs <= now.saturating_add(within)
        })
        && a.subject.as_deref().is_none_or(|s| {
            let s = s.to_ascii_lowercase();
            row.subject.to_ascii_lowercase().contains(&s)
                || row.sans.iter().any(|n| n.to_ascii_lowercase().contains(&s))
        })
        && a.issuer
            .as_deref()
            .is_none_or(|k| row.issuer.starts_with(&k.to_ascii_lowercase()))
        && a.key_limit_within.is_none_or(|within| {
            row.status == "valid"
                && row
                    .key_limit_secs
                    .is_some_and(|l| l <= now.saturating_add(within))
        })
}

/// Write the rows as `a` asks. A reader that went away (`| head`) ends
/// the listing quietly, as other tools do.
pub(crate) fn print(a: &ListArgs, all: &[ListRow], now: u64) -> Result<()> {
    let rows: Vec<&ListRow> = all.iter().filter(|r| wanted(a, r, now)).collect();
    let format = if a.json { "json" } else { a.format.as_str() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match format {
        "json" => serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        "csv" => csv(&mut out, &rows),
        _ => table(&mut out, &rows),
    }
    .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        other => other.map_err(|e| CliError::io("write", "standard output", e))?,
    }
    if format == "table" {
        let revoked = all.iter().filter(|r| r.status == "revoked").count();
        eprintln!(
            "{} of {} certificates shown ({revoked} revoked in all).",
            rows.len(),
            all.len()
        );
    }
    Ok(())
}

fn table(out: &mut impl Write, rows: &[&ListRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<32}  {:<24}  {:<12}  {:<20}  {:<22}  {:<12}  SANS",
        "SERIAL", "SUBJECT", "KIND", "NOT AFTER", "STATUS", "ISSUER"
    )?;
    for r in rows {
        let status = match &r.reason {
            Some(reason) => format!("revoked ({reason})"),
            None => r.status.to_owned(),
        };
        writeln!(
            out,
            "{:<32}  {:<24}  {:<12}  {:<20}  {:<22}  {:<12}  {}",
            r.serial,
            r.subject,
            r.kind,
            r.not_after,
            status,
            r.issuer.get(..12).unwrap_or(&r.issuer),
            r.sans.join(",")
        )?;
    }
    Ok(())
}

/// RFC 4180: a header, then a line per row; a field with a comma, a
/// quote or a line break is quoted (its quotes doubled); SANs are
/// separated by spaces.
fn csv(out: &mut impl Write, rows: &[&ListRow]) -> std::io::Result<()> {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    }
    writeln!(
        out,
        "serial,subject,sans,kind,status,reason,issued,not_after,revoked_at,successor,issuer"
    )?;
    for r in rows {
        let fields = [
            r.serial.as_str(),
            &r.subject,
            &r.sans.join(" "),
            r.kind,
            r.status,
            r.reason.as_deref().unwrap_or(""),
            &r.issued,
            &r.not_after,
            r.revoked_at.as_deref().unwrap_or(""),
            r.successor.as_deref().unwrap_or(""),
            &r.issuer,
        ];
        let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}
