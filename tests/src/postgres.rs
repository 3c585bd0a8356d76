//! A real PostgreSQL for a test: a cluster of its own in a temporary
//! folder, on a free port, run as the package's `postgres` user (`initdb`
//! refuses root), with a password (scram-sha-256) for its superuser
//! `fedpki`, stopped when dropped. Debian's `postgresql` package; `scripts/
//! setup` installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The superuser's password in every test cluster.
pub const PG_PASSWORD: &str = "pg-test-password";

/// One PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    /// Holds the cluster's folder.
    _tmp: tempfile::TempDir,
    /// The data folder.
    pub data: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
}

/// The folder of Debian's PostgreSQL server programs (the newest there).
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/setup)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL's initdb (scripts/setup installs it)")
}

fn as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program)
        .args(args)
        .current_dir("/")
        .output()
        .expect("run as postgres")
}

fn checked(what: &str, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Postgres {
    /// A new cluster, started.
    pub fn start() -> Self {
        let pg = Self::init();
        pg.up();
        pg
    }

    /// A new cluster, not started (a standby is made from a base backup
    /// instead).
    pub fn init() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, PG_PASSWORD).unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(status.success());
        let bin = pg_bin();
        let (data_s, pw_s) = (data.to_str().unwrap(), pw.to_str().unwrap());
        checked(
            "initdb",
            as_postgres(
                &bin.join("initdb"),
                &[
                    "-D",
                    data_s,
                    "-U",
                    "fedpki",
                    "--auth=scram-sha-256",
                    "--pwfile",
                    pw_s,
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
        );
        let port = crate::free_port();
        append(
            &data.join("postgresql.conf"),
            &format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 fsync = on\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n",
                tmp.path().display()
            ),
        );
        append(
            &data.join("pg_hba.conf"),
            "host replication fedpki 127.0.0.1/32 scram-sha-256\n",
        );
        Self {
            _tmp: tmp,
            data,
            port,
            bin,
        }
    }

    /// Serve TLS with a certificate for `localhost` (DNS only) from a root
    /// made here; restarted. The root's PEM file.
    pub fn with_tls(&self) -> PathBuf {
        let dir = self.data.parent().unwrap();
        let run = |args: &[&str]| {
            checked(
                "openssl",
                Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .output()
                    .unwrap(),
            )
        };
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "root.key",
        ]);
        run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=pg test root",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "root.pem",
        ]);
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "server.key",
        ]);
        run(&[
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.join("server.key"))
            .arg(dir.join("server.pem"))
            .status()
            .unwrap();
        assert!(status.success());
        let _ = Command::new("chmod")
            .arg("600")
            .arg(dir.join("server.key"))
            .status();
        append(
            &self.data.join("postgresql.conf"),
            &format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ),
        );
        self.down();
        self.up();
        dir.join("root.pem")
    }

    /// Start the server and wait until it takes connections.
    pub fn up(&self) {
        let log = self.data.parent().unwrap().join("server.log");
        checked(
            "pg_ctl start",
            as_postgres(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    self.data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            ),
        );
    }

    /// Stop the server (`immediate`: as a crash, with no checkpoint).
    pub fn down(&self) {
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// A `postgresql://` URL for database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://fedpki@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Run SQL with psql on database `db`; its output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = checked(
            "psql",
            Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "fedpki",
                ])
                .args(["-d", db, "-XAtqc", sql])
                .env("PGPASSWORD", PG_PASSWORD)
                .output()
                .expect("run psql"),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new, empty database.
    pub fn create_db(&self, db: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {db}"));
    }

    /// Wait until the server takes connections (after `up`, a promotion).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "fedpki",
            ])
            .args(["-d", "postgres", "-XAtqc", "SELECT 1"])
            .env("PGPASSWORD", PG_PASSWORD)
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "PostgreSQL did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server programs' folder.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A streaming standby of this server (a base backup, started), with
    /// synchronous replication to it: a commit the primary answered is on
    /// the standby too.
    pub fn standby(&self) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(status.success());
        let out = Command::new("setpriv")
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(self.bin.join("pg_basebackup"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "fedpki",
            ])
            .args([
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                // At once: the default spread checkpoint may take minutes
                // on an idle cluster (seen: a test waiting 4 min for it).
                "--checkpoint=fast",
            ])
            .env("PGPASSWORD", PG_PASSWORD)
            .current_dir("/")
            .output()
            .expect("pg_basebackup");
        checked("pg_basebackup", out);
        let port = crate::free_port();
        append(
            &data.join("postgresql.conf"),
            &format!(
                "port = {port}\nunix_socket_directories = '{}'\n",
                tmp.path().display()
            ),
        );
        // The password the standby replicates with.
        std::fs::write(
            tmp.path().join("pgpass"),
            format!("127.0.0.1:{}:*:fedpki:{PG_PASSWORD}\n", self.port),
        )
        .unwrap();
        append(
            &data.join("postgresql.auto.conf"),
            &format!(
                "primary_conninfo = 'host=127.0.0.1 port={} user=fedpki passfile={}'\n",
                self.port,
                tmp.path().join("pgpass").display()
            ),
        );
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(status.success());
        let _ = Command::new("chmod")
            .arg("600")
            .arg(tmp.path().join("pgpass"))
            .status();
        let standby = Self {
            _tmp: tmp,
            data,
            port,
            bin: self.bin.clone(),
        };
        standby.up();
        // Synchronous from now on: the primary waits for the standby.
        self.psql(
            "postgres",
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
        );
        self.psql("postgres", "SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
        ) != "1"
        {
            assert!(
                Instant::now() < deadline,
                "the standby did not become synchronous"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        standby
    }

    /// Promote this standby to primary.
    pub fn promote(&self) {
        checked(
            "pg_ctl promote",
            as_postgres(
                &self.bin.join("pg_ctl"),
                &["-D", self.data.to_str().unwrap(), "-w", "promote"],
            ),
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.down();
    }
}

/// Add `text` at the end of a cluster's configuration file.
fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}
