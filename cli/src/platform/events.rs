//! What happens in the CA, as typed events. The authority, the store and
//! the server report each one here, once, where it happens; the log
//! writes the ones an operator reads (when the server turned that on) and
//! the metrics count them all (when `pki run --metrics-bind` turned them
//! on). Nothing else counts these or writes their log lines.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::log::{self, LogThrottle};
use super::metrics;

/// How a certificate came to be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Issuance {
    /// For a one-time token (`/1.0/sign`, a request file).
    Token,
    /// A renewal, its holder presenting the certificate it renews.
    Renewal,
    /// An operator confirmed the request by its hash (the manual flow).
    Confirmed,
    /// The CA's own HTTPS certificate.
    CaServer,
}

impl Issuance {
    /// Its name in metrics and log lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Renewal => "renewal",
            Self::Confirmed => "confirmed",
            Self::CaServer => "ca_server",
        }
    }
}

/// The claims of a refused request's token that identify it (never the
/// token itself, which a reader of the log could otherwise spend): as the
/// token says, whether or not it proved genuine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenSeen {
    /// Its `sub`.
    pub subject: String,
    /// Its `jti`.
    pub jti: String,
}

impl TokenSeen {
    /// What `ott` says of itself, if it is a token at all.
    pub(crate) fn of(ott: &str) -> Option<Self> {
        let claims = fedpki_core::token::peek_claims(ott.trim()).ok()?;
        Some(Self {
            subject: claims.sub,
            jti: claims.jti,
        })
    }
}

/// One thing that happened.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// A certificate was issued and recorded.
    Issued {
        /// How.
        how: Issuance,
        /// Its subject.
        subject: &'a str,
        /// Its serial, hex.
        serial: &'a str,
        /// The client's address, for a request over the network.
        from: Option<IpAddr>,
    },
    /// A certificate was revoked (not one revoked before).
    Revoked {
        /// Its serial, hex.
        serial: &'a str,
        /// The RFC 5280 reason code.
        reason_code: u8,
        /// The client's address, for a request over the network.
        from: Option<IpAddr>,
    },
    /// A request over the network was refused.
    Refused {
        /// Why, as a short name (`not_authorized`, `rate_limited`, …).
        reason: &'static str,
        /// The HTTP status answered.
        status: u16,
        /// The message the client was given.
        message: &'a str,
        /// The client's address.
        from: IpAddr,
        /// The token it sent, if any.
        token: Option<&'a TokenSeen>,
    },
    /// A request over the network was answered.
    Served {
        /// Its route, one of a fixed few (`/1.0/sign`, `/crl/{kid}`, …).
        route: &'static str,
        /// The HTTP status.
        status: u16,
        /// From its first byte read to its answer.
        elapsed: Duration,
    },
    /// The store made a batch of changes durable.
    Committed {
        /// How many changes the batch held.
        changes: usize,
        /// How long the commit took, its sync included.
        elapsed: Duration,
    },
    /// CRLs were signed under a new number.
    CrlSigned {
        /// Their cRLNumber.
        number: u64,
        /// Their thisUpdate, Unix seconds.
        at: u64,
    },
}

/// Whether the log writes events (the server's log; a command run by hand
/// prints its own results instead).
static LOGGED: AtomicBool = AtomicBool::new(false);

/// Write events to the log from now on.
pub(crate) fn log_events() {
    LOGGED.store(true, Ordering::Relaxed);
}

/// One log throttle per refusal reason: a client can cause refusals at
/// will, so each reason is logged at most once a second (the metrics still
/// count every one).
static REFUSALS_LOGGED: [LogThrottle; metrics::REFUSAL_REASONS.len()] =
    [const { LogThrottle::new() }; metrics::REFUSAL_REASONS.len()];

/// Report `event`: to the metrics, and to the log.
pub(crate) fn report(event: &Event<'_>) {
    metrics::count(event);
    if LOGGED.load(Ordering::Relaxed) {
        write_log(event);
    }
}

fn write_log(event: &Event<'_>) {
    let addr = |from: &Option<IpAddr>| from.map(|ip| ip.to_string()).unwrap_or_default();
    match event {
        Event::Issued {
            how,
            subject,
            serial,
            from,
        } => log::info(
            if *how == Issuance::Renewal {
                "renewed"
            } else {
                "issued"
            },
            &[
                ("peer", &addr(from)),
                ("how", how.name()),
                ("subject", subject),
                ("serial", serial),
            ],
        ),
        Event::Revoked {
            serial,
            reason_code,
            from,
        } => log::info(
            "revoked",
            &[
                ("peer", &addr(from)),
                ("serial", serial),
                ("reason_code", &reason_code.to_string()),
            ],
        ),
        Event::Refused {
            reason,
            status,
            message,
            from,
            token,
        } => {
            let slot = metrics::REFUSAL_REASONS
                .iter()
                .position(|r| r == reason)
                .unwrap_or(0);
            let Some(left_out) = REFUSALS_LOGGED[slot].admit() else {
                return;
            };
            let (from, status, left_out) =
                (from.to_string(), status.to_string(), left_out.to_string());
            let mut fields = vec![("peer", from.as_str()), ("status", status.as_str())];
            if let Some(t) = token {
                fields.extend([("token_subject", t.subject.as_str()), ("token_jti", &t.jti)]);
            }
            fields.extend([("reason", *message), ("not_logged_since", &left_out)]);
            log::warn("refused", &fields);
        }
        Event::CrlSigned { number, .. } => {
            log::info("crl_signed", &[("number", &number.to_string())]);
        }
        Event::Served { .. } | Event::Committed { .. } => {}
    }
}
