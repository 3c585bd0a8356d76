//! The federation's roster, `config/federation.toml`: who may be certified,
//! and as what. The operator edits it; the CA reads it, refuses a malformed
//! one with the line and the reason, and from then on decides each
//! certificate's subject, names, usages, lifetime and key age by the
//! participant's role, whatever the CSR asks. Without the file, the token
//! decides the names, as before.
//!
//! ```toml
//! project = "demo"                       # {project} in URI templates
//!
//! [roles.server]
//! usages = ["server-auth", "client-auth"]
//! lifetime = "30d"
//! max-key-age = "365d"                   # else the CA's (pki install --max-key-age)
//!
//! [roles.lead]
//! usages = ["client-auth"]
//! lifetime = "12h"
//! uris = ["https://nvidia.com/nvflare/v1/project/{project}/study/{study}"]
//!
//! [[participants]]
//! name = "server1.example.org"
//! org = "nvidia"
//! role = "server"
//! sans = ["server1.example.org", "10.0.0.5"]   # default: the name
//!
//! [[participants]]
//! name = "admin1"
//! org = "nvidia"
//! role = "lead"
//! studies = ["lung", "brain"]            # one URI per study where {study} appears
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use fedpki_core::name::{San, Subject};
use fedpki_core::profile::{LeafUsage, SubjectAttributes};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{CliError, Result};
use crate::platform::duration::parse_duration;

/// The roster's file, under the CA folder.
pub(crate) const ROSTER_FILE: &str = "config/federation.toml";

/// The shortest and longest a role's certificates may live.
const LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 3600..=365 * 86_400;
/// The least key age limit a role may set (as `pki install --max-key-age`).
const MIN_KEY_AGE: u64 = 86_400;

/// A participant's certificate, as the roster decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Participant {
    /// Its name: the token's subject and the certificate's CN.
    pub name: Subject,
    /// Its role's name.
    pub role: String,
    /// `O` and the role, in the subject.
    pub attributes: SubjectAttributes,
    /// Every SAN: the DNS names and addresses, then the role's URIs.
    pub sans: Vec<San>,
    /// serverAuth, clientAuth or both.
    pub usage: LeafUsage,
    /// How long its certificates live.
    pub lifetime_secs: u64,
    /// Its role's key age limit, when the role sets one.
    pub max_key_age_secs: Option<u64>,
}

/// A roster, checked: every participant's certificate is decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Roster {
    participants: BTreeMap<String, Participant>,
}

impl Roster {
    /// The roster of the CA folder `dir`, or `None` when it has none.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(ROSTER_FILE);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CliError::io("reading", &path, e)),
            Ok(_) => {}
        }
        let text = crate::platform::sys::read_text(&path)?;
        Self::parse(&text)
            .map(Some)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
    }

    /// Check a roster's text; the error names the line.
    pub(crate) fn parse(text: &str) -> std::result::Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim_end().to_owned();
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })?;
        let at = |start: usize, why: String| format!("line {}: {why}", line_of(text, start));
        let mut roles = BTreeMap::new();
        for (name, role) in &file.roles {
            let checked =
                Role::check(name, role.get_ref()).map_err(|why| at(role.span().start, why))?;
            roles.insert(name.clone(), checked);
        }
        let mut participants = BTreeMap::new();
        for entry in &file.participants {
            let p = entry.get_ref();
            let participant = p
                .check(&roles, file.project.as_deref())
                .map_err(|why| at(entry.span().start, why))?;
            let key = participant.name.as_str().to_owned();
            if participants.insert(key.clone(), participant).is_some() {
                return Err(at(
                    entry.span().start,
                    format!("participant {key:?} is listed twice"),
                ));
            }
        }
        Ok(Self { participants })
    }

    /// The participant named `name` (exactly as its token's subject).
    pub(crate) fn participant(&self, name: &str) -> Option<&Participant> {
        self.participants.get(name)
    }

    /// Every participant, by name.
    pub(crate) fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.participants.values()
    }
}

