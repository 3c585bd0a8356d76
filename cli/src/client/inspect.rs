//! `fedpki pki inspect FILE`: a readable view of anything fedpki reads or
//! writes: certificates, CSRs, keys, tokens, request and signed files.

use std::fmt::Write;

use fedpki_core::Certificate;
use fedpki_core::csr::Csr;
use fedpki_core::encoding::pem_blocks;
use fedpki_core::package::{IntermediateRequest, RequestFile, SignedFile, SignedIntermediate};
use fedpki_core::token::Bundle;
use fedpki_core::{chain, issue};

use crate::error::{CliError, Result};
use crate::platform::sys::now;

/// Describe a CRL (DER).
pub(crate) fn describe_crl(out: &mut String, der: &[u8]) -> Result<()> {
    let crl = fedpki_core::crl::Crl::parse(der)?;
    let t = crate::platform::sys::time_text;
    writeln!(out, "CRL").ok();
    writeln!(out, "  issuer:      {}", crl.issuer()).ok();
    writeln!(out, "  number:      {}", crl.number().unwrap_or(0)).ok();
    writeln!(out, "  this update: {}", t(crl.this_update().0)).ok();
    match crl.next_update() {
        Some(n) => writeln!(out, "  next update: {}", t(n.0)).ok(),
        None => writeln!(out, "  next update: none").ok(),
    };
    let entries = crl.entries();
    writeln!(out, "  revoked:     {}", entries.len()).ok();
    for e in entries {
        writeln!(
            out,
            "    {}  {}  {}",
            e.serial_hex,
            t(e.at.0),
            e.reason.name()
        )
        .ok();
    }
    Ok(())
}

/// Describe a file given as bytes: a DER CRL, or any text form
/// [`describe`] knows.
pub fn describe_bytes(bytes: &[u8]) -> Result<String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => describe(text),
        Err(_) => {
            let mut out = String::new();
            if fedpki_core::crl::Crl::parse(bytes).is_ok() {
                describe_crl(&mut out, bytes)?;
            } else {
                describe_cert(&mut out, &issue::parse_cert_der(bytes)?);
            }
            Ok(out)
        }
    }
}

/// Describe the contents of `text` (what it is is guessed from its shape).
pub fn describe(text: &str) -> Result<String> {
    let trimmed = text.trim();
    let mut out = String::new();
    if trimmed.starts_with('{') {
        if let Ok((req, csr)) = RequestFile::parse(trimmed) {
            writeln!(out, "Request file for {:?}", req.name).ok();
            describe_csr(&mut out, &csr)?;
            match &req.token {
                Some(t) => {
                    writeln!(out, "  carries a token:").ok();
                    describe_token(&mut out, t, "    ")?;
                }
                None => {
                    writeln!(out, "  no token: the CA operator must compare the CSR hash").ok();
                }
            }
            return Ok(out);
        }
        if trimmed.contains("\"intermediate-request\"") {
            let (req, csr) = IntermediateRequest::parse(trimmed)?;
            writeln!(out, "Intermediate request from the CA at {}", req.ca_url).ok();
            writeln!(out, "  SHA-256:     {}", req.csr_sha256).ok();
            describe_csr(&mut out, &csr)?;
            return Ok(out);
        }
        if trimmed.contains("\"signed-intermediate\"") {
            let signed = SignedIntermediate::parse(trimmed)?;
            writeln!(
                out,
                "Signed intermediate answering {}",
                signed.request_sha256
            )
            .ok();
            for (label, pem) in [("intermediate", &signed.crt), ("root", &signed.root)] {
                writeln!(out, "{label}:").ok();
                describe_cert(&mut out, &issue::parse_cert_pem(pem)?);
            }
            return Ok(out);
        }
        let signed = SignedFile::parse(trimmed)?;
        writeln!(out, "Signed file for {:?}", signed.name).ok();
        for (label, pem) in [
            ("certificate", &signed.crt),
            ("issuer", &signed.ca),
            ("root", &signed.root),
        ] {
            writeln!(out, "{label}:").ok();
            describe_cert(&mut out, &issue::parse_cert_pem(pem)?);
        }
        return Ok(out);
    }
    if trimmed.contains("-----BEGIN ") {
        for block in pem_blocks(trimmed)? {
            match block.label.as_str() {
                "CERTIFICATE" => describe_cert(&mut out, &issue::parse_cert_der(&block.der)?),
                "X509 CRL" => describe_crl(&mut out, &block.der)?,
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                    describe_csr(&mut out, &Csr::from_der(&block.der)?)?;
                }
                "PRIVATE KEY" => {
                    let key = fedpki_core::PrivateKey::from_pkcs8_der(&block.der)?;
                    writeln!(
                        out,
                        "Private key: {} (PKCS#8, unencrypted; not shown)",
                        fedpki_core::SigningKey::public_key(&key)
                    )
                    .ok();
                }
                "ENCRYPTED PRIVATE KEY" => {
                    writeln!(
                        out,
                        "Private key: PKCS#8, encrypted with a password (not shown)"
                    )
                    .ok();
                }
                "PUBLIC KEY" => {
                    let key = fedpki_core::PublicKey::from_der(&block.der)?;
                    writeln!(out, "Public key: {key}").ok();
                }
                other => {
                    writeln!(
                        out,
                        "PEM block {other:?} ({} bytes): not something fedpki reads",
                        block.der.len()
                    )
                    .ok();
                }
            }
        }
        return Ok(out);
    }
    describe_token(&mut out, trimmed, "")?;
    Ok(out)
}

