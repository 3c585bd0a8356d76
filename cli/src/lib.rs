//! fedpki: the binary's library. `main` calls [`main`]; the end-to-end
//! tests use [`client`] to talk to a server as any client would.

pub mod args;
pub mod authority;
pub mod ca;
pub mod ca_guard;
pub mod client;
pub mod commands;
pub mod error;
pub mod inspect;
pub mod lifecycle;
pub mod limits;
pub mod log;
pub mod manual;
pub mod offline;
pub mod package_zip;
pub mod password;
pub mod review;
pub mod ring_backend;
pub mod server;
pub mod store;
pub mod sys;
pub mod web;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{AggregatorCmd, Cli, CollaboratorCmd, Command, Pki, WorkspaceCmd};

fn inspect_file(file: &std::path::Path) -> error::Result<()> {
    use std::io::Read;
    let bytes = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .take(1024 * 1024)
            .read_to_end(&mut b)
            .map_err(|e| error::CliError::io("read", "standard input", e))?;
        b
    } else {
        sys::read_bounded(file, 1024 * 1024)?
    };
    // The file is untrusted: every name in it is printed escaped, so none can
    // rewrite the terminal or hide behind bidi or invisible characters.
    for line in inspect::describe_bytes(&bytes)?.lines() {
        println!("{}", fedpki_core::name::escaped(line));
    }
    Ok(())
}

/// The manual flow's workspace: the current folder, as OpenFL's.
fn workspace() -> manual::Workspace {
    manual::Workspace::new(".")
}

/// Parse the command line, run the command, report errors on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Pki(Pki::Install(a)) => commands::install(a),
        Command::Pki(Pki::Run(a)) => commands::run(a),
        Command::Pki(Pki::GetToken(a)) => commands::get_token(a),
        Command::Pki(Pki::Certify(a)) => commands::certify(a),
        Command::Pki(Pki::Uninstall(a)) => commands::uninstall(a),
        Command::Pki(Pki::Csr(a)) => commands::csr(a),
        Command::Pki(Pki::Sign(a)) => offline::sign_request(
            &a.ca_path,
            &a.request,
            &a.out,
            a.yes,
            a.password.password_file.as_deref(),
        ),
        Command::Pki(Pki::Import(a)) => {
            offline::import(&a.signed, &a.certs_path, a.root_fingerprint.as_deref())
        }
        Command::Pki(Pki::Inspect { file }) => inspect_file(file),
        Command::Pki(Pki::Revoke(a)) => lifecycle::revoke(a),
        Command::Pki(Pki::Crl(a)) => lifecycle::crl(a),
        Command::Pki(Pki::Renew(a)) => lifecycle::renew(a),
        Command::Pki(Pki::List(a)) => lifecycle::list(a),
        Command::Pki(Pki::Verify(a)) => lifecycle::verify(a),
        Command::Pki(Pki::Audit(a)) => lifecycle::audit(a),
        Command::Workspace(WorkspaceCmd::Certify(p)) => {
            manual::workspace_certify(&workspace(), p.password_file.as_deref())
        }
        Command::Aggregator(AggregatorCmd::GenerateCertRequest { fqdn }) => {
            manual::aggregator_request(&workspace(), fqdn.as_deref())
        }
        Command::Aggregator(AggregatorCmd::Certify {
            fqdn,
            silent,
            password,
        }) => manual::aggregator_certify(
            &workspace(),
            fqdn.as_deref(),
            *silent,
            password.password_file.as_deref(),
        ),
        Command::Collaborator(CollaboratorCmd::GenerateCertRequest { name, skip_package }) => {
            manual::collaborator_request(&workspace(), name, *skip_package)
        }
        Command::Collaborator(CollaboratorCmd::Certify {
            name,
            silent,
            request_pkg,
            import,
            password,
        }) => manual::collaborator_certify(
            &workspace(),
            &manual::CollaboratorCertify {
                name: name.as_deref(),
                silent: *silent,
                request_pkg: request_pkg.as_deref(),
                import: import.as_deref(),
                password_file: password.password_file.as_deref(),
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fedpki: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
