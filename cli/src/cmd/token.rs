//! Tokens signed with a CA folder's provisioner key: a sign token for a
//! node (`pki get-token -n`), a revoke token (`pki get-token --revoke`, and
//! `pki revoke` while the server runs), as `step ca token` makes them.

use std::path::Path;

use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenRequest};

use crate::ca::{self, CaCerts, CaConfig, CaPaths};
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::{OsEntropy, now};

/// What a token is for.
pub(crate) enum TokenFor<'a> {
    /// `POST /1.0/sign` for this name and these SANs.
    Sign {
        /// The certificate's name.
        subject: &'a Subject,
        /// Its SANs.
        sans: &'a [San],
    },
    /// `POST /1.0/revoke` of this serial (fedpki's hex).
    Revoke {
        /// The serial.
        serial_hex: &'a str,
    },
}

/// A token from the CA in `paths`, for a CA at `ca_url`, valid `ttl_secs`.
pub(crate) fn sign(
    paths: &CaPaths,
    config: &CaConfig,
    certs: &CaCerts,
    password_file: Option<&Path>,
    purpose: &TokenFor<'_>,
    ca_url: &str,
    ttl_secs: u64,
) -> Result<String> {
    let (subject, sans, audience, pin) = match purpose {
        TokenFor::Sign { subject, sans } => (
            (*subject).clone(),
            sans.to_vec(),
            token::sign_audience(ca_url),
            config.tls_key_sha256.as_deref(),
        ),
        // step-ca's revoke token: `sub` is the serial in decimal.
        TokenFor::Revoke { serial_hex } => {
            let decimal = fedpki_core::serial::hex_to_decimal(serial_hex)
                .map_err(|e| CliError::usage(format!("--serial: {e}")))?;
            (
                Subject::new(&decimal)?,
                vec![San::parse(&decimal)?],
                ca::revoke_audience(ca_url),
                None,
            )
        }
    };
    let pw = password::obtain(password_file, false)?;
    let key = ca::unlock_key(&paths.provisioner_key(), &pw)?;
    drop(pw);
    let root_der = issue::cert_der(&certs.root)?;
    Ok(token::sign(
        &TokenRequest {
            issuer: &config.provisioner.name,
            subject: &subject,
            sans: &sans,
            audience: &audience,
            root_der: &root_der,
            now: now(),
            ttl_secs,
            tls_key_sha256: pin,
        },
        &key,
        &mut OsEntropy,
    )?)
}
