//! The CA as a systemd service: the unit in `packaging/` passes
//! `systemd-analyze verify` with no warning, and the server speaks the
//! `sd_notify` protocol its `Type=notify` relies on: READY=1 with its pid
//! once it answers, STOPPING=1 when told to stop; its log as JSON lines
//! for a log shipper.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test binary: helpers fail loudly

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use fedpki_tests::site::Site;
use fedpki_tests::*;

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let unit =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/fedpki-ca.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("Type=notify"));
    assert!(text.contains("LoadCredential=password:"));
    assert!(text.contains("--password-file %d/password"));
    // verify wants the ExecStart binary to exist: this build's.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("fedpki-ca.service");
    let binary = bin();
    std::fs::write(
        &local,
        text.replace("/usr/local/bin/fedpki", binary.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .expect("systemd-analyze (scripts/setup installs systemd)");
    assert!(out.status.success(), "{}", stderr(&out));
    // A setting it does not understand is only a warning: none is allowed.
    assert!(stderr(&out).trim().is_empty(), "{}", stderr(&out));
}

#[test]
fn the_server_tells_its_service_manager_it_is_ready_and_stopping() {
    let site = Site::new();
    ok(site.pki("install -p @ca --ca-url $URL"));
    let socket_path = site.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let server = site.serve_with(
        "ca",
        &["--log-format", "json"],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("READY=1 within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready
            .lines()
            .any(|l| l == format!("MAINPID={}", server.pid())),
        "{ready}"
    );
    // Ready means it answers.
    assert_eq!(site.get("ca", "/health").0, 200);
    let lines = server.lines();
    assert!(server.stop().success());
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(String::from_utf8_lossy(&buf[..n]), "STOPPING=1");

    // Its log, asked for as JSON: one object a line, ISO 8601 UTC times.
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let ts = v["ts"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-12-07T16:10:00.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert!(v["event"].is_string() && v["level"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("\"event\":\"listening\"")));
}
