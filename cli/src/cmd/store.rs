//! `pki store migrate`: the CA's ledger moved between its folder and a
//! shared database, with the CA's server stopped and its folder locked.

use crate::ca::{self, CaConfig, FolderLock};
use crate::cmd::args::StoreMigrateArgs;
use crate::error::{CliError, Result};
use crate::store::migrate;
use crate::store::postgres::PgLocation;

/// `pki store migrate -p DIR --to URL|embedded`
pub(crate) fn migrate(a: &StoreMigrateArgs) -> Result<()> {
    let paths = a.ca.paths();
    let mut config = CaConfig::load(&paths)?;
    if let Some(pid) = ca::server_pid(&paths)? {
        return Err(CliError::usage(format!(
            "the CA in {} is being served (pid {pid}): stop it (and, for a shared ledger, every \
             replica) first; nothing was moved",
            paths.dir.display()
        )));
    }
    let _lock = FolderLock::acquire(&paths)?;
    let password = a.ca.store_password_file.as_deref();
    let fingerprint = config.root_fingerprint.clone();
    let moved = match (a.to.as_str(), config.store.clone()) {
        ("embedded", Some(url)) => {
            let db = PgLocation::parse(&url, password)?;
            let now = crate::platform::sys::now().0;
            let moved = migrate::to_embedded(&db, &fingerprint, &paths.store(), now)?;
            config.store = None;
            config.save(&paths)?;
            eprintln!(
                "The ledger is in {} now; the database {url} was left as it was.",
                paths.store().log.display()
            );
            moved
        }
        ("embedded", None) => {
            return Err(CliError::usage(
                "the CA's ledger is in its folder already; nothing was moved",
            ));
        }
        (url, None) => {
            let db = PgLocation::parse(url, password)?;
            let number = ca::crl_number_in(&paths.crl()).unwrap_or(0);
            let moved = migrate::to_postgres(&paths.store(), &db, &fingerprint, number)?;
            config.store = Some(url.to_owned());
            config.save(&paths)?;
            if config.active_intermediate.is_some() {
                ca::replica::publish(&paths, &config, &db)?;
            }
            eprintln!(
                "The ledger is in {url} now; the folder's db/ was left as it was (delete it once \
                 you are sure). Make a replica by copying this folder to another host (with the \
                 server stopped) and running `fedpki pki run` there."
            );
            moved
        }
        (_, Some(url)) => {
            return Err(CliError::usage(format!(
                "the CA's ledger is in {url} already: move it back first (`--to embedded`); \
                 nothing was moved"
            )));
        }
    };
    println!(
        "moved: {} audit entries, {} certificates, {} revocations; audit head {}",
        moved.entries, moved.certificates, moved.revocations, moved.head
    );
    Ok(())
}
