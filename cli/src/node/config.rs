//! `ca.json` in a certs folder: where the CA is, for renewals.

use std::path::Path;

use serde::Deserialize;

use crate::error::{CliError, Result};

/// `<certs-path>/ca.json`: where the CA that certified this folder's
/// nodes is, for `pki renew` and `pki verify`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeConfig {
    /// `HOST:PORT`.
    pub ca_url: String,
    /// The CA server's key pin from the token, for renewals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_sha256: Option<String>,
}

impl NodeConfig {
    /// The file name in a certs folder.
    pub(crate) const FILE: &'static str = "ca.json";

    /// Write it.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        crate::platform::sys::write_json(&dir.join(Self::FILE), self, 0o644)
    }

    /// The CA address: `explicit` if given, else the recorded one.
    pub(crate) fn ca_url(dir: &Path, explicit: Option<&str>) -> Result<(String, u16)> {
        if let Some(u) = explicit {
            return crate::ca::parse_ca_url(u);
        }
        let path = dir.join(Self::FILE);
        if !path.exists() {
            return Err(CliError::usage(format!(
                "{} does not say where the CA is (it is written by `pki certify`); give --ca-url HOST:PORT",
                path.display()
            )));
        }
        let text = crate::platform::sys::read_text(&path)?;
        let me: Self = serde_json::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is corrupt ({e}); give --ca-url",
                path.display()
            ))
        })?;
        crate::ca::parse_ca_url(&me.ca_url)
    }
}
