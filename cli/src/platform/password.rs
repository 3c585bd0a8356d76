//! Where the CA password comes from: `--password-file`, `FEDPKI_PASSWORD`,
//! or a terminal prompt. It is never written anywhere.

use std::io::IsTerminal;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{CliError, Result};

/// The environment variable that may carry the password.
pub(crate) const ENV: &str = "FEDPKI_PASSWORD";

/// Shortest password `pki install` accepts.
pub(crate) const MIN_LEN: usize = 8;

/// Get the password. `confirm` asks twice on a terminal (for install).
pub(crate) fn obtain(file: Option<&Path>, confirm: bool) -> Result<Zeroizing<String>> {
    if let Some(path) = file {
        let text = Zeroizing::new(crate::platform::sys::read_text(path)?);
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

/// Where a node's encrypted key finds its passphrase when there is no
/// terminal (the CA password is [`ENV`]; a node's key is not the CA's).
pub(crate) const KEY_ENV: &str = "FEDPKI_KEY_PASSWORD";

/// The passphrase of the encrypted key at `path`: [`KEY_ENV`], else asked
/// on the terminal.
pub(crate) fn key_passphrase(path: &Path) -> Result<Zeroizing<String>> {
    if let Ok(pw) = std::env::var(KEY_ENV) {
        return Ok(Zeroizing::new(pw));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "{} is encrypted: run on a terminal to type its passphrase, or set {KEY_ENV}",
            path.display()
        )));
    }
    prompt(&format!("Passphrase for {}: ", path.display()), false)
}

/// Ask for a password on the terminal; with `confirm`, ask again (unless
/// the first answer is empty) and refuse if the two differ.
pub(crate) fn prompt(question: &str, confirm: bool) -> Result<Zeroizing<String>> {
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
pub(crate) fn obtain_from(pw: Zeroizing<String>, new: bool) -> Result<Zeroizing<String>> {
    check(pw, new)
}

fn check(pw: Zeroizing<String>, new: bool) -> Result<Zeroizing<String>> {
    if pw.trim().is_empty() {
        return Err(CliError::usage(
            "the CA password is empty or only spaces; choose one with letters or digits",
        ));
    }
    if new && pw.chars().count() < MIN_LEN {
        return Err(CliError::usage(format!(
            "the CA password must have at least {MIN_LEN} characters"
        )));
    }
    Ok(pw)
}

/// Ask a yes/no question on the terminal; `false` when there is none.
pub(crate) fn confirm(question: &str) -> bool {
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

/// The longest token text read from a file or standard input.
const MAX_TOKEN_INPUT: u64 = 64 * 1024;

/// The token a `-t` argument stands for: `@FILE` reads the file, `-` reads
/// standard input, anything else is the token itself, which every local
/// user can read in the process list, so that form gets a note.
pub(crate) fn token_arg(arg: &str) -> Result<Zeroizing<String>> {
    use std::io::Read;
    let text = if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .take(MAX_TOKEN_INPUT + 1)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::io("read the token from", "standard input", e))?;
        if buf.len() as u64 > MAX_TOKEN_INPUT {
            return Err(CliError::usage("standard input holds more than a token"));
        }
        String::from_utf8(buf)
            .map_err(|_| CliError::usage("the token on standard input is not text"))?
    } else if let Some(path) = arg.strip_prefix('@') {
        let path = Path::new(path);
        warn_if_others_can_read(path);
        String::from_utf8(crate::platform::sys::read_bounded(path, MAX_TOKEN_INPUT)?)
            .map_err(|_| CliError::usage(format!("{} is not text", path.display())))?
    } else if Path::new(arg).is_file() {
        return Err(CliError::usage(format!(
            "-t {arg}: that is a file, not a token; did you mean -t @{arg} (the token read \
             from the file)?"
        )));
    } else {
        eprintln!(
            "Note: a token given on the command line can be read by every user of this host \
             (ps, /proc); prefer -t @FILE (a 0600 file) or -t - (standard input)."
        );
        arg.to_owned()
    };
    // A token pasted from a mail or a terminal may carry line breaks or
    // spaces; none belongs in it.
    let token: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if token.is_empty() {
        return Err(CliError::usage("the token is empty"));
    }
    Ok(Zeroizing::new(token))
}

fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "Warning: {} can be read by other users; a token is a secret (chmod 600 it)",
            path.display()
        );
    }
}
