//! A node's commands: certify, renew, verify, and the air-gapped request
//! and import.

use std::path::PathBuf;

use clap::Args;
use fedpki_core::KeyType;

use super::super::values::{fingerprint, host_port, key_type, renew_fraction};

/// The node a renew or verify works on: `-n NAME -c DIR`.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
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
}

impl NodeArgs {
    /// Its files.
    pub(crate) fn files(&self) -> crate::node::NodeFiles {
        crate::node::NodeFiles::new(&self.certs_path, &self.name)
    }
}

/// `pki renew`
#[derive(Debug, Args)]
pub(crate) struct RenewArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// HOST:PORT of the CA (default: the one `pki certify` recorded in
    /// <certs-path>/ca.json).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub ca_url: Option<String>,
    /// Keep running: renew each time half of the certificate's lifetime
    /// has passed (two thirds of one of 90 days or more), a little earlier
    /// by up to 5 % of it, different for each certificate.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: renew this far into each lifetime instead (0.1 to
    /// 0.9).
    #[arg(long, value_name = "FRACTION", requires = "watch", value_parser = renew_fraction)]
    pub renew_at: Option<f64>,
    /// With --watch: a command run (by `sh -c`) after each renewal, e.g. to
    /// make the aggregator reload its certificate.
    #[arg(long, value_name = "CMD", requires = "watch")]
    pub exec: Option<String>,
}

/// `pki verify`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub node: NodeArgs,
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
    /// Also write a framework's file names, as `pki certify --layout`.
    #[arg(long, default_value = "fedpki", value_name = "LAYOUT", value_parser = crate::node::Layout::parse)]
    pub layout: crate::node::Layout,
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
    /// Replace a key and certificate this node already has in the folder
    /// (without it, they are kept and nothing is asked of the CA).
    #[arg(long)]
    pub force: bool,
    /// Also write the file names a framework reads: `flower` (a
    /// SuperLink's ca.crt, server.pem, server.key; a SuperNode's
    /// supernode.key and .pub in OpenSSH's form) or `nvflare` (a startup
    /// kit's rootCA.pem and server.* or client.*), as links to the node's
    /// files, so renewals reach them.
    #[arg(long, default_value = "fedpki", value_name = "LAYOUT", value_parser = crate::node::Layout::parse)]
    pub layout: crate::node::Layout,
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
    /// Key algorithm: p256, p384, ed25519, or rsa2048 (for NVFlare, whose
    /// identity assertion signs with RSA-PSS).
    #[arg(long, default_value = "p256", value_name = "TYPE", value_parser = key_type)]
    pub key_type: KeyType,
}
