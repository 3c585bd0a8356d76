//! `mtls-handshake AGG_DIR AGG_NAME COL_DIR COL_NAME`: the demo's proof
//! that the issued files work: a mutual-TLS handshake between the
//! aggregator's and the collaborator's certificates, each trusting only its
//! own `root_ca.crt`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [agg_dir, agg, col_dir, col] = args.as_slice() else {
        eprintln!("usage: mtls-handshake AGG_DIR AGG_NAME COL_DIR COL_NAME");
        return ExitCode::from(2);
    };
    let (agg_dir, col_dir) = (PathBuf::from(agg_dir), PathBuf::from(col_dir));
    let files = |dir: &PathBuf, name: &str| {
        (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
            dir.join("root_ca.crt"),
        )
    };
    let (ac, ak, ar) = files(&agg_dir, agg);
    let (cc, ck, cr) = files(&col_dir, col);
    let server = fedpki_tests::mtls::Identity {
        cert: &ac,
        key: &ak,
        trust: &ar,
    };
    let client = fedpki_tests::mtls::Identity {
        cert: &cc,
        key: &ck,
        trust: &cr,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fedpki_tests::mtls::handshake(server, client, agg)) {
        Ok(h) => {
            println!(
                "mutual TLS ({}) between aggregator and collaborator:",
                h.version
            );
            println!(
                "  aggregator verified the collaborator's certificate: CN={}",
                h.server_saw_client
            );
            println!(
                "  collaborator verified the aggregator's certificate: CN={} (name checked)",
                h.client_saw_server
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mutual TLS failed: {e}");
            ExitCode::FAILURE
        }
    }
}
