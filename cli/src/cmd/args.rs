//! The command line, as OpenFL's `fx`: same commands, options and defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fedpki_core::KeyType;
use fedpki_core::crl::Reason;

use super::values::{
    fingerprint, host_port, key_type, leaf_lifetime, parse_duration, reason, serial,
    token_ttl_limit,
};

/// fedpki: the public key infrastructure of a federated-learning deployment.
#[derive(Debug, Parser)]
#[command(name = "fedpki", version, about, long_about = None)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The online CA: install, run, tokens, certify (as `fx pki`).
    #[command(subcommand)]
    Pki(Pki),
    /// The manual flow: the workspace's own CA (as `fx workspace`).
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// The aggregator's certificate in the manual flow (as `fx aggregator`).
    #[command(subcommand)]
    Aggregator(AggregatorCmd),
    /// A collaborator's certificate in the manual flow (as `fx collaborator`).
    #[command(subcommand)]
    Collaborator(CollaboratorCmd),
}

/// `fedpki workspace …`
#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCmd {
    /// Create the workspace's root and signing CA under ./cert/ca.
    Certify(ManualPasswordArgs),
}

/// `--password-file` of the manual flow: optional; without it (and without
/// FEDPKI_PASSWORD or a terminal) the CA keys are stored unencrypted, 0600.
#[derive(Debug, Args)]
pub(crate) struct ManualPasswordArgs {
    /// Encrypt (or decrypt) the workspace CA keys with the password on the
    /// first line of this file.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `fedpki aggregator …`
#[derive(Debug, Subcommand)]
pub(crate) enum AggregatorCmd {
    /// Make the aggregator's key and CSR in ./cert/server.
    GenerateCertRequest {
        /// The aggregator's FQDN (default: $FQDN, else this host's).
        #[arg(long)]
        fqdn: Option<String>,
    },
    /// Sign the aggregator's CSR with the workspace CA.
    Certify {
        /// The aggregator's FQDN (default: $FQDN, else this host's).
        #[arg(long)]
        fqdn: Option<String>,
        /// Sign without asking to compare the CSR hash.
        #[arg(short = 's', long)]
        silent: bool,
        #[command(flatten)]
        password: ManualPasswordArgs,
    },
}

/// `fedpki collaborator …`
#[derive(Debug, Subcommand)]
pub(crate) enum CollaboratorCmd {
    /// Make a collaborator's key and CSR in ./cert/client, and the request zip.
    GenerateCertRequest {
        /// The collaborator's name.
        #[arg(
            short = 'n',
            long = "collaborator_name",
            visible_alias = "collaborator-name"
        )]
        name: String,
        /// Do not make col_<name>_to_agg_cert_request.zip.
        #[arg(short = 'x', long)]
        skip_package: bool,
    },
    /// Sign a collaborator's CSR (-n, or a request zip with -r), or import a
    /// signed zip (-i).
    Certify {
        /// The collaborator's name.
        #[arg(
            short = 'n',
            long = "collaborator_name",
            visible_alias = "collaborator-name"
        )]
        name: Option<String>,
        /// Sign without asking to compare the CSR hash.
        #[arg(short = 's', long)]
        silent: bool,
        /// A request zip to sign (on the aggregator).
        #[arg(short = 'r', long = "request-pkg", value_name = "ZIP")]
        request_pkg: Option<PathBuf>,
        /// A signed zip to install (on the collaborator).
        #[arg(short = 'i', long = "import", value_name = "ZIP")]
        import: Option<PathBuf>,
        #[command(flatten)]
        password: ManualPasswordArgs,
    },
}

/// `fedpki pki …`
#[derive(Debug, Subcommand)]
pub(crate) enum Pki {
    /// Create a CA (root, intermediate, provisioner) in a folder.
    Install(InstallArgs),
    /// Serve the CA over HTTPS.
    Run(RunArgs),
    /// Print a one-time enrollment token for a subject.
    GetToken(GetTokenArgs),
    /// Get a certificate from the CA with a token.
    Certify(CertifyArgs),
    /// Stop the CA's server and remove its folder.
    Uninstall(UninstallArgs),
    /// Offline: make a key and a request file to carry to an air-gapped CA.
    Csr(CsrArgs),
    /// Air-gapped CA: sign a request file (server stopped).
    Sign(SignArgs),
    /// Offline: check a signed file and install the certificate.
    Import(ImportArgs),
    /// Show what a certificate, CSR, key, token, request, signed file or CRL holds.
    Inspect {
        /// The file ("-" for standard input).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Revoke a certificate (through the running server, or offline).
    Revoke(RevokeArgs),
    /// Write the CA's current CRL (DER).
    Crl(CrlArgs),
    /// Renew a certificate over mutual TLS with the current one.
    Renew(RenewArgs),
    /// List the certificates the CA issued.
    List(ListArgs),
    /// Check a node's key, certificate, chain, name and revocation status.
    Verify(VerifyArgs),
    /// Verify the CA's hash-chained audit log.
    Audit(AuditArgs),
}

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

/// `pki renew`
#[derive(Debug, Args)]
pub(crate) struct RenewArgs {
    /// The node's name (its <name>.crt and <name>.key).
    #[arg(short = 'n', long = "name", value_name = "SUBJECT")]
    pub name: String,
    /// Folder of the key and certificate.
    #[arg(
        short = 'c',
        long = "certs-path",
        default_value = "./cert",
        value_name = "DIR"
    )]
    pub certs_path: PathBuf,
    /// HOST:PORT of the CA (default: the one `pki certify` recorded in
    /// <certs-path>/ca.json).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub ca_url: Option<String>,
    /// Keep running: renew each time two thirds of the certificate's
    /// lifetime have passed.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: a command run (by `sh -c`) after each renewal, e.g. to
    /// make the aggregator reload its certificate.
    #[arg(long, value_name = "CMD", requires = "watch")]
    pub exec: Option<String>,
}

