//! Tokens signed with a CA folder's provisioner key: a sign token for a
//! node (`pki get-token -n`), a revoke token (`pki get-token --revoke`, and
//! `pki revoke` while the server runs), as `step ca token` makes them.

use std::io::Write;
use std::path::Path;

use fedpki_core::issue;
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, Bundle, TokenRequest};

use crate::ca::roster::{Participant, ROSTER_FILE, Roster};
use crate::ca::{self, CaCerts, CaConfig, CaPaths};
use crate::cmd::args::GetTokenArgs;
use crate::cmd::values::format_duration;
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
    let key = provisioner_key(paths, password_file)?;
    sign_with(&key, config, certs, purpose, ca_url, ttl_secs)
}

/// The CA's provisioner key, unlocked with its password.
pub(crate) fn provisioner_key(
    paths: &CaPaths,
    password_file: Option<&Path>,
) -> Result<fedpki_core::PrivateKey> {
    let pw = password::obtain(password_file, false)?;
    ca::unlock_key(&paths.provisioner_key(), &pw)
}

/// [`sign`] with the provisioner `key` already unlocked.
pub(crate) fn sign_with(
    key: &fedpki_core::PrivateKey,
    config: &CaConfig,
    certs: &CaCerts,
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
        key,
        &mut OsEntropy,
    )?)
}

/// `pki get-token`: a sign token for `-n`, or a revoke token.
pub(crate) fn get_token(a: &GetTokenArgs) -> Result<()> {
    let paths = CaPaths::new(&a.ca_path);
    let config = CaConfig::load(&paths)?;
    let certs = CaCerts::load(&paths, &config)?;
    let ttl = a.ttl;
    if ttl > config.max_token_lifetime_secs {
        return Err(CliError::usage(format!(
            "--ttl {}: a token lives from 1 s up to this CA's limit of {} (set by \
             `pki install --max-token-ttl`)",
            format_duration(ttl),
            format_duration(config.max_token_lifetime_secs)
        )));
    }
    let ca_url = a.ca_url.clone().unwrap_or_else(|| config.ca_url.clone());
    if !config.serves_at(&ca_url) {
        return Err(CliError::usage(format!(
            "--ca-url {ca_url} is not an address of the CA in {dir}: it serves at {served}, and \
             its TLS certificate names only those, so a token for {ca_url} would be refused at \
             certify. Give one of those, or name it first: `fedpki pki install -p {dir} --dns \
             NAME` (then restart the CA)",
            dir = paths.dir.display(),
            served = config.addresses().join(", "),
        )));
    }
    let pw_file = a.password.password_file.as_deref();
    if let Some(serial) = &a.revoke {
        let purpose = TokenFor::Revoke { serial_hex: serial };
        let jwt = sign(&paths, &config, &certs, pw_file, &purpose, &ca_url, ttl)?;
        let decimal = fedpki_core::serial::hex_to_decimal(serial)?;
        let what = format!(
            "Revoke token for serial {serial} (decimal {decimal}; valid {}, works once), \
             in fedpki's form (base64 JWT \".\" base64 root). With the step CLI:\n  \
             step ca revoke {decimal} --ca-url https://{ca_url} --root ROOT \\\n    \
             --token \"$(cut -d. -f1 TOKEN_FILE | base64 -d)\"",
            format_duration(ttl)
        );
        return emit_token(a, &certs, jwt, &what);
    }
    let roster = Roster::load(&paths.dir)?;
    if a.all {
        let Some(roster) = roster else {
            return Err(CliError::usage(format!(
                "--all makes a token for each participant of the federation's roster, and the \
                 CA in {} has none: write {} there first (see the README's roster section)",
                paths.dir.display(),
                ROSTER_FILE
            )));
        };
        return every_participant(a, &paths, &config, &certs, &roster, &ca_url);
    }
    let name = a.name.as_deref().unwrap_or_default();
    let subject = Subject::new(name).map_err(|e| CliError::usage(format!("-n: {e}")))?;
    let sans = match &roster {
        Some(roster) => rostered(roster, name, &a.sans, &paths)?.sans.clone(),
        None => San::for_subject(name, &a.sans).map_err(|e| {
            CliError::usage(format!(
                "-n {name:?} with --san {:?}: {e} (give every SAN with --san)",
                a.sans
            ))
        })?,
    };
    let purpose = TokenFor::Sign {
        subject: &subject,
        sans: &sans,
    };
    let jwt = sign(&paths, &config, &certs, pw_file, &purpose, &ca_url, ttl)?;
    let shown = match &a.out {
        Some(path) => format!("@{}", path.display()),
        None => "-".to_owned(),
    };
    let what = format!(
        "Token for {subject} (valid {}, works once). Carry it to that host over a secure \
         channel and run there:\n  fedpki pki certify -n {subject} -t {shown}{}",
        format_duration(ttl),
        if a.out.is_none() {
            "   (the token on standard input)"
        } else {
            ""
        }
    );
    emit_token(a, &certs, jwt, &what)
}

