//! What a node's certificate will be, decided before it is signed: by the
//! federation's roster when the CA has one (`config/federation.toml`:
//! subject, names, usages, lifetime and key age by role, whatever the CSR
//! or the token asks), else by the token's names and the CA's lifetimes.

use fedpki_core::name::{San, Subject};
use fedpki_core::profile::{LeafUsage, SubjectAttributes};

use super::{Authority, Refusal, Why};

/// A node certificate's contents, but for its key, serial and validity.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub subject: Subject,
    pub attributes: SubjectAttributes,
    pub sans: Vec<San>,
    pub usage: LeafUsage,
    pub lifetime_secs: u64,
    pub max_key_age_secs: Option<u64>,
    /// Decided by the roster: the CSR's SANs are then not compared.
    pub by_roster: bool,
}

impl Authority {
    /// The plan for `subject`, whose token or CSR asks for `sans`. With a
    /// roster, a name not on it is refused.
    pub(super) fn plan(&self, subject: &Subject, sans: &[San]) -> Result<Plan, Refusal> {
        let roster = self.roster.current();
        let Some(roster) = roster.as_ref() else {
            return Ok(Plan {
                subject: subject.clone(),
                attributes: SubjectAttributes::default(),
                sans: sans.to_vec(),
                usage: LeafUsage::Node,
                lifetime_secs: self.config.leaf_lifetime_secs,
                max_key_age_secs: self.config.max_key_age_secs,
                by_roster: false,
            });
        };
        let p = roster.participant(subject.as_str()).ok_or_else(|| {
            Refusal::new(
                Why::Forbidden,
                format!(
                    "{} is not in this federation's roster: ask the CA's operator to add it to \
                     {} on the CA",
                    subject,
                    crate::ca::roster::ROSTER_FILE
                ),
            )
        })?;
        Ok(Plan {
            subject: p.name.clone(),
            attributes: p.attributes.clone(),
            sans: p.sans.clone(),
            usage: p.usage,
            lifetime_secs: p.lifetime_secs,
            max_key_age_secs: p.max_key_age_secs.or(self.config.max_key_age_secs),
            by_roster: true,
        })
    }
}
