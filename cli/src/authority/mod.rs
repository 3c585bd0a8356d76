//! The authority decides: it checks a sign request and issues, whatever the
//! transport (HTTPS now, request files for the air-gapped flow).
//!
//! The pipeline is fixed (SPEC §3): verify the token (signature, `iss`,
//! `aud`, time) → decode the CSR and check its signature → check its names
//! against the token → issue → burn the token and record the certificate in
//! one durable commit. A token that passed its own checks is burnt even when
//! the CSR is then refused; no answer leaves before the commit is durable.

use std::fmt;
use std::net::IpAddr;

use fedpki_core::csr::VerifiedCsr;
use fedpki_core::issue::{self, Serial};
use fedpki_core::name::{San, Subject};
use fedpki_core::profile::LeafUsage;
use fedpki_core::token::{self, VerifiedToken};
use fedpki_core::{PrivateKey, PublicKey, SignatureVerifier, UnixTime};

use crate::ca::issuers::IssuerKeys;
use crate::ca::roster::RosterWatch;
use crate::ca::{CaCerts, CaConfig};
use fedpki_core::profile::SubjectAttributes;
use plan::Plan;

use crate::platform::events::{self, Event, Issuance};
use crate::platform::sys::Clock;
use crate::store::{Burn, CertRecord, Change, Store};
use fedpki_core::Entropy;

mod commit;
mod crl;
mod csr;
mod issuers;
mod key_age;
mod plan;
mod platform;
mod refusal;
mod renew;
mod revoke;
mod server_cert;

pub(crate) use self::crl::{CRL_LIFETIME_SECS, next_number as next_crl_number};
pub use self::csr::csr_names;
pub(crate) use self::csr::verified_csr;
pub(crate) use self::issuers::Issuers;
pub(crate) use self::platform::Platform;

