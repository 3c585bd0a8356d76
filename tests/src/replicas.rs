//! A CA with replicas on a shared PostgreSQL: folder `a` installed with
//! `--store`, folder `b` its copy (as the README says to make one), each
//! served on its own loopback address (127.0.0.1 and 127.0.0.2) on the
//! same port, as two machines behind one name would be.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::postgres::PG_PASSWORD;
use crate::site::Site;
use crate::{Server, fedpki, ok};

/// The site of a CA whose ledger is in a database, and its replicas.
#[derive(Debug)]
pub struct Replicas {
    /// The folders and the CA password.
    pub site: Site,
    /// The database password's file.
    pub pgpw: PathBuf,
    /// `--store-password-file FILE`, for command lines.
    pub db_flag: String,
    /// The root's DER.
    pub root: Vec<u8>,
}

impl Replicas {
    /// Install the CA in `a` with its ledger at `url` (extra install flags
    /// in `extra`), and copy it to `b`.
    pub fn install(url: &str, extra: &str) -> Self {
        let site = Site::new();
        let pgpw = site.path("pg-pw");
        std::fs::write(&pgpw, format!("{PG_PASSWORD}\n")).unwrap();
        let db_flag = format!("--store-password-file {}", pgpw.display());
        ok(site.pki(&format!(
            "install -p @a --ca-url $URL --store {url} {db_flag} {extra}"
        )));
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(site.path("a"))
            .arg(site.path("b"))
            .status()
            .unwrap();
        assert!(status.success());
        let pem = std::fs::read_to_string(site.path("a/certs/root_ca.crt")).unwrap();
        let root = fedpki_core::encoding::pem_one(&pem, "CERTIFICATE").unwrap();
        Self {
            site,
            pgpw,
            db_flag,
            root,
        }
    }

    /// Where replica `dir` serves: `a` on 127.0.0.1, `b` on 127.0.0.2, both
    /// on the site's port.
    pub fn addr(&self, dir: &str) -> SocketAddr {
        let last = if dir == "a" { 1 } else { 2 };
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), self.site.port)
    }

    /// `pki run` of replica `dir` (`a` or `b`), with `extra` flags.
    pub fn serve(&self, dir: &str, extra: &[&str]) -> Server {
        let d = self.site.path(dir);
        let bind = self.addr(dir).to_string();
        let mut args = vec![
            "pki",
            "run",
            "-p",
            d.to_str().unwrap(),
            "--password-file",
            self.site.pw.to_str().unwrap(),
            "--store-password-file",
            self.pgpw.to_str().unwrap(),
            "--bind",
            &bind,
        ];
        args.extend_from_slice(extra);
        Server::start(self.site.tmp.path(), &args)
    }

    /// `fedpki LINE` (no CA password added), `@NAME` a path of the site.
    pub fn bare(&self, line: &str) -> std::process::Output {
        let args: Vec<String> = line
            .split_whitespace()
            .map(|w| match w.strip_prefix('@') {
                Some(name) => self.site.path(name).to_str().unwrap().to_owned(),
                None => w.to_owned(),
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fedpki(self.site.tmp.path(), &args)
    }

    /// One request to the replica at `addr`: status and JSON body.
    pub fn request(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, serde_json::Value), String> {
        self.request_as(addr, None, method, path, body)
    }

    /// [`Replicas::request`] presenting `auth` over mutual TLS.
    pub fn request_as(
        &self,
        addr: SocketAddr,
        auth: Option<&fedpki::facade::ClientAuth>,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, serde_json::Value), String> {
        let (status, bytes) = self.exchange(addr, auth, method, path, body)?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// `GET path` (a CRL) from the replica at `addr`: status and bytes.
    pub fn fetch(&self, addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
        self.exchange(addr, None, "GET", path, None).unwrap()
    }

    /// One HTTPS request to the replica at `addr`, which must prove it is
    /// `localhost` under the CA's root: status and body.
    fn exchange(
        &self,
        addr: SocketAddr,
        auth: Option<&fedpki::facade::ClientAuth>,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), String> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let resp = rt
            .block_on(fedpki::facade::https_request_at(
                addr,
                "localhost",
                &self.root,
                auth,
                method,
                path,
                body,
            ))
            .map_err(|e| e.to_string())?;
        Ok((resp.status, resp.body.to_vec()))
    }
}

/// The serials (canonical hex) of a DER CRL.
pub fn crl_serials(der: &[u8]) -> Vec<String> {
    fedpki_core::crl::Crl::parse(der)
        .unwrap()
        .entries()
        .into_iter()
        .map(|e| e.serial_hex)
        .collect()
}
