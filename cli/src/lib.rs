//! fedpki: the binary's library. `main` calls [`main`]; the end-to-end
//! tests use [`client`] to talk to a server as any client would.

pub mod args;
pub mod authority;
pub mod ca;
pub mod client;
pub mod commands;
pub mod error;
pub mod log;
pub mod password;
pub mod server;
pub mod store;
pub mod sys;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command, Pki};

/// Parse the command line, run the command, report errors on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Pki(Pki::Install(a)) => commands::install(a),
        Command::Pki(Pki::Run(a)) => commands::run(a),
        Command::Pki(Pki::GetToken(a)) => commands::get_token(a),
        Command::Pki(Pki::Certify(a)) => commands::certify(a),
        Command::Pki(Pki::Uninstall(a)) => commands::uninstall(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fedpki: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
