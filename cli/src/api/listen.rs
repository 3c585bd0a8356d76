//! The sockets a CA listens on: one, or one per address family, accepted
//! from together.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use crate::address::Listen;
use crate::error::{CliError, Result};
use crate::platform::log;

/// Bound listening sockets.
#[derive(Debug)]
pub(crate) struct Listeners(Vec<TcpListener>);

impl Listeners {
    /// Bind every socket of `listen` (an IPv6 one is skipped, and logged,
    /// where the machine has no IPv6). Call within the runtime.
    pub(crate) fn bind(listen: Listen) -> Result<Self> {
        let mut bound = Vec::new();
        for (addr, optional) in listen.sockets() {
            match bind_one(addr) {
                Ok(l) => bound.push(l),
                Err(e) if optional && no_ipv6(&e) => {
                    log::info(
                        "ipv6_unavailable",
                        &[("address", &addr.to_string()), ("error", &e.to_string())],
                    );
                }
                Err(e) => return Err(CliError::io("listen on", addr.to_string(), e)),
            }
        }
        Ok(Self(bound))
    }

    /// The addresses listened on.
    pub(crate) fn addresses(&self) -> Vec<SocketAddr> {
        self.0.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// The next connection on any of them (cancel-safe, as each accept is).
    pub(crate) async fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        let accepts = self.0.iter().map(|l| Box::pin(l.accept()));
        futures_util::future::select_all(accepts).await.0
    }
}

/// One listening socket; an IPv6 one takes IPv6 only, so that the IPv4
/// one beside it can take the same port.
fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// The machine has no IPv6 (disabled, or no such address here).
fn no_ipv6(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(97 | 99))
}
