//! Flower (flwr 1.42.0, from PyPI, in the tests' Python environment) on
//! fedpki's certificates: a SuperLink serving TLS with a certificate from
//! `pki certify --layout flower`, SuperNode authentication on, two
//! SuperNodes whose keys `pki flower keys` exported from the ledger and
//! `flwr supernode register` took, and a numpy-only Flower app that runs
//! two rounds of FedAvg. A SuperNode whose key fedpki did not export is
//! refused by the SuperLink; so is one whose certificate was revoked, once
//! the next export removes its key and it is unregistered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fedpki_tests::site::Site;
use fedpki_tests::*;

const ROSTER: &str = r#"
[roles.superlink]
usages = ["server-auth"]
lifetime = "30d"

[roles.supernode]
usages = ["client-auth"]
lifetime = "30d"

[[participants]]
name = "superlink"
role = "superlink"
sans = ["localhost", "127.0.0.1"]

[[participants]]
name = "node1"
role = "supernode"

[[participants]]
name = "node2"
role = "supernode"
"#;

const CLIENT_APP: &str = r#"
"""Adds one to every array, so the rounds can be counted in the result."""
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    arrays = [a + 1.0 for a in msg.content["arrays"].to_numpy_ndarrays()]
    reply = RecordDict({"arrays": ArrayRecord(arrays), "metrics": MetricRecord({"num-examples": 1})})
    return Message(content=reply, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    reply = RecordDict({"metrics": MetricRecord({"num-examples": 1, "loss": 0.0})})
    return Message(content=reply, reply_to=msg)
"#;

const SERVER_APP: &str = r#"
"""FedAvg over both SuperNodes; the final arrays written to result-file."""
import json

import numpy as np
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    rounds = int(context.run_config["num-server-rounds"])
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=1.0, min_available_nodes=2,
                      min_train_nodes=2, min_evaluate_nodes=2)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord([np.zeros(3)]), num_rounds=rounds)
    with open(str(context.run_config["result-file"]), "w") as f:
        json.dump({"rounds": rounds, "arrays": result.arrays.to_numpy_ndarrays()[0].tolist()}, f)
"#;

/// A key Flower accepts that fedpki never saw.
const ROGUE_KEY: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
sys.stdout.write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode())
"#;

/// The Flower programs of the tests' environment, with its `bin` first on
/// PATH (the SuperLink starts `flower-superexec` by name) and the Flower
/// CLI's home in the site.
struct Flower {
    bin: PathBuf,
    home: PathBuf,
}

impl Flower {
    fn new(site: &Site, link_port: u16, ca: &Path) -> Self {
        let bin = python::interpreter().parent().unwrap().to_owned();
        let home = site.path("flwr-home");
        std::fs::create_dir_all(&home).unwrap();
        let config = format!(
            "[superlink]\ndefault = \"fedpki\"\n\n[superlink.fedpki]\naddress = \
             \"127.0.0.1:{link_port}\"\nroot-certificates = \"{}\"\n",
            ca.display()
        );
        std::fs::write(home.join("config.toml"), config).unwrap();
        Self { bin, home }
    }

    fn command(&self, program: &str, args: &[&str], cwd: &Path) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(self.bin.join(program));
        c.args(args)
            .current_dir(cwd)
            .env("PATH", path)
            .env("FLWR_HOME", &self.home)
            .env("PYTHONUNBUFFERED", "1");
        c
    }

    /// A long-running Flower process, its output into `log`, in a process
    /// group of its own (it starts others) that is killed with it.
    fn spawn(&self, program: &str, args: &[&str], cwd: &Path, log: &Path) -> Running {
        let out = std::fs::File::create(log).unwrap();
        let child = self
            .command(program, args, cwd)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (run `bash scripts/setup`)"));
        Running {
            child,
            log: log.to_owned(),
        }
    }

    /// `flwr ARGS`, which must finish within `secs`.
    fn flwr(&self, args: &[&str], cwd: &Path, secs: u64) -> Output {
        let mut child = self
            .command("flwr", args, cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                kill_group(&child);
                let out = child.wait_with_output().unwrap();
                panic!("flwr {args:?} still ran after {secs} s: {}", stdout(&out));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    }

    /// `flwr supernode register KEY`: the node id the SuperLink gave.
    fn register(&self, key: &Path, cwd: &Path) -> String {
        let out = self.flwr(
            &[
                "supernode",
                "register",
                key.to_str().unwrap(),
                "fedpki",
                "--format",
                "json",
            ],
            cwd,
            60,
        );
        let text = stdout(&out);
        let json = &text[text.find('{').unwrap_or(0)..];
        let answer: serde_json::Value = serde_json::from_str(json)
            .unwrap_or_else(|_| panic!("register said: {text}{}", stderr(&out)));
        assert_eq!(answer["success"], true, "{answer}");
        match &answer["node-id"] {
            serde_json::Value::Number(n) => n.to_string(),
            other => other.as_str().expect("a node id").to_owned(),
        }
    }
}

struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log says `needle`; the log when it does.
    fn wait_for(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before {needle:?}: {log}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in {secs} s: {log}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait for the process to end by itself: its log.
    fn wait_exit(&mut self, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "still running after {secs} s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.log()
    }
}

fn kill_group(child: &Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        kill_group(&self.child);
        let _ = self.child.wait();
    }
}

/// A SuperNode with the key at `key`, its runtime API on a port of its own.
fn supernode(fl: &Flower, site: &Site, name: &str, key: &Path, ca: &Path, link: u16) -> Running {
    let port = free_port().to_string();
    let superlink = format!("127.0.0.1:{link}");
    let args = [
        "--root-certificates",
        ca.to_str().unwrap(),
        "--superlink",
        &superlink,
        "--auth-supernode-private-key",
        key.to_str().unwrap(),
        "--port",
        &port,
        "--max-retries",
        "2",
        "--max-wait-time",
        "20",
    ];
    let log = site.path(&format!("{name}.log"));
    fl.spawn("flower-supernode", &args, site.tmp.path(), &log)
}

fn write_app(site: &Site) -> PathBuf {
    let app = site.path("app");
    std::fs::create_dir_all(app.join("flapp")).unwrap();
    let result = site.path("result.json");
    let project = format!(
        "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n\n\
         [project]\nname = \"flapp\"\nversion = \"1.0.0\"\ndescription = \"numpy only\"\n\
         license = \"Apache-2.0\"\ndependencies = [\"flwr\", \"numpy\"]\n\n\
         [tool.hatch.build.targets.wheel]\npackages = [\".\"]\n\n\
         [tool.flwr.app]\npublisher = \"fedpki\"\n\n\
         [tool.flwr.app.components]\nserverapp = \"flapp.server_app:app\"\n\
         clientapp = \"flapp.client_app:app\"\n\n\
         [tool.flwr.app.config]\nnum-server-rounds = 2\nresult-file = \"{}\"\n",
        result.display()
    );
    std::fs::write(app.join("pyproject.toml"), project).unwrap();
    std::fs::write(app.join("flapp/__init__.py"), "").unwrap();
    std::fs::write(app.join("flapp/client_app.py"), CLIENT_APP).unwrap();
    std::fs::write(app.join("flapp/server_app.py"), SERVER_APP).unwrap();
    app
}

