//! `pki backup` and `pki restore`: one archive of a CA folder, taken while
//! its server runs too, and a new folder made from one (`ca::backup`
//! decides what goes in and what is checked).

use crate::ca::{self, CaConfig};
use crate::cmd::args::{AuditArgs, BackupArgs, CaDir, RestoreArgs};
use crate::error::Result;

/// `pki backup`
pub(crate) fn backup(a: &BackupArgs) -> Result<()> {
    let paths = a.ca.paths();
    let config = CaConfig::load(&paths)?;
    let m = ca::backup::backup(&paths, &config, &a.output)?;
    match &config.store {
        None => println!(
            "backup written to {}: {} files, the audit log's {} entries (last hash {})",
            a.output.display(),
            m.files.len(),
            m.audit_entries,
            m.audit_hash
        ),
        Some(url) => {
            println!(
                "backup written to {}: {} files (the folder; the ledger is in PostgreSQL)",
                a.output.display(),
                m.files.len()
            );
            eprintln!(
                "The ledger is not in this archive: back up its database too, with \
                 `pg_dump --format=custom --file=fedpki-ledger.dump '{url}'` (restore it with \
                 `pg_restore --clean --if-exists --dbname='{url}' fedpki-ledger.dump`)."
            );
        }
    }
    Ok(())
}

/// `pki restore`
pub(crate) fn restore(a: &RestoreArgs) -> Result<()> {
    let m = ca::backup::restore(&a.archive, &a.ca_path)?;
    println!(
        "restored the CA of https://{} (root {}), backed up {}, into {}",
        m.ca_url,
        m.root_fingerprint,
        m.created,
        a.ca_path.display()
    );
    if m.store != "embedded" {
        eprintln!(
            "Its ledger is in PostgreSQL: restore the database from its pg_dump (pg_restore), \
             then check it with `fedpki pki audit -p {}`.",
            a.ca_path.display()
        );
        return Ok(());
    }
    super::lifecycle::audit(&AuditArgs {
        ca: CaDir {
            ca_path: a.ca_path.clone(),
            store_password_file: None,
        },
        repair: false,
    })
}
