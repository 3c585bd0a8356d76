//! The CLI's error type: what went wrong and what to do about it.

use std::fmt;
use std::path::PathBuf;

/// An error the binary reports to the user and turns into an exit code.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// Bad command-line input or a refused operation; the text says what to do.
    Usage(String),
    /// A file could not be read or written.
    Io {
        /// What was being done.
        action: String,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The core refused something (bad CSR, bad token, …).
    Core(fedpki_core::Error),
    /// The CA answered with an error.
    Remote {
        /// HTTP status.
        status: u16,
        /// The CA's message.
        message: String,
    },
    /// Network or TLS failure talking to the CA.
    Network(String),
    /// The CA's store failed.
    Store(String),
    /// A check the user asked for failed (`pki verify`, `pki audit`).
    Check(String),
    /// Refused here by the CA's rules (a command run beside the CA folder,
    /// the server stopped): the same refusals the server would answer.
    Refused(String),
    /// The CA folder's files disagree or were altered (a key that does not
    /// match its certificate, a log behind the ledger, an unknown format).
    CorruptCa(String),
}

impl CliError {
    /// Wrap an I/O error with what was being done where.
    pub fn io(action: &str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            path: path.into(),
            source,
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::Usage(msg.into())
    }

    /// The process exit code, one per kind (README, *Exit codes*).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Check(_) | Self::Core(_) => 1,
            Self::Usage(_) => 2,
            Self::Refused(_) => 3,
            Self::Remote { .. } => 4,
            Self::Network(_) => 5,
            Self::Io { .. } => 6,
            Self::CorruptCa(_) => 7,
            Self::Store(_) => 8,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) => f.write_str(m),
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "could not {action} {}: {source}", path.display()),
            Self::Core(e) => write!(f, "{e}"),
            Self::Remote { status, message } => {
                write!(f, "the CA refused the request ({status}): {message}")
            }
            Self::Network(m) => f.write_str(m),
            Self::Store(m) => write!(f, "the CA's database: {m}"),
            Self::Check(m) => f.write_str(m),
            Self::Refused(m) => write!(f, "refused (by this CA's rules, here): {m}"),
            Self::CorruptCa(m) => write!(f, "the CA folder is damaged or was altered: {m}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<fedpki_core::Error> for CliError {
    fn from(e: fedpki_core::Error) -> Self {
        Self::Core(e)
    }
}

impl From<fedpki_core::token::TokenError> for CliError {
    fn from(e: fedpki_core::token::TokenError) -> Self {
        Self::Core(e.into())
    }
}

/// Result with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_exit_code() {
        let kinds = [
            CliError::Check(String::new()),
            CliError::usage(""),
            CliError::Refused(String::new()),
            CliError::Remote {
                status: 401,
                message: String::new(),
            },
            CliError::Network(String::new()),
            CliError::io("read", "f", std::io::Error::other("x")),
            CliError::CorruptCa(String::new()),
            CliError::Store(String::new()),
        ];
        let codes: Vec<u8> = kinds.iter().map(CliError::exit_code).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