/// A CA's roster as the server holds it: read at start (a malformed one
/// stops the start), then read again whenever the file changes, so an
/// operator adds a participant without a restart. A change that does not
/// parse is logged and the roster before it stays in force.
#[derive(Debug)]
pub(crate) struct RosterWatch {
    dir: Option<std::path::PathBuf>,
    state: std::sync::Mutex<(Option<Stamp>, std::sync::Arc<Option<Roster>>)>,
}

/// What tells a changed file: its inode, size and modification time.
type Stamp = (u64, u64, std::time::SystemTime);

fn stamp(dir: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir.join(ROSTER_FILE)).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()?))
}

impl RosterWatch {
    /// The roster of the CA folder `dir`, watched; refused when malformed.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let seen = stamp(dir);
        let roster = Roster::load(dir)?;
        Ok(Self {
            dir: Some(dir.to_owned()),
            state: std::sync::Mutex::new((seen, std::sync::Arc::new(roster))),
        })
    }

    /// This roster, never read from a file (tests, and a CA without one).
    pub(crate) fn fixed(roster: Option<Roster>) -> Self {
        Self {
            dir: None,
            state: std::sync::Mutex::new((None, std::sync::Arc::new(roster))),
        }
    }

    /// The roster in force now.
    pub(crate) fn current(&self) -> std::sync::Arc<Option<Roster>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(dir) = &self.dir else {
            return state.1.clone();
        };
        let now = stamp(dir);
        if now != state.0 {
            state.0 = now;
            match Roster::load(dir) {
                // A CA that checks names keeps checking them: the file
                // gone (moved while edited, deleted by mistake) opens
                // nothing until the server restarts without one.
                Ok(None) if state.1.is_some() => crate::platform::log::error(
                    "roster",
                    &[
                        ("error", "config/federation.toml is gone"),
                        ("kept", "the roster read before; restart to run without one"),
                    ],
                ),
                Ok(roster) => state.1 = std::sync::Arc::new(roster),
                Err(e) => crate::platform::log::error(
                    "roster",
                    &[
                        ("error", &e.to_string()),
                        ("kept", "the roster read before this change"),
                    ],
                ),
            }
        }
        state.1.clone()
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    project: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, Spanned<RoleEntry>>,
    #[serde(default)]
    participants: Vec<Spanned<ParticipantEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RoleEntry {
    usages: Vec<String>,
    lifetime: String,
    max_key_age: Option<String>,
    #[serde(default)]
    uris: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantEntry {
    name: String,
    role: String,
    org: Option<String>,
    #[serde(default)]
    sans: Vec<String>,
    #[serde(default)]
    studies: Vec<String>,
}

struct Role {
    usage: LeafUsage,
    lifetime_secs: u64,
    max_key_age_secs: Option<u64>,
    uris: Vec<String>,
}

impl Role {
    fn check(name: &str, entry: &RoleEntry) -> std::result::Result<Self, String> {
        check_label("role name", name)?;
        let (mut server, mut client) = (false, false);
        for usage in &entry.usages {
            match usage.as_str() {
                "server-auth" => server = true,
                "client-auth" => client = true,
                other => {
                    return Err(format!(
                        "role {name:?}: usage {other:?} is not one of server-auth, client-auth"
                    ));
                }
            }
        }
        let usage = match (server, client) {
            (true, true) => LeafUsage::Node,
            (true, false) => LeafUsage::TlsServer,
            (false, true) => LeafUsage::TlsClient,
            (false, false) => {
                return Err(format!(
                    "role {name:?} has no usages: list server-auth, client-auth or both"
                ));
            }
        };
        let lifetime_secs = parse_duration(&entry.lifetime)
            .ok()
            .filter(|s| LIFETIME_RANGE.contains(s))
            .ok_or_else(|| {
                format!(
                    "role {name:?}: lifetime {:?} is not a duration from 1h to 365d (e.g. 30d, 12h)",
                    entry.lifetime
                )
            })?;
        let max_key_age_secs = match &entry.max_key_age {
            None => None,
            Some(text) => Some(
                parse_duration(text)
                    .ok()
                    .filter(|s| *s >= MIN_KEY_AGE)
                    .ok_or_else(|| {
                        format!(
                            "role {name:?}: max-key-age {text:?} is not a duration of 1d or more"
                        )
                    })?,
            ),
        };
        for template in &entry.uris {
            // Every placeholder filled, the template must make a URI.
            let known = ["name", "org", "role", "project", "study"];
            let sample = fill(template, &|key| known.contains(&key).then(|| "x".into()))
                .map_err(|why| format!("role {name:?}: URI template {template:?}: {why}"))?;
            San::uri(&sample).map_err(|e| format!("role {name:?}: URI template: {e}"))?;
        }
        Ok(Self {
            usage,
            lifetime_secs,
            max_key_age_secs,
            uris: entry.uris.clone(),
        })
    }
}

impl ParticipantEntry {
    fn check(
        &self,
        roles: &BTreeMap<String, Role>,
        project: Option<&str>,
    ) -> std::result::Result<Participant, String> {
        let name = Subject::new(&self.name).map_err(|e| format!("participant: {e}"))?;
        let who = format!("participant {:?}", self.name);
        let role = roles.get(&self.role).ok_or_else(|| {
            let known = roles.keys().cloned().collect::<Vec<_>>().join(", ");
            format!(
                "{who}: role {:?} is not defined; define [roles.{}] or use one of: {known}",
                self.role, self.role
            )
        })?;
        if let Some(org) = &self.org {
            check_label("org", org).map_err(|why| format!("{who}: {why}"))?;
        }
        for study in &self.studies {
            check_label("study", study).map_err(|why| format!("{who}: {why}"))?;
        }
        let mut sans = if self.sans.is_empty() {
            vec![San::parse(&self.name).map_err(|e| format!("{who}: {e}"))?]
        } else {
            let sans = San::parse_set(&self.sans).map_err(|e| format!("{who}: {e}"))?;
            if let Some(uri) = sans.iter().find(|s| matches!(s, San::Uri(_))) {
                return Err(format!(
                    "{who}: {uri} is a URI; URIs come from the role's uris templates"
                ));
            }
            sans
        };
        for template in &role.uris {
            let value = |key: &str| match key {
                "name" => Some(self.name.clone()),
                "role" => Some(self.role.clone()),
                "org" => self.org.clone(),
                "project" => project.map(str::to_owned),
                _ => None,
            };
            let studies: Vec<Option<&str>> = if template.contains("{study}") {
                self.studies.iter().map(|s| Some(s.as_str())).collect()
            } else {
                vec![None]
            };
            for study in studies {
                let uri = fill(template, &|key| match key {
                    "study" => study.map(str::to_owned),
                    _ => value(key),
                })
                .map_err(|why| format!("{who}: URI template {template:?}: {why}"))?;
                sans.push(San::uri(&uri).map_err(|e| format!("{who}: {e}"))?);
            }
        }
        sans.sort();
        sans.dedup();
        Ok(Participant {
            name,
            role: self.role.clone(),
            attributes: SubjectAttributes {
                organization: self.org.clone(),
                role: Some(self.role.clone()),
            },
            sans,
            usage: role.usage,
            lifetime_secs: role.lifetime_secs,
            max_key_age_secs: role.max_key_age_secs,
        })
    }
}

/// A label of the roster (a role, an organisation, a study): 1 to 64
/// letters, digits, `-`, `_`, `.` or spaces inside, as NVFlare's names.
fn check_label(what: &str, value: &str) -> std::result::Result<(), String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c))
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} \"{}\" must be 1 to 64 letters, digits, '-', '_', '.' or inner spaces",
            fedpki_core::name::escaped(value)
        ))
    }
}

/// `template` with each `{key}` replaced by `value(key)`, percent-encoded
/// (everything but RFC 3986's unreserved characters, as NVFlare's
/// `quote(value, safe='')`).
fn fill(
    template: &str,
    value: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').ok_or("a '{' is not closed")? + open;
        let key = &rest[open + 1..close];
        let text = value(key).ok_or_else(|| match key {
            "name" | "role" | "org" | "project" | "study" => {
                format!("{{{key}}} has no value (set it in the roster)")
            }
            _ => format!(
                "{{{key}}} is not one of {{name}}, {{org}}, {{role}}, {{project}}, {{study}}"
            ),
        })?;
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err("a '}' has no '{'".into());
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
