//! Where the CA password comes from: `--password-file`, `FEDPKI_PASSWORD`,
//! or a terminal prompt. It is never written anywhere.

use std::io::IsTerminal;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// The environment variable that may carry the password.
pub const ENV: &str = "FEDPKI_PASSWORD";

/// Shortest password `pki install` accepts.
pub const MIN_LEN: usize = 8;

/// Get the password. `confirm` asks twice on a terminal (for install).
pub fn obtain(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(path) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::io("read the password file", path, e))?,
        );
        let first = text.lines().next().unwrap_or("");
        return check(Zeroizing::new(first.to_owned()), confirm);
    }
    if let Ok(pw) = std::env::var(ENV) {
        return check(Zeroizing::new(pw), confirm);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "the CA password is needed: pass --password-file FILE, set {ENV}, or run on a terminal"
        )));
    }
    let pw = prompt("CA password: ", confirm)?;
    check(pw, confirm)
}

/// Ask for a password on the terminal; with `confirm`, ask again (unless
/// the first answer is empty) and refuse if the two differ.
pub fn prompt(question: &str, confirm: bool) -> Result<Zeroizing<String>> {
    let read = |q: &str| {
        rpassword::prompt_password(q)
            .map(Zeroizing::new)
            .map_err(|e| CliError::io("read the password from", "the terminal", e))
    };
    let pw = read(question)?;
    if confirm && !pw.is_empty() && *pw != *read("Password (again): ")? {
        return Err(CliError::usage(
            "the two passwords differ; nothing was created",
        ));
    }
    Ok(pw)
}

/// Apply the same checks to a password obtained elsewhere.
pub fn obtain_from(pw: Zeroizing<String>, new: bool) -> Result<Zeroizing<String>> {
    check(pw, new)
}

fn check(pw: Zeroizing<String>, new: bool) -> Result<Zeroizing<String>> {
    if pw.is_empty() {
        return Err(CliError::usage("the CA password is empty"));
    }
    if new && pw.chars().count() < MIN_LEN {
        return Err(CliError::usage(format!(
            "the CA password must have at least {MIN_LEN} characters"
        )));
    }
    Ok(pw)
}

/// Ask a yes/no question on the terminal; `false` when there is none.
pub fn confirm(question: &str) -> bool {
    use std::io::Write;
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
