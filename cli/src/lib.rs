//! fedpki: the binary's library. `main` calls [`main`].
//!
//! Layers (a folder is one; imports go down):
//! - `cmd`: the commands, glue only (and `cmd::args`, the command line);
//! - `api` (the HTTPS server), `client` (talking to a CA, reading a node's
//!   files), `manual` (OpenFL's aggregator-as-CA flow), `offline` (request
//!   and signed files across an air gap);
//! - `node` (a node's certificate folder and the one check before a
//!   certificate goes into it) and `wire` (step-ca's JSON shapes, shared by
//!   the server and the clients), and `root` (the offline root's folder
//!   and what it signs);
//! - `authority`: decides every issuance and revocation;
//! - `ca`: the CA folder (layout, config, creation, lock);
//! - `store`: the durable ledger and audit log;
//! - `platform`: files, time, randomness, terminal, logging, crypto
//!   backends; and `error`, the crate's error type.
//!
//! The end-to-end tests, the benchmarks and the fuzzers reach in through
//! [`facade`] only.

pub(crate) mod address;
pub(crate) mod api;
pub(crate) mod authority;
pub(crate) mod ca;
pub(crate) mod client;
pub(crate) mod cmd;
pub mod error;
pub mod facade;
pub(crate) mod manual;
pub(crate) mod node;
pub(crate) mod offline;
pub(crate) mod platform;
pub(crate) mod root;
pub(crate) mod store;
pub(crate) mod wire;

/// Parse the command line, run the command, report errors on stderr.
pub fn main() -> std::process::ExitCode {
    cmd::main()
}
