//! What the rest stands on: files and time (`sys`), logging, passwords and
//! the terminal, how a request is shown for review, the crypto backends.

pub(crate) mod duration;
pub(crate) mod events;
pub(crate) mod faults;
pub(crate) mod log;
pub(crate) mod metrics;
pub(crate) mod password;
pub(crate) mod review;
pub(crate) mod ring_backend;
pub(crate) mod service;
pub(crate) mod sys;
pub(crate) mod tls;
