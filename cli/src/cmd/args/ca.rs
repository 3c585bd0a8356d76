//! The CA operator's commands: install, run, tokens, revocation, the CRL,
//! the ledger, the audit log, air-gapped signing, uninstall.

use std::path::PathBuf;

use clap::Args;
use fedpki_core::crl::Reason;

use super::super::values::{
    ca_name, dns_name, fingerprint, host_port, key_age_limit, leaf_lifetime, parse_duration,
    reason, serial, token_ttl_limit,
};
use super::{CaDir, PasswordArgs};

/// `pki revoke`
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Serial of the certificate, hex (as `fedpki pki list` shows it).
    #[arg(long, value_name = "S", value_parser = serial)]
    pub serial: String,
    /// Why: unspecified, key-compromise, affiliation-changed, superseded,
    /// cessation-of-operation, privilege-withdrawn (or the RFC 5280 code).
    #[arg(long, default_value = "unspecified", value_name = "R", value_parser = reason)]
    pub reason: Reason,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki crl`
#[derive(Debug, Args)]
pub(crate) struct CrlArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Where to write the CRL (DER; default: standard output).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write PEM instead of DER.
    #[arg(long)]
    pub pem: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki list`
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Only certificates in this state: valid, expired, revoked or
    /// superseded (renewed; its successor is in use). Repeatable.
    #[arg(long, value_name = "STATUS", value_parser = ["valid", "expired", "revoked", "superseded"])]
    pub status: Vec<String>,
    /// Only valid certificates that expire within DURATION (30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expiring: Option<u64>,
    /// Only valid node certificates whose key reaches the CA's age limit
    /// (`pki install --max-key-age`) within DURATION: new keys needed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub key_limit_within: Option<u64>,
    /// Only certificates whose subject or a SAN contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,
    /// Only certificates of this intermediate: its key id, or the start
    /// of it (as the ISSUER column shows).
    #[arg(long, value_name = "KID")]
    pub issuer: Option<String>,
    /// table (default), json (one array) or csv (RFC 4180, a header line).
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    /// The same as --format json.
    #[arg(long)]
    pub json: bool,
}

/// `pki backup`
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The archive to write (a new file; it holds the encrypted keys, so
    /// it is made readable by its owner only).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

/// `pki restore`
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The archive `pki backup` wrote.
    #[arg(value_name = "FILE")]
    pub archive: PathBuf,
    /// The folder to restore into: new, or empty.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
}

/// `pki passwd`
#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// The CA or root folder.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// The current password, first line of this file (else
    /// FEDPKI_PASSWORD, else a terminal prompt).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The new password, first line of this file (else a terminal prompt,
    /// asked twice).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

/// `pki status`
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// One JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// `pki stop`
#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// How long to wait for it to finish (seconds).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub wait: u64,
}

/// `pki audit`
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// When the log no longer matches the ledger (a restored backup, a
    /// damaged disk): keep its good entries, set the rest aside, and record
    /// the gap in a `repair` entry, so the CA can start again.
    #[arg(long)]
    pub repair: bool,
}

/// `pki sign`
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The request file.
    #[arg(value_name = "REQ")]
    pub request: PathBuf,
    /// The signed file to write.
    #[arg(short = 'o', long = "out", value_name = "SIGNED")]
    pub out: PathBuf,
    /// Sign a request without a token without asking (after checking its hash).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

impl InstallArgs {
    /// What the new CA is made with.
    pub(crate) fn options(&self) -> crate::error::Result<crate::ca::InstallOptions> {
        let store = match &self.store {
            Some(url) => Some(crate::store::postgres::PgLocation::parse(
                url,
                self.ca.store_password_file.as_deref(),
            )?),
            None => None,
        };
        Ok(crate::ca::InstallOptions {
            leaf_secs: self.cert_lifetime,
            max_token_secs: self.max_token_ttl,
            allow_node_on_ca_host: self.node_on_ca_host.as_deref() == Some("allow"),
            store,
            dns: self.dns.clone(),
            max_key_age_secs: self.max_key_age,
        })
    }
}

