//! `fedpki-load`: drive a CA with N keep-alive HTTPS connections for a fixed
//! time, with every request prepared before the clock starts; or measure
//! this machine's crypto ceiling for issuing certificates.
//!
//! ```text
//! fedpki-load fedpki  --ca DIR --password-file F [--conns 16] [--secs 10] [--prepare N]
//! fedpki-load cfssl   --url HOST:PORT --root CA.pem --auth-key HEX [--conns 16] [--secs 10] [--prepare N]
//! fedpki-load stepca  --steppath DIR --password-file F --url HOST:PORT [--conns 16] [--secs 10] [--prepare N]
//! fedpki-load floor   --ca DIR --password-file F [--conns 16] [--secs 10] [--prepare N]
//! fedpki-load path    --ca DIR --password-file F [--count 5000]
//! fedpki-load ceiling [--secs 5]
//! fedpki-load micro
//! fedpki-load store   --dir DIR [--secs 3]
//! ```
//!
//! With `--dump FILE`, the fedpki, stepca and cfssl modes only prepare:
//! they write the request bodies to FILE, one per line, for another load
//! generator (`bench/wrk-bodies.lua`), and print how many.
//!
//! Prints one JSON object on standard output. fedpki requests are unique
//! tokens (fresh `jti`) and unique CSRs; cfssl requests are `authsign`
//! requests with their HMAC. An answer counts only when it is a success
//! with a certificate (fedpki: 201 with `crt`; cfssl: 200 with
//! `"success":true`); everything else is an error, counted and the first
//! one shown.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark tool: fail loudly

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fedpki::facade::RingP256;
use fedpki_core::encoding::b64;
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenRequest};
use fedpki_core::{KeyType, PrivateKey, SignatureVerifier, SigningKey};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

fn options(args: &[String]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let key = k.trim_start_matches("--").to_owned();
        let value = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        map.insert(key, value.clone());
    }
    map
}

