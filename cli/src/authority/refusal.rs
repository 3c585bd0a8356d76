//! Why the authority refuses, as one value the transports translate.

use std::fmt;

use fedpki_core::token::TokenError;

/// Why a request was refused. The transport chooses how to say it (the
/// API maps each to an HTTP status; the command line to an exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The request is malformed (a bad CSR, a bad serial).
    Malformed,
    /// Its credential (a token, a presented certificate) is not accepted.
    NotAuthorized,
    /// Authorized, but the CA's rules forbid it (names a token does not
    /// cover, renewing a CA certificate).
    Forbidden,
    /// No certificate with that serial was issued here.
    Unknown,
    /// A part of step-ca's API this CA, like step-ca, does not implement.
    NotImplemented,
    /// The CA cannot record anything now (its disk is full).
    Unavailable,
    /// The CA failed.
    Internal,
}

/// A refused request: why, and a message safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub why: Why,
    /// What was wrong, for the client.
    pub message: String,
}

impl Why {
    /// Its name in metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::NotAuthorized => "not_authorized",
            Self::Forbidden => "forbidden",
            Self::Unknown => "unknown_serial",
            Self::NotImplemented => "not_implemented",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl Refusal {
    pub(crate) fn new(why: Why, message: impl Into<String>) -> Self {
        Self {
            why,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Refusal> for crate::error::CliError {
    /// A refusal made here, on the command line (the server is stopped).
    fn from(r: Refusal) -> Self {
        match r.why {
            Why::Internal | Why::Unavailable => Self::Store(r.message),
            _ => Self::Refused(r.message),
        }
    }
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Self {
        Self::new(Why::NotAuthorized, e.to_string())
    }
}

pub(super) fn internal(e: impl fmt::Display) -> Refusal {
    crate::platform::log::error("issue", &[("error", &e.to_string())]);
    Refusal::new(Why::Internal, "the CA failed to issue the certificate")
}
