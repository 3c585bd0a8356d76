//! What an attacker tried (issue 11), one test per class of attack, each on
//! the real binary: the exact refusal, and that nothing was answered or
//! written that should not have been. The manual flow's attacks (a greedy
//! collaborator, a swapped root) live beside that flow in
//! `manual_and_offline.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fedpki_core::encoding::b64url;
use fedpki_core::token::{self, Bundle};
use fedpki_core::{PrivateKey, SigningKey};
use fedpki_tests::disk::SmallDisk;
use fedpki_tests::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `pki get-token -n NAME -o FILE`: the token file's path.
fn token_file(ca: &TestCa, name: &str) -> std::path::PathBuf {
    let file = ca.tmp.path().join(format!("{name}.token"));
    let out = ok(ca.get_token(name, &["-o", file.to_str().unwrap()]));
    assert!(stdout(&out).is_empty(), "the token goes to the file only");
    assert!(stderr(&out).contains(&format!("-t @{}", file.display())));
    file
}

/// Stop `child` and read what it wrote to the pipe `pipe` takes.
fn kill_and_read(
    child: &mut std::process::Child,
    pipe: impl FnOnce(&mut std::process::Child) -> Option<Box<dyn Read>>,
) -> String {
    child.kill().unwrap();
    child.wait().unwrap();
    let mut text = String::new();
    pipe(child).unwrap().read_to_string(&mut text).unwrap();
    text
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_with_a_certificate_for_the_cas_host_cannot_pose_as_the_ca() {
    // The README's demo: the aggregator is `localhost`, like the CA, which
    // its operator allowed.
    let ca = TestCa::install_with(&["--node-on-ca-host", "allow"]);
    let server = ca.serve();
    let agg = ca.certify("localhost");
    let victim_token = token_file(&ca, "victim");
    server.stop();

    // The aggregator takes over the CA's address with its own certificate.
    let mut impostor = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(ca.port.to_string())
        .arg("-cert")
        .arg(agg.join("localhost.crt"))
        .arg("-cert_chain")
        .arg(agg.join("localhost.crt"))
        .arg("-key")
        .arg(agg.join("localhost.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(ca.port);
    // What makes it dangerous: trusting the root and checking the name, as
    // a plain TLS client does, accepts it.
    let plain = Command::new("openssl")
        .args([
            "s_client",
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
        ])
        .arg("-connect")
        .arg(format!("localhost:{}", ca.port))
        .arg("-CAfile")
        .arg(agg.join("root_ca.crt"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains("Verify return code: 0 (ok)"),
        "the impostor's certificate chains to the root for the CA's name"
    );

    let dir = ca.workdir("victim");
    let arg = format!("@{}", victim_token.display());
    let certify = || {
        fedpki(
            &dir,
            &[
                "pki",
                "certify",
                "-n",
                "victim",
                "-t",
                &arg,
                "-c",
                dir.to_str().unwrap(),
            ],
        )
    };
    let out = certify();
    refused(&out, "not the CA server's key");
    refused(&out, "nothing was sent to it");
    assert!(!dir.join("victim.key").exists() && !dir.join("victim.crt").exists());
    let seen = kill_and_read(&mut impostor, |c| c.stdout.take().map(|o| Box::new(o) as _));
    let jwt = Bundle::parse(std::fs::read_to_string(&victim_token).unwrap().trim())
        .unwrap()
        .0
        .jwt;
    assert!(
        !seen.contains("POST") && !seen.contains(&jwt[..40]),
        "the impostor received: {seen:?}"
    );

    // The token was neither spent nor leaked: the real CA takes it.
    let _server = ca.serve();
    ok(certify());
    // The CA's own TLS certificate is a server certificate only: it cannot
    // act as a node's client certificate.
    let text = String::from_utf8_lossy(
        &Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect localhost:{} -CAfile {} </dev/null 2>/dev/null \
                 | openssl x509 -noout -ext extendedKeyUsage",
                ca.port,
                agg.join("root_ca.crt").display()
            ))
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("Client"), "{text}");
}

#[test]
fn the_token_stays_out_of_the_process_list() {
    let ca = TestCa::install();
    let file = token_file(&ca, "col1");
    assert_eq!(mode(&file), 0o600, "the token file is the user's alone");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let jwt = Bundle::parse(&token).unwrap().0.jwt;

    // A CA address that accepts connections and never answers, so the
    // client waits there long enough for another process to look at it.
    let listener = std::net::TcpListener::bind(("127.0.0.1", ca.port)).unwrap();
    let dir = ca.workdir("col1");
    for form in ["-", "@FILE"] {
        let arg = if form == "-" {
            "-".to_owned()
        } else {
            format!("@{}", file.display())
        };
        let mut child = Command::new(bin())
            .args(["pki", "certify", "-n", "col1", "-t", &arg, "-c"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if form == "-" {
            stdin.write_all(token.as_bytes()).unwrap();
        }
        drop(stdin);
        let (_held, _) = listener.accept().unwrap();
        // What any local user can read of the process: its command line.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains(&format!("-t {arg}")), "{cmdline}");
        assert!(!cmdline.contains(&jwt[..40]), "{form}: token in {cmdline}");
        let err = kill_and_read(&mut child, |c| c.stderr.take().map(|e| Box::new(e) as _));
        assert!(
            !err.contains("Note: a token given on the command line"),
            "{err}"
        );
    }
    // The OpenFL form still works, with a note.
    let out = fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "certify",
            "-n",
            "other",
            "-t",
            &token,
            "-c",
            dir.to_str().unwrap(),
        ],
    );
    refused(&out, "this token is for \"col1\", not \"other\"");
    assert!(stderr(&out).contains("Note: a token given on the command line can be read"));

    // A request file that carries a token is a secret too.
    let req = ca.tmp.path().join("col1.req");
    ok(fedpki(
        ca.tmp.path(),
        &[
            "pki",
            "csr",
            "-n",
            "col1",
            "-t",
            &format!("@{}", file.display()),
            "-c",
            dir.to_str().unwrap(),
            "-o",
            req.to_str().unwrap(),
        ],
    ));
    assert_eq!(mode(&req), 0o600);
    assert!(std::fs::read_to_string(&req).unwrap().contains(&token));
}

/// A JWT signed by the CA's own provisioner key with any header and claims.
fn raw_jwt(ca: &TestCa, header: serde_json::Value, claims: serde_json::Value) -> String {
    let key =
        fedpki::facade::unlock_key(&ca.dir.join("secrets/provisioner_key"), PASSWORD).unwrap();
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = token::ecdsa_der_to_fixed(&key.sign(input.as_bytes()).unwrap()).unwrap();
    format!("{input}.{}", b64url(&sig))
}

fn claims(ca: &TestCa, nbf: u64, exp: u64, jti: &str) -> serde_json::Value {
    let now = fedpki::facade::now().0;
    serde_json::json!({
        "iss": "provisioner", "sub": "col1", "sans": ["col1"],
        "aud": format!("https://{}/1.0/sign", ca.ca_url),
        "sha": fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&ca.root_der())),
        "nbf": nbf, "iat": now, "exp": exp, "jti": jti,
    })
}

