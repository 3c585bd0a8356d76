//! What a CA sent back, and the one check before it is installed: it
//! chains to the root this node trusts, it is for our key and our names,
//! and it lives no longer than fedpki issues for.

use std::path::Path;

use fedpki_core::Certificate;
use fedpki_core::chain;
use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::{RUST_CRYPTO, UnixTime};

use crate::error::{CliError, Result};

/// A leaf, the CA that signed it and the root.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The leaf.
    pub leaf: Certificate,
    /// The intermediate that signed it.
    pub issuer: Certificate,
    /// The root it must chain to.
    pub root: Certificate,
}

/// What the node asked for.
#[derive(Debug, Clone)]
pub(crate) struct Expected<'a> {
    /// The node's public key.
    pub key: &'a fedpki_core::PublicKey,
    /// Where that key is (or is about to be written), for the message.
    pub key_file: &'a Path,
    /// Its name.
    pub subject: &'a Subject,
    /// The SANs asked for; `None` when the request that named them is not
    /// here to compare (a carried request: `pki import`, the manual flow).
    pub sans: Option<&'a [San]>,
}

impl Answer {
    /// Parse the three PEMs; which one is broken is named.
    pub(crate) fn parse(leaf_pem: &str, issuer_pem: &str, root_pem: &str) -> Result<Self> {
        let parse = |pem: &str, what: &str| {
            issue::parse_cert_pem(pem)
                .map_err(|e| CliError::Network(format!("the {what} sent is unreadable: {e}")))
        };
        Ok(Self {
            leaf: parse(leaf_pem, "certificate")?,
            issuer: parse(issuer_pem, "issuing CA certificate")?,
            root: parse(root_pem, "root certificate")?,
        })
    }

    /// The one check: the chain verifies at `now` to the root, the leaf is
    /// for `expected`'s key, name and SANs, and it lives at most a year
    /// (with the backdating margin).
    pub(crate) fn check(&self, expected: &Expected<'_>, now: UnixTime) -> Result<()> {
        chain::verify_chain(&self.leaf, &self.issuer, &self.root, now, &RUST_CRYPTO)?;
        if self.leaf.public_key() != expected.key {
            return Err(CliError::Check(format!(
                "the certificate is not for the key in {}",
                expected.key_file.display()
            )));
        }
        let leaf_sans;
        let sans = match expected.sans {
            Some(s) => s,
            None => {
                leaf_sans = chain::sans(&self.leaf);
                &leaf_sans
            }
        };
        chain::check_leaf_is_ours(&self.leaf, expected.key, expected.subject, sans)?;
        let lifetime = chain::lifetime_secs(&self.leaf);
        if lifetime > issue::YEAR_SECS + 2 * issue::BACKDATE_SECS + 24 * 3600 {
            return Err(CliError::Core(fedpki_core::Error::Chain(format!(
                "the certificate lives {} days, longer than fedpki's one-year limit",
                lifetime / 86400
            ))));
        }
        Ok(())
    }

    /// The leaf's serial, hex.
    pub(crate) fn serial(&self) -> String {
        issue::serial_hex(&self.leaf)
    }

    /// The leaf's notAfter, as text.
    pub(crate) fn not_after(&self) -> String {
        self.leaf.not_after_text()
    }
}