use refusal::internal;
pub(crate) use refusal::{Refusal, Why};
pub(crate) use revoke::normalize_serial;

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
    revoke_audiences: Vec<String>,
    provisioner: PublicKey,
    issuers: std::sync::RwLock<std::sync::Arc<Issuers>>,
    signer: fn(PrivateKey) -> Box<dyn fedpki_core::SigningKey>,
    verifier: &'static dyn SignatureVerifier,
    store: Store,
    clock: Box<dyn Clock>,
    entropy: std::sync::Mutex<Box<dyn Entropy + Send>>,
    /// The CA's own host names, which no node is given (empty when the
    /// operator allows it).
    ca_host: Vec<San>,
    /// The federation's roster, when the CA has one.
    roster: RosterWatch,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("ca_url", &self.config.ca_url)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// An authority over a loaded CA, on [`Platform::system`].
    pub fn new(
        config: CaConfig,
        certs: CaCerts,
        key: PrivateKey,
        store: Store,
    ) -> crate::error::Result<Self> {
        Self::on(config, certs, key, store, Platform::system())
    }

    /// An authority over every intermediate of a CA folder, on
    /// [`Platform::system`].
    pub(crate) fn with_issuers(
        config: CaConfig,
        keys: IssuerKeys,
        store: Store,
    ) -> crate::error::Result<Self> {
        Self::build(config, keys, store, Platform::system())
    }

    /// An authority over a loaded CA with one intermediate, on `platform`.
    pub fn on(
        config: CaConfig,
        certs: CaCerts,
        key: PrivateKey,
        store: Store,
        platform: Platform,
    ) -> crate::error::Result<Self> {
        Self::build(config, IssuerKeys::single(certs, key), store, platform)
    }

    fn build(
        config: CaConfig,
        keys: IssuerKeys,
        store: Store,
        platform: Platform,
    ) -> crate::error::Result<Self> {
        let ca_host = if config.allow_node_on_ca_host {
            Vec::new()
        } else {
            config.host_names()?
        };
        Ok(Self {
            ca_host,
            audiences: config.audiences(),
            revoke_audiences: config.revoke_audiences(),
            provisioner: config.provisioner_key()?,
            config,
            issuers: std::sync::RwLock::new(std::sync::Arc::new(Issuers::new(
                keys,
                platform.crypto.signer,
            ))),
            signer: platform.crypto.signer,
            verifier: platform.crypto.verifier,
            store,
            clock: platform.clock,
            entropy: std::sync::Mutex::new(platform.entropy),
            roster: RosterWatch::fixed(None),
        })
    }

    /// This authority, deciding node certificates by `roster`.
    pub(crate) fn with_roster(mut self, roster: RosterWatch) -> Self {
        self.roster = roster;
        self
    }

    /// The CA's configuration.
    pub fn config(&self) -> &CaConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Check a token alone (signature, `iss`, `aud`, time).
    pub fn verify_token(&self, ott: &str, now: UnixTime) -> Result<VerifiedToken, Refusal> {
        self.verified(ott, &self.audiences, now)
    }

    /// A token for one of `audiences`, checked; on an adopted CA, also made
    /// after the adoption.
    fn verified(
        &self,
        ott: &str,
        audiences: &[String],
        now: UnixTime,
    ) -> Result<VerifiedToken, Refusal> {
        let expect = token::Expectations {
            issuer: &self.config.provisioner.name,
            audiences,
            max_lifetime_secs: self.config.max_token_lifetime_secs,
        };
        let token = token::verify_with(ott, &self.provisioner, self.verifier, &expect, now)?;
        // step-ca's database of spent tokens is not read: one made before
        // the adoption may have been spent there already; so may one made
        // in the adoption's own second (iat counts whole seconds).
        if let Some(adopted) = &self.config.adopted
            && token.claims().iat <= adopted.at
        {
            return Err(Refusal::new(
                Why::NotAuthorized,
                format!(
                    "the token was made ({}) before this CA was adopted from its step-ca ({}), \
                     which may have spent it already; ask for a new token",
                    UnixTime(token.claims().iat),
                    UnixTime(adopted.at)
                ),
            ));
        }
        Ok(token)
    }

    /// The whole sign pipeline. `csr_pem` and `ott` as a client sent them,
    /// from the address `from` (for the audit log) when it came over the
    /// network.
    pub async fn sign(
        &self,
        csr_pem: &str,
        ott: &str,
        now: UnixTime,
        from: Option<IpAddr>,
    ) -> Result<Issued, Refusal> {
        let token = self.verify_token(ott, now)?;
        let planned = self.plan(token.subject(), token.sans());
        let csr = verified_csr(csr_pem, self.verifier);
        let birth = match (&csr, &planned) {
            (Ok(csr), Ok(plan)) => self.key_birth(csr.public_key(), plan).await?,
            _ => None,
        };
        let checked = planned.and_then(|plan| {
            let csr = csr?;
            // With a roster the CSR names its holder only: the roster
            // gives the names, whatever else it asks for.
            let forbidden = |e: fedpki_core::Error| Refusal::new(Why::Forbidden, e.to_string());
            let own;
            let allowed = if plan.by_roster {
                own = csr.sans().map_err(forbidden)?;
                &own
            } else {
                token.sans()
            };
            csr.check_names(token.subject(), allowed)
                .map_err(forbidden)?;
            self.issue(csr.public_key(), &plan, now, birth)
        });
        let token = Burn {
            jti: token.jti().to_owned(),
            until: token.burn_until().0,
        };
        match checked {
            Ok((issued, cert)) => {
                self.commit(Change::Issue {
                    token: Some(token),
                    cert,
                    by: None,
                    from,
                })
                .await?;
                reported(Issuance::Token, &issued, from);
                Ok(issued)
            }
            Err(refusal) => {
                // The token was genuine: it is spent even though the CSR was not.
                self.commit(Change::Burn {
                    token,
                    at: now.0,
                    from,
                })
                .await?;
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
        let plan = self.plan(&subject, &sans)?;
        let birth = self.key_birth(csr.public_key(), &plan).await?;
        let (issued, cert) = self.issue(csr.public_key(), &plan, now, birth)?;
        self.commit(Change::Issue {
            token: None,
            cert,
            by: None,
            from: None,
        })
        .await?;
        reported(Issuance::Confirmed, &issued, None);
        Ok(issued)
    }

    /// A store failure as the client sees it. Nothing of the request was
    /// recorded or issued; a full disk is the operator's to fix (503), and
    /// the CA resumes by itself once there is space.
    fn store_failed(&self, e: crate::error::CliError) -> Refusal {
        crate::platform::log::error("store", &[("error", &e.to_string())]);
        if self.store.unavailable() {
            return Refusal::new(
                Why::Unavailable,
                "the CA's database is unavailable: nothing was recorded or issued; try again \
                 shortly (the CA reconnects by itself)",
            );
        }
        if self.store.disk_full() {
            return Refusal::new(
                Why::Unavailable,
                "the CA's disk is full: nothing was recorded or issued; try again once its \
                 operator has freed space (the CA resumes by itself)",
            );
        }
        Refusal::new(
            Why::Internal,
            "the CA could not record the request; try again later",
        )
    }

    /// A node's certificate, as `plan` says. `birth`: when its key was
    /// first certified here ([`Authority::key_birth`]).
    fn issue(
        &self,
        public_key: &PublicKey,
        plan: &Plan,
        now: UnixTime,
        birth: Option<u64>,
    ) -> Result<(Issued, CertRecord), Refusal> {
        self.check_not_ca_host(&plan.subject, &plan.sans)?;
        let not_after = self.not_after(now, birth, plan)?;
        let who = (&plan.subject, &plan.attributes);
        self.issue_as(public_key, who, &plan.sans, plan.usage, not_after, now)
    }

    fn issue_as(
        &self,
        public_key: &PublicKey,
        (subject, attributes): (&Subject, &SubjectAttributes),
        sans: &[San],
        usage: LeafUsage,
        not_after: UnixTime,
        now: UnixTime,
    ) -> Result<(Issued, CertRecord), Refusal> {
        let serial = {
            let mut entropy = self.entropy.lock().unwrap_or_else(|e| e.into_inner());
            Serial::time_ordered(self.clock.now_ms(), &mut **entropy).map_err(internal)?
        };
        let issuers = self.issuers();
        let cert = issuers
            .active()
            .leaf_with(
                public_key,
                (subject, attributes),
                sans,
                usage,
                serial,
                (now.minus(issue::BACKDATE_SECS), not_after),
                &self.config.published(issuers.active_kid()),
            )
            .map_err(internal)?;
        let record = CertRecord {
            serial: serial.to_hex(),
            subject: subject.as_str().to_owned(),
            sans: sans.iter().map(String::from).collect(),
            not_after: cert.not_after().0,
            issued_at: now.0,
            der: issue::cert_der(&cert).map_err(internal)?,
            key: public_key.pin(),
            issuer: issuers.active_kid().to_owned(),
        };
        let issued = Issued {
            // From the record's DER: the certificate is encoded once.
            crt: fedpki_core::encoding::pem("CERTIFICATE", &record.der).map_err(internal)?,
            ca: issuers.certs().intermediate_pem.clone(),
            serial: record.serial.clone(),
            subject: record.subject.clone(),
        };
        Ok((issued, record))
    }
}

/// Report a certificate issued and recorded.
fn reported(how: Issuance, issued: &Issued, from: Option<IpAddr>) {
    events::report(&Event::Issued {
        how,
        subject: &issued.subject,
        serial: &issued.serial,
        from,
    });
}

#[cfg(test)]
mod tests;
