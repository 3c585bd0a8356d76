//! Structured log lines on stderr: `ts=… level=… event=… key=value …`.
//! Callers pass only what is safe to log: never a key, password or token.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn line(level: &str, event: &str, fields: &[(&str, &str)]) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut out = format!("ts={ts:.3} level={level} event={event}");
    for (k, v) in fields {
        if v.is_empty() || v.contains([' ', '"', '=']) {
            out.push_str(&format!(" {k}={v:?}"));
        } else {
            out.push_str(&format!(" {k}={v}"));
        }
    }
    out.push('\n');
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Something happened.
pub(crate) fn info(event: &str, fields: &[(&str, &str)]) {
    line("info", event, fields);
}

/// A request was refused or something failed that the operator should see.
pub(crate) fn warn(event: &str, fields: &[(&str, &str)]) {
    line("warn", event, fields);
}

/// An internal failure.
pub(crate) fn error(event: &str, fields: &[(&str, &str)]) {
    line("error", event, fields);
}
