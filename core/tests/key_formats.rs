//! Keys in the forms nodes already have, made by OpenSSL (an independent
//! implementation): each is read, and its public key is the one OpenSSL
//! derives; encrypted ones need the right passphrase.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use fedpki_core::{Error, KeyAlgorithm, PrivateKey, SignatureVerifier, SigningKey};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// OpenSSL's view of the key's public half, as DER.
fn openssl_public_der(dir: &Path, key: &str, pass: Option<&str>) -> Vec<u8> {
    let mut args = vec![
        "pkey", "-in", key, "-pubout", "-outform", "DER", "-out", "pub.der",
    ];
    let passin = pass.map(|p| format!("pass:{p}"));
    if let Some(p) = &passin {
        args.extend(["-passin", p]);
    }
    openssl(dir, &args);
    std::fs::read(dir.join("pub.der")).unwrap()
}

/// A key file, the OpenSSL runs that make it, its passphrase, the PEM
/// label it must have, and its algorithm.
type Case<'a> = (
    &'a str,
    &'a [&'a [&'a str]],
    Option<&'a str>,
    &'a str,
    KeyAlgorithm,
);

#[test]
fn sec1_pkcs1_and_pkcs8_keys_plain_and_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cases: &[Case] = &[
        (
            "ec256.pem",
            &[&[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ec256.pem",
            ]],
            None,
            "EC PRIVATE KEY",
            KeyAlgorithm::P256,
        ),
        (
            "ec384-aes256.pem",
            &[
                &[
                    "ecparam",
                    "-name",
                    "secp384r1",
                    "-genkey",
                    "-out",
                    "ec384.pem",
                ],
                &[
                    "ec",
                    "-in",
                    "ec384.pem",
                    "-aes256",
                    "-passout",
                    "pass:s3cret",
                    "-out",
                    "ec384-aes256.pem",
                ],
            ],
            Some("s3cret"),
            "EC PRIVATE KEY",
            KeyAlgorithm::P384,
        ),
        (
            "ec256-aes128.pem",
            &[&[
                "ec",
                "-in",
                "ec256.pem",
                "-aes128",
                "-passout",
                "pass:other",
                "-out",
                "ec256-aes128.pem",
            ]],
            Some("other"),
            "EC PRIVATE KEY",
            KeyAlgorithm::P256,
        ),
        (
            "rsa-pkcs1.pem",
            &[&["genrsa", "-traditional", "-out", "rsa-pkcs1.pem", "2048"]],
            None,
            "RSA PRIVATE KEY",
            KeyAlgorithm::Rsa { bits: 2048 },
        ),
        (
            "rsa-pkcs1-aes256.pem",
            &[&[
                "rsa",
                "-in",
                "rsa-pkcs1.pem",
                "-traditional",
                "-aes256",
                "-passout",
                "pass:pw",
                "-out",
                "rsa-pkcs1-aes256.pem",
            ]],
            Some("pw"),
            "RSA PRIVATE KEY",
            KeyAlgorithm::Rsa { bits: 2048 },
        ),
        (
            "rsa-pkcs8-enc.pem",
            &[&[
                "pkcs8",
                "-topk8",
                "-in",
                "rsa-pkcs1.pem",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:pw8",
                "-out",
                "rsa-pkcs8-enc.pem",
            ]],
            Some("pw8"),
            "ENCRYPTED PRIVATE KEY",
            KeyAlgorithm::Rsa { bits: 2048 },
        ),
    ];
    for (file, steps, pass, label, alg) in cases {
        for step in *steps {
            openssl(d, step);
        }
        let text = std::fs::read_to_string(d.join(file)).unwrap();
        assert!(text.contains(&format!("BEGIN {label}")), "{file}: {text}");
        assert_eq!(
            PrivateKey::pem_is_encrypted(&text),
            pass.is_some(),
            "{file}"
        );
        let key = PrivateKey::from_pem(&text, pass.map(str::as_bytes))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.algorithm(), *alg, "{file}");
        assert_eq!(
            key.public_key().der(),
            openssl_public_der(d, file, *pass).as_slice(),
            "{file}: not the key OpenSSL sees"
        );
        // It signs, and what it signs verifies: a usable key, not only a
        // parsed one.
        let sig = key.sign(b"renew me").unwrap();
        fedpki_core::RUST_CRYPTO
            .verify(
                key.signature_algorithm(),
                &key.public_key(),
                b"renew me",
                &sig,
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        if let Some(p) = pass {
            let wrong = format!("{p}x");
            assert_eq!(
                PrivateKey::from_pem(&text, Some(wrong.as_bytes())).unwrap_err(),
                Error::Decrypt,
                "{file}"
            );
            let err = PrivateKey::from_pem(&text, None).unwrap_err();
            assert!(err.to_string().contains("encrypted"), "{file}: {err}");
        }
    }
}

#[test]
fn unsupported_forms_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "secp521r1",
            "-genkey",
            "-noout",
            "-out",
            "ec521.pem",
        ],
    );
    openssl(
        d,
        &["genrsa", "-traditional", "-out", "rsa1024.pem", "1024"],
    );
    openssl(
        d,
        &[
            "ec",
            "-in",
            "ec521.pem",
            "-des3",
            "-passout",
            "pass:pw",
            "-out",
            "des.pem",
        ],
    );
    for (file, needle) in [
        ("ec521.pem", "P-256 or P-384"),
        ("rsa1024.pem", "1024 bits"),
        ("des.pem", "DES-EDE3-CBC"),
    ] {
        let text = std::fs::read_to_string(d.join(file)).unwrap();
        let err = PrivateKey::from_pem(&text, Some(b"pw")).unwrap_err();
        assert!(err.to_string().contains(needle), "{file}: {err}");
    }
    let err = PrivateKey::from_pem(
        "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n",
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("DSA PRIVATE KEY"), "{err}");
}