fn describe_cert(out: &mut String, cert: &Certificate) {
    let t = now();
    let state = if t < cert.not_before() {
        "not valid yet"
    } else if t > cert.not_after() {
        "EXPIRED"
    } else {
        "valid now"
    };
    let fp = fedpki_core::issue::fingerprint(cert).unwrap_or_default();
    writeln!(out, "Certificate").ok();
    writeln!(out, "  subject:     {}", cert.subject_text()).ok();
    writeln!(out, "  issuer:      {}", cert.issuer_text()).ok();
    writeln!(out, "  serial:      {}", issue::serial_hex(cert)).ok();
    writeln!(
        out,
        "  valid:       {} to {} ({state})",
        cert.not_before_text(),
        cert.not_after_text()
    )
    .ok();
    writeln!(out, "  key:         {}", cert.public_key()).ok();
    if chain::is_ca(cert) {
        writeln!(out, "  CA:          yes").ok();
    }
    let sans = chain::sans(cert);
    if !sans.is_empty() {
        let list: Vec<String> = sans.iter().map(String::from).collect();
        writeln!(out, "  SANs:        {}", list.join(", ")).ok();
    }
    let usages = cert.key_usage_names();
    if !usages.is_empty() {
        writeln!(out, "  key usage:   {}", usages.join(", ")).ok();
    }
    if let Some(purposes) = cert.extended_key_usage_names() {
        writeln!(out, "  ext. usage:  {}", purposes.join(", ")).ok();
    }
    writeln!(out, "  SHA-256:     {fp}").ok();
}

fn describe_csr(out: &mut String, csr: &Csr) -> Result<()> {
    let signature = match csr.clone().verify(&fedpki_core::RUST_CRYPTO) {
        Ok(_) => "valid".to_owned(),
        Err(e) => format!("NOT VALID ({e})"),
    };
    let sans: Vec<String> = csr
        .sans()
        .map(|s| s.iter().map(String::from).collect())
        .unwrap_or_default();
    writeln!(out, "Certificate signing request").ok();
    writeln!(
        out,
        "  subject CN:  {}",
        csr.common_name()?.unwrap_or_else(|| "(none)".into())
    )
    .ok();
    writeln!(
        out,
        "  SANs:        {}",
        if sans.is_empty() {
            "(none)".into()
        } else {
            sans.join(", ")
        }
    )
    .ok();
    writeln!(out, "  key:         {}", csr.public_key()).ok();
    writeln!(out, "  signature:   {signature}").ok();
    writeln!(
        out,
        "  CSR hash:    {} (OpenFL's: SHA-384 of the PEM)",
        csr.openfl_hash()?
    )
    .ok();
    Ok(())
}

fn describe_token(out: &mut String, token: &str, indent: &str) -> Result<()> {
    let (_, claims, root) = Bundle::parse(token).map_err(|e| {
        CliError::usage(format!(
            "not a certificate, CSR, key, token, request or signed file that fedpki reads ({e})"
        ))
    })?;
    let t = now().0;
    let state = if t > claims.exp {
        "EXPIRED"
    } else {
        "not expired"
    };
    let aud = match &claims.aud {
        fedpki_core::token::Audience::One(a) => a.clone(),
        fedpki_core::token::Audience::Many(v) => v.join(", "),
    };
    let when = crate::platform::sys::time_text;
    writeln!(out, "{indent}Enrollment token (one use)").ok();
    writeln!(out, "{indent}  subject:     {}", claims.sub).ok();
    writeln!(out, "{indent}  SANs:        {}", claims.sans.join(", ")).ok();
    writeln!(out, "{indent}  CA address:  {aud}").ok();
    writeln!(out, "{indent}  issuer:      {}", claims.iss).ok();
    writeln!(
        out,
        "{indent}  valid:       {} to {} ({state})",
        when(claims.nbf),
        when(claims.exp)
    )
    .ok();
    writeln!(out, "{indent}  id (jti):    {}", claims.jti).ok();
    writeln!(
        out,
        "{indent}  root:        {} (matches the token's sha)",
        chain::common_name(&root).unwrap_or_default()
    )
    .ok();
    writeln!(out, "{indent}  root SHA-256: {}", claims.sha).ok();
    Ok(())
}
