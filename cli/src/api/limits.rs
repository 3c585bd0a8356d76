//! What one client address may take of the server: connections at once,
//! failed token checks and renewals per minute. Each limit is per address,
//! so one host cannot starve the others, and none ever refuses a request
//! that proves itself (a valid token or client certificate).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits of a running server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Failed token or certificate checks (401) one address may cause per
    /// minute; beyond, its failures get 429 until the minute is over.
    pub auth_failures_per_minute: u32,
    /// Renewals one address may make per minute.
    pub renewals_per_minute: u32,
    /// Connections served at once; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Connections one address may hold at once.
    pub max_connections_per_address: usize,
}

/// The window every per-minute limit counts in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Counts events per client address in one-minute windows.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    windows: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl RateWindow {
    /// Seconds until `ip` is under `limit` again, when it is at it.
    pub(crate) fn over(&self, ip: IpAddr, limit: u32) -> Option<u64> {
        let map = self.windows.lock().ok()?;
        let (count, start) = map.get(&ip)?;
        let age = start.elapsed();
        (*count >= limit && age < WINDOW).then(|| (WINDOW - age).as_secs().max(1))
    }

    /// Count one event for `ip`.
    pub(crate) fn count(&self, ip: IpAddr) {
        let Ok(mut map) = self.windows.lock() else {
            return;
        };
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| start.elapsed() < WINDOW);
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

/// Open connections per address.
#[derive(Debug, Default)]
pub(crate) struct ConnectionsByAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection, counted until dropped.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    owner: Arc<ConnectionsByAddress>,
    ip: IpAddr,
}

impl ConnectionsByAddress {
    /// A slot for `ip`, or `None` when it already holds `limit`.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<AddressSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.owner.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_slots_are_returned_when_dropped() {
        let c = Arc::new(ConnectionsByAddress::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| c.take(a, 3).unwrap()).collect();
        assert!(c.take(a, 3).is_none(), "a is at its limit");
        assert!(c.take(b, 3).is_some(), "b is not held back by a");
        drop(held);
        assert!(c.take(a, 3).is_some());
    }
}