fn csr(name: &str) -> String {
    let key =
        PrivateKey::generate(fedpki_core::KeyType::P256, &mut fedpki::facade::OsEntropy).unwrap();
    let subject = fedpki_core::name::Subject::new(name).unwrap();
    let san = fedpki_core::name::San::parse(name).unwrap();
    fedpki_core::csr::build(&key, &subject, &[san])
        .unwrap()
        .to_pem()
        .unwrap()
}

#[test]
fn tokens_that_break_the_rules_are_refused() {
    let ca = TestCa::install_with(&["--max-token-ttl", "2d"]);
    let _server = ca.serve();
    let now = fedpki::facade::now().0;
    let header = serde_json::json!({"alg": "ES256", "typ": "JWT"});
    let crit = serde_json::json!({"alg": "ES256", "typ": "JWT", "crit": ["exp"], "exp": 1});
    let cases = [
        (
            crit,
            claims(&ca, now, now + 300, "a1"),
            "critical extensions (crit)",
        ),
        (
            header.clone(),
            claims(&ca, now, now, "a2"),
            "expires (exp) before it becomes valid (nbf)",
        ),
        (
            header.clone(),
            claims(&ca, now, now + 3 * 86400, "a3"),
            "it lives 3 days, longer than this CA accepts (2 days)",
        ),
    ];
    for (h, c, needle) in cases {
        let body = serde_json::json!({"csr": csr("col1"), "ott": raw_jwt(&ca, h, c)});
        let (status, answer) = ca.post_sign(body.to_string().into_bytes());
        assert_eq!(status, 401, "{needle}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    // The same claims within the rules are taken: the refusals above were
    // for what they say, not for anything else.
    let body = serde_json::json!({"csr": csr("col1"), "ott": raw_jwt(&ca, header, claims(&ca, now, now + 86400, "a4"))});
    let (status, answer) = ca.post_sign(body.to_string().into_bytes());
    assert_eq!(status, 201, "{answer}");

    // get-token keeps to the CA's limit.
    let out = ca.get_token("col2", &["--ttl", "3d"]);
    refused(
        &out,
        "--ttl 3d: a token lives from 1 s up to this CA's limit of 2d",
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn names_that_are_paths_or_disguised_are_refused_everywhere() {
    let ca = TestCa::install();
    let token = ca.token("col1", &[]);
    for name in [
        "../evil",
        "/etc/cron.d/x",
        "a/b",
        "..",
        "col\u{202e}1",
        "co\u{200b}l1",
        "\u{430}gg",
    ] {
        let out = ca.get_token(name, &[]);
        refused(&out, "is not a valid name");
        assert!(stdout(&out).is_empty(), "{name:?}: no token");
        assert!(
            stderr(&out).is_ascii(),
            "{name:?} is printed escaped: {}",
            stderr(&out)
        );
        let before = snapshot(ca.tmp.path());
        let out = fedpki(ca.tmp.path(), &["pki", "csr", "-n", name, "-o", "x.req"]);
        refused(&out, "is not a valid name");
        let out = fedpki(ca.tmp.path(), &["pki", "certify", "-n", name, "-t", &token]);
        refused(&out, "is not a valid name");
        assert_eq!(before, snapshot(ca.tmp.path()), "{name:?} wrote nothing");
    }
    // A token made to carry a terminal escape (signed by the CA itself, so
    // only its text is hostile) is shown escaped by `pki inspect`.
    let now = fedpki::facade::now().0;
    let mut c = claims(&ca, now, now + 300, "e1");
    c["sub"] = serde_json::json!("col1\u{1b}[2J\u{202e}");
    let jwt = raw_jwt(&ca, serde_json::json!({"alg": "ES256"}), c);
    let root = std::fs::read_to_string(ca.dir.join("certs/root_ca.crt")).unwrap();
    let bundle = Bundle {
        jwt,
        root_pem: root,
    }
    .encode();
    let file = ca.tmp.path().join("hostile.token");
    std::fs::write(&file, bundle).unwrap();
    let out = ok(fedpki(
        ca.tmp.path(),
        &["pki", "inspect", file.to_str().unwrap()],
    ));
    let text = stdout(&out);
    assert!(
        text.contains("subject:     col1\\u{1b}[2J\\u{202e}"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
}

#[test]
fn blank_passwords_and_special_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "        \n").unwrap();
    let out = fedpki(
        tmp.path(),
        &[
            "pki",
            "install",
            "-p",
            "ca",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    refused(&out, "the CA password is empty or only spaces");
    assert!(!tmp.path().join("ca/config").exists());

    // Special files report size 0 and never end: each input refuses them.
    for args in [
        vec!["collaborator", "certify", "-r", "/dev/zero", "-s"],
        vec!["pki", "import", "/dev/zero"],
        vec!["pki", "inspect", "/dev/zero"],
        vec!["pki", "certify", "-n", "col1", "-t", "@/dev/zero"],
    ] {
        let out = fedpki(tmp.path(), &args);
        refused(&out, "/dev/zero is not a regular file");
    }
}

#[test]
fn every_answer_keeps_browsers_on_https_and_off_sniffing() {
    let ca = TestCa::install();
    let _server = ca.serve();
    for path in ["/health", "/roots", "/no-such-route"] {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-D", "-", "--cacert"])
            .arg(ca.dir.join("certs/root_ca.crt"))
            .arg(format!("https://localhost:{}{path}", ca.port))
            .output()
            .unwrap();
        let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(
            headers.contains("strict-transport-security: max-age=31536000"),
            "{path}: {headers}"
        );
        assert!(
            headers.contains("x-content-type-options: nosniff"),
            "{path}: {headers}"
        );
    }
}

#[test]
fn a_ca_folder_others_can_write_is_refused_and_the_lock_cannot_be_borrowed() {
    let ca = TestCa::install();
    assert_eq!(mode(&ca.dir), 0o700);
    assert_eq!(mode(&ca.dir.join("config/ca.json")), 0o600);
    let token_for_col1 = |ca: &TestCa| ca.get_token("col1", &[]);
    let run = |ca: &TestCa| {
        fedpki(
            ca.tmp.path(),
            &[
                "pki",
                "run",
                "-p",
                ca.dir_arg(),
                "--password-file",
                ca.pw_arg(),
            ],
        )
    };
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();

    chmod(&ca.dir, 0o777);
    for out in [token_for_col1(&ca), run(&ca)] {
        refused(&out, "can be written by other users (mode 777)");
        assert!(stdout(&out).is_empty());
    }
    chmod(&ca.dir, 0o700);
    chmod(&ca.dir.join("config"), 0o775);
    refused(&run(&ca), "config can be written by other users (mode 775)");
    chmod(&ca.dir.join("config"), 0o700);
    // Another user's provisioner config.
    let config = ca.dir.join("config/ca.json");
    std::os::unix::fs::chown(&config, Some(65534), None).unwrap();
    refused(&token_for_col1(&ca), "belongs to user 65534");
    std::os::unix::fs::chown(&config, Some(0), None).unwrap();
    ok(token_for_col1(&ca));

    // A lock file pointing at a file of root's: nothing follows it.
    let precious = ca.tmp.path().join("precious");
    std::fs::write(&precious, b"keep me").unwrap();
    // (install, which holds the lock while it writes, left the file.)
    std::fs::remove_file(ca.dir.join("fedpki.lock")).unwrap();
    std::os::unix::fs::symlink(&precious, ca.dir.join("fedpki.lock")).unwrap();
    refused(&run(&ca), "fedpki.lock is a symbolic link");
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
    std::fs::remove_file(ca.dir.join("fedpki.lock")).unwrap();

    // Someone else holds the lock and writes an unrelated pid into it:
    // uninstall signals nobody.
    let mut bystander = Command::new("sleep").arg("60").spawn().unwrap();
    let lock = ca.dir.join("fedpki.lock");
    std::fs::write(&lock, format!("{}\n", bystander.id())).unwrap();
    chmod(&lock, 0o600);
    let mut holder = Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fedpki::facade::server_pid(&fedpki::facade::CaPaths::new(&ca.dir))
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "flock did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = fedpki(
        ca.tmp.path(),
        &["pki", "uninstall", "-p", ca.dir_arg(), "--yes"],
    );
    refused(
        &out,
        "is locked by a server whose pid is unknown; stop it by hand",
    );
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander was not signalled"
    );
    assert!(
        ca.dir.join("config/ca.json").exists(),
        "nothing was removed"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn a_full_disk_refuses_with_503_reports_it_and_recovers_by_itself() {
    let disk = SmallDisk::mount("16m");
    let tmp = disk.path();
    let pw = tmp.join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let port = free_port();
    let ca_url = format!("localhost:{port}");
    ok(fedpki(
        tmp,
        &[
            "pki",
            "install",
            "-p",
            "ca",
            "--ca-url",
            &ca_url,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    ));
    let ca_dir = tmp.join("ca");
    let serve = || {
        Server::start(
            tmp,
            &[
                "pki",
                "run",
                "-p",
                ca_dir.to_str().unwrap(),
                "--password-file",
                pw.to_str().unwrap(),
            ],
        )
    };
    let server = serve();
    let root = std::fs::read_to_string(ca_dir.join("certs/root_ca.crt")).unwrap();
    let root_der = fedpki_core::encoding::pem_one(&root, "CERTIFICATE").unwrap();
    let key =
        fedpki::facade::unlock_key(&ca_dir.join("secrets/provisioner_key"), PASSWORD).unwrap();
    let sign = |name: &str, jti_seed: &str| {
        let now = fedpki::facade::now().0;
        let claims = serde_json::json!({
            "iss": "provisioner", "sub": name, "sans": [name],
            "aud": format!("https://{ca_url}/1.0/sign"),
            "sha": fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(&root_der)),
            "nbf": now, "iat": now, "exp": now + 600, "jti": jti_seed,
        });
        let input = format!(
            "{}.{}",
            b64url(serde_json::json!({"alg": "ES256"}).to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = token::ecdsa_der_to_fixed(&key.sign(input.as_bytes()).unwrap()).unwrap();
        let body =
            serde_json::json!({"csr": csr(name), "ott": format!("{input}.{}", b64url(&sig))});
        let rt = tokio::runtime::Runtime::new().unwrap();
        let resp = rt
            .block_on(fedpki::facade::https_request(
                "localhost",
                port,
                &root_der,
                "POST",
                "/1.0/sign",
                Some(body.to_string().into_bytes()),
            ))
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        (resp.status, json)
    };
    let health = || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let resp = rt
            .block_on(fedpki::facade::https_request(
                "localhost",
                port,
                &root_der,
                "GET",
                "/health",
                None,
            ))
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        (resp.status, json)
    };
    assert_eq!(sign("before", "j-before").0, 201);

    let filler = disk.fill();
    // A file's last page may still take a small record: ask until the disk
    // refuses (every request answered 201 on the way must survive too).
    let mut answered = vec!["before".to_owned()];
    let refused_name = loop {
        let name = format!("during{}", answered.len());
        let (status, answer) = sign(&name, &format!("j-{name}"));
        if status == 503 {
            assert!(
                answer["message"].as_str().unwrap().contains("disk is full"),
                "{answer}"
            );
            break name;
        }
        assert_eq!(status, 201, "{answer}");
        answered.push(name);
        assert!(answered.len() < 50, "the full disk never refused");
        // Give a checkpoint the chance to meet the full disk too.
        std::thread::sleep(Duration::from_millis(300));
    };
    let (status, answer) = health();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["store"], "disk full", "{answer}");

    // Space is back: the CA resumes by itself, and the token refused with
    // 503 was not spent (nothing of that request was recorded).
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let retried = loop {
        let (status, answer) = sign(&refused_name, &format!("j-{refused_name}"));
        if status == 201 || Instant::now() > deadline {
            break (status, answer);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(retried.0, 201, "{}", retried.1);
    answered.push(refused_name);
    assert_eq!(sign("after", "j-after").0, 201);
    answered.push("after".into());
    assert_eq!(health().0, 200);
    server.stop();
    // Nothing answered was lost: a fresh start lists all three, and the
    // audit log is intact.
    let _again = serve();
    let out = ok(fedpki(
        tmp,
        &["pki", "list", "-p", ca_dir.to_str().unwrap(), "--json"],
    ));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let subjects: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    for name in &answered {
        assert!(
            subjects.contains(&name.as_str()),
            "{name} missing from {subjects:?}"
        );
    }
    ok(fedpki(
        tmp,
        &["pki", "audit", "-p", ca_dir.to_str().unwrap()],
    ));
}