fn num(o: &HashMap<String, String>, key: &str, default: usize) -> usize {
    o.get(key).map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else {
        eprintln!("usage: fedpki-load fedpki|cfssl|ceiling [--option value …]");
        std::process::exit(2);
    };
    let o = options(&args[1..]);
    let secs = num(&o, "secs", 10) as u64;
    let conns = num(&o, "conns", 16);
    let prepare = num(&o, "prepare", 100_000);
    let target = |name: &str, path: &'static str, success: fn(u16, &[u8]) -> bool| {
        let started = Instant::now();
        let (host, port, root, bodies) = match name {
            "fedpki" => prepare_fedpki(&o, prepare),
            // The floor's requests are not checked: a thousand, repeated.
            "floor" => {
                let (host, port, root, few) = prepare_fedpki(&o, prepare.min(1000));
                let bodies = (0..prepare).map(|i| few[i % few.len()].clone()).collect();
                (host, port, root, bodies)
            }
            "stepca" => prepare_stepca(&o, prepare),
            _ => prepare_cfssl(&o, prepare),
        };
        let prepare_s = started.elapsed().as_secs_f64();
        if let Some(file) = o.get("dump") {
            let mut text = Vec::with_capacity(bodies.iter().map(|b| b.len() + 1).sum());
            for b in &bodies {
                text.extend_from_slice(b);
                text.push(b'\n');
            }
            std::fs::write(file, text).unwrap();
            return serde_json::json!({"target": name, "bodies": bodies.len(), "prepare_s": prepare_s});
        }
        let mut r = run(&host, port, &root, path, bodies, conns, secs, success);
        r["target"] = name.into();
        r["prepare_s"] = prepare_s.into();
        r
    };
    let out = match mode.as_str() {
        "fedpki" => target("fedpki", "/1.0/sign", |st, b| {
            st == 201 && contains(b, b"\"crt\":")
        }),
        "stepca" => target("stepca", "/1.0/sign", |st, b| {
            st == 201 && contains(b, b"\"crt\":")
        }),
        "cfssl" => target("cfssl", "/api/v1/cfssl/authsign", |st, b| {
            st == 200 && contains(b, b"\"success\":true")
        }),
        // The HTTPS round trip alone: the same requests to a route that
        // answers 405 at once (no token, no CSR, no signature, no store).
        "floor" => target("floor", "/health", |st, _| st == 405),
        "path" => request_path(&o, num(&o, "count", 5_000)),
        "ceiling" => ceiling(secs),
        "micro" => micro(),
        "store" => store_cost(std::path::Path::new(&o["dir"]), secs),
        other => panic!("unknown mode {other}"),
    };
    println!("{out}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Unique keys are costly to make; unique CSRs are not: 64 keys, each
/// signing CSRs for many different subjects.
fn csr_keys() -> Vec<RingP256> {
    (0..64)
        .map(|_| {
            let k = PrivateKey::generate(KeyType::P256, &mut fedpki::facade::OsEntropy).unwrap();
            RingP256::new(&k).unwrap()
        })
        .collect()
}

/// Build `n` items on every core.
fn parallel<T: Send>(n: usize, make: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let make = &make;
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(make)
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn csr_for(keys: &[RingP256], i: usize) -> (Subject, San, String) {
    let name = format!("bench-{i}");
    let subject = Subject::new(&name).unwrap();
    let san = San::parse(&name).unwrap();
    let csr = fedpki_core::csr::build(&keys[i % keys.len()], &subject, std::slice::from_ref(&san))
        .unwrap()
        .to_pem()
        .unwrap();
    (subject, san, csr)
}

/// The CA folder of `--ca`, and one of its keys unlocked with the
/// password of `--password-file`.
fn load_ca(
    o: &HashMap<String, String>,
    key: fn(&fedpki::facade::CaPaths) -> PathBuf,
) -> (
    fedpki::facade::CaConfig,
    fedpki::facade::CaCerts,
    PrivateKey,
) {
    let paths = fedpki::facade::CaPaths::new(PathBuf::from(&o["ca"]));
    let config = fedpki::facade::CaConfig::load(&paths).unwrap();
    let certs = fedpki::facade::CaCerts::load(&paths, &config).unwrap();
    let pw = std::fs::read_to_string(&o["password-file"]).unwrap();
    let key = fedpki::facade::unlock_key(&key(&paths), pw.trim_end_matches(['\r', '\n'])).unwrap();
    (config, certs, key)
}

fn prepare_fedpki(o: &HashMap<String, String>, n: usize) -> (String, u16, Vec<u8>, Vec<Bytes>) {
    let (config, certs, prov) = load_ca(o, fedpki::facade::CaPaths::provisioner_key);
    let prov = RingP256::new(&prov).unwrap();
    let (host, port) = fedpki::facade::parse_ca_url(&config.ca_url).unwrap();
    let root_der = fedpki_core::issue::cert_der(&certs.root).unwrap();
    let audience = token::sign_audience(&config.ca_url);
    let bodies = signed_bodies(n, &config.provisioner.name, &audience, &root_der, &prov);
    (host, port, root_der, bodies)
}

/// step-ca's own requests: tokens signed with its JWK provisioner's key
/// (decrypted from ca.json's `encryptedKey` with `--password-file`), as
/// `step ca token` makes them (fedpki's `kid` is step's: RFC 7638).
fn prepare_stepca(o: &HashMap<String, String>, n: usize) -> (String, u16, Vec<u8>, Vec<Bytes>) {
    let home = PathBuf::from(&o["steppath"]);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("config/ca.json")).unwrap())
            .unwrap();
    let prov = &config["authority"]["provisioners"][0];
    let pw = std::fs::read_to_string(&o["password-file"]).unwrap();
    let key = fedpki_core::jwe::decrypt_p256_jwk(
        prov["encryptedKey"].as_str().expect("encryptedKey"),
        pw.trim_end_matches(['\r', '\n']).as_bytes(),
    )
    .unwrap();
    let signer = RingP256::new(&key).unwrap();
    let (host, port) = fedpki::facade::parse_ca_url(&o["url"]).unwrap();
    let root_pem = std::fs::read_to_string(home.join("certs/root_ca.crt")).unwrap();
    let root_der = fedpki_core::encoding::pem_one(&root_pem, "CERTIFICATE").unwrap();
    let audience = token::sign_audience(&o["url"]);
    let name = prov["name"].as_str().expect("provisioner name");
    let bodies = signed_bodies(n, name, &audience, &root_der, &signer);
    (host, port, root_der, bodies)
}

