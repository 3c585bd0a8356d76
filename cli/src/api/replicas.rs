//! A replica hears the others: on a shared ledger, every revocation commit
//! sends `NOTIFY fedpki, 'revoked'` and every activation `'issuers'`, and
//! each replica's server listens on a connection of its own. A revocation
//! answered by one replica is then in every replica's served CRL within a
//! moment, and an intermediate activated anywhere is taken up everywhere.
//! After the connection was lost (notifications missed meanwhile) the CRLs
//! are re-signed and the issuers taken up again at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::App;
use super::tls::TlsIdentity;
use crate::platform::log;
use crate::store::postgres::{CHANNEL, PgLocation};

/// What a notification asks of this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// A revocation was committed: re-sign the CRLs.
    Revoked,
    /// The issuers changed (an activation, a root CRL): take them up.
    Issuers,
}

/// Listen until the server stops, reconnecting after a loss.
pub(super) async fn listen(app: Arc<App>, identity: Arc<TlsIdentity>, location: PgLocation) {
    let mut first = true;
    loop {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let client = match location.connect_listening(tx).await {
            Ok(c) => c,
            Err(e) => {
                log::warn("replica_listen_failed", &[("error", &e.to_string())]);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
            log::warn("replica_listen_failed", &[("error", &e.to_string())]);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if !first {
            // Whatever was said while this replica was not listening.
            act(&app, &identity, Heard::Issuers).await;
            act(&app, &identity, Heard::Revoked).await;
        }
        first = false;
        log::info("replica_listening", &[("channel", CHANNEL)]);
        while let Some(message) = rx.recv().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                match n.payload() {
                    "revoked" => act(&app, &identity, Heard::Revoked).await,
                    "issuers" => act(&app, &identity, Heard::Issuers).await,
                    _ => {}
                }
            }
        }
        drop(client);
        log::warn("replica_listen_lost", &[("note", "reconnecting")]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn act(app: &Arc<App>, identity: &TlsIdentity, heard: Heard) {
    match heard {
        Heard::Revoked => super::refresh_crls(app).await,
        Heard::Issuers => super::take_up_intermediates(app, identity).await,
    }
}
