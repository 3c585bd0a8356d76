//! The authority decides: it checks a sign request and issues, whatever the
//! transport (HTTPS now, request files for the air-gapped flow).
//!
//! The pipeline is fixed (SPEC §3): verify the token (signature, `iss`,
//! `aud`, time) → decode the CSR and check its signature → check its names
//! against the token → issue → burn the token and record the certificate in
//! one durable commit. A token that passed its own checks is burnt even when
//! the CSR is then refused; no answer leaves before the commit is durable.

use std::fmt;

use fedpki_core::csr::{Csr, VerifiedCsr};
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::name::{San, Subject};
use fedpki_core::token::{self, TokenError, VerifiedToken};
use fedpki_core::{PrivateKey, SignatureVerifier, UnixTime};

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
        let checked = verified_csr(csr_pem, self.verifier).and_then(|csr| {
            csr.check_names(token.subject(), token.sans())
                .map_err(|e| Refusal::new(403, e.to_string()))?;
            self.issue(&csr, token.subject(), token.sans(), now)
        });
        let burn = (token.jti().to_owned(), token.burn_until().0);
        match checked {
            Ok((issued, record)) => {
                self.commit(Some(burn), Some(record)).await?;
                Ok(issued)
            }
            Err(refusal) => {
                // The token was genuine: it is spent even though the CSR was not.
                self.commit(Some(burn), None).await?;
                Err(refusal)
            }
        }
    }

    /// Sign a CSR an operator has confirmed by hand (its hash compared out
    /// of band): the names are the CSR's own CN and SANs (the CN alone when
    /// it lists none). Same issuance and ledger as [`Authority::sign`].
    pub async fn sign_confirmed(
        &self,
        csr: &VerifiedCsr,
        now: UnixTime,
    ) -> Result<Issued, Refusal> {
        let (subject, sans) = csr_names(csr)?;
        let (issued, record) = self.issue(csr, &subject, &sans, now)?;
        self.commit(None, Some(record)).await?;
        Ok(issued)
    }

    fn issue(
        &self,
        csr: &VerifiedCsr,
        subject: &Subject,
        sans: &[San],
        now: UnixTime,
    ) -> Result<(Issued, CertRecord), Refusal> {
        let serial = Serial::random(&mut OsEntropy).map_err(internal)?;
        let cert = self
            .issuer()
            .leaf(
                csr.public_key().clone(),
                subject,
                sans,
                serial,
                now.minus(issue::BACKDATE_SECS),
                now.plus(self.config.leaf_lifetime_secs),
            )
            .map_err(internal)?;
        let record = CertRecord {
            serial: serial.to_hex(),
            subject: subject.as_str().to_owned(),
            sans: sans.iter().map(String::from).collect(),
            not_after: cert
                .tbs_certificate()
                .validity()
                .not_after
                .to_unix_duration()
                .as_secs(),
            issued_at: now.0,
            der: issue::cert_der(&cert).map_err(internal)?,
        };
        let issued = Issued {
            crt: issue::cert_pem(&cert).map_err(internal)?,
            ca: self.certs.intermediate_pem.clone(),
            serial: record.serial.clone(),
            subject: record.subject.clone(),
        };
        Ok((issued, record))
    }

    async fn commit(
        &self,
        burn: Option<(String, u64)>,
        cert: Option<CertRecord>,
    ) -> Result<(), Refusal> {
        let (jti, burn_until) = burn.map_or((None, 0), |(j, u)| (Some(j), u));
        let outcome = self
            .store
            .commit_issue(IssueCommit {
                jti,
                burn_until,
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

/// Decode a PEM CSR and check its self-signature: 400 on failure.
pub fn verified_csr(
    csr_pem: &str,
    verifier: &dyn SignatureVerifier,
) -> Result<VerifiedCsr, Refusal> {
    let csr = Csr::from_pem(csr_pem)
        .map_err(|e| Refusal::new(400, format!("the csr field is not a valid CSR: {e}")))?;
    csr.verify(verifier).map_err(|e| match e {
        fedpki_core::Error::Unsupported(_) => Refusal::new(400, e.to_string()),
        _ => Refusal::new(400, format!("the CSR's signature is not valid: {e}")),
    })
}

/// The names a CSR asks for: its CN, and its SANs or else the CN as a SAN.
pub fn csr_names(csr: &VerifiedCsr) -> Result<(Subject, Vec<San>), Refusal> {
    let cn = csr
        .common_name()
        .ok()
        .flatten()
        .ok_or_else(|| Refusal::new(400, "the CSR has no common name"))?;
    let subject = Subject::new(&cn).map_err(|e| Refusal::new(400, e.to_string()))?;
    let mut sans = csr.sans().map_err(|e| Refusal::new(403, e.to_string()))?;
    if sans.is_empty() {
        sans.push(San::parse(&cn).map_err(|e| Refusal::new(400, e.to_string()))?);
    }
    Ok((subject, sans))
}

fn internal(e: impl fmt::Display) -> Refusal {
    crate::log::error("issue", &[("error", &e.to_string())]);
    Refusal::new(500, "the CA failed to issue the certificate")
}
