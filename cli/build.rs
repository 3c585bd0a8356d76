//! Embed the certify page (web/dist, made by scripts/build-wasm) when it has
//! been built; without it the binary still builds and says so at `/`.

// A build script fails the build by panicking, with the message shown.
#![allow(clippy::expect_used)]

use std::fmt::Write;
use std::path::Path;

const FILES: &[(&str, &str)] = &[
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("fedpki_wasm.js", "text/javascript; charset=utf-8"),
    ("fedpki_wasm_bg.wasm", "application/wasm"),
];

fn main() {
    // Read when the script runs, not when it was compiled: a build script
    // compiled for one checkout may be reused for another of the same tree.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dist = Path::new(&manifest).join("../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut out = String::from(
        "/// The page's files: path, content type, bytes.\npub(crate) static ASSETS: &[(&str, &str, &[u8])] = &[\n",
    );
    if FILES.iter().all(|(f, _)| dist.join(f).is_file()) {
        for (f, content_type) in FILES {
            let path = dist
                .join(f)
                .canonicalize()
                .expect("canonical path of a file that exists");
            writeln!(
                out,
                "    (\"/{f}\", \"{content_type}\", include_bytes!({:?})),",
                path.display().to_string()
            )
            .expect("write to a String");
        }
    }
    out.push_str("];\n");
    let target =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web_assets.rs");
    std::fs::write(target, out).expect("write web_assets.rs");
}
