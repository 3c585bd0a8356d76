//! The one door into the library for the end-to-end tests, the
//! benchmarks and the fuzzers: what they drive directly, under one name
//! each. Everything else is the crate's own.

pub use crate::api::fuzz::requests as fuzz_requests;
pub use crate::api::handlers::answer_sign;
pub use crate::authority::{Authority, csr_names};
pub use crate::ca::{CaCerts, CaConfig, CaPaths, parse_ca_url, server_pid, unlock_key};
pub use crate::client::inspect::{describe, describe_bytes};
pub use crate::client::{ClientAuth, https_request, https_request_as, https_request_at};
pub use crate::manual::package_zip::read_bytes;
pub use crate::platform::ring_backend::RingP256;
pub use crate::platform::sys::{OsEntropy, now, now_ms, raise_fd_limit};
pub use crate::store::disk::OsDisk;
pub use crate::store::durable::{Durable, StorePaths};
pub use crate::store::log as audit_log;
pub use crate::store::records::{Burn, CertRecord, Change, Outcome, RevocationRecord};
pub use crate::store::{Backend, Ledger, MemoryBackend, Store, StoreError};

/// A ledger in the PostgreSQL database at `url` for the CA whose root has
/// `root_fingerprint`, made there when `empty` (the database must hold
/// none), else opened: the tests compare its decisions with the in-memory
/// store's.
pub fn postgres_backend(
    url: &str,
    password_file: Option<&std::path::Path>,
    root_fingerprint: &str,
    empty: bool,
) -> crate::error::Result<Box<dyn Backend>> {
    let location = crate::store::postgres::PgLocation::parse(url, password_file)?;
    let expect = if empty {
        crate::store::postgres::Expect::Empty
    } else {
        crate::store::postgres::Expect::Existing
    };
    Ok(Box::new(crate::store::postgres::PgBackend::open(
        location,
        root_fingerprint,
        expect,
    )?))
}

/// `authority`, deciding node certificates by the roster of the CA folder
/// `dir` (`config/federation.toml`), as `pki run` does.
pub fn with_roster(authority: Authority, dir: &std::path::Path) -> crate::error::Result<Authority> {
    Ok(authority.with_roster(crate::ca::roster::RosterWatch::open(dir)?))
}

/// The audit log of the PostgreSQL ledger at `url` (its lines) and the
/// number of entries its head records, as `pki audit` reads them.
pub fn postgres_audit(
    url: &str,
    password_file: Option<&std::path::Path>,
    root_fingerprint: &str,
) -> crate::error::Result<(Vec<u8>, u64)> {
    let location = crate::store::postgres::PgLocation::parse(url, password_file)?;
    let (lines, head) = crate::store::postgres::read_audit(&location, root_fingerprint)?;
    Ok((lines, head.seq))
}
