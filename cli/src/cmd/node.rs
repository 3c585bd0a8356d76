//! A node's side of a certificate's life: `pki renew` (and `--watch`) and
//! `pki verify`, against the CA recorded in `cert/ca.json`.

use std::path::Path;
use std::time::Duration;

use fedpki_core::chain;
use fedpki_core::crl::Crl;
use fedpki_core::issue;
use fedpki_core::name::Subject;
use fedpki_core::{PrivateKey, RUST_CRYPTO, SigningKey, UnixTime};
use x509_cert::Certificate;

use crate::client::{self, ClientAuth, NodeConfig, ensure_newline};
use crate::cmd::args::{RenewArgs, VerifyArgs};
use crate::cmd::ca::runtime;
use crate::cmd::lifecycle::remote_error;
use crate::error::{CliError, Result};
use crate::platform::sys::{now, time_text, write_atomic};

/// A node's files: `<name>.key`, `<name>.crt` (leaf and intermediate),
/// `root_ca.crt`.
struct Node {
    key: PrivateKey,
    leaf: Certificate,
    intermediate: Option<Certificate>,
    root: Certificate,
    cert_path: std::path::PathBuf,
}

fn load_node(dir: &Path, name: &str) -> Result<Node> {
    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.crt"));
    let root_path = dir.join("root_ca.crt");
    let key = PrivateKey::from_pem(&crate::platform::sys::read_text(&key_path)?, None)
        .map_err(|e| CliError::usage(format!("{}: {e}", key_path.display())))?;
    let mut chain = issue::parse_certs_pem(&crate::platform::sys::read_text(&cert_path)?)
        .map_err(|e| CliError::usage(format!("{}: {e}", cert_path.display())))?;
    if chain.is_empty() {
        return Err(CliError::usage(format!(
            "{} holds no certificate",
            cert_path.display()
        )));
    }
    let leaf = chain.remove(0);
    let root = issue::parse_cert_pem(&crate::platform::sys::read_text(&root_path)?)
        .map_err(|e| CliError::usage(format!("{}: {e}", root_path.display())))?;
    Ok(Node {
        key,
        leaf,
        intermediate: chain.into_iter().next(),
        root,
        cert_path,
    })
}

/// Ask the CA for a renewal of `node`'s certificate; check the answer;
/// replace `<name>.crt` atomically. The new certificate.
async fn renew_once(node: &Node, host: &str, port: u16) -> Result<Certificate> {
    let t = now();
    chain::check_valid_at(&node.leaf, t).map_err(|_| {
        CliError::usage(format!(
            "{} has expired (or is not yet valid); renewal needs a valid certificate, so get a new one with a token",
            node.cert_path.display()
        ))
    })?;
    let mut presented = vec![node.leaf.clone()];
    presented.extend(node.intermediate.clone());
    let auth = ClientAuth::new(&presented, &node.key)?;
    let root_der = issue::cert_der(&node.root)?;
    let resp = client::https_request_as(
        host,
        port,
        &root_der,
        Some(&auth),
        "POST",
        "/1.0/renew",
        Some(b"{}".to_vec()),
    )
    .await?;
    if resp.status != 201 {
        return Err(remote_error(&resp));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        crt: String,
        ca: String,
    }
    let answer: Answer = serde_json::from_slice(&resp.body)
        .map_err(|e| CliError::Network(format!("the CA's answer is not the expected JSON: {e}")))?;
    let leaf = issue::parse_cert_pem(&answer.crt)?;
    let intermediate = issue::parse_cert_pem(&answer.ca)?;
    chain::verify_chain(&leaf, &intermediate, &node.root, t, &RUST_CRYPTO)?;
    let cn = chain::common_name(&node.leaf).unwrap_or_default();
    let subject = Subject::new(&cn)?;
    let mut sans = chain::sans(&node.leaf);
    sans.sort();
    chain::check_leaf_is_ours(&leaf, &node.key.public_key(), &subject, &sans)?;
    let pem = format!(
        "{}{}",
        ensure_newline(&answer.crt),
        ensure_newline(&answer.ca)
    );
    write_atomic(&node.cert_path, pem.as_bytes(), 0o644)?;
    Ok(leaf)
}