/// `pki install`
#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// HOST:PORT the CA will be reached at (default: localhost:9123, or
    /// with --from-step-ca the address step's clients use).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub ca_url: Option<String>,
    /// Adopt this step-ca instead of making new keys: a STEPPATH, or an
    /// OpenFL `fx pki install` folder. The root, intermediate and JWK
    /// provisioner carry over; nothing in PATH is changed.
    #[arg(long, value_name = "PATH")]
    pub from_step_ca: Option<PathBuf>,
    /// The step-ca's password (default: OpenFL's cert/pass_file when
    /// PATH has one, else asked).
    #[arg(long, value_name = "FILE", requires = "from_step_ca")]
    pub step_password_file: Option<PathBuf>,
    /// Keep the root offline: make only the intermediate's key (with the
    /// provisioner and the config) and write its request to -o, for `pki
    /// root sign` on the root's host; then `pki install --complete`.
    #[arg(long, requires = "out", conflicts_with = "from_step_ca")]
    pub offline_root: bool,
    /// With --offline-root: the intermediate request file to write.
    #[arg(
        short = 'o',
        long = "out",
        value_name = "REQ",
        requires = "offline_root"
    )]
    pub out: Option<PathBuf>,
    /// With --offline-root: the intermediate's common name.
    #[arg(long, value_name = "NAME", requires = "offline_root", value_parser = ca_name)]
    pub name: Option<String>,
    /// Complete an offline-root install with the signed file `pki root
    /// sign` wrote.
    #[arg(long, value_name = "SIGNED", conflicts_with_all = ["offline_root", "from_step_ca", "ca_url", "force", "root_crl"])]
    pub complete: Option<PathBuf>,
    /// With --complete: the root's SHA-256 fingerprint (`pki root init`
    /// printed it); a signed file from another root is refused.
    #[arg(long, value_name = "SHA256", value_parser = fingerprint, requires = "complete")]
    pub root_fingerprint: Option<String>,
    /// Give an existing CA the root's CRL (`pki root crl` wrote it), to
    /// serve at GET /crl/root.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["offline_root", "from_step_ca", "ca_url", "force"])]
    pub root_crl: Option<PathBuf>,
    /// Whether a node may be certified for the CA's own host name (and,
    /// for localhost, 127.0.0.1 and ::1): `refuse` (the default; a node
    /// holding one could pose as the CA to a client whose token does not
    /// pin its key, as step's do) or `allow` (an aggregator on the CA's
    /// host, as in the demo). Given alone to an existing CA, it changes
    /// only that, taken up when the CA next starts.
    #[arg(long, value_name = "allow|refuse", value_parser = ["allow", "refuse"])]
    pub node_on_ca_host: Option<String>,
    /// Keep the ledger in this PostgreSQL database, shared by the CA's
    /// replicas, instead of the folder: postgresql://USER@HOST[:PORT]/DB
    /// (`sslmode=verify-full&sslrootcert=FILE` for TLS; several hosts with
    /// `target_session_attrs=read-write` to follow a failover). It must
    /// hold no fedpki ledger yet. No password in the URL.
    #[arg(long, value_name = "URL", conflicts_with = "offline_root")]
    pub store: Option<String>,
    /// Another name (or IP address) the CA is reached under, on the CA
    /// URL's port (repeatable, like step-ca's --dns): its TLS certificate
    /// carries it and tokens made for it are accepted.
    #[arg(long = "dns", value_name = "NAME", value_parser = dns_name)]
    pub dns: Vec<String>,
    /// The oldest a key may be at the end of any certificate for it
    /// (s, m, h, d; at least 1d), counted from the first certificate of
    /// that key in the ledger, whatever token asks: renewals are cut short
    /// to it, then refused. On an existing CA, changes only this.
    #[arg(long, value_name = "DURATION", value_parser = key_age_limit)]
    pub max_key_age: Option<u64>,
    /// Replace an existing CA in DIR without asking.
    #[arg(long)]
    pub force: bool,
    /// Lifetime of the certificates the CA issues (s, m, h, d).
    #[arg(long, default_value = "8760h", value_name = "DURATION", value_parser = leaf_lifetime)]
    pub cert_lifetime: u64,
    /// The longest-lived token the CA will make or accept (s, m, h, d;
    /// 1m to 365d).
    #[arg(long, default_value = "30d", value_name = "DURATION", value_parser = token_ttl_limit)]
    pub max_token_ttl: u64,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki run`
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Address to listen on, instead of the CA address's: its IP when it
    /// is one, 127.0.0.1 and ::1 for localhost, every interface (IPv4 and
    /// IPv6) for another name; on the CA address's port.
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// Failed token checks one client address may cause per minute; beyond,
    /// it gets 429 until the minute is over.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub max_auth_failures: u32,
    /// Renewals one client address may make per minute; beyond, 429.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub max_renewals: u32,
    /// Connections one client address may hold open at once; beyond, new
    /// ones are closed at once (so one host cannot take every slot).
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_connections_per_address: usize,
    /// Log lines as logfmt (`ts=… level=… event=…`, the default) or as one
    /// JSON object each (for a log shipper); ISO 8601 timestamps in both.
    #[arg(long, default_value = "logfmt", value_name = "FORMAT", value_parser = ["logfmt", "json"])]
    pub log_format: String,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (plain HTTP,
    /// on that address only; off unless given). 127.0.0.1:9100 keeps them
    /// on this machine.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_bind: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki get-token`
#[derive(Debug, Args)]
pub(crate) struct GetTokenArgs {
    /// Subject: FQDN of the aggregator, or the collaborator's name.
    #[arg(
        short = 'n',
        long = "name",
        value_name = "SUBJECT",
        required_unless_present_any = ["revoke", "all"]
    )]
    pub name: Option<String>,
    /// A token for every participant of the federation's roster that holds
    /// no certificate in force, each into `-o DIR`/NAME.token (0600).
    #[arg(long, conflicts_with_all = ["name", "revoke", "sans"])]
    pub all: bool,
    /// Make a revoke token for this serial instead (hex, as `pki list`
    /// shows it), for `step ca revoke SERIAL --token T` or fedpki's API.
    #[arg(long, value_name = "SERIAL", value_parser = serial, conflicts_with_all = ["name", "sans"])]
    pub revoke: Option<String>,
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", default_value = ".", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// HOST:PORT of the CA (default: the CA's configured URL).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub ca_url: Option<String>,
    /// How long the token is valid (s, m, h, d; e.g. 24h, 90m).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: u64,
    /// Subject alternative name (repeatable; default: the subject).
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Write the token to this file (created 0600) instead of stdout; with
    /// `--all`, the folder the tokens go into.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki uninstall`
#[derive(Debug, Args)]
pub(crate) struct UninstallArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}
