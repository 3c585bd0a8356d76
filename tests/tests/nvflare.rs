//! NVFlare (nvflare 2.9.0, from PyPI, in the tests' Python environment) on
//! fedpki's certificates. A federation from an offline root and a roster
//! (server, two sites, an admin with study memberships), each kit written
//! by `pki certify --layout nvflare`, then NVFlare's own code:
//! - its cellnet (gRPC over mutual TLS, one cell per process as NVFlare
//!   runs them): a site connects and is answered; a site presenting
//!   another site's certificate is refused by NVFlare's identity check;
//! - its client authentication (`IdentityAsserter`, `IdentityVerifier`:
//!   the name and a nonce signed with RSA-PSS, so the kits hold RSA keys,
//!   `--key-type rsa2048`), which verifies fedpki's chain and refuses a
//!   site claiming another's name;
//! - its admin-certificate check (`validate_admin_leaf_cert`) and its
//!   subject reader (`_cert_to_submitter`: name, organisation, role);
//! - the study memberships: URI SANs under NVFlare's v1 root, each study
//!   matching 2.9.0's own study-name rule (`type_pattern_mapping`).
//!
//! And NVFlare's job CA (#5325): its CSR, made with `cryptography` as
//! NVFlare makes keys, signed by `pki root sign --profile job-ca` (pathlen
//! 0, the `https://nvidia.com/nvflare/v1/ca/job` marker, in the root's
//! ledger); a job leaf it signs verifies under the root (OpenSSL), and a
//! CA it signs does not. nvflare 2.9.0 has no job-CA reader of its own
//! (`nvflare/fuel/sec/cert_uri.py` is on NVFlare's main branch only), so
//! the marker is checked by that file's rule, read from NVFlare's source.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use fedpki_tests::site::Site;
use fedpki_tests::*;

const ROSTER: &str = r#"
project = "demo"

[roles.server]
usages = ["server-auth", "client-auth"]
lifetime = "30d"
max-key-age = "365d"

[roles.client]
usages = ["client-auth"]
lifetime = "30d"
max-key-age = "365d"

[roles.lead]
usages = ["client-auth"]
lifetime = "30d"
uris = ["https://nvidia.com/nvflare/v1/project/{project}/study/{study}"]

[[participants]]
name = "server1"
org = "nvidia"
role = "server"
sans = ["server1", "localhost"]

[[participants]]
name = "site-1"
org = "hospital_a"
role = "client"

[[participants]]
name = "site-2"
org = "hospital_b"
role = "client"

[[participants]]
name = "admin1"
org = "nvidia"
role = "lead"
studies = ["lung", "brain-mri"]
"#;

/// One cell per process: `server KITS PORT` serves until its standard
/// input closes; `client KITS PORT FQCN KIT` asks the server once.
const CELL: &str = r#"
import logging, sys, time
from nvflare.fuel.f3.cellnet.core_cell import CoreCell
from nvflare.fuel.f3.cellnet.defs import MessageHeaderKey, ReturnCode
from nvflare.fuel.f3.cellnet.utils import make_reply, new_cell_message
from nvflare.fuel.f3.drivers.driver_params import DriverParams

logging.basicConfig(level=logging.ERROR)
mode, kits, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
url = f"grpcs://localhost:{port}"

def creds(name, side):
    d = f"{kits}/{name}"
    return {DriverParams.CA_CERT.value: f"{d}/rootCA.pem",
            f"{side}_cert": f"{d}/{side}.crt", f"{side}_key": f"{d}/{side}.key"}

if mode == "server":
    cell = CoreCell(fqcn="server", root_url=url, secure=True, credentials=creds("server1", "server"))
    cell.register_request_cb("t", "hello", lambda r: make_reply(ReturnCode.OK, body=b"hi " + r.payload))
    cell.start()
    print("serving", flush=True)
    sys.stdin.read()
    cell.stop()