#[test]
fn a_flower_federation_runs_on_fedpki_and_registration_follows_the_ledger() {
    let site = Site::new();
    // The SuperLink, the nodes and the CA share this host's loopback: the
    // CA's operator allows a node its host names.
    ok(site.pki("install -p @ca --ca-url $URL --node-on-ca-host allow"));
    std::fs::write(site.path("ca/config/federation.toml"), ROSTER).unwrap();
    let _ca = site.serve("ca");
    // A file of the operator's where a link would go: refused before the
    // CA is asked, so the token still works once it is moved away.
    let token = site.token("ca", "superlink");
    std::fs::create_dir_all(site.path("superlink")).unwrap();
    std::fs::write(site.path("superlink/server.pem"), "mine").unwrap();
    refused(
        &site.certify_with("superlink", &token, &["--layout", "flower"]),
        "server.pem exists and is not a link fedpki made",
    );
    std::fs::remove_file(site.path("superlink/server.pem")).unwrap();
    ok(site.certify_with("superlink", &token, &["--layout", "flower"]));
    refused(
        &site.certify_with(
            "node1",
            &site.token("ca", "node1"),
            &["--layout", "flower", "--key-type", "ed25519"],
        ),
        "use --key-type p256 or p384",
    );
    for name in ["node1", "node2"] {
        let token = site.token("ca", name);
        ok(site.certify_with(name, &token, &["--layout", "flower"]));
    }
    let link_dir = site.path("superlink");
    for file in ["ca.crt", "server.pem", "server.key"] {
        assert!(link_dir.join(file).is_file(), "{file}");
    }
    assert!(!link_dir.join("supernode.key").exists());
    for node in ["node1", "node2"] {
        let mode = std::fs::metadata(site.path(node).join("supernode.key"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert!(!site.path(node).join("server.pem").exists());
    }
    let exported = ok(site.bare("flower keys -p @ca -o @keys"));
    let said = stdout(&exported);
    assert!(
        said.contains("added node1 ") && said.contains("added node2 "),
        "{said}"
    );
    assert!(
        !said.contains("superlink"),
        "a SuperLink is not a SuperNode: {said}"
    );
    // Each exported key is the one the node holds.
    for node in ["node1", "node2"] {
        let exported = std::fs::read_to_string(site.path(&format!("keys/{node}.pub"))).unwrap();
        let held = std::fs::read_to_string(site.path(node).join("supernode.pub")).unwrap();
        assert_eq!(exported, held);
    }

    let link = free_port();
    let ca_crt = link_dir.join("ca.crt");
    let fl = Flower::new(&site, link, &ca_crt);
    let port = link.to_string();
    let state = site.path("superlink.db");
    let (pem, key) = (link_dir.join("server.pem"), link_dir.join("server.key"));
    let args = [
        "--ssl-ca-certfile",
        ca_crt.to_str().unwrap(),
        "--ssl-certfile",
        pem.to_str().unwrap(),
        "--ssl-keyfile",
        key.to_str().unwrap(),
        "--enable-supernode-auth",
        "--database",
        state.to_str().unwrap(),
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--disable-runtime-dependency-installation",
    ];
    let mut superlink = fl.spawn(
        "flower-superlink",
        &args,
        site.tmp.path(),
        &site.path("superlink.log"),
    );
    superlink.wait_for("Application startup complete", 60);
    let mut ids = std::collections::HashMap::new();
    for node in ["node1", "node2"] {
        let key = site.path(&format!("keys/{node}.pub"));
        ids.insert(node, fl.register(&key, site.tmp.path()));
    }

    let mut nodes: Vec<Running> = ["node1", "node2"]
        .iter()
        .map(|n| {
            let key = site.path(n).join("supernode.key");
            supernode(&fl, &site, n, &key, &ca_crt, link)
        })
        .collect();
    for (n, name) in nodes.iter_mut().zip(["node1", "node2"]) {
        let log = n.wait_for("SuperNode ID:", 90);
        assert!(
            log.contains(&ids[name]),
            "{name} is the node registered: {log}"
        );
    }
    // A key fedpki never exported: refused.
    std::fs::write(site.path("rogue.key"), python::run(ROGUE_KEY, b"")).unwrap();
    let mut rogue = supernode(&fl, &site, "rogue", &site.path("rogue.key"), &ca_crt, link);
    let log = rogue.wait_exit(120);
    assert!(log.contains("Failed to activate SuperNode"), "{log}");

    let app = write_app(&site);
    let run = fl.flwr(
        &["run", app.to_str().unwrap(), "fedpki", "--stream"],
        site.tmp.path(),
        300,
    );
    let result = std::fs::read_to_string(site.path("result.json"))
        .unwrap_or_else(|_| panic!("the run wrote no result: {}{}", stdout(&run), stderr(&run)));
    let result: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(result["rounds"], 2, "{result}");
    assert_eq!(
        result["arrays"],
        serde_json::json!([2.0, 2.0, 2.0]),
        "{result}"
    );

    // node2 revoked: the next export removes its key; unregistered, the
    // SuperNode is refused when it comes back.
    let serial = node_serial(&site.path("node2"), "node2");
    ok(site.pki(&format!("revoke -p @ca --serial {serial}")));
    let said = stdout(&ok(site.bare("flower keys -p @ca -o @keys")));
    assert_eq!(
        said.trim(),
        format!("removed node2 {}", site.path("keys/node2.pub").display())
    );
    assert!(site.path("keys/node1.pub").exists());
    let out = fl.flwr(
        &["supernode", "unregister", &ids["node2"], "fedpki"],
        site.tmp.path(),
        60,
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    drop(nodes.pop());
    let key = site.path("node2").join("supernode.key");
    let mut again = supernode(&fl, &site, "node2-again", &key, &ca_crt, link);
    let log = again.wait_exit(120);
    assert!(log.contains("Failed to activate SuperNode"), "{log}");
}
