//! The commands: glue between parsed arguments and the modules that act.

use std::time::Duration;

use fedpki_core::name::Subject;

use crate::authority::Authority;
use crate::ca::issuers::IssuerKeys;
use crate::ca::{self, CaCerts, CaConfig, CaPaths, FolderLock};
use crate::cmd::args::{self, CertifyArgs, RunArgs, UninstallArgs};
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::now;
use crate::store::Store;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("start the async runtime", "", e))
}

/// A CA opened for signing: its lock held, its intermediate key unlocked,
/// its store open. The server and the air-gapped `pki sign` both use this.
pub(crate) struct OpenCa {
    /// The authority.
    pub authority: Authority,
    /// The config.
    pub config: CaConfig,
    /// The server's TLS key, when opened for serving.
    pub tls_key: Option<fedpki_core::PrivateKey>,
    /// The CA password, kept when opened for serving: the server unlocks an
    /// intermediate activated while it runs. It already holds the
    /// intermediate's key unlocked, which is what the password protects.
    pub password: Option<zeroize::Zeroizing<String>>,
    /// Where its ledger lives.
    pub ledger: crate::store::StoreLocation,
}

impl std::fmt::Debug for OpenCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCa")
            .field("ca_url", &self.config.ca_url)
            .finish_non_exhaustive()
    }
}

/// What a CA is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Signing and revoking from the command line.
    Operate,
    /// Serving HTTPS: the TLS key is unlocked too.
    Serve,
}

/// Lock the CA folder, ask for the password, unlock the intermediate key and
/// open the store (inside a Tokio runtime: the store answers asynchronously).
pub(crate) fn open_ca(
    ca: &args::CaDir,
    password_file: Option<&std::path::Path>,
    purpose: Purpose,
) -> Result<OpenCa> {
    let paths = &ca.paths();
    let mut config = CaConfig::load(paths)?;
    let ledger = ca.ledger(&config)?;
    // Read before the password is asked: a damaged folder says so first.
    let mut certs = CaCerts::load(paths, &config)?;
    let roster = crate::ca::roster::RosterWatch::open(&paths.dir)?;
    let lock = FolderLock::acquire(paths)?;
    let pw = password::obtain(password_file, false)?;
    if let crate::store::StoreLocation::Postgres { location, .. } = &ledger
        && purpose == Purpose::Serve
        && ca::replica::sync(paths, &pw, location)?
    {
        // Another replica activated an intermediate meanwhile.
        config = CaConfig::load(paths)?;
        certs = CaCerts::load(paths, &config)?;
    }
    let keys = IssuerKeys::unlock(paths, &config, certs, &pw, now().0)?;
    let (tls_key, password) = match purpose {
        Purpose::Operate => (None, None),
        Purpose::Serve => {
            let (tls_key, updated) = ca::server_tls_key(paths, &config, &pw)?;
            config = updated;
            (Some(tls_key), Some(pw))
        }
    };
    // The store's writer keeps the folder locked until its last checkpoint.
    let store = Store::open_at(&ledger, lock)?;
    Ok(OpenCa {
        authority: Authority::with_issuers(config.clone(), keys, store)?.with_roster(roster),
        config,
        tls_key,
        password,
        ledger,
    })
}