/// `n` sign requests, each a unique CSR and a unique token from `issuer`.
fn signed_bodies(
    n: usize,
    issuer: &str,
    audience: &str,
    root_der: &[u8],
    prov: &RingP256,
) -> Vec<Bytes> {
    let keys = csr_keys();
    let now = fedpki::facade::now();
    parallel(n, |i| {
        let (subject, san, csr) = csr_for(&keys, i);
        let ott = token::sign_with(
            &TokenRequest {
                issuer,
                subject: &subject,
                sans: std::slice::from_ref(&san),
                audience,
                root_der,
                now,
                ttl_secs: 3600,
                tls_key_sha256: None,
            },
            prov,
            &mut fedpki::facade::OsEntropy,
        )
        .unwrap();
        Bytes::from(serde_json::to_vec(&serde_json::json!({"csr": csr, "ott": ott})).unwrap())
    })
}

fn prepare_cfssl(o: &HashMap<String, String>, n: usize) -> (String, u16, Vec<u8>, Vec<Bytes>) {
    let (host, port) = fedpki::facade::parse_ca_url(&o["url"]).unwrap();
    let root_pem = std::fs::read_to_string(&o["root"]).unwrap();
    let root_der = fedpki_core::encoding::pem_one(&root_pem, "CERTIFICATE").unwrap();
    let key_bytes = fedpki_core::encoding::unhex(&o["auth-key"]).unwrap();
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key_bytes);
    let keys = csr_keys();
    let bodies = parallel(n, |i| {
        let (subject, _, csr) = csr_for(&keys, i);
        let request = serde_json::to_vec(&serde_json::json!({
            "certificate_request": csr,
            "hosts": [subject.as_str()],
            "profile": "",
        }))
        .unwrap();
        let tag = ring::hmac::sign(&hmac, &request);
        Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "token": b64(tag.as_ref()),
                "request": b64(&request),
            }))
            .unwrap(),
        )
    });
    (host, port, root_der, bodies)
}

