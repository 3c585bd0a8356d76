//! The command line's value parsers: each flag is checked, and turned into
//! its type, when the command line is read, before any file is touched or
//! prompt shown; and the durations flags are written in.

pub(crate) use crate::platform::duration::{format_duration, parse_duration};
use fedpki_core::KeyType;
use fedpki_core::crl::Reason;

pub(super) fn serial(s: &str) -> Result<String, String> {
    crate::authority::normalize_serial(s).map_err(|r| r.message)
}

pub(super) fn reason(s: &str) -> Result<Reason, String> {
    Reason::parse(s).map_err(|e| e.to_string())
}

/// A name or IP address the CA is also reached under (`--dns`).
pub(super) fn dns_name(s: &str) -> Result<String, String> {
    let name = s.trim().to_ascii_lowercase();
    fedpki_core::name::San::parse(&name).map_err(|e| format!("{s:?}: {e}"))?;
    if name.contains('/') || name.starts_with('[') {
        return Err(format!(
            "{s:?}: a name or an address, without port or brackets"
        ));
    }
    Ok(name)
}

/// A CA address, written back in its one form (`host:port`).
pub(super) fn host_port(s: &str) -> Result<String, String> {
    crate::address::CaAddress::parse(s)
        .map(|a| a.to_string())
        .map_err(|e| e.to_string())
}

pub(super) fn key_type(s: &str) -> Result<KeyType, String> {
    s.parse().map_err(|e: fedpki_core::Error| e.to_string())
}

/// A CA's common name (`--name`), by core's rule.
pub(super) fn ca_name(s: &str) -> Result<String, String> {
    fedpki_core::name::check_ca_name(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// A CA's key: ECDSA only (P-256 or P-384), as every TLS stack verifies.
pub(super) fn ca_key_type(s: &str) -> Result<KeyType, String> {
    match key_type(s)? {
        k @ (KeyType::P256 | KeyType::P384) => Ok(k),
        _ => Err(
            "a CA key is p256 or p384 (not every TLS stack verifies Ed25519 chains, and \
                  fedpki signs certificates with ECDSA)"
                .into(),
        ),
    }
}

pub(super) fn fingerprint(s: &str) -> Result<String, String> {
    fedpki_core::package::normalize_fingerprint(s).map_err(|e| e.to_string())
}

pub(super) fn leaf_lifetime(s: &str) -> Result<u64, String> {
    let secs = parse_duration(s)?;
    crate::ca::InstallOptions::check_leaf(secs)?;
    Ok(secs)
}

pub(super) fn key_age_limit(s: &str) -> Result<u64, String> {
    let secs = parse_duration(s)?;
    if secs < 86400 {
        return Err(format!(
            "{s}: at least 1d (a key must outlive one certificate of a day)"
        ));
    }
    Ok(secs)
}

pub(super) fn renew_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.1..=0.9).contains(&f) => Ok(f),
        _ => Err(format!(
            "{s}: a fraction of the lifetime from 0.1 to 0.9 (0.5: half-life)"
        )),
    }
}

pub(super) fn token_ttl_limit(s: &str) -> Result<u64, String> {
    let secs = parse_duration(s)?;
    if !(60..=365 * 86400).contains(&secs) {
        return Err(format!("{s}: between 1m and 365d"));
    }
    Ok(secs)
}
