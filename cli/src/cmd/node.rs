//! A node's side of a certificate's life: `pki renew` (and `--watch`) and
//! `pki verify`, against the CA recorded in `cert/ca.json`.

use std::time::Duration;

use fedpki_core::Certificate;
use fedpki_core::chain;
use fedpki_core::issue;
use fedpki_core::name::Subject;
use fedpki_core::{RUST_CRYPTO, SigningKey, UnixTime};

use crate::client::revocation::{self, CrlSource};
use crate::client::{self, ClientAuth};
use crate::cmd::args::{RenewArgs, VerifyArgs};
use crate::cmd::ca::runtime;
use crate::error::{CliError, Result};
use crate::node::{Answer, Expected, Node, NodeConfig, NodeFiles};
use crate::platform::log;
use crate::platform::sys::{now, time_text};
use crate::wire::SignResponse;

/// Ask the CA for a renewal of `node`'s certificate; check the answer as
/// `pki certify` does (same key, same names, the trusted root); replace
/// `<name>.crt` atomically. The new certificate.
async fn renew_once(files: &NodeFiles, node: &Node, host: &str, port: u16) -> Result<Certificate> {
    let t = now();
    chain::check_valid_at(&node.leaf, t).map_err(|_| {
        CliError::usage(format!(
            "{} has expired (or is not yet valid); renewal needs a valid certificate, so get a new one with a token",
            files.cert().display()
        ))
    })?;
    let mut presented = vec![node.leaf.clone()];
    presented.extend(node.intermediate.clone());
    let auth = ClientAuth::new(&presented, &node.key)?;
    let root_der = issue::cert_der(&node.root)?;
    let renewal = b"{}".to_vec();
    let resp = client::https_request_as(
        host,
        port,
        &root_der,
        Some(&auth),
        "POST",
        "/1.0/renew",
        Some(renewal),
    );
    let sent: SignResponse = resp.await?.answer(201)?;
    let root_pem = issue::cert_pem(&node.root)?;
    let answer = Answer::parse(&sent.crt, &sent.ca, &root_pem)?;
    let subject = Subject::new(&chain::common_name(&node.leaf).unwrap_or_default())?;
    let expected = Expected {
        key: &node.key.public_key(),
        key_file: &files.key(),
        subject: &subject,
        sans: Some(&chain::sans(&node.leaf)),
    };
    answer.check(&expected, t)?;
    files.install(None, &answer)?;
    Ok(answer.leaf)
}

/// Below this lifetime `--watch` renews at half-life (NVFlare's and
/// short-lived certificates' custom), above it at two thirds.
const SHORT_LIFETIME_SECS: u64 = 90 * 86_400;

/// When `--watch` renews: `fraction` into the lifetime as issued (the
/// minute a notBefore is backdated by is not counted); by default half of
/// a lifetime under 90 days, two thirds of a longer one. Then a little
/// earlier, by up to 5 % of the lifetime, by an amount drawn from the
/// serial: the nodes of a federation certified in the same minute do not
/// all renew in the same second, and a node's time stays the same across
/// restarts.
pub(crate) fn renewal_time(cert: &Certificate, fraction: Option<f64>) -> UnixTime {
    let (nb, na) = (cert.not_before().0, cert.not_after().0);
    let start = if na.saturating_sub(nb) > issue::BACKDATE_SECS {
        nb + issue::BACKDATE_SECS
    } else {
        nb
    };
    let life = na.saturating_sub(start);
    let fraction = fraction.unwrap_or(if life < SHORT_LIFETIME_SECS {
        0.5
    } else {
        2.0 / 3.0
    });
    let serial = issue::serial_hex(cert);
    let draw = fedpki_core::encoding::sha256(serial.as_bytes());
    let permille = u64::from(u16::from_be_bytes([draw[0], draw[1]])) % 1000;
    let jitter = life / 20 * permille / 1000;
    let at = start + (life as f64 * fraction) as u64;
    UnixTime(at.saturating_sub(jitter).max(start))
}