struct Tally {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

#[allow(clippy::too_many_arguments)]
fn run(
    host: &str,
    port: u16,
    root_der: &[u8],
    path: &'static str,
    bodies: Vec<Bytes>,
    conns: usize,
    secs: u64,
    success: fn(u16, &[u8]) -> bool,
) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let prepared = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(root_der.to_vec()))
        .unwrap();
    let cfg = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let (tallies, elapsed) = rt.block_on(async {
        // Connect every client first: the clock covers requests only.
        let mut senders = Vec::new();
        for _ in 0..conns {
            let tcp = tokio::net::TcpStream::connect((host, port)).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(
                    rustls_pki_types::ServerName::try_from(host.to_owned()).unwrap(),
                    tcp,
                )
                .await
                .unwrap();
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            senders.push(sender);
        }
        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|mut sender| {
                let bodies = bodies.clone();
                let next = next.clone();
                let host = host.to_owned();
                tokio::spawn(async move {
                    let mut t = Tally {
                        ok: 0,
                        errors: 0,
                        first_error: None,
                        latencies_us: Vec::new(),
                    };
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { break };
                        let req = hyper::Request::post(path)
                            .header(hyper::header::HOST, &host)
                            .header(hyper::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(body.clone()))
                            .unwrap();
                        let sent = Instant::now();
                        let outcome = match sender.send_request(req).await {
                            Ok(resp) => {
                                let status = resp.status().as_u16();
                                match resp.into_body().collect().await {
                                    Ok(b) => {
                                        let b = b.to_bytes();
                                        if success(status, &b) {
                                            Ok(())
                                        } else {
                                            Err(format!(
                                                "{status}: {}",
                                                String::from_utf8_lossy(&b)
                                            ))
                                        }
                                    }
                                    Err(e) => Err(e.to_string()),
                                }
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                        match outcome {
                            Ok(()) => {
                                t.ok += 1;
                                t.latencies_us.push(us);
                            }
                            Err(e) => {
                                t.errors += 1;
                                t.first_error.get_or_insert(e);
                                if sender.ready().await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.unwrap());
        }
        (all, start.elapsed())
    });
    let ok: usize = tallies.iter().map(|t| t.ok).sum();
    let errors: usize = tallies.iter().map(|t| t.errors).sum();
    let first_error = tallies.iter().find_map(|t| t.first_error.clone());
    let mut lat: Vec<u32> = tallies.into_iter().flat_map(|t| t.latencies_us).collect();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    serde_json::json!({
        "conns": conns,
        "secs": elapsed.as_secs_f64(),
        "ok": ok,
        "errors": errors,
        "first_error": first_error,
        "per_s": ok as f64 / elapsed.as_secs_f64(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "prepared": prepared,
        "exhausted": next.load(Ordering::Relaxed) >= prepared,
    })
}

/// What one certificate costs the CA in public-key crypto (one ECDSA P-256
/// signature, two verifications: token and CSR), on every core, with ring.
fn ceiling(secs: u64) -> serde_json::Value {
    let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
    let key = PrivateKey::generate(KeyType::P256, &mut fedpki::facade::OsEntropy).unwrap();
    let signer = RingP256::new(&key).unwrap();
    let msg = vec![7u8; 600];
    let sig = signer.sign(&msg).unwrap();
    let public = key.public_key();
    let point = public.key_bytes().unwrap().to_vec();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let counts: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let vk = ring::signature::UnparsedPublicKey::new(
                        &ring::signature::ECDSA_P256_SHA256_ASN1,
                        &point,
                    );
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let s1 = signer.sign(&msg).unwrap();
                        vk.verify(&msg, &sig).unwrap();
                        vk.verify(&msg, &s1).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = counts.iter().sum();
    serde_json::json!({
        "target": "ceiling",
        "threads": threads,
        "per_s": total as f64 / start.elapsed().as_secs_f64(),
    })
}

/// A P-256 signer over `key`, a message of `len` bytes, its signature, and
/// ring's verifier for the key.
#[allow(clippy::type_complexity)]
fn p256_fixture(
    key: &PrivateKey,
    len: usize,
) -> (
    RingP256,
    Vec<u8>,
    Vec<u8>,
    ring::signature::UnparsedPublicKey<Vec<u8>>,
) {
    let signer = RingP256::new(key).unwrap();
    let msg = vec![7u8; len];
    let sig = signer.sign(&msg).unwrap();
    let point = key.public_key().key_bytes().unwrap().to_vec();
    let vk =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point);
    (signer, msg, sig, vk)
}

/// Single-thread speeds of the primitives a certificate costs.
fn micro() -> serde_json::Value {
    let key = PrivateKey::generate(KeyType::P256, &mut fedpki::facade::OsEntropy).unwrap();
    let (signer, msg, sig, vk) = p256_fixture(&key, 600);
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut n = 0u32;
        while start.elapsed() < Duration::from_secs(1) {
            f();
            n += 1;
        }
        f64::from(n) / start.elapsed().as_secs_f64()
    };
    let sign = time(&mut || {
        signer.sign(&msg).unwrap();
    });
    let verify = time(&mut || vk.verify(&msg, &sig).unwrap());
    let rc_verify = time(&mut || {
        fedpki_core::RUST_CRYPTO
            .verify(signer.signature_algorithm(), &key.public_key(), &msg, &sig)
            .unwrap();
    });
    serde_json::json!({"ring_sign_per_s": sign, "ring_verify_per_s": verify, "rustcrypto_verify_per_s": rc_verify})
}

/// The server's work for one certificate without the network: decode the
/// body, check the token and the CSR, issue, commit (in-memory ledger) and
/// write the answer, one request after the other on this thread; against
/// the crypto alone (one P-256 signature, two verifications) on the same
/// thread. The difference is what fedpki's own code costs per certificate.
fn request_path(o: &HashMap<String, String>, count: usize) -> serde_json::Value {
    let (config, certs, key) = load_ca(o, fedpki::facade::CaPaths::intermediate_key);
    let (_, _, _, bodies) = prepare_fedpki(o, count);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The same crypto, alone: a signature over a certificate-sized message
    // and two verifications.
    let (signer, msg, sig, vk) = p256_fixture(&key, 450);
    let store = fedpki::facade::Store::start(fedpki::facade::MemoryBackend::default()).unwrap();
    let mut authority = fedpki::facade::Authority::new(config, certs, key, store).unwrap();
    // `--roster yes`: every subject on a roster the authority decides by
    // (one role; the file is read once, then only its stamp per request).
    let roster = PathBuf::from(&o["ca"]).join("config/federation.toml");
    let rostered = o.get("roster").is_some_and(|r| r == "yes");
    if rostered {
        let mut text = String::from(
            "[roles.node]\nusages = [\"server-auth\", \"client-auth\"]\nlifetime = \"365d\"\n",
        );
        for i in 0..count {
            text.push_str(&format!(
                "\n[[participants]]\nname = \"bench-{i}\"\norg = \"bench\"\nrole = \"node\"\n"
            ));
        }
        std::fs::write(&roster, text).unwrap();
        authority = fedpki::facade::with_roster(authority, &PathBuf::from(&o["ca"])).unwrap();
    }
    // Both in alternating slices, so that a change of the machine's speed
    // weighs on both alike.
    let (mut path, mut crypto, mut wall) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for slice in bodies.chunks(count.div_ceil(20).max(1)) {
        let cpu0 = thread_cpu();
        let start = Instant::now();
        rt.block_on(async {
            for body in slice {
                let answer = fedpki::facade::answer_sign(
                    &authority,
                    body,
                    std::net::Ipv4Addr::LOCALHOST.into(),
                )
                .await;
                let status = answer.status().as_u16();
                let body = answer.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
            }
        });
        path += thread_cpu() - cpu0;
        wall += start.elapsed();
        let cpu0 = thread_cpu();
        for _ in slice {
            signer.sign(&msg).unwrap();
            vk.verify(&msg, &sig).unwrap();
            vk.verify(&msg, &sig).unwrap();
        }
        crypto += thread_cpu() - cpu0;
    }
    if rostered {
        let _ = std::fs::remove_file(&roster);
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
    let (path_us, crypto_us, wall_us) = (per(path), per(crypto), per(wall));
    serde_json::json!({
        "count": count,
        "path_cpu_us": path_us,
        "path_wall_us": wall_us,
        "crypto_cpu_us": crypto_us,
        "own_code_cpu_us": path_us - crypto_us,
    })
}

/// CPU time this thread has run (`CLOCK_THREAD_CPUTIME_ID`, exact to the
/// moment, where /proc's schedstat is only brought up to date at the
/// scheduler's ticks).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// What the ledger costs: commits of `batch` issuances each (a fresh token
/// id, a 600-byte certificate record under a time-ordered serial, the audit
/// line) through the server's own store (redb and audit log) in a folder
/// on the CA's disk, on this thread, for `secs` per batch size. The
/// per-commit cost against the batch size separates what a commit costs
/// whatever it carries (fsync, page writes, redb's bookkeeping) from what
/// each certificate adds.
fn store_cost(dir: &std::path::Path, secs: u64) -> serde_json::Value {
    use fedpki::facade::{Backend, Burn, CertRecord, Change, Durable, StorePaths};
    let now = fedpki::facade::now_ms() / 1000;
    let mut rows = Vec::new();
    let mut n: u64 = 0;
    for batch in [1usize, 4, 16, 64] {
        let sub = dir.join(format!("store-{batch}"));
        std::fs::create_dir_all(&sub).unwrap();
        let paths = StorePaths {
            index: sub.join("ledger.redb"),
            log: sub.join("audit.log"),
        };
        let mut backend =
            Durable::open(std::sync::Arc::new(fedpki::facade::OsDisk), &paths).unwrap();
        let (cpu0, start) = (thread_cpu(), Instant::now());
        let mut commits = 0u64;
        while start.elapsed() < Duration::from_secs(secs) {
            let changes: Vec<Change> = (0..batch)
                .map(|_| {
                    n += 1;
                    Change::Issue {
                        token: Some(Burn {
                            jti: format!("{n:043}"),
                            until: now + 3600,
                        }),
                        cert: CertRecord {
                            serial: format!("{:012x}{n:020x}", fedpki::facade::now_ms()),
                            subject: format!("bench-{n}"),
                            sans: vec![format!("bench-{n}")],
                            not_after: now + 365 * 86_400,
                            issued_at: now,
                            der: vec![0x5a; 600],
                            // Every certificate its own key, as in service.
                            key: format!("{n:064x}"),
                            issuer: "ab".repeat(20),
                        },
                        by: None,
                        from: None,
                    }
                })
                .collect();
            backend.commit(&changes).unwrap();
            commits += 1;
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = (thread_cpu() - cpu0).as_secs_f64();
        let per_commit = |t: f64| t * 1e6 / commits as f64;
        rows.push(serde_json::json!({
            "batch": batch,
            "commits_per_s": commits as f64 / wall,
            "certs_per_s": (commits * batch as u64) as f64 / wall,
            "wall_us_per_commit": per_commit(wall),
            "cpu_us_per_commit": per_commit(cpu),
            "cpu_us_per_cert": per_commit(cpu) / batch as f64,
        }));
    }
    serde_json::json!({"target": "store", "rows": rows})
}
