//! Telling a service manager where the server stands (systemd's
//! `sd_notify` protocol, `Type=notify`): one datagram to the socket named
//! in `NOTIFY_SOCKET`, when there is one. Without it, nothing is sent.

use std::os::unix::net::UnixDatagram;

/// The server listens and answers: `READY=1`, with its pid.
pub(crate) fn ready(status: &str) {
    send(&format!(
        "READY=1\nMAINPID={}\nSTATUS={status}",
        std::process::id()
    ));
}

/// The server is stopping: `STOPPING=1`.
pub(crate) fn stopping() {
    send("STOPPING=1");
}

fn send(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket (Linux), as systemd often names it.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.send_to_addr(message.as_bytes(), &addr)
            }
            None => socket.send_to(message.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        crate::platform::log::warn(
            "notify_failed",
            &[
                ("socket", &path.to_string_lossy()),
                ("error", &e.to_string()),
            ],
        );
    }
}
