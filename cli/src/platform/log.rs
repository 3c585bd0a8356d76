//! Structured log lines on stderr: `ts=… level=… event=… key=value …`
//! (logfmt, the default) or one JSON object a line (`--log-format json`),
//! `ts` in ISO 8601 UTC with milliseconds in both. Callers pass only what
//! is safe to log: never a key, password or token.
//!
//! Lines go to a thread of their own through a bounded queue, so a slow
//! or blocked stderr never stalls the server's async workers: when the
//! queue is full a line is counted and dropped, and the next line written
//! says how many were. [`flush`] waits for the queue to drain (the binary
//! calls it before exiting).

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines waiting for the writer, at most.
const QUEUE: usize = 8192;
/// How long the writer lets lines gather after the first of a burst. A
/// sender only wakes the writer when it waits on an empty queue, so under
/// load this is one wake-up (and one write) per pause, not per line.
const GATHER: Duration = Duration::from_millis(2);

enum Msg {
    Line(String),
    Flush(mpsc::Sender<()>),
}

static QUEUED: OnceLock<Option<SyncSender<Msg>>> = OnceLock::new();
/// Whether lines are JSON objects rather than logfmt; set once, at start.
static JSON: OnceLock<bool> = OnceLock::new();

/// Write JSON lines from now on (`--log-format json`) instead of logfmt.
pub(crate) fn use_json(json: bool) {
    let _ = JSON.set(json);
}
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn queue() -> Option<&'static SyncSender<Msg>> {
    QUEUED
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
            std::thread::Builder::new()
                .name("fedpki-log".into())
                .spawn(move || {
                    while let Ok(first) = rx.recv() {
                        std::thread::sleep(GATHER);
                        let mut text = String::new();
                        let mut flushed = Vec::new();
                        for msg in std::iter::once(first).chain(rx.try_iter()) {
                            match msg {
                                Msg::Line(line) => text.push_str(&line),
                                Msg::Flush(done) => flushed.push(done),
                            }
                        }
                        write_out(&text);
                        for done in flushed {
                            let _ = done.send(());
                        }
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

fn write_out(text: &str) {
    let mut err = std::io::stderr().lock();
    let dropped = DROPPED.swap(0, Ordering::SeqCst);
    if dropped > 0 {
        let note = format_line(
            "warn",
            "log_lines_dropped",
            &[("count", &dropped.to_string())],
            json(),
        );
        let _ = err.write_all(note.as_bytes());
    }
    if !text.is_empty() {
        let _ = err.write_all(text.as_bytes());
    }
}

/// Now, ISO 8601 in UTC with milliseconds (`2026-12-07T16:10:00.123Z`).
fn timestamp(now: Duration) -> String {
    let secs = fedpki_core::UnixTime(now.as_secs()).to_string();
    // RFC 3339 seconds end in `Z`: the milliseconds go before it.
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{:03}Z", now.subsec_millis()),
        None => secs,
    }
}

/// One line, newline included: a JSON object, or logfmt.
fn format_line(level: &str, event: &str, fields: &[(&str, &str)], json: bool) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ts = timestamp(now);
    if json {
        let mut object = serde_json::Map::new();
        object.insert("ts".into(), ts.into());
        object.insert("level".into(), level.into());
        object.insert("event".into(), event.into());
        for (k, v) in fields {
            object.insert((*k).to_owned(), (*v).into());
        }
        let mut out = serde_json::Value::Object(object).to_string();
        out.push('\n');
        return out;
    }
    let mut out = format!("ts={ts} level={level} event={event}");
    for (k, v) in fields {
        if v.is_empty() || v.contains([' ', '"', '=']) {
            out.push_str(&format!(" {k}={v:?}"));
        } else {
            out.push_str(&format!(" {k}={v}"));
        }
    }
    out.push('\n');
    out
}

fn json() -> bool {
    JSON.get().copied().unwrap_or(false)
}

fn line(level: &str, event: &str, fields: &[(&str, &str)]) {
    let text = format_line(level, event, fields, json());
    let Some(q) = queue() else {
        // No writer thread: write it here.
        return write_out(&text);
    };
    match q.try_send(Msg::Line(text)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
        Err(TrySendError::Disconnected(Msg::Line(text))) => write_out(&text),
        Err(TrySendError::Disconnected(Msg::Flush(_))) => {}
    }
}

/// Wait (up to 2 s) until every line logged so far is written.
pub(crate) fn flush() {
    let Some(q) = queue() else { return };
    let (done, wait) = mpsc::channel();
    if q.send(Msg::Flush(done)).is_ok() {
        let _ = wait.recv_timeout(Duration::from_secs(2));
    }
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

/// At most one log line per second for an event a client can cause at
/// will (a refused connection, a failed handshake), with the number of
/// lines left out since the last one, so a flood cannot fill the disk.
#[derive(Debug, Default)]
pub(crate) struct LogThrottle {
    last_second: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// A throttle that has logged nothing yet.
    pub(crate) const fn new() -> Self {
        Self {
            last_second: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out before this one)` when this one may be logged.
    pub(crate) fn admit(&self) -> Option<u64> {
        let second = crate::platform::sys::now().0;
        let last = self.last_second.load(Ordering::Relaxed);
        if last != second
            && self
                .last_second
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl LogThrottle {
    /// A warning about `peer`, if this second has not had one.
    pub(crate) fn warn(&self, event: &str, peer: &std::net::SocketAddr) {
        self.warn_with(event, peer, "");
    }

    /// [`LogThrottle::warn`] with an error text.
    pub(crate) fn warn_with(&self, event: &str, peer: &std::net::SocketAddr, error: &str) {
        if let Some(left_out) = self.admit() {
            warn(
                event,
                &[
                    ("peer", &peer.to_string()),
                    ("error", error),
                    ("not_logged_since", &left_out.to_string()),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(
            timestamp(Duration::from_millis(1_796_000_000_123)),
            "2026-11-30T00:53:20.123Z"
        );
        assert_eq!(
            timestamp(Duration::from_secs(0)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn a_json_line_is_one_object_with_the_same_fields() {
        let l = format_line("warn", "e", &[("a", "two words"), ("b", "x\"y")], true);
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l}");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["event"], "e");
        assert_eq!(v["a"], "two words");
        assert_eq!(v["b"], "x\"y");
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn values_with_spaces_quotes_or_equals_are_quoted() {
        let l = format_line(
            "warn",
            "e",
            &[("a", "plain"), ("b", "two words"), ("c", "")],
            false,
        );
        assert!(
            l.contains(" level=warn event=e a=plain b=\"two words\" c=\"\"\n"),
            "{l}"
        );
    }

    #[test]
    fn a_flood_logs_one_line_a_second() {
        let t = LogThrottle::default();
        let admitted = (0..10_000).filter(|_| t.admit().is_some()).count();
        assert!(admitted <= 2, "{admitted} lines for one burst");
    }
}
