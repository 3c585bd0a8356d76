//! Entry points for the fuzzers in `fuzz/`: the request decoders and the
//! authority behind them, over an in-memory store.

use std::sync::OnceLock;

use crate::authority::Authority;
use crate::ca::{self, CaCerts, CaPaths};
use crate::store::{MemoryBackend, Store};

struct Fixture {
    rt: tokio::runtime::Runtime,
    authority: Authority,
}

#[allow(clippy::expect_used)] // a fuzzing fixture: it works or the run stops
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fedpki-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let paths = CaPaths::new(&dir);
        let pw = "fuzz-password";
        let config = ca::install(
            &paths,
            "localhost:9123",
            pw,
            true,
            ca::InstallOptions {
                leaf_secs: 3600,
                max_token_secs: fedpki_core::token::DEFAULT_MAX_LIFETIME_SECS,
                allow_node_on_ca_host: false,
                dns: Vec::new(),
                store: None,
                max_key_age_secs: None,
            },
        )
        .expect("fuzz CA");
        let certs = CaCerts::load(&paths, &config).expect("fuzz CA certs");
        let key = ca::unlock_key(&paths.intermediate_key(), pw).expect("fuzz CA key");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let store = Store::start(MemoryBackend::default()).expect("store");
        let authority = Authority::new(config, certs, key, store).expect("authority");
        Fixture { rt, authority }
    })
}

/// First byte: the route (sign, revoke, renew); the rest: the body, or
/// for renew the presented certificate's DER.
pub fn requests(data: &[u8]) {
    let Some((route, body)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let now = crate::platform::sys::now();
    f.rt.block_on(async {
        match route % 3 {
            0 => {
                if let Ok((csr, ott)) = super::handlers::decode_sign(body) {
                    let _ = f.authority.sign(&csr, &ott, now, None).await;
                }
            }
            1 => {
                if let Ok(r) = super::handlers::decode_revoke(body) {
                    let _ = match &r.ott {
                        Some(ott) => {
                            f.authority
                                .revoke_with_token(&r.serial, ott, r.reason, now, None)
                                .await
                        }
                        None => {
                            f.authority
                                .revoke_by_operator(&r.serial, r.reason, now)
                                .await
                        }
                    };
                }
            }
            _ => {
                if let Ok(cert) = fedpki_core::issue::parse_cert_der(body) {
                    let _ = f.authority.renew(&cert, now, None).await;
                }
            }
        }
    });
}