/// `pki renew`
pub(crate) fn renew(a: &RenewArgs) -> Result<()> {
    let (host, port) = NodeConfig::ca_url(&a.node.certs_path, a.ca_url.as_deref())?;
    let rt = runtime()?;
    if !a.watch {
        let files = a.node.files();
        let leaf = rt.block_on(renew_once(&files, &files.load()?, &host, port))?;
        eprintln!(
            "Renewed {} (serial {}, valid until {}): {}",
            a.node.name,
            issue::serial_hex(&leaf),
            leaf.not_after_text(),
            files.cert().display()
        );
        return Ok(());
    }
    rt.block_on(watch(a, &host, port))
}

/// `pki renew --watch`: renew at [`renewal_time`] of each certificate, forever;
/// retry failures with a growing pause, stop on a refusal retrying cannot
/// change (revoked, unknown).
async fn watch(a: &RenewArgs, host: &str, port: u16) -> Result<()> {
    let files = a.node.files();
    let mut failures = 0u32;
    loop {
        // Re-read every time: another tool may have replaced the files.
        let node = files.load()?;
        let at = renewal_time(&node.leaf, a.renew_at);
        let not_after = not_after_secs(&node.leaf);
        let t = now();
        if t.0 >= not_after {
            return Err(CliError::usage(format!(
                "{} expired before it could be renewed; get a new one with a token",
                files.cert().display()
            )));
        }
        if t < at {
            let wait = (at.0 - t.0).min(60);
            log::info(
                "renew_scheduled",
                &[("name", &a.node.name), ("at", &time_text(at.0))],
            );
            tokio::time::sleep(Duration::from_secs(wait.max(1))).await;
            continue;
        }
        match renew_once(&files, &node, host, port).await {
            Ok(leaf) => {
                failures = 0;
                renewed(a, &leaf);
            }
            Err(
                e @ CliError::Remote {
                    status: 401 | 403, ..
                },
            ) => return Err(e),
            Err(e) => {
                failures += 1;
                let left = not_after.saturating_sub(now().0);
                let wait = (u64::from(failures) * 5).min(60).min(left / 4).max(1);
                log::warn(
                    "renew_failed",
                    &[
                        ("name", &a.node.name),
                        ("error", &e.to_string()),
                        ("retry_in_s", &wait.to_string()),
                    ],
                );
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        }
    }
}

fn not_after_secs(cert: &Certificate) -> u64 {
    cert.not_after().0
}

/// Log a renewal and run the `--exec` hook (a failed hook is logged; the
/// watch goes on).
fn renewed(a: &RenewArgs, leaf: &Certificate) {
    let not_after = leaf.not_after_text();
    log::info(
        "renewed",
        &[
            ("name", &a.node.name),
            ("serial", &issue::serial_hex(leaf)),
            ("not_after", &not_after),
        ],
    );
    let Some(cmd) = &a.exec else { return };
    match std::process::Command::new("sh").arg("-c").arg(cmd).status() {
        Ok(s) if s.success() => {}
        Ok(s) => log::warn("exec_failed", &[("status", &s.to_string())]),
        Err(e) => log::warn("exec_failed", &[("error", &e.to_string())]),
    }
}

/// `pki verify`
pub(crate) fn verify(a: &VerifyArgs) -> Result<()> {
    let files = a.node.files();
    let node = files.load()?;
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
        if node.key.public_key() == *node.leaf.public_key() {
            Ok(format!("{}.key matches the certificate", a.node.name))
        } else {
            Err(format!("{}.key is not the certificate's key", a.node.name))
        },
    );
    let chain_result = match &node.intermediate {
        None => Err(format!(
            "{} has no intermediate certificate after the leaf",
            files.cert().display()
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
        valid.map(|()| format!("until {}", node.leaf.not_after_text())),
    );
    let cn = chain::common_name(&node.leaf).unwrap_or_default();
    check(
        "name",
        if cn == a.node.name {
            Ok(format!(
                "CN {cn}, SANs {}",
                chain::sans(&node.leaf)
                    .iter()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        } else {
            Err(format!(
                "the certificate is for {cn:?}, not {:?}",
                a.node.name
            ))
        },
    );
    if a.skip_revocation {
        println!("skipped revocation: not checked (--skip-revocation)");
    } else if chain_ok {
        check("revocation", revocation_status(a, &node, t));
    } else {
        check(
            "revocation",
            Err("not checked: the chain does not hold".into()),
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Check(format!(
            "{} of 5 checks failed for {} (serial {serial}): {}",
            failed.len(),
            a.node.name,
            failed.join(", ")
        )))
    }
}

fn revocation_status(
    a: &VerifyArgs,
    node: &Node,
    t: UnixTime,
) -> std::result::Result<String, String> {
    let Some(intermediate) = &node.intermediate else {
        return Err("no intermediate to check the CRL with".into());
    };
    let host_port = match &a.crl {
        Some(_) => None,
        None => Some(
            NodeConfig::ca_url(&a.node.certs_path, a.ca_url.as_deref()).map_err(|e| {
                format!(
                    "{e}; on a node with no way to the CA, check against its CRL file \
                     instead: --crl FILE (`fedpki pki crl -p CA_DIR -o FILE` on the CA)"
                )
            })?,
        ),
    };
    let source = match (&a.crl, &host_port) {
        (Some(path), _) => CrlSource::File(path),
        (None, Some((host, port))) => CrlSource::Ca { host, port: *port },
        (None, None) => return Err("no CA address to fetch the CRL from".into()),
    };
    runtime()
        .map_err(|e| e.to_string())?
        .block_on(revocation::status(
            source,
            &node.leaf,
            intermediate,
            &node.root,
            t,
        ))
}

/// `pki import`: the signed file checked and installed, then the
/// framework's file names (`--layout`).
pub(crate) fn import(a: &crate::cmd::args::ImportArgs) -> Result<()> {
    let signed = crate::offline::import(&a.signed, &a.certs_path, a.root_fingerprint.as_deref())?;
    for path in a.layout.write(&signed)? {
        eprintln!("  {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use fedpki_core::issue::{self, Issuer, Serial};
    use fedpki_core::name::{San, Subject};
    use fedpki_core::profile::{LeafUsage, Published};
    use fedpki_core::{Entropy, KeyType, PrivateKey, SigningKey, UnixTime};

    use super::renewal_time;

    const T0: u64 = 1_800_000_000;
    const DAY: u64 = 86_400;

    struct Counter(u64);
    impl Entropy for Counter {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), fedpki_core::Error> {
            for chunk in dest.chunks_mut(32) {
                self.0 += 1;
                let block = fedpki_core::encoding::sha256(&self.0.to_le_bytes());
                chunk.copy_from_slice(&block[..chunk.len()]);
            }
            Ok(())
        }
    }

    /// Leaves valid `days` from T0 (notBefore backdated a minute, as issued).
    fn leaves(days: u64, n: usize) -> Vec<fedpki_core::Certificate> {
        let mut rng = Counter(days);
        let ca_key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
        let root = issue::root_ca(
            &ca_key,
            "Root",
            Serial::random(&mut rng).unwrap(),
            UnixTime(T0),
        )
        .unwrap();
        let issuer = Issuer {
            cert: &root,
            key: &ca_key,
        };
        let key = PrivateKey::generate(KeyType::P256, &mut rng).unwrap();
        (0..n)
            .map(|_| {
                issuer
                    .leaf(
                        &key.public_key(),
                        &Subject::new("node1").unwrap(),
                        &[San::parse("node1").unwrap()],
                        LeafUsage::Node,
                        Serial::random(&mut rng).unwrap(),
                        UnixTime(T0 - issue::BACKDATE_SECS),
                        UnixTime(T0 + days * DAY),
                        &Published::default(),
                    )
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn short_lifetimes_renew_at_half_life_long_ones_at_two_thirds_each_a_little_early() {
        for (days, fraction) in [(30, 0.5), (1, 0.5), (365, 2.0 / 3.0)] {
            let life = days * DAY;
            let due = T0 + (life as f64 * fraction) as u64;
            let times: Vec<u64> = leaves(days, 8)
                .iter()
                .map(|c| renewal_time(c, None).0)
                .collect();
            for t in &times {
                assert!(
                    *t <= due && *t >= due - life / 20,
                    "{days} d: {t} not in 5 % before {due}"
                );
            }
            // The jitter spreads a federation's renewals.
            let mut distinct = times.clone();
            distinct.dedup();
            assert!(distinct.len() > 4, "{days} d: {times:?}");
        }
        // An operator's fraction wins.
        let c = &leaves(30, 1)[0];
        let at = renewal_time(c, Some(0.8)).0;
        assert!(
            (T0 + 24 * DAY - 30 * DAY / 20..=T0 + 24 * DAY).contains(&at),
            "{at}"
        );
    }
}
