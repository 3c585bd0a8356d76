//! The offline root's commands (`pki root …`) and the online CA's side of
//! rotation (`pki intermediate …`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use fedpki_core::KeyType;
use fedpki_core::crl::Reason;

use super::super::values::{ca_key_type, ca_name, reason, serial};
use super::{CaDir, PasswordArgs};

/// `fedpki pki root …`: on the offline root's host.
#[derive(Debug, Subcommand)]
pub(crate) enum RootCmd {
    /// Create an offline root (key, certificate, ledger) in a folder.
    Init(RootInitArgs),
    /// Sign an intermediate request carried from an online CA.
    Sign(RootSignArgs),
    /// Revoke an intermediate the root signed.
    Revoke(RootRevokeArgs),
    /// Sign the root's CRL, to carry to the online CAs.
    Crl(RootCrlArgs),
    /// Move the root out of an all-in-one CA into its own folder.
    Export(RootExportArgs),
}

/// The root folder a `pki root` command works on.
#[derive(Debug, Args)]
pub(crate) struct RootDir {
    /// Folder of the offline root.
    #[arg(short = 'p', long = "root-path", value_name = "ROOT_DIR")]
    pub root_path: PathBuf,
}

/// `pki root init`
#[derive(Debug, Args)]
pub(crate) struct RootInitArgs {
    #[command(flatten)]
    pub root: RootDir,
    /// The root's key: p256 or p384.
    #[arg(long, default_value = "p256", value_name = "TYPE", value_parser = ca_key_type)]
    pub key_type: KeyType,
    /// The root's common name.
    #[arg(long, default_value = "fedpki Root CA", value_name = "NAME", value_parser = ca_name)]
    pub name: String,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki root sign`
#[derive(Debug, Args)]
pub(crate) struct RootSignArgs {
    #[command(flatten)]
    pub root: RootDir,
    /// The intermediate request (`pki install --offline-root` or `pki
    /// intermediate request` wrote it); with `--profile job-ca`, the job
    /// CA's CSR (PEM).
    #[arg(value_name = "REQ")]
    pub request: PathBuf,
    /// What to sign: `intermediate` (the online CA's), or `job-ca`:
    /// NVFlare's job-signing CA (pathlen 0, its URI marker
    /// https://nvidia.com/nvflare/v1/ca/job, one year), written as PEM.
    #[arg(long, default_value = "intermediate", value_parser = ["intermediate", "job-ca"])]
    pub profile: String,
    /// The signed file to write, to carry back (with `--profile job-ca`,
    /// the job CA's certificate, PEM).
    #[arg(short = 'o', long = "out", value_name = "SIGNED")]
    pub out: PathBuf,
    /// Sign without asking (once the request's hash has been compared).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki root revoke`
#[derive(Debug, Args)]
pub(crate) struct RootRevokeArgs {
    #[command(flatten)]
    pub root: RootDir,
    /// Serial of the intermediate, hex (as `pki root sign` printed it).
    #[arg(long, value_name = "S", value_parser = serial)]
    pub serial: String,
    /// Why (as `pki revoke --reason`; key-compromise, superseded, …).
    #[arg(long, default_value = "unspecified", value_name = "R", value_parser = reason)]
    pub reason: Reason,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki root crl`
#[derive(Debug, Args)]
pub(crate) struct RootCrlArgs {
    #[command(flatten)]
    pub root: RootDir,
    /// Where to write the CRL (DER).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki root export`
#[derive(Debug, Args)]
pub(crate) struct RootExportArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The root folder to create (on removable media, say).
    #[arg(short = 'o', long = "out", value_name = "ROOT_DIR")]
    pub out: PathBuf,
    /// Remove the root key from the CA folder without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `fedpki pki intermediate …`: rotation, on the online CA.
#[derive(Debug, Subcommand)]
pub(crate) enum IntermediateCmd {
    /// Stage a new intermediate key and write its request for the root.
    Request(IntermediateRequestArgs),
    /// Issue from the staged intermediate the root signed (server running or not).
    Activate(IntermediateActivateArgs),
}

/// `pki intermediate request`
#[derive(Debug, Args)]
pub(crate) struct IntermediateRequestArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The request file to write, to carry to the root.
    #[arg(short = 'o', long = "out", value_name = "REQ")]
    pub out: PathBuf,
    /// The new intermediate's common name (default: "fedpki Intermediate
    /// CA" and the date).
    #[arg(long, value_name = "NAME", value_parser = ca_name)]
    pub name: Option<String>,
    /// Replace a request staged before and not activated.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki intermediate activate`
#[derive(Debug, Args)]
pub(crate) struct IntermediateActivateArgs {
    #[command(flatten)]
    pub ca: CaDir,
    /// The signed file `pki root sign` wrote.
    #[arg(value_name = "SIGNED")]
    pub signed: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
}
