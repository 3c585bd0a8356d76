//! The command line, as OpenFL's `fx`: same commands, options and defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// fedpki: the public key infrastructure of a federated-learning deployment.
#[derive(Debug, Parser)]
#[command(name = "fedpki", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The online CA: install, run, tokens, certify (as `fx pki`).
    #[command(subcommand)]
    Pki(Pki),
}

/// `fedpki pki …`
#[derive(Debug, Subcommand)]
pub enum Pki {
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
}

/// Where the CA password comes from.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the CA password from the first line of this file (else
    /// FEDPKI_PASSWORD, else a terminal prompt). The password is never stored.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `pki install`
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// HOST:PORT the CA will be reached at.
    #[arg(long, default_value = crate::ca::DEFAULT_CA_URL, value_name = "HOST:PORT")]
    pub ca_url: String,
    /// Replace an existing CA in DIR without asking.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// Address to listen on (default: 127.0.0.1 for a localhost CA URL,
    /// else 0.0.0.0, on the CA URL's port).
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki get-token`
#[derive(Debug, Args)]
pub struct GetTokenArgs {
    /// Subject: FQDN of the aggregator, or the collaborator's name.
    #[arg(short = 'n', long = "name", value_name = "SUBJECT")]
    pub name: String,
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", default_value = ".", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// HOST:PORT of the CA (default: the CA's configured URL).
    #[arg(long, value_name = "HOST:PORT")]
    pub ca_url: Option<String>,
    /// How long the token is valid (s, m, h, d; e.g. 24h, 90m).
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub ttl: String,
    /// Subject alternative name (repeatable; default: the subject).
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    #[command(flatten)]
    pub password: PasswordArgs,
}

/// `pki certify`
#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// Subject the token was made for.
    #[arg(short = 'n', long = "name", value_name = "SUBJECT")]
    pub name: String,
    /// The token from `fedpki pki get-token`.
    #[arg(short = 't', long = "token", value_name = "TOKEN")]
    pub token: String,
    /// Folder for <name>.crt, <name>.key and root_ca.crt.
    #[arg(
        short = 'c',
        long = "certs-path",
        default_value = "./cert",
        value_name = "DIR"
    )]
    pub certs_path: PathBuf,
    /// Key algorithm: p256, p384 or ed25519.
    #[arg(long, default_value = "p256", value_name = "TYPE")]
    pub key_type: String,
    /// Accepted for compatibility with `fx pki certify -p`; unused.
    #[arg(short = 'p', long = "ca-path", hide = true)]
    pub ca_path: Option<PathBuf>,
}

/// `pki uninstall`
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Folder of the CA.
    #[arg(short = 'p', long = "ca-path", value_name = "DIR")]
    pub ca_path: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Parse `24h`, `90m`, `1h30m`, `300s`, `2d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration; use e.g. 24h, 90m, 1h30m, 300s");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(86400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("300"), Ok(300));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in ["", "h", "5x", "10h5", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