/// `pki list`
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `pki verify`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The node's name (its <name>.crt and <name>.key).
    #[arg(short = 'n', long = "name", value_name = "SUBJECT")]
    pub name: String,
    /// Folder of the key and certificate.
    #[arg(
        short = 'c',
        long = "certs-path",
        default_value = "./cert",
        value_name = "DIR"
    )]
    pub certs_path: PathBuf,
    /// A CRL file to check revocation against (default: fetch the CA's, at
    /// --ca-url or the address in <certs-path>/ca.json).
    #[arg(long, value_name = "FILE")]
    pub crl: Option<PathBuf>,
    /// HOST:PORT of the CA, to fetch its CRL.
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub ca_url: Option<String>,
    /// Do not check revocation (for a CA that publishes no CRL, as
    /// step-ca 0.16 and 0.19); every other check still runs.
    #[arg(long, conflicts_with = "crl")]
    pub skip_revocation: bool,
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

/// `pki csr`
#[derive(Debug, Args)]
pub(crate) struct CsrArgs {
    /// Subject.
    #[arg(short = 'n', long = "name", value_name = "SUBJECT")]
    pub name: String,
    /// A token from `fedpki pki get-token` (else the CA confirms by hash):
    /// `@FILE` or `-` (standard input) keep it out of the process list.
    #[arg(short = 't', long = "token", value_name = "TOKEN|@FILE|-")]
    pub token: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
    /// The request file to write.
    #[arg(short = 'o', long = "out", value_name = "REQ")]
    pub out: PathBuf,
    /// Replace an existing key of that name.
    #[arg(long)]
    pub force: bool,
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

/// `pki import`
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The signed file.
    #[arg(value_name = "SIGNED")]
    pub signed: PathBuf,
    /// The SHA-256 fingerprint of the root to trust (as `pki install`
    /// printed it; colons allowed). Needed unless the folder already holds
    /// a root_ca.crt (written by `pki csr -t`).
    #[arg(long, value_name = "SHA256", value_parser = fingerprint)]
    pub root_fingerprint: Option<String>,
    /// Folder of the key; the certificate is installed there.
    #[arg(
        short = 'c',
        long = "certs-path",
        default_value = "./cert",
        value_name = "DIR"
    )]
    pub certs_path: PathBuf,
}

/// The CA folder a command works on: `-p DIR`, the same for every command.
#[derive(Debug, Args)]
pub(crate) struct CaDir {
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
}

impl CaDir {
    /// Its layout.
    pub(crate) fn paths(&self) -> crate::ca::CaPaths {
        crate::ca::CaPaths::new(&self.ca_path)
    }
}

/// Where the CA password comes from.
#[derive(Debug, Args)]
pub(crate) struct PasswordArgs {
    /// Read the CA password from the first line of this file (else
    /// FEDPKI_PASSWORD, else a terminal prompt). The password is never stored.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
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
    /// Address to listen on (default: 127.0.0.1 for a localhost CA URL,
    /// else 0.0.0.0, on the CA URL's port).
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
        required_unless_present = "revoke"
    )]
    pub name: Option<String>,
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
    /// Write the token to this file (created 0600) instead of stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki certify`
#[derive(Debug, Args)]
pub(crate) struct CertifyArgs {
    /// Subject the token was made for.
    #[arg(short = 'n', long = "name", value_name = "SUBJECT")]
    pub name: String,
    /// The token from `fedpki pki get-token`: `@FILE` (a 0600 file) or `-`
    /// (standard input) keep it out of the process list; the token itself
    /// on the command line works too (as `fx pki certify -t`), but any
    /// local user can read it there.
    #[arg(short = 't', long = "token", value_name = "TOKEN|@FILE|-")]
    pub token: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Accepted for compatibility with `fx pki certify -p`; unused.
    #[arg(short = 'p', long = "ca-path", hide = true)]
    pub ca_path: Option<PathBuf>,
}

/// Where a node's key and certificate go, and the key's algorithm.
#[derive(Debug, Args)]
pub(crate) struct KeyArgs {
    /// Folder for <name>.key, <name>.crt and root_ca.crt.
    #[arg(
        short = 'c',
        long = "certs-path",
        default_value = "./cert",
        value_name = "DIR"
    )]
    pub certs_path: PathBuf,
    /// Key algorithm: p256, p384 or ed25519.
    #[arg(long, default_value = "p256", value_name = "TYPE", value_parser = key_type)]
    pub key_type: KeyType,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
