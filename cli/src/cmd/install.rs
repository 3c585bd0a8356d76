//! `pki install`: a new CA, an adopted step-ca or one waiting for its
//! offline root; and, given alone to an existing CA, its host settings
//! (`--node-on-ca-host`, `--dns`).

use crate::ca::{self, CaConfig, CaPaths, FolderLock};
use crate::cmd::args::InstallArgs;
use crate::error::{CliError, Result};
use crate::platform::password;
use crate::platform::sys::now;

/// `pki install`
pub(crate) fn install(a: &InstallArgs) -> Result<()> {
    if let Some(signed) = &a.complete {
        return crate::cmd::intermediate::complete(a, signed);
    }
    if let Some(file) = &a.root_crl {
        return crate::cmd::intermediate::install_root_crl(a, file);
    }
    let paths = a.ca.paths();
    let settings_only = paths.exists() && !a.force && a.from_step_ca.is_none() && !a.offline_root;
    if settings_only
        && (a.node_on_ca_host.is_some() || !a.dns.is_empty() || a.max_key_age.is_some())
    {
        return set_host_settings(&paths, a);
    }
    let mut force = a.force;
    let replacing = paths.exists();
    let trusted = if replacing {
        still_trusted(&paths)
    } else {
        String::new()
    };
    if paths.exists() && !force {
        force = password::confirm(&format!(
            "A CA already exists in {}{trusted}. Replace it (its keys are destroyed)?",
            paths.dir.display()
        ));
    }
    if paths.exists() && !force {
        return Err(CliError::usage(format!(
            "a CA already exists in {}; it was kept (use --force to replace it)",
            paths.dir.display()
        )));
    }
    let pw = password::obtain(a.password.password_file.as_deref(), true)?;
    if a.offline_root {
        return crate::cmd::intermediate::install_awaiting_root(a, force, &pw);
    }
    let started = std::time::Instant::now();
    let lifetimes = a.options()?;
    let config = match &a.from_step_ca {
        None => {
            let ca_url = a.ca_url.as_deref().unwrap_or(ca::DEFAULT_CA_URL);
            ca::install(&paths, ca_url, &pw, force, lifetimes)?
        }
        Some(from) => {
            let config = ca::adopt(
                &paths,
                from,
                a.step_password_file.as_deref(),
                a.ca_url.as_deref(),
                &pw,
                force,
                lifetimes,
            )?;
            eprintln!(
                "Adopted the step-ca in {} (provisioner {:?}); {} was not changed. step-ca's \
                 database is not read: a certificate it issued is recorded the first time it \
                 is renewed or revoked here.",
                from.display(),
                config.provisioner.name,
                from.display()
            );
            config
        }
    };
    eprintln!(
        "Created a CA in {} for https://{} in {:.2} s.",
        paths.dir.display(),
        config.ca_url,
        started.elapsed().as_secs_f64(),
    );
    // The result, on standard output (a script keeps it); the rest is talk.
    println!("Root fingerprint (SHA-256): {}", config.root_fingerprint);
    eprintln!("Next: fedpki pki run -p {}", paths.dir.display());
    if replacing && !trusted.is_empty() {
        eprintln!("It replaced the CA there{trusted}.");
    }
    Ok(())
}

/// What replacing the CA in `paths` undoes, for the operator to read: its
/// certificates still valid, which no node will trust once the root is
/// replaced (empty when none, or when its ledger cannot be read).
fn still_trusted(paths: &CaPaths) -> String {
    let Ok(config) = CaConfig::load_any(paths) else {
        return String::new();
    };
    let Ok(ledger) = config
        .ledger(paths, None)
        .and_then(|at| crate::store::Ledger::read_at(&at))
    else {
        return String::new();
    };
    let t = now().0;
    let valid = ledger
        .certificates
        .iter()
        .filter(|c| c.not_after > t && !ledger.revocations.iter().any(|r| r.serial == c.serial))
        .count();
    match valid {
        0 => String::new(),
        n => format!(
            ": {n} certificate{} it issued still valid, which nodes will no longer trust once \
             its root is replaced",
            if n == 1 { "" } else { "s" }
        ),
    }
}

/// `pki install -p DIR --node-on-ca-host allow|refuse` and `--dns NAME…`
/// on an existing CA: those settings only, under the folder's lock (so
/// never while it serves).
fn set_host_settings(paths: &CaPaths, a: &InstallArgs) -> Result<()> {
    let mut config = CaConfig::load_any(paths)?;
    let _lock = FolderLock::acquire(paths)?;
    if let Some(choice) = &a.node_on_ca_host {
        config.allow_node_on_ca_host = choice == "allow";
    }
    if !a.dns.is_empty() {
        config.dns = a.dns.clone();
    }
    if a.max_key_age.is_some() {
        config.max_key_age_secs = a.max_key_age;
        eprintln!(
            "The CA in {} now certifies a key for at most {} from its first certificate \
             (restart its server to apply).",
            paths.dir.display(),
            crate::cmd::values::format_duration(a.max_key_age.unwrap_or_default())
        );
    }
    config.save(paths)?;
    let (host, _) = ca::parse_ca_url(&config.ca_url)?;
    if a.node_on_ca_host.is_some() {
        let others = if config.dns.is_empty() {
            String::new()
        } else {
            format!(" and its other names ({})", config.dns.join(", "))
        };
        eprintln!(
            "The CA in {} now {} nodes certificates for its own host name {host}{others}.",
            paths.dir.display(),
            if config.allow_node_on_ca_host {
                "gives"
            } else {
                "refuses"
            }
        );
    }
    if !a.dns.is_empty() {
        eprintln!(
            "The CA in {} is now reached at {}.",
            paths.dir.display(),
            config.addresses().join(", ")
        );
    }
    eprintln!("`fedpki pki run` takes it up when it next starts.");
    Ok(())
}
