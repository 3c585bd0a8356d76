//! Names that go into certificates, valid once built (parse, don't validate).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use crate::Error;

/// A certificate subject's common name: 1 to 64 characters (RFC 5280's
/// ub-common-name), no control characters, no leading or trailing space.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// Check `name` and make it a subject.
    pub fn new(name: &str) -> Result<Self, Error> {
        let chars = name.chars().count();
        if chars == 0 {
            return Err(Error::InvalidName("the name is empty".into()));
        }
        if chars > 64 {
            return Err(Error::InvalidName(alloc::format!(
                "{name:?} is {chars} characters long; a certificate name has at most 64"
            )));
        }
        if name.chars().any(char::is_control) || name.trim() != name {
            return Err(Error::InvalidName(alloc::format!(
                "{name:?} has control characters or surrounding spaces"
            )));
        }
        Ok(Self(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subject alternative name: a DNS name (lower-cased) or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    /// `dNSName`.
    Dns(String),
    /// `iPAddress`.
    Ip(IpAddr),
}

impl San {
    /// An IP address when `s` parses as one, else a DNS name, which must be
    /// 1–253 characters of labels of 1–63 letters, digits, `-` or `_`, not
    /// starting or ending with `-`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let lower = s.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let bad = |why: &str| Error::InvalidName(alloc::format!("{s:?} is not a DNS name: {why}"));
        if name.is_empty() || name.len() > 253 {
            return Err(bad("it must have 1 to 253 characters"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each dot-separated label must have 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad("only letters, digits, '-' and '_' are allowed"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label may not start or end with '-'"));
            }
        }
        Ok(Self::Dns(name.into()))
    }

    /// Parse a list, removing duplicates and sorting, so two lists with the
    /// same names compare equal.
    pub fn parse_set<S: AsRef<str>>(names: &[S]) -> Result<Vec<Self>, Error> {
        let mut out = names
            .iter()
            .map(|n| Self::parse(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(d) => f.write_str(d),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl From<&San> for String {
    fn from(s: &San) -> Self {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert!(Subject::new("collaborator1").is_ok());
        assert!(Subject::new("").is_err());
        assert!(Subject::new(" x").is_err());
        assert!(Subject::new("a\nb").is_err());
        assert!(Subject::new(&"a".repeat(65)).is_err());
        assert!(Subject::new(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn sans() {
        assert_eq!(
            San::parse("LocalHost").unwrap(),
            San::Dns("localhost".into())
        );
        assert!(matches!(San::parse("127.0.0.1").unwrap(), San::Ip(_)));
        assert!(matches!(San::parse("::1").unwrap(), San::Ip(_)));
        assert!(San::parse("a..b").is_err());
        assert!(San::parse("-a.b").is_err());
        assert!(San::parse("a b").is_err());
        assert!(San::parse("*.example.com").is_err());
        assert!(San::parse(&alloc::format!("{}.com", "a".repeat(64))).is_err());
        let set = San::parse_set(&["b", "a", "B"]).unwrap();
        assert_eq!(set, [San::Dns("a".into()), San::Dns("b".into())]);
    }
}
