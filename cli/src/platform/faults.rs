//! Named points where a test stops the process as a crash would
//! (`FEDPKI_CRASH_AT=NAME` aborts there), to show on the real binary that
//! an operation is crash-safe at each of its steps. Debug builds only: a
//! release binary never reads the variable.

/// Abort here if a test asked to crash at `name`.
pub(crate) fn point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("FEDPKI_CRASH_AT").is_ok_and(|at| at == name) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