/// `pki run`
pub(crate) fn run(a: &RunArgs) -> Result<()> {
    crate::platform::log::use_json(a.log_format == "json");
    crate::platform::events::log_events();
    let paths = a.ca.paths();
    let config = CaConfig::load(&paths)?;
    let at = crate::address::CaAddress::parse(&config.ca_url)?;
    let host = at.host.clone();
    let listen = match &a.bind {
        Some(b) => crate::address::Listen::Only(b.parse().map_err(|e| {
            CliError::usage(format!(
                "--bind {b:?} is not ADDRESS:PORT (127.0.0.1:9123, [::]:9123): {e}"
            ))
        })?),
        None => at.listen(),
    };
    let rt = runtime()?;
    // SIGTERM is taken from here on, before the CA is opened: a stop asked
    // for while it opens (its keys, its ledger) is carried out once it
    // serves, instead of the signal's default death with the index left
    // unclosed. (SIGINT stays the terminal's until then: Ctrl-C at the
    // password prompt still ends it.)
    let terminate = {
        let _entered = rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| CliError::io("install a handler for", "SIGTERM", e))?
    };
    let mut open = open_ca(&a.ca, a.password.password_file.as_deref(), Purpose::Serve)?;
    let tls_key = open
        .tls_key
        .take()
        .ok_or_else(|| CliError::Store("internal: the TLS key was not opened".into()))?;
    let password = open
        .password
        .take()
        .ok_or_else(|| CliError::Store("internal: the password was not kept".into()))?;
    let folder = crate::api::Folder {
        paths: paths.clone(),
        reload: std::sync::Arc::new({
            let paths = paths.clone();
            let shared = match &open.ledger {
                crate::store::StoreLocation::Postgres { location, .. } => {
                    Some((**location).clone())
                }
                crate::store::StoreLocation::Embedded(_) => None,
            };
            move || {
                if let Some(db) = &shared {
                    ca::replica::sync(&paths, &password, db)?;
                }
                let config = CaConfig::load(&paths)?;
                let certs = CaCerts::load(&paths, &config)?;
                IssuerKeys::unlock(&paths, &config, certs, &password, now().0)
            }
        }),
        replicas: match &open.ledger {
            crate::store::StoreLocation::Postgres { location, .. } => Some((**location).clone()),
            crate::store::StoreLocation::Embedded(_) => None,
        },
    };
    let store = open.authority.store().clone();
    let served = rt.block_on(async {
        let pruned = open.authority.store().prune(now().0).await?;
        if let Some(addr) = a.metrics_bind {
            let scrapes = crate::api::metrics::bind(addr).await?;
            let key_age = crate::api::metrics::KeyAge {
                max_secs: open.config.max_key_age_secs,
                server_key: open.config.tls_key_sha256.clone(),
            };
            tokio::spawn(crate::api::metrics::serve(scrapes, store.clone(), key_age));
        }
        let listeners = crate::api::listen::Listeners::bind(listen)?;
        let addresses: Vec<String> = listeners
            .addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        crate::platform::log::info(
            "listening",
            &[
                ("address", &addresses.join(",")),
                ("url", &format!("https://{}", open.config.ca_url)),
                ("pid", &std::process::id().to_string()),
                ("pruned_tokens", &pruned.to_string()),
            ],
        );
        let limits = crate::api::Limits {
            auth_failures_per_minute: a.max_auth_failures,
            renewals_per_minute: a.max_renewals,
            max_connections_per_address: a.max_connections_per_address,
            max_connections: crate::platform::sys::raise_fd_limit()
                .saturating_sub(64)
                .max(64),
        };
        crate::api::serve(
            listeners,
            open.authority,
            tls_key,
            &host,
            limits,
            Some(folder),
            shutdown_signal(terminate),
        )
        .await
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    // The writer's last checkpoint, then the folder lock it holds.
    let closed = store.shutdown();
    served?;
    closed?;
    crate::platform::log::info("stopped", &[]);
    Ok(())
}

/// The stop a service manager (SIGTERM, taken since the start) or a
/// terminal (Ctrl-C) asks for.
async fn shutdown_signal(mut terminate: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `pki certify`
pub(crate) fn certify(a: &CertifyArgs) -> Result<()> {
    let key_type = a.key.key_type;
    // The name becomes file names: check it before anything else.
    Subject::new(&a.name).map_err(|e| CliError::usage(format!("-n: {e}")))?;
    let files = crate::node::NodeFiles::new(&a.key.certs_path, &a.name);
    if !a.force
        && let Some(found) = [files.key(), files.cert()].into_iter().find(|p| p.exists())
    {
        return Err(CliError::usage(format!(
            "{} exists: this node already has a key and certificate there, kept as they are. \
             Renew them with `fedpki pki renew -n {name} -c {dir}`, or pass --force to replace \
             them; the token was not used",
            found.display(),
            name = a.name,
            dir = a.key.certs_path.display()
        )));
    }
    a.layout.check(&a.key.certs_path, key_type)?;
    let token = password::token_arg(&a.token)?;
    let rt = runtime()?;
    let done = rt.block_on(crate::client::certify(
        &a.name,
        &token,
        &a.key.certs_path,
        key_type,
    ))?;
    eprintln!(
        "Certified {} (serial {}, valid until {}):\n  {}\n  {}\n  {}",
        a.name,
        done.serial,
        done.not_after,
        done.files.cert().display(),
        done.files.key().display(),
        done.files.root().display()
    );
    for path in a.layout.write(&done.files)? {
        eprintln!("  {}", path.display());
    }
    if !done.pinned {
        eprintln!(
            "Note: the token did not pin the CA server's key (a step token does not), so it \
             went to the server at that address that showed a certificate from the token's \
             root for the name: a fedpki CA gives no node its own host name unless its \
             operator allowed it (`--node-on-ca-host allow`); step-ca gives no such promise."
        );
    }
    Ok(())
}

/// `pki csr`
pub(crate) fn csr(a: &args::CsrArgs) -> Result<()> {
    let key_type = a.key.key_type;
    let token = a.token.as_deref().map(password::token_arg).transpose()?;
    crate::offline::make_request(
        &a.name,
        token.as_deref().map(String::as_str),
        &a.key.certs_path,
        key_type,
        &a.out,
        a.force,
    )
}

/// `pki uninstall`
pub(crate) fn uninstall(a: &UninstallArgs) -> Result<()> {
    let paths = a.ca.paths();
    if !paths.exists() {
        return Err(CliError::usage(format!(
            "{} does not hold a fedpki CA (no config/ca.json); nothing was removed",
            paths.dir.display()
        )));
    }
    crate::ca::guard::check(&paths.dir)?;
    if !a.yes
        && !password::confirm(&format!(
            "Remove the CA in {} with its keys and database? This cannot be undone.",
            paths.dir.display()
        ))
    {
        return Err(CliError::usage(
            "not confirmed; nothing was removed (use --yes in scripts)",
        ));
    }
    if let Some(pid) = ca::server_pid(&paths)? {
        stop_server(&paths, pid)?;
    }
    // Held while the folder goes: no server can start on it meanwhile.
    let lock = FolderLock::acquire(&paths)?;
    std::fs::remove_dir_all(&paths.dir).map_err(|e| CliError::io("remove", &paths.dir, e))?;
    drop(lock);
    eprintln!("Removed the CA in {}.", paths.dir.display());
    Ok(())
}

/// Stop the server holding this folder's lock: SIGTERM to the pid it wrote,
/// then wait for the lock to be released (SIGKILL after 10 s).
fn stop_server(paths: &CaPaths, pid: i32) -> Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let pid_t = Pid::from_raw(pid).ok_or_else(|| {
        CliError::usage(format!(
            "{} is locked by a server whose pid is unknown; stop it by hand",
            paths.lock().display()
        ))
    })?;
    eprintln!("Stopping the CA server (pid {pid}) …");
    let _ = kill_process(pid_t, Signal::TERM);
    for i in 0..200 {
        if ca::server_pid(paths)?.is_none() {
            return Ok(());
        }
        if i == 100 {
            let _ = kill_process(pid_t, Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(CliError::usage(format!(
        "the CA server (pid {pid}) did not stop; nothing was removed"
    )))
}