/// When `--watch` renews: two thirds into the lifetime as issued (the
/// minute a notBefore is backdated by is not counted).
pub(crate) fn renewal_time(cert: &Certificate) -> UnixTime {
    let v = cert.tbs_certificate().validity();
    let nb = v.not_before.to_unix_duration().as_secs();
    let na = v.not_after.to_unix_duration().as_secs();
    let start = if na.saturating_sub(nb) > issue::BACKDATE_SECS {
        nb + issue::BACKDATE_SECS
    } else {
        nb
    };
    UnixTime(start + na.saturating_sub(start) * 2 / 3)
}

/// `pki renew`
pub(crate) fn renew(a: &RenewArgs) -> Result<()> {
    let (host, port) = NodeConfig::ca_url(&a.certs_path, a.ca_url.as_deref())?;
    let rt = runtime()?;
    if !a.watch {
        let node = load_node(&a.certs_path, &a.name)?;
        let leaf = rt.block_on(renew_once(&node, &host, port))?;
        eprintln!(
            "Renewed {} (serial {}, valid until {}): {}",
            a.name,
            issue::serial_hex(&leaf),
            leaf.tbs_certificate().validity().not_after,
            node.cert_path.display()
        );
        return Ok(());
    }
    rt.block_on(watch(a, &host, port))
}

