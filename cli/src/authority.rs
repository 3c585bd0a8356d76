//! The authority decides: it checks a sign request and issues, whatever the
//! transport (HTTPS now, request files for the air-gapped flow).
//!
//! The pipeline is fixed (SPEC §3): verify the token (signature, `iss`,
//! `aud`, time) → decode the CSR and check its signature → check its names
//! against the token → issue → burn the token and record the certificate in
//! one durable commit. A token that passed its own checks is burnt even when
//! the CSR is then refused; no answer leaves before the commit is durable.

use std::fmt;

use fedpki_core::csr::Csr;
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::token::{self, TokenError, VerifiedToken};
use fedpki_core::{PrivateKey, SignatureVerifier, UnixTime};
use x509_cert::Certificate;

use crate::ca::{CaCerts, CaConfig};
use crate::store::{Burn, CertRecord, IssueCommit, Store};
use crate::sys::OsEntropy;

/// A refused request: the HTTP status and a message safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status code (400, 401, 403, 500).
    pub status: u16,
    /// What was wrong, for the client.
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Self {
        Self::new(401, e.to_string())
    }
}

/// An issued certificate and its chain.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Leaf PEM.
    pub crt: String,
    /// Intermediate PEM.
    pub ca: String,
    /// Serial, hex.
    pub serial: String,
    /// Subject.
    pub subject: String,
}

/// The online or offline CA.
pub struct Authority {
    config: CaConfig,
    audiences: Vec<String>,
    provisioner: p256::ecdsa::VerifyingKey,
    certs: CaCerts,
    key: PrivateKey,
    verifier: &'static dyn SignatureVerifier,
    store: Store,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("ca_url", &self.config.ca_url)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// An authority over a loaded CA.
    pub fn new(
        config: CaConfig,
        certs: CaCerts,
        key: PrivateKey,
        store: Store,
    ) -> crate::error::Result<Self> {
        Ok(Self {
            audiences: config.audiences(),
            provisioner: config.provisioner_key()?,
            config,
            certs,
            key,
            verifier: &fedpki_core::RUST_CRYPTO,
            store,
        })
    }

    /// The CA's certificates.
    pub fn certs(&self) -> &CaCerts {
        &self.certs
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The intermediate CA as an issuer.
    pub fn issuer(&self) -> Issuer<'_> {
        Issuer {
            cert: &self.certs.intermediate,
            key: &self.key,
        }
    }

    /// Check a token alone (signature, `iss`, `aud`, time).
    pub fn verify_token(&self, ott: &str, now: UnixTime) -> Result<VerifiedToken, Refusal> {
        let expect = token::Expectations {
            issuer: &self.config.provisioner.name,
            audiences: &self.audiences,
        };
        Ok(token::verify(ott, &self.provisioner, &expect, now)?)
    }

    /// The whole sign pipeline. `csr_pem` and `ott` as a client sent them.
    pub async fn sign(&self, csr_pem: &str, ott: &str, now: UnixTime) -> Result<Issued, Refusal> {
        let token = self.verify_token(ott, now)?;
        match self.check_and_issue(csr_pem, &token, now) {
            Ok((cert, issued)) => {
                let record = CertRecord {
                    serial: issued.serial.clone(),
                    subject: issued.subject.clone(),
                    sans: token.sans().iter().map(String::from).collect(),
                    not_after: cert
                        .tbs_certificate()
                        .validity()
                        .not_after
                        .to_unix_duration()
                        .as_secs(),
                    issued_at: now.0,
                    der: issue::cert_der(&cert).map_err(internal)?,
                };
                self.burn(&token, Some(record)).await?;
                Ok(issued)
            }
            Err(refusal) => {
                // The token was genuine: it is spent even though the CSR was not.
                self.burn(&token, None).await?;
                Err(refusal)
            }
        }
    }

    fn check_and_issue(
        &self,
        csr_pem: &str,
        token: &VerifiedToken,
        now: UnixTime,
    ) -> Result<(Certificate, Issued), Refusal> {
        let csr = Csr::from_pem(csr_pem)
            .map_err(|e| Refusal::new(400, format!("the csr field is not a valid CSR: {e}")))?;
        let csr = csr.verify(self.verifier).map_err(|e| match e {
            fedpki_core::Error::Unsupported(_) => Refusal::new(400, e.to_string()),
            _ => Refusal::new(400, format!("the CSR's signature is not valid: {e}")),
        })?;
        csr.check_names(token.subject(), token.sans())
            .map_err(|e| Refusal::new(403, e.to_string()))?;
        let serial = Serial::random(&mut OsEntropy).map_err(internal)?;
        let cert = self
            .issuer()
            .leaf(
                csr.public_key().clone(),
                token.subject(),
                token.sans(),
                serial,
                now.minus(issue::BACKDATE_SECS),
                now.plus(self.config.leaf_lifetime_secs),
            )
            .map_err(internal)?;
        let issued = Issued {
            crt: issue::cert_pem(&cert).map_err(internal)?,
            ca: self.certs.intermediate_pem.clone(),
            serial: serial.to_hex(),
            subject: token.subject().as_str().to_owned(),
        };
        Ok((cert, issued))
    }

    async fn burn(&self, token: &VerifiedToken, cert: Option<CertRecord>) -> Result<(), Refusal> {
        let outcome = self
            .store
            .commit_issue(IssueCommit {
                jti: token.jti().to_owned(),
                burn_until: token.burn_until().0,
                cert,
            })
            .await
            .map_err(|e| {
                crate::log::error("store", &[("error", &e.to_string())]);
                Refusal::new(500, "the CA could not record the request; try again later")
            })?;
        match outcome {
            Burn::Fresh => Ok(()),
            Burn::AlreadyUsed => Err(TokenError::AlreadyUsed.into()),
        }
    }
}

fn internal(e: impl fmt::Display) -> Refusal {
    crate::log::error("issue", &[("error", &e.to_string())]);
    Refusal::new(500, "the CA failed to issue the certificate")
}
