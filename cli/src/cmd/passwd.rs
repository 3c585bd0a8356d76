//! `pki passwd`: a new password for every key of a CA or root folder
//! (`ca::passwd` makes the change all or none).

use crate::ca::{self, CaConfig, CaPaths};
use crate::cmd::args::PasswdArgs;
use crate::error::{CliError, Result};
use crate::platform::password;

/// `pki passwd`
pub(crate) fn passwd(a: &PasswdArgs) -> Result<()> {
    let paths = CaPaths::new(&a.ca_path);
    let root = crate::root::RootPaths::new(&a.ca_path);
    if paths.exists() {
        if CaConfig::load(&paths)?.store.is_some() {
            return Err(CliError::usage(
                "this CA's replicas share its intermediates' keys through its PostgreSQL \
                 ledger, under one password; changing it on one folder would lock the others \
                 out, so `pki passwd` does not change a replicated CA's password",
            ));
        }
    } else if !root.config().is_file() {
        return Err(CliError::usage(format!(
            "{} is not a CA or root folder (no config/ca.json or config/root.json)",
            a.ca_path.display()
        )));
    }
    let dir = a.ca_path.display();
    if let Some(pid) = ca::server_pid(&paths)? {
        return Err(CliError::usage(format!(
            "the CA's server runs (pid {pid}) with the keys unlocked: stop it first \
             (`fedpki pki stop -p {dir}`), change the password, then start it with the new one"
        )));
    }
    let lock = ca::FolderLock::acquire(&paths)?;
    let old = password::obtain(a.password_file.as_deref(), false)?;
    let new = match &a.new_password_file {
        Some(file) => password::obtain(Some(file), true)?,
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            password::obtain_from(password::prompt("New CA password: ", true)?, true)?
        }
        None => {
            return Err(CliError::usage(
                "the new password is needed: pass --new-password-file FILE, or run on a terminal",
            ));
        }
    };
    if *new == *old {
        return Err(CliError::usage(
            "the new password is the old one; nothing was changed",
        ));
    }
    let n = ca::passwd::change(&paths, &old, &new)?;
    drop(lock);
    println!("{n} keys of {dir} re-encrypted: they open with the new password only");
    eprintln!(
        "Give the new password wherever the old one was given: a service's credential file \
         (LoadCredential=), a --password-file."
    );
    Ok(())
}
