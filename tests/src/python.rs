//! The Python of the test environment `scripts/setup` makes (a virtual
//! environment with the real third-party parsers and frameworks the tests
//! check fedpki against), and running a script in it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The environment's interpreter: `$FEDPKI_PYTHON`, else the one
/// `scripts/setup` made. A test that needs it fails (never skips) without.
pub fn interpreter() -> PathBuf {
    if let Some(p) = std::env::var_os("FEDPKI_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME");
    let python = cache.join("fedpki-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash scripts/setup` (it makes the tests' Python environment)",
        python.display()
    );
    python
}

/// Run `script` with `input` on its standard input: its standard output.
pub fn run(script: &str, input: &[u8]) -> String {
    let mut child = Command::new(interpreter())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
