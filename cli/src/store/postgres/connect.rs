//! Where a shared ledger is and how to reach it: a `postgresql://` URL as
//! libpq takes it (several hosts with `target_session_attrs=read-write` to
//! find the primary again after a failover), the password by libpq's
//! conventions, never in the URL, and TLS through rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;

use crate::error::{CliError, Result};

/// How long a connection attempt may take before the database counts as
/// unreachable (the CA answers 503 meanwhile).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A shared ledger's address, as the CA's config holds it, with how to
/// authenticate and protect the connection.
#[derive(Clone)]
pub(crate) struct PgLocation {
    /// The URL as given (no password), for messages and the config.
    pub url: String,
    config: tokio_postgres::Config,
    tls: Tls,
}

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLocation")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Tls {
    /// `sslmode=disable` (or `prefer`, which libpq may take without TLS).
    Off,
    /// TLS, the server verified against the root in `sslrootcert` (and, for
    /// `verify-full`, its name checked), or not verified at all for
    /// `require` without a root, as libpq does.
    On(Arc<rustls::ClientConfig>),
}

impl PgLocation {
    /// Parse `url`. Its password, if any, is refused: it would end up in
    /// `config/ca.json`. The password comes from `password_file` (first
    /// line), else `PGPASSWORD`, else the pgpass file (`PGPASSFILE`, else
    /// `~/.pgpass`), as libpq looks for it.
    pub(crate) fn parse(url: &str, password_file: Option<&Path>) -> Result<Self> {
        let bad = |why: String| {
            CliError::usage(format!(
                "--store {url:?}: {why} (the form is postgresql://USER@HOST[:PORT]/DB[?sslmode=verify-full&sslrootcert=FILE])"
            ))
        };
        if !url.starts_with("postgresql://") && !url.starts_with("postgres://") {
            return Err(bad("not a postgresql:// URL".into()));
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut sslmode, mut rootcert, mut rest) = (None, None, Vec::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.to_owned()),
                Some(("sslrootcert", v)) => rootcert = Some(PathBuf::from(v)),
                Some(("password", _)) => {
                    return Err(bad("a password in the URL would be written into the CA's config; give it with --store-password-file, PGPASSWORD or a pgpass file".into()));
                }
                _ => rest.push(pair),
            }
        }
        let plain = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config: tokio_postgres::Config = plain.parse().map_err(|e| bad(format!("{e}")))?;
        if config.get_password().is_some() {
            return Err(bad("a password in the URL would be written into the CA's config; give it with --store-password-file, PGPASSWORD or a pgpass file".into()));
        }
        if config.get_user().is_none() {
            return Err(bad("it names no user".into()));
        }
        if config.get_dbname().is_none() {
            return Err(bad("it names no database".into()));
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("fedpki");
        if let Some(pw) = password(&config, password_file)? {
            config.password(pw);
        }
        let tls = match sslmode.as_deref().unwrap_or("prefer") {
            "disable" => {
                config.ssl_mode(SslMode::Disable);
                Tls::Off
            }
            "prefer" | "allow" => {
                config.ssl_mode(SslMode::Disable);
                Tls::Off
            }
            mode @ ("require" | "verify-ca" | "verify-full") => {
                config.ssl_mode(SslMode::Require);
                Tls::On(Arc::new(
                    tls_config(mode, rootcert.as_deref()).map_err(bad)?,
                ))
            }
            other => return Err(bad(format!("sslmode {other:?} is not one libpq knows"))),
        };
        Ok(Self {
            url: url.to_owned(),
            config,
            tls,
        })
    }

    /// One connection; its driver runs on the caller's runtime.
    pub(crate) async fn connect(
        &self,
    ) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
        match &self.tls {
            Tls::Off => {
                let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                Ok(client)
            }
            Tls::On(cfg) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**cfg).clone());
                let (client, conn) = self.config.connect(tls).await?;
                tokio::spawn(conn);
                Ok(client)
            }
        }
    }

    /// A pool of at most `size` connections, made when first needed and
    /// again when lost (a failover: the multi-host URL finds the primary).
    pub(crate) fn pool(&self, size: usize) -> std::result::Result<deadpool_postgres::Pool, String> {
        use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
        let config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &self.tls {
            Tls::Off => Manager::from_config(self.config.clone(), tokio_postgres::NoTls, config),
            Tls::On(cfg) => Manager::from_config(
                self.config.clone(),
                tokio_postgres_rustls::MakeRustlsConnect::new((**cfg).clone()),
                config,
            ),
        };
        Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| format!("cannot make the database's connection pool: {e}"))
    }

    /// One connection whose messages (notifications among them) are sent
    /// to `on_message`; for `LISTEN`.
    pub(crate) async fn connect_listening(
        &self,
        on_message: tokio::sync::mpsc::UnboundedSender<tokio_postgres::AsyncMessage>,
    ) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
        use futures_util::StreamExt;
        let forward = |mut conn: std::pin::Pin<
            Box<
                dyn futures_util::Stream<
                        Item = std::result::Result<
                            tokio_postgres::AsyncMessage,
                            tokio_postgres::Error,
                        >,
                    > + Send,
            >,
        >| {
            tokio::spawn(async move {
                while let Some(Ok(m)) = conn.next().await {
                    if on_message.send(m).is_err() {
                        break;
                    }
                }
            });
        };
        match &self.tls {
            Tls::Off => {
                let (client, mut conn) = self.config.connect(tokio_postgres::NoTls).await?;
                forward(Box::pin(futures_util::stream::poll_fn(move |cx| {
                    conn.poll_message(cx)
                })));
                Ok(client)
            }
            Tls::On(cfg) => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new((**cfg).clone());
                let (client, mut conn) = self.config.connect(tls).await?;
                forward(Box::pin(futures_util::stream::poll_fn(move |cx| {
                    conn.poll_message(cx)
                })));
                Ok(client)
            }
        }
    }
}