else:
    fqcn, name = sys.argv[4], sys.argv[5]
    cell = CoreCell(fqcn=fqcn, root_url=url, secure=True, credentials=creds(name, "client"),
                    auth_identity_map={"server": "server1"})
    cell.start()
    deadline, rc, body = time.time() + 15, None, b""
    while time.time() < deadline:
        reply = cell.send_request("t", "hello", "server", new_cell_message({}, fqcn.encode()), timeout=2)
        rc, body = reply.get_header(MessageHeaderKey.RETURN_CODE), reply.payload or b""
        if rc == ReturnCode.OK:
            break
        time.sleep(0.5)
    print(rc, body.decode(errors="replace"), flush=True)
    cell.stop()
"#;

/// NVFlare's readers on the admin's certificate (path on stdin): what
/// each says, as JSON.
const ADMIN: &str = r#"
import json, re, sys
from cryptography import x509
from nvflare.apis.job_def import DEFAULT_STUDY
from nvflare.apis.utils.format_check import type_pattern_mapping
from nvflare.fuel.sec.admin_cert import validate_admin_leaf_cert
from nvflare.lighter.utils import _cert_to_submitter, load_crt

cert = load_crt(sys.stdin.read().strip())
validate_admin_leaf_cert(cert)
prefix = "https://nvidia.com/nvflare/v1/project/"
studies = []
for uri in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier):
    if not uri.startswith(prefix):
        continue
    project, sep, study = uri[len(prefix):].partition("/study/")
    assert sep and re.fullmatch(r"(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+", project), uri
    assert study != DEFAULT_STUDY and re.fullmatch(type_pattern_mapping["study"], study), uri
    studies.append([project, study])
print(json.dumps({"submitter": list(_cert_to_submitter(cert)), "studies": sorted(studies)}))
"#;

/// NVFlare's client authentication (its registration's identity
/// assertion: the common name and a nonce signed with RSA-PSS, the chain
/// checked against the kit's root, clientAuth required). argv: the kit
/// whose key signs, the name it asserts. Prints the verifier's verdict.
const ASSERT: &str = r#"
import sys
from cryptography.x509.oid import ExtendedKeyUsageOID
from nvflare.lighter.utils import load_crt_chain
from nvflare.private.fed.utils.identity_utils import IdentityAsserter, IdentityVerifier
kit, name = sys.argv[1], sys.argv[2]
asserter = IdentityAsserter(private_key_file=kit + "/client.key", cert_file=kit + "/client.crt")
signature = asserter.sign_common_name("n0nce")
chain = load_crt_chain(kit + "/client.crt")
verifier = IdentityVerifier(root_cert_file=kit + "/rootCA.pem")
try:
    ok = verifier.verify_common_name(name, "n0nce", chain[0], signature, intermediate_certs=chain[1:],
                                     expected_eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    print("verified" if ok else "refused")
except Exception as e:
    print("refused", type(e).__name__)
"#;

/// A job CA's key and CSR, as NVFlare's tools make them (its key to
/// `job_ca.key`, its CSR on stdout).
const JOB_CA_CSR: &str = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open(sys.argv[1], "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "job-ca"),
                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Federation")])
csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
sys.stdout.write(csr.public_bytes(serialization.Encoding.PEM).decode())
"#;

/// The job CA as NVFlare's reader would take it, and what it signs: a job
/// leaf and (to be refused) a CA. argv: job_ca.crt job_ca.key OUT_DIR.
const JOB_CA_USE: &str = r#"
import datetime, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
uris = ca.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
    x509.UniformResourceIdentifier)
now = datetime.datetime.now(datetime.timezone.utc)
def make(cn, is_ca, path, issuer, issuer_key):
    k = ec.generate_private_key(ec.SECP256R1())
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(issuer.subject).public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False))
    if is_ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier("https://nvidia.com/nvflare/v1/job/job-1")]), critical=False)
    cert = b.sign(issuer_key, hashes.SHA256())
    open(path, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    return cert, k
out = sys.argv[3]
make("site-1.job-1", False, out + "/job_leaf.crt", ca, key)
sub, sub_key = make("rogue-ca", True, out + "/job_sub_ca.crt", ca, key)
make("under-rogue", False, out + "/under_rogue.crt", sub, sub_key)
print(json.dumps({"ca": bc.ca, "pathlen": bc.path_length, "uris": uris,
                  "subject": ca.subject.rfc4514_string()}))
"#;

fn python(site: &Site, script: &str, args: &[&str]) -> std::process::Command {
    // One file per script, named by its text.
    let id = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(script.as_bytes())[..6]);
    let file = site.path(&format!("script-{id}.py"));
    std::fs::write(&file, script).unwrap();
    let mut c = Command::new(python::interpreter());
    c.arg(&file).args(args).current_dir(site.tmp.path());
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "python: {}", stderr(&out));
    stdout(&out)
}

