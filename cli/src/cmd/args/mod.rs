//! The command line, as OpenFL's `fx`: same commands, options and defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod ca;
mod node;
mod root;

pub(crate) use ca::{
    AuditArgs, BackupArgs, CrlArgs, GetTokenArgs, InstallArgs, ListArgs, PasswdArgs, RestoreArgs,
    RevokeArgs, RunArgs, SignArgs, StatusArgs, StopArgs, UninstallArgs,
};
pub(crate) use node::{CertifyArgs, CsrArgs, ImportArgs, RenewArgs, VerifyArgs};
pub(crate) use root::{
    IntermediateActivateArgs, IntermediateCmd, IntermediateRequestArgs, RootCmd, RootCrlArgs,
    RootDir, RootExportArgs, RootInitArgs, RootRevokeArgs, RootSignArgs,
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
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Whether the CA's server runs and is well; its intermediate, ledger,
    /// certificates and CRL (exit 0: running and well, 3: not running, 1:
    /// running unwell).
    Status(StatusArgs),
    /// Stop the CA's server: it finishes the requests in flight, flushes
    /// its ledger and exits.
    Stop(StopArgs),
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
    /// Back up the CA folder into one archive (while the server runs too):
    /// its config, certificates, encrypted keys and a consistent copy of
    /// its ledger, with a manifest of checksums.
    Backup(BackupArgs),
    /// Restore a backup into a new folder: every file checked, the ledger
    /// rebuilt and its audit log verified before anything is in place.
    Restore(RestoreArgs),
    /// Encrypt every key of a CA or root folder under a new password, all
    /// or none (the server stopped).
    Passwd(PasswdArgs),
    /// The offline root: create it, sign and revoke intermediates, its CRL.
    #[command(subcommand)]
    Root(RootCmd),
    /// Rotate the online CA's intermediate: request a new one, activate it.
    #[command(subcommand)]
    Intermediate(IntermediateCmd),
    /// Where the CA's ledger lives: move it to a shared database and back.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Flower: the SuperNodes' public keys, from the ledger.
    #[command(subcommand)]
    Flower(FlowerCmd),
}

/// `fedpki pki flower …`
#[derive(Debug, Subcommand)]
pub(crate) enum FlowerCmd {
    /// Write the OpenSSH public key of every SuperNode certificate in force
    /// (clientAuth, P-256 or P-384) into DIR as NAME.pub, for `flwr
    /// supernode register`, and remove the files of those no longer in
    /// force (revoked, expired); prints each change.
    Keys(FlowerKeysArgs),
}

/// `pki flower keys`
#[derive(Debug, Args)]
pub(crate) struct FlowerKeysArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The folder of public keys (created 0700; only its `*.pub` files are
    /// touched).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
}

/// `fedpki pki store …`
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCmd {
    /// Move the ledger (certificates, revocations, lineage, burnt tokens,
    /// the audit chain) into an empty PostgreSQL database, check it there,
    /// and switch the CA to it; or back into its folder (`--to embedded`).
    /// The CA's server must be stopped.
    Migrate(StoreMigrateArgs),
}

/// `pki store migrate`
#[derive(Debug, Args)]
pub(crate) struct StoreMigrateArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// postgresql://USER@HOST[:PORT]/DB (as `pki install --store`), or
    /// `embedded` for the CA folder.
    #[arg(long, value_name = "URL|embedded")]
    pub to: String,
}

/// The CA folder a command works on: `-p DIR`, the same for every command.
#[derive(Debug, Args)]
pub(crate) struct CaDir {
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// When the CA's ledger is in PostgreSQL: the database password, first
    /// line of this file (else PGPASSWORD, else the pgpass file, as libpq).
    #[arg(long, value_name = "FILE")]
    pub store_password_file: Option<PathBuf>,
}

impl CaDir {
    /// Its layout.
    pub(crate) fn paths(&self) -> crate::ca::CaPaths {
        crate::ca::CaPaths::new(&self.ca_path)
    }

    /// Where the ledger of the CA configured by `config` lives.
    pub(crate) fn ledger(
        &self,
        config: &crate::ca::CaConfig,
    ) -> crate::error::Result<crate::store::StoreLocation> {
        config.ledger(&self.paths(), self.store_password_file.as_deref())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
