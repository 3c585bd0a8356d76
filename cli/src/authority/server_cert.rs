//! The CA's own HTTPS certificate, recorded like every certificate the
//! intermediate signs, and the rule that keeps its host names from nodes.

use fedpki_core::name::{San, Subject};
use fedpki_core::profile::{LeafUsage, SubjectAttributes};
use fedpki_core::{PublicKey, UnixTime};

use super::{Authority, Refusal, Why};
use crate::platform::events::{self, Event, Issuance};
use crate::store::Change;

impl Authority {
    /// The CA's own HTTPS certificate over `public_key` for its host
    /// `names`: serverAuth only, valid `lifetime_secs`, and recorded in the
    /// ledger and the audit log like every certificate the intermediate
    /// signs. Its DER.
    pub async fn issue_server_certificate(
        &self,
        public_key: &PublicKey,
        subject: &Subject,
        names: &[San],
        lifetime_secs: u64,
        now: UnixTime,
    ) -> Result<Vec<u8>, Refusal> {
        let (_, record) = self.issue_as(
            public_key,
            (subject, &SubjectAttributes::default()),
            names,
            LeafUsage::CaServer,
            now.plus(lifetime_secs),
            now,
        )?;
        let der = record.der.clone();
        let (subject, serial) = (record.subject.clone(), record.serial.clone());
        self.commit(Change::Issue {
            token: None,
            cert: record,
            by: Some("the CA's own HTTPS server".into()),
            from: None,
        })
        .await?;
        events::report(&Event::Issued {
            how: Issuance::CaServer,
            subject: &subject,
            serial: &serial,
            from: None,
        });
        Ok(der)
    }

    /// A node is not given the CA's own host names (unless its operator
    /// allows it): with one, it could pose as the CA to a client whose
    /// token does not pin the CA's key, since such a client can check only
    /// the root and the name.
    pub(super) fn check_not_ca_host(&self, subject: &Subject, sans: &[San]) -> Result<(), Refusal> {
        let names = std::iter::once(subject.as_str().to_owned())
            .chain(sans.iter().map(ToString::to_string));
        for name in names {
            if self
                .ca_host
                .iter()
                .any(|h| h.to_string().eq_ignore_ascii_case(&name))
            {
                return Err(Refusal::new(
                    Why::Forbidden,
                    format!(
                        "{name} is this CA's own host (https://{}): a node holding a certificate \
                         for it could pose as the CA to clients whose tokens do not pin its key \
                         (step's). Name the node otherwise, or let the CA's operator allow it: \
                         `fedpki pki install -p CA_DIR --node-on-ca-host allow`",
                        self.config.ca_url
                    ),
                ));
            }
        }
        Ok(())
    }
}