/// A client cell's answer: the return code and the body.
fn ask(site: &Site, kits: &Path, port: u16, fqcn: &str, kit: &str) -> String {
    let port = port.to_string();
    let mut c = python(
        site,
        CELL,
        &["client", kits.to_str().unwrap(), &port, fqcn, kit],
    );
    c.stdin(Stdio::null());
    run(c).trim().to_owned()
}

#[test]
fn an_nvflare_federation_runs_on_fedpki_kits_and_its_job_ca_under_the_root() {
    let site = Site::new();
    let fingerprint = site.root_init("root", "--name Federation-Root");
    ok(site.pki("install -p @ca --ca-url $URL --offline-root -o @int.req --node-on-ca-host allow"));
    ok(site.pki("root sign -p @root @int.req -o @int.signed --yes"));
    ok(site.pki(&format!(
        "install -p @ca --complete @int.signed --root-fingerprint {fingerprint}"
    )));
    std::fs::write(site.path("ca/config/federation.toml"), ROSTER).unwrap();
    // Each kit in the site's folder of its name.
    let kits = site.tmp.path().to_owned();
    // site-2 across the air gap (the CA's server stopped): request file,
    // `pki sign`, then `pki import --layout nvflare`.
    let token = site.token("ca", "site-2");
    let site2 = kits.join("site-2");
    let cwd = site.tmp.path();
    let kit2 = site2.to_str().unwrap();
    ok(fedpki(
        cwd,
        &[
            "pki",
            "csr",
            "-n",
            "site-2",
            "-t",
            &token,
            "-c",
            kit2,
            "-o",
            "s2.req",
            "--key-type",
            "rsa2048",
        ],
    ));
    ok(site.pki("sign -p @ca @s2.req -o @s2.signed --yes"));
    ok(fedpki(
        cwd,
        &[
            "pki",
            "import",
            "s2.signed",
            "-c",
            kit2,
            "--layout",
            "nvflare",
        ],
    ));
    let _ca = site.serve("ca");
    for name in ["server1", "site-1", "admin1"] {
        let token = site.token("ca", name);
        let kit = ["--layout", "nvflare", "--key-type", "rsa2048"];
        ok(site.certify_with(name, &token, &kit));
    }
    for (kit, files) in [
        ("server1", ["rootCA.pem", "server.crt", "server.key"]),
        ("site-1", ["rootCA.pem", "client.crt", "client.key"]),
        ("site-2", ["rootCA.pem", "client.crt", "client.key"]),
        ("admin1", ["rootCA.pem", "client.crt", "client.key"]),
    ] {
        for file in files {
            assert!(kits.join(kit).join(file).is_file(), "{kit}/{file}");
        }
    }
    assert!(!kits.join("site-1/server.crt").exists());

    // NVFlare's cellnet: the server in a process of its own.
    let port = free_port();
    let mut server = python(
        &site,
        CELL,
        &["server", kits.to_str().unwrap(), &port.to_string()],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "serving");
    let answered = ask(&site, &kits, port, "site-1", "site-1");
    let impostor = ask(&site, &kits, port, "site-3", "site-2");
    server.stdin.take().unwrap().write_all(b"").unwrap();
    let out = server.wait_with_output().unwrap();
    let server_log = stderr(&out);
    assert_eq!(answered, "ok hi site-1", "{server_log}");
    assert!(impostor.starts_with("target_unreachable"), "{impostor}");
    assert!(
        server_log.contains(
            "authenticated as 'site-2' but claimed endpoint 'site-3' requires identity 'site-3'"
        ),
        "{server_log}"
    );

    // NVFlare's identity assertion with each site's RSA key: site-1 as
    // itself is verified; site-2's key and certificate claiming site-1
    // are not.
    let assert_as = |kit: &str, name: &str| {
        let kit = kits.join(kit);
        run(python(&site, ASSERT, &[kit.to_str().unwrap(), name]))
            .trim()
            .to_owned()
    };
    assert_eq!(assert_as("site-1", "site-1"), "verified");
    assert_eq!(assert_as("site-2", "site-2"), "verified");
    assert_eq!(assert_as("site-2", "site-1"), "refused CNMismatch");

    // The admin's certificate, as NVFlare reads it.
    let mut c = python(&site, ADMIN, &["admin"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let crt = kits.join("admin1/client.crt");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(crt.to_str().unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "submitter": ["admin1", "nvidia", "lead"],
            "studies": [["demo", "brain-mri"], ["demo", "lung"]],
        })
    );

    // The job CA, signed by the offline root; what is not a CSR signed by
    // its own key is refused and nothing is written.
    refused(
        &site.pki("root sign -p @root --profile job-ca @int.req -o @wrong.crt --yes"),
        "the job CA's CSR",
    );
    assert!(!site.path("wrong.crt").exists());
    let csr = run(python(&site, JOB_CA_CSR, &["job_ca.key"]));
    std::fs::write(site.path("job_ca.csr"), &csr).unwrap();
    let out = ok(site.pki("root sign -p @root --profile job-ca @job_ca.csr -o @job_ca.crt --yes"));
    assert!(stderr(&out).contains("job CA"), "{}", stderr(&out));
    let used = run(python(
        &site,
        JOB_CA_USE,
        &[
            site.path("job_ca.crt").to_str().unwrap(),
            site.path("job_ca.key").to_str().unwrap(),
            site.tmp.path().to_str().unwrap(),
        ],
    ));
    let used: serde_json::Value = serde_json::from_str(&used).unwrap();
    assert_eq!(
        used,
        serde_json::json!({
            "ca": true, "pathlen": 0,
            "uris": ["https://nvidia.com/nvflare/v1/ca/job"],
            "subject": "O=Federation,CN=job-ca",
        })
    );
    let root = site.path("root/certs/root_ca.crt");
    let verify = |leaf: &str| {
        let chain = format!(
            "{}{}",
            std::fs::read_to_string(site.path("job_ca.crt")).unwrap(),
            std::fs::read_to_string(site.path("job_sub_ca.crt")).unwrap()
        );
        std::fs::write(site.path("untrusted.pem"), chain).unwrap();
        Command::new("openssl")
            .args([
                "verify",
                "-x509_strict",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
            ])
            .arg(site.path("untrusted.pem"))
            .arg(site.path(leaf))
            .output()
            .unwrap()
    };
    verified(&verify("job_leaf.crt")).unwrap();
    // Its pathlen is 0 (read above): a CA under it certifies nothing
    // OpenSSL accepts.
    let refused_chain = verified(&verify("under_rogue.crt")).unwrap_err();
    assert!(refused_chain.contains("path length"), "{refused_chain}");
    // Recorded in the root's ledger, beside the intermediate.
    let listed = site.list("root");
    assert!(
        listed
            .iter()
            .any(|c| c["subject"] == "job-ca" && c["kind"] == "job-ca"),
        "{listed:?}"
    );
    // Signed once: the same CSR again is refused.
    refused(
        &site.pki("root sign -p @root --profile job-ca @job_ca.csr -o @again.crt --yes"),
        "signed this request before",
    );
}