async fn watch(a: &RenewArgs, host: &str, port: u16) -> Result<()> {
    let mut failures = 0u32;
    loop {
        // Re-read every time: another tool may have replaced the files.
        let node = load_node(&a.certs_path, &a.name)?;
        let at = renewal_time(&node.leaf);
        let t = now();
        let not_after = node
            .leaf
            .tbs_certificate()
            .validity()
            .not_after
            .to_unix_duration()
            .as_secs();
        if t.0 >= not_after {
            return Err(CliError::usage(format!(
                "{} expired before it could be renewed; get a new one with a token",
                node.cert_path.display()
            )));
        }
        if t < at {
            let wait = (at.0 - t.0).min(60);
            crate::platform::log::info(
                "renew_scheduled",
                &[("name", &a.name), ("at", &time_text(at.0))],
            );
            tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
            continue;
        }
        match renew_once(&node, host, port).await {
            Ok(leaf) => {
                failures = 0;
                crate::platform::log::info(
                    "renewed",
                    &[
                        ("name", &a.name),
                        ("serial", &issue::serial_hex(&leaf)),
                        (
                            "not_after",
                            &leaf.tbs_certificate().validity().not_after.to_string(),
                        ),
                    ],
                );
                if let Some(cmd) = &a.exec {
                    match std::process::Command::new("sh").arg("-c").arg(cmd).status() {
                        Ok(s) if s.success() => {}
                        Ok(s) => {
                            crate::platform::log::warn("exec_failed", &[("status", &s.to_string())])
                        }
                        Err(e) => {
                            crate::platform::log::warn("exec_failed", &[("error", &e.to_string())])
                        }
                    }
                }
            }
            Err(
                e @ CliError::Remote {
                    status: 401 | 403, ..
                },
            ) => {
                // Revoked or unknown to the CA: retrying cannot help.
                return Err(e);
            }
            Err(e) => {
                failures += 1;
                let left = not_after.saturating_sub(now().0);
                let wait = (u64::from(failures) * 5).min(60).min(left / 4).max(1);
                crate::platform::log::warn(
                    "renew_failed",
                    &[
                        ("name", &a.name),
                        ("error", &e.to_string()),
                        ("retry_in_s", &wait.to_string()),
                    ],
                );
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        }
    }
}

/// `pki verify`
pub(crate) fn verify(a: &VerifyArgs) -> Result<()> {
    let node = load_node(&a.certs_path, &a.name)?;
    let t = now();
    let mut failed = Vec::new();
    let mut check = |what: &str, result: std::result::Result<String, String>| match result {
        Ok(detail) => println!("ok      {what}: {detail}"),
        Err(why) => {
            println!("FAILED  {what}: {why}");
            failed.push(what.to_owned());
        }
    };
    let serial = issue::serial_hex(&node.leaf);
    check(
        "key",
        if node.key.public_key() == *node.leaf.tbs_certificate().subject_public_key_info() {
            Ok(format!("{}.key matches the certificate", a.name))
        } else {
            Err(format!("{}.key is not the certificate's key", a.name))
        },
    );
    let chain_result = match &node.intermediate {
        None => Err(format!(
            "{} has no intermediate certificate after the leaf",
            node.cert_path.display()
        )),
        Some(int) => chain::check_signed_by(&node.leaf, int, &RUST_CRYPTO)
            .and_then(|()| chain::check_signed_by(int, &node.root, &RUST_CRYPTO))
            .and_then(|()| chain::check_signed_by(&node.root, &node.root, &RUST_CRYPTO))
            .map(|()| "leaf → intermediate → root_ca.crt".to_owned())
            .map_err(|e| e.to_string()),
    };
    let chain_ok = chain_result.is_ok();
    check("chain", chain_result);
    let mut valid = chain::check_valid_at(&node.leaf, t).map_err(|e| e.to_string());
    for c in node.intermediate.iter().chain([&node.root]) {
        if valid.is_ok() {
            valid = chain::check_valid_at(c, t).map_err(|e| e.to_string());
        }
    }
    check(
        "validity",
        valid.map(|()| format!("until {}", node.leaf.tbs_certificate().validity().not_after)),
    );
    let cn = chain::common_name(&node.leaf).unwrap_or_default();
    check(
        "name",
        if cn == a.name {
            Ok(format!(
                "CN {cn}, SANs {}",
                chain::sans(&node.leaf)
                    .iter()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        } else {
            Err(format!("the certificate is for {cn:?}, not {:?}", a.name))
        },
    );
    let revocation = if chain_ok {
        revocation_status(a, &node, &serial, t)
    } else {
        Err("not checked: the chain does not hold".into())
    };
    check("revocation", revocation);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Check(format!(
            "{} of 5 checks failed for {} (serial {serial}): {}",
            failed.len(),
            a.name,
            failed.join(", ")
        )))
    }
}

fn revocation_status(
    a: &VerifyArgs,
    node: &Node,
    serial: &str,
    t: UnixTime,
) -> std::result::Result<String, String> {
    let Some(intermediate) = &node.intermediate else {
        return Err("no intermediate to check the CRL with".into());
    };
    let (der, source) = match &a.crl {
        Some(path) => (
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let (host, port) = NodeConfig::ca_url(&a.certs_path, a.ca_url.as_deref())
                .map_err(|e| e.to_string())?;
            let root_der = issue::cert_der(&node.root).map_err(|e| e.to_string())?;
            let resp = runtime()
                .map_err(|e| e.to_string())?
                .block_on(client::https_request(
                    &host, port, &root_der, "GET", "/crl", None,
                ))
                .map_err(|e| format!("cannot fetch the CRL: {e}"))?;
            if resp.status != 200 {
                return Err(format!("cannot fetch the CRL: {}", remote_error(&resp)));
            }
            (resp.body.to_vec(), format!("https://{host}:{port}/crl"))
        }
    };
    let crl = Crl::parse(&der).map_err(|e| format!("{source} is not a CRL: {e}"))?;
    crl.verify(intermediate, &RUST_CRYPTO)
        .map_err(|e| format!("{source}: {e}"))?;
    if crl.next_update().is_some_and(|n| n < t) {
        return Err(format!(
            "{source} is stale (its nextUpdate has passed); fetch a fresh one"
        ));
    }
    match crl.find(serial) {
        Some(r) => Err(format!(
            "revoked at {} ({}), per {source}",
            time_text(r.at.0),
            r.reason.name()
        )),
        None => Ok(format!(
            "not revoked, per {source} (CRL number {})",
            crl.number().unwrap_or(0)
        )),
    }
}
