//! What the offline root does: sign an intermediate request, revoke an
//! intermediate, sign its CRL. Each is recorded in its ledger and audit log.

use fedpki_core::crl::{self, Reason};
use fedpki_core::csr::VerifiedCsr;
use fedpki_core::issue::{self, Issuer, Serial};
use fedpki_core::package::{IntermediateRequest, SignedIntermediate};
use fedpki_core::{Certificate, UnixTime};

use super::OpenRoot;
use crate::authority::next_crl_number;
use crate::ca::offline_root::FIRST_INTERMEDIATE_NAME;
use crate::error::{CliError, Result};
use crate::platform::ring_backend::RING_PROVIDER;
use crate::platform::sys::{OsEntropy, write_atomic};
use crate::store::{CertRecord, Change, Outcome, RevocationRecord};

/// How long a root CRL is valid: a root is rarely brought out, so its CRL
/// must outlast the gaps between ceremonies.
pub(crate) const ROOT_CRL_LIFETIME_SECS: u64 = 180 * 24 * 3600;

/// The URI SAN that marks NVFlare's job CA (its `cert_uri("ca", "job")`).
pub(crate) const NVFLARE_JOB_CA_URI: &str = "https://nvidia.com/nvflare/v1/ca/job";

/// How long a job CA lives (at most until the root's notAfter).
const JOB_CA_LIFETIME_SECS: u64 = issue::YEAR_SECS;

/// Read a job CA's CSR (plain PKCS #10, as NVFlare makes it), checked
/// against its own key: the CSR, its CN and O, and the SHA-256 of its DER.
pub(crate) fn review_job_ca(text: &str) -> Result<(VerifiedCsr, String, Option<String>, String)> {
    let csr = fedpki_core::csr::Csr::from_pem(text)
        .map_err(|e| CliError::usage(format!("the job CA's CSR: {e}; nothing was signed")))?;
    let hash = fedpki_core::encoding::hex(&fedpki_core::encoding::sha256(csr.der()));
    let csr = csr.verify(RING_PROVIDER.verifier).map_err(|e| {
        CliError::usage(format!(
            "the job CA's CSR is not signed by its own key ({e}); nothing was signed"
        ))
    })?;
    let name = csr.common_name()?.ok_or_else(|| {
        CliError::usage(
            "the job CA's CSR has no common name (NVFlare's says job-ca); nothing was signed",
        )
    })?;
    let org = csr.organization()?;
    Ok((csr, name, org, hash))
}

/// Read an intermediate request: its stated hash must be its CSR's, and
/// the CSR must be signed by the key it carries.
pub(crate) fn review(text: &str) -> Result<(IntermediateRequest, VerifiedCsr, String)> {
    let (request, csr) = IntermediateRequest::parse(text)
        .map_err(|e| CliError::usage(format!("{e}; nothing was signed")))?;
    let csr = csr.verify(RING_PROVIDER.verifier).map_err(|e| {
        CliError::usage(format!(
            "the request's CSR is not signed by its own key ({e}); nothing was signed"
        ))
    })?;
    let name = csr
        .common_name()?
        .unwrap_or_else(|| FIRST_INTERMEDIATE_NAME.to_owned());
    Ok((request, csr, name))
}

/// The intermediate this root signed before for the request's key, if any:
/// a request is signed once.
async fn signed_before(root: &OpenRoot, csr: &VerifiedCsr) -> Result<Option<CertRecord>> {
    Ok(root
        .store
        .certificates()
        .await?
        .into_iter()
        .find(|r| Certificate::from_der(&r.der).is_ok_and(|c| c.public_key() == csr.public_key())))
}

impl OpenRoot {
    /// A request is signed once, and only once its operator says yes: a
    /// key this root signed before is refused before anyone is asked
    /// (`instead`: what to do with the one signed then).
    async fn may_sign(
        &self,
        csr: &VerifiedCsr,
        instead: &str,
        confirm: impl FnOnce() -> bool,
    ) -> Result<()> {
        if let Some(prior) = signed_before(self, csr).await? {
            return Err(CliError::usage(format!(
                "this root signed this request before (serial {}, {}); {instead}, or make a new \
                 request; nothing was signed",
                prior.serial,
                crate::platform::sys::time_text(prior.issued_at)
            )));
        }
        if !confirm() {
            return Err(CliError::usage(
                "not confirmed; nothing was signed (use --yes once the hash is compared)",
            ));
        }
        Ok(())
    }

