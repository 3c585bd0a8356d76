//! The commands: each parses nothing (clap did), checks its arguments,
//! and glues the layers below together. `main` dispatches.

pub(crate) mod args;
mod backup;
pub(crate) mod ca;
mod flower;
mod install;
mod intermediate;
pub(crate) mod lifecycle;
pub(crate) mod list;
pub(crate) mod node;
mod passwd;
mod root;
pub(crate) mod sign;
mod status;
mod store;
mod token;
mod values;

use std::process::ExitCode;

use clap::Parser;

use crate::cmd::args::{
    AggregatorCmd, Cli, CollaboratorCmd, Command, IntermediateCmd, Pki, RootCmd, StoreCmd,
    WorkspaceCmd,
};
use crate::platform::sys;
use crate::{error, manual};

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
    for line in crate::client::inspect::describe_bytes(&bytes)?.lines() {
        println!("{}", fedpki_core::name::escaped(line));
    }
    Ok(())
}

/// The manual flow's workspace: the current folder, as OpenFL's.
fn workspace() -> manual::Workspace {
    manual::Workspace::new(".")
}

/// Parse the command line, run the command, report errors on stderr.
pub(crate) fn main() -> ExitCode {
    crate::platform::sys::keep_out_of_core_dumps();
    let cli = Cli::parse();
    // The one command whose exit code says more than success or failure.
    if let Command::Pki(Pki::Status(a)) = &cli.command {
        return finish(status::status(a));
    }
    let result = match &cli.command {
        Command::Pki(Pki::Install(a)) => install::install(a),
        Command::Pki(Pki::Run(a)) => ca::run(a),
        Command::Pki(Pki::GetToken(a)) => token::get_token(a),
        Command::Pki(Pki::Certify(a)) => ca::certify(a),
        Command::Pki(Pki::Uninstall(a)) => ca::uninstall(a),
        Command::Pki(Pki::Status(_)) => Ok(()),
        Command::Pki(Pki::Stop(a)) => status::stop(a),
        Command::Pki(Pki::Csr(a)) => ca::csr(a),
        Command::Pki(Pki::Sign(a)) => sign::sign_request(
            &a.ca,
            &a.request,
            &a.out,
            a.yes,
            a.password.password_file.as_deref(),
        ),
        Command::Pki(Pki::Import(a)) => node::import(a),
        Command::Pki(Pki::Inspect { file }) => inspect_file(file),
        Command::Pki(Pki::Revoke(a)) => lifecycle::revoke(a),
        Command::Pki(Pki::Crl(a)) => lifecycle::crl(a),
        Command::Pki(Pki::Renew(a)) => node::renew(a),
        Command::Pki(Pki::List(a)) => lifecycle::list(a),
        Command::Pki(Pki::Verify(a)) => node::verify(a),
        Command::Pki(Pki::Audit(a)) => lifecycle::audit(a),
        Command::Pki(Pki::Backup(a)) => backup::backup(a),
        Command::Pki(Pki::Passwd(a)) => passwd::passwd(a),
        Command::Pki(Pki::Restore(a)) => backup::restore(a),
        Command::Pki(Pki::Root(r)) => match r {
            RootCmd::Init(a) => root::init(a),
            RootCmd::Sign(a) => root::sign(a),
            RootCmd::Revoke(a) => root::revoke(a),
            RootCmd::Crl(a) => root::crl(a),
            RootCmd::Export(a) => root::export(a),
        },
        Command::Pki(Pki::Intermediate(i)) => match i {
            IntermediateCmd::Request(a) => intermediate::request(a),
            IntermediateCmd::Activate(a) => intermediate::activate(a),
        },
        Command::Pki(Pki::Flower(args::FlowerCmd::Keys(a))) => flower::keys(a),
        Command::Pki(Pki::Store(s)) => match s {
            StoreCmd::Migrate(a) => store::migrate(a),
        },
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
    finish(result.map(|()| ExitCode::SUCCESS))
}

/// Flush the log, then say the error, if any, and exit with its code.
fn finish(result: crate::error::Result<ExitCode>) -> ExitCode {
    // Every log line before the last words.
    crate::platform::log::flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fedpki: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