/// rustls for `mode`: the server's chain checked against `root` (required
/// for the verify modes), and its name for `verify-full`.
fn tls_config(
    mode: &str,
    root: Option<&Path>,
) -> std::result::Result<rustls::ClientConfig, String> {
    let provider = crate::platform::tls::crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let Some(root) = root else {
        if mode != "require" {
            return Err(format!(
                "sslmode={mode} needs sslrootcert=FILE, the root the database's certificate chains to"
            ));
        }
        // libpq's `require` encrypts without checking whom it talks to.
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::Unchecked(provider)))
            .with_no_client_auth());
    };
    let pem = crate::platform::sys::read_text(root).map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    let blocks = fedpki_core::encoding::pem_blocks(&pem).map_err(|e| e.to_string())?;
    for block in blocks.into_iter().filter(|b| b.label == "CERTIFICATE") {
        roots
            .add(rustls_pki_types::CertificateDer::from(block.der))
            .map_err(|e| format!("sslrootcert {}: {e}", root.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sslrootcert {} holds no certificate",
            root.display()
        ));
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = if mode == "verify-ca" {
        Arc::new(verify::AnyName(verifier))
    } else {
        verifier
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The password for `config`'s user, by libpq's conventions.
fn password(config: &tokio_postgres::Config, file: Option<&Path>) -> Result<Option<String>> {
    if let Some(f) = file {
        let text = zeroize::Zeroizing::new(crate::platform::sys::read_text(f)?);
        return Ok(Some(text.lines().next().unwrap_or("").to_owned()));
    }
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        return Ok(Some(pw));
    }
    let pgpass = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
    let Some(path) = pgpass.filter(|p| p.exists()) else {
        return Ok(None);
    };
    let text = zeroize::Zeroizing::new(crate::platform::sys::read_text(&path)?);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let want = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or_default(),
        config.get_user().unwrap_or_default(),
    ];
    Ok(pgpass_lookup(&text, &want))
}

/// The password of the first pgpass line whose four fields match `want`
/// (`*` matches anything; `\:` and `\\` are escapes).
fn pgpass_lookup(text: &str, want: &[&str; 4]) -> Option<String> {
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() == 5
            && fields[..4]
                .iter()
                .zip(want)
                .all(|(f, w)| f == "*" || f == w)
        {
            return Some(fields.remove(4));
        }
    }
    None
}

mod verify {
    //! The two verifiers libpq's modes need beyond webpki's: a chain
    //! checked without the name (`verify-ca`), and none (`require`).

    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub(super) struct AnyName(pub Arc<rustls::client::WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self
                .0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                ))
                | Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(m, c, d)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(m, c, d)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }

    #[derive(Debug)]
    pub(super) struct Unchecked(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for Unchecked {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_field_by_field_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:ca:fedpki:no\n127.0.0.1:*:ca:fedpki:s\\:ecret\n";
        assert_eq!(
            pgpass_lookup(text, &["127.0.0.1", "6000", "ca", "fedpki"]).as_deref(),
            Some("s:ecret")
        );
        assert_eq!(
            pgpass_lookup(text, &["127.0.0.1", "6000", "ca", "root"]),
            None
        );
    }

    #[test]
    fn a_url_with_a_password_or_without_a_database_is_refused() {
        let e = PgLocation::parse("postgresql://u:pw@h/db", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("would be written into the CA's config"), "{e}");
        let e = PgLocation::parse("postgresql://u@h", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("names no database"), "{e}");
        let e = PgLocation::parse("postgresql://u@h/db?sslmode=verify-full", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs sslrootcert"), "{e}");
        PgLocation::parse(
            "postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write&sslmode=disable",
            None,
        )
        .unwrap();
    }
}