    /// Sign the intermediate a request asks for (pathlen 0, 10 years or
    /// the root's remaining life), once `confirm` says yes, record it, and
    /// make the signed file. A request whose key this root signed before is
    /// refused before anyone is asked.
    pub(crate) async fn sign(
        &self,
        request: &IntermediateRequest,
        csr: &VerifiedCsr,
        name: &str,
        now: UnixTime,
        confirm: impl FnOnce() -> bool,
    ) -> Result<(Certificate, SignedIntermediate)> {
        self.may_sign(csr, "carry that signed file back", confirm)
            .await?;
        let issuer = Issuer {
            cert: &self.cert,
            key: &self.key,
        };
        let cert =
            issuer.intermediate_ca(csr.public_key(), name, Serial::random(&mut OsEntropy)?, now)?;
        let by = format!(
            "root sign: intermediate request {} from {}",
            request.csr_sha256, request.ca_url
        );
        self.record(&cert, now.0, by).await?;
        let signed = SignedIntermediate::new(
            &request.csr_sha256,
            issue::cert_pem(&cert)?,
            self.cert_pem.clone(),
        );
        Ok((cert, signed))
    }

    /// Sign NVFlare's job CA from its CSR (its CN and O kept, pathlen 0,
    /// the job-CA marker), once `confirm` says yes, and record it. A CSR
    /// whose key this root signed before is refused before anyone is asked.
    pub(crate) async fn sign_job_ca(
        &self,
        csr: &VerifiedCsr,
        (name, org, hash): (&str, Option<&str>, &str),
        now: UnixTime,
        confirm: impl FnOnce() -> bool,
    ) -> Result<Certificate> {
        self.may_sign(csr, "use that certificate", confirm).await?;
        let issuer = Issuer {
            cert: &self.cert,
            key: &self.key,
        };
        let marker = fedpki_core::name::San::uri(NVFLARE_JOB_CA_URI)?;
        let cert = issuer.constrained_ca(
            csr.public_key(),
            name,
            org,
            &[marker],
            Serial::random(&mut OsEntropy)?,
            now,
            JOB_CA_LIFETIME_SECS,
        )?;
        self.record(
            &cert,
            now.0,
            format!("root sign: NVFlare job CA, CSR {hash}"),
        )
        .await?;
        Ok(cert)
    }

    /// Revoke an intermediate this root signed. `Ok(Some(earlier))` when it
    /// was revoked before (nothing changed).
    pub(crate) async fn revoke(
        &self,
        serial: &str,
        reason: Reason,
        now: UnixTime,
    ) -> Result<Option<RevocationRecord>> {
        let outcome = self
            .store
            .commit(Change::Revoke {
                record: RevocationRecord {
                    serial: serial.to_owned(),
                    revoked_at: now.0,
                    reason: reason.code(),
                },
                token: None,
                by: "the root's operator".into(),
                presented: None,
                from: None,
            })
            .await?;
        match outcome {
            Outcome::Done => Ok(None),
            Outcome::Revoked(prior) => Ok(Some(prior)),
            Outcome::UnknownSerial => Err(CliError::usage(format!(
                "this root signed no intermediate with serial {serial} (`pki root sign` printed \
                 each serial; `fedpki pki list -p {}` lists them); nothing was revoked",
                self.paths.dir().display()
            ))),
            other => Err(CliError::Store(format!(
                "the root's ledger answered a revocation with {other:?}"
            ))),
        }
    }

    /// Sign a complete CRL of the intermediates revoked, valid
    /// [`ROOT_CRL_LIFETIME_SECS`], and keep it in the folder.
    pub(crate) async fn crl(&self, now: UnixTime) -> Result<Vec<u8>> {
        let revoked: Vec<crl::Revoked> = self
            .store
            .revocations()
            .await?
            .into_iter()
            .map(|r| crl::Revoked {
                serial_hex: r.serial,
                at: UnixTime(r.revoked_at),
                reason: Reason::from_code(r.reason).unwrap_or(Reason::Unspecified),
            })
            .collect();
        let last = crate::ca::crl_number_in(&self.paths.ca.root_crl()).unwrap_or(0);
        let issuer = Issuer {
            cert: &self.cert,
            key: &self.key,
        };
        let der = crl::build(
            &issuer,
            &revoked,
            next_crl_number(&self.store, last).await?,
            now,
            now.plus(ROOT_CRL_LIFETIME_SECS),
        )?;
        write_atomic(&self.paths.ca.root_crl(), &der, 0o644)?;
        Ok(der)
    }
}
