//! A site of folders side by side in one temporary folder: offline roots,
//! CA folders and nodes, with one password, driven through the real
//! binary's command lines.

use std::path::{Path, PathBuf};
use std::process::Output;

use fedpki_core::{Certificate, issue};

use crate::{PASSWORD, Server, fedpki, free_port, ok, openssl, stdout};

/// Root folders, CA folders, nodes and a password, side by side in one
/// temporary folder.
#[derive(Debug)]
pub struct Site {
    /// Holds the folder until the test ends.
    pub tmp: tempfile::TempDir,
    /// The password file.
    pub pw: PathBuf,
    /// The port every CA of the site serves on (one at a time).
    pub port: u16,
}

impl Site {
    /// An empty site with a password file and a free port.
    #[allow(clippy::new_without_default)] // a temporary folder each time
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
        Self {
            tmp,
            pw,
            port: free_port(),
        }
    }

    /// The path of `name` in the site.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `fedpki pki LINE --password-file PW`, LINE split at spaces; a word
    /// `@NAME` is the path of NAME in the site, `$URL` the CA's address.
    pub fn pki(&self, line: &str) -> Output {
        self.run(line, true)
    }

    /// [`Site::pki`] of a command that takes no password (`list`,
    /// `audit`, `backup`, `restore`).
    pub fn bare(&self, line: &str) -> Output {
        self.run(line, false)
    }

    fn run(&self, line: &str, password: bool) -> Output {
        let url = format!("localhost:{}", self.port);
        let mut args: Vec<String> = vec!["pki".into()];
        args.extend(line.split_whitespace().map(|w| match w {
            "$URL" => url.clone(),
            w if w.starts_with('@') => self.path(&w[1..]).to_str().unwrap().to_owned(),
            w => w.to_owned(),
        }));
        if password {
            args.extend(["--password-file".into(), self.pw.to_str().unwrap().into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fedpki(self.tmp.path(), &args)
    }

    /// `pki root init -p DIR FLAGS`; the fingerprint it printed.
    pub fn root_init(&self, dir: &str, flags: &str) -> String {
        let out = ok(self.pki(&format!("root init -p @{dir} {flags}")));
        stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("Root fingerprint (SHA-256): "))
            .expect("fingerprint printed")
            .trim()
            .to_owned()
    }

    /// `pki run` of the CA in `dir`.
    pub fn serve(&self, dir: &str) -> Server {
        self.serve_with(dir, &[], &[])
    }

    /// `pki run` of the CA in `dir` with `extra` flags and `env` set.
    pub fn serve_with(&self, dir: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = self.path(dir);
        let mut args = vec![
            "pki",
            "run",
            "-p",
            dir.to_str().unwrap(),
            "--password-file",
            self.pw.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Server::start_with_env(self.tmp.path(), &args, env)
    }

    /// `pki get-token -p @ca -n NAME` of the CA in `ca`: the token.
    pub fn token(&self, ca: &str, name: &str) -> String {
        stdout(&ok(self.pki(&format!("get-token -p @{ca} -n {name}"))))
            .trim()
            .to_owned()
    }

    /// `pki get-token` + `pki certify` of `name` into `<tmp>/<name>`.
    pub fn certify(&self, ca: &str, name: &str) -> PathBuf {
        let token = self.token(ca, name);
        ok(self.certify_with(name, &token, &[]));
        self.path(name)
    }

    /// `pki certify -n NAME -t TOKEN -c <tmp>/<name> EXTRA…`, as it ended.
    pub fn certify_with(&self, name: &str, token: &str, extra: &[&str]) -> Output {
        let dir = self.path(name);
        let mut args = vec!["pki", "certify", "-n", name, "-t", token, "-c"];
        args.push(dir.to_str().unwrap());
        args.extend_from_slice(extra);
        fedpki(self.tmp.path(), &args)
    }

    /// `pki renew` of the node `name` certified into `node`.
    pub fn renew(&self, node: &Path, name: &str) -> Output {
        let dir = node.to_str().unwrap();
        fedpki(self.tmp.path(), &["pki", "renew", "-n", name, "-c", dir])
    }

    /// GET `path` from the CA serving `ca`: status and body.
    pub fn get(&self, ca: &str, path: &str) -> (u16, Vec<u8>) {
        let root_pem = std::fs::read_to_string(self.path(ca).join("certs/root_ca.crt")).unwrap();
        let root_der = fedpki_core::encoding::pem_one(&root_pem, "CERTIFICATE").unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let resp = rt
            .block_on(fedpki::facade::https_request(
                "localhost",
                self.port,
                &root_der,
                "GET",
                path,
                None,
            ))
            .unwrap();
        (resp.status, resp.body.to_vec())
    }

    /// A request to the CA serving `ca`, presenting `auth` over mutual TLS
    /// when given: the status and the JSON body (`Null` if not JSON).
    pub fn request_as(
        &self,
        ca: &str,
        auth: Option<&fedpki::facade::ClientAuth>,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, serde_json::Value) {
        let root_pem = std::fs::read_to_string(self.path(ca).join("certs/root_ca.crt")).unwrap();
        let root_der = fedpki_core::encoding::pem_one(&root_pem, "CERTIFICATE").unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let resp = rt
            .block_on(fedpki::facade::https_request_as(
                "localhost",
                self.port,
                &root_der,
                auth,
                method,
                path,
                body,
            ))
            .unwrap();
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// `pki list -p DIR --json` (a CA's or a root's ledger).
    pub fn list(&self, dir: &str) -> Vec<serde_json::Value> {
        let dir = self.path(dir);
        let out = ok(fedpki(
            self.tmp.path(),
            &["pki", "list", "-p", dir.to_str().unwrap(), "--json"],
        ));
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    /// The intermediate of a signed file, written out as PEM; its path.
    pub fn signed_intermediate(&self, signed: &str) -> PathBuf {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.path(signed)).unwrap()).unwrap();
        let out = self.path(&format!("{signed}.crt"));
        std::fs::write(&out, v["crt"].as_str().unwrap()).unwrap();
        out
    }

    /// The serials a DER CRL lists (OpenSSL's text, lowercased).
    pub fn crl_text(&self, der: &[u8]) -> String {
        let file = self.path("probe.crl");
        std::fs::write(&file, der).unwrap();
        let args = ["crl", "-inform", "DER", "-noout", "-text", "-in"];
        let out = openssl(
            self.tmp.path(),
            &[&args[..], &[file.to_str().unwrap()]].concat(),
        );
        stdout(&out).to_ascii_lowercase()
    }
}

/// The `index`th certificate of a PEM file.
pub fn cert_at(path: &Path, index: usize) -> Certificate {
    issue::parse_certs_pem(&std::fs::read_to_string(path).unwrap()).unwrap()[index].clone()
}

/// A CA certificate's key id, hex: how fedpki names an intermediate.
pub fn kid(cert: &Certificate) -> String {
    fedpki_core::encoding::hex(&cert.key_id())
}