/// Write a token as fedpki and `fx` carry it (the JWT and the root, in one
/// line) to `-o FILE` (0600) or standard output, and say what it is for.
fn emit_token(a: &GetTokenArgs, certs: &CaCerts, jwt: String, what: &str) -> Result<()> {
    let bundle = Bundle {
        jwt,
        root_pem: certs.root_pem.clone(),
    };
    let token = zeroize::Zeroizing::new(format!("{}\n", bundle.encode()));
    if let Some(path) = &a.out {
        crate::platform::sys::write_atomic(path, token.as_bytes(), 0o600)?;
        eprintln!("{what}");
        return Ok(());
    }
    eprintln!("{what}\nToken:");
    let mut out = std::io::stdout().lock();
    out.write_all(token.as_bytes())
        .map_err(|e| CliError::io("write", "stdout", e))
}

/// The roster's entry for `-n name`; refused when it has none, or when
/// `--san` would ask for other names than the roster gives.
fn rostered<'r>(
    roster: &'r Roster,
    name: &str,
    sans: &[String],
    paths: &CaPaths,
) -> Result<&'r Participant> {
    let participant = roster.participant(name).ok_or_else(|| {
        let known: Vec<&str> = roster.participants().map(|p| p.name.as_str()).collect();
        CliError::usage(format!(
            "-n {name:?} is not in the federation's roster ({}), so the CA would refuse its \
             certificate: add it there, or name one of: {}",
            paths.dir.join(ROSTER_FILE).display(),
            known.join(", ")
        ))
    })?;
    if !sans.is_empty() {
        return Err(CliError::usage(format!(
            "--san: the roster decides {name}'s names ({}); change them in {}",
            participant
                .sans
                .iter()
                .map(String::from)
                .collect::<Vec<_>>()
                .join(", "),
            ROSTER_FILE
        )));
    }
    Ok(participant)
}

/// `pki get-token --all -o DIR`: a token for every participant that holds
/// no certificate in force, each in `DIR/NAME.token` (0600), with the
/// provisioner key unlocked once.
fn every_participant(
    a: &GetTokenArgs,
    paths: &CaPaths,
    config: &CaConfig,
    certs: &CaCerts,
    roster: &Roster,
    ca_url: &str,
) -> Result<()> {
    let dir = a.out.as_deref().ok_or_else(|| {
        CliError::usage("--all writes one file per participant: give the folder with -o DIR")
    })?;
    let ca = crate::cmd::args::CaDir {
        ca_path: a.ca_path.clone(),
        store_password_file: None,
    };
    let ledger = crate::cmd::lifecycle::read_ledger(&ca)?;
    let t = now().0;
    let folder = crate::cmd::list::Folder::Ca(Box::new(config.clone()));
    let in_force: std::collections::HashSet<String> = crate::cmd::list::rows(&ledger, &folder, t)
        .into_iter()
        .filter(|r| r.kind == "node" && matches!(r.status, "valid" | "superseded"))
        .map(|r| r.subject)
        .collect();
    let wanted: Vec<&Participant> = roster
        .participants()
        .filter(|p| !in_force.contains(p.name.as_str()))
        .collect();
    if wanted.is_empty() {
        eprintln!("Every participant of the roster holds a certificate in force: no token made.");
        return Ok(());
    }
    crate::platform::sys::create_dir(dir, true)?;
    let key = provisioner_key(paths, a.password.password_file.as_deref())?;
    for p in &wanted {
        let purpose = TokenFor::Sign {
            subject: &p.name,
            sans: &p.sans,
        };
        let jwt = sign_with(&key, config, certs, &purpose, ca_url, a.ttl)?;
        let bundle = Bundle {
            jwt,
            root_pem: certs.root_pem.clone(),
        };
        let token = zeroize::Zeroizing::new(format!("{}\n", bundle.encode()));
        let file = dir.join(format!("{}.token", p.name));
        crate::platform::sys::write_atomic(&file, token.as_bytes(), 0o600)?;
        eprintln!("{} ({}): {}", p.name, p.role, file.display());
    }
    eprintln!(
        "{} tokens (valid {}, each works once); {} participants already hold a certificate. \
         Carry each to its host over a secure channel; there: fedpki pki certify -n NAME -t @NAME.token",
        wanted.len(),
        format_duration(a.ttl),
        roster.participants().count() - wanted.len()
    );
    Ok(())
}
