//! Names that go into certificates, valid once built (parse, don't validate).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use crate::Error;

/// A certificate subject's common name, which fedpki also uses as a file
/// name (`cert/<name>.crt`): a DNS name or an IP address as [`San::parse`]
/// takes them (so no `/`, `..`, spaces, control, bidi or zero-width
/// characters), at most 64 characters (RFC 5280's ub-common-name). Its case
/// is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// Check `name` and make it a subject.
    pub fn new(name: &str) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::InvalidName("the name is empty".into()));
        }
        let chars = name.chars().count();
        if chars > 64 {
            return Err(Error::InvalidName(alloc::format!(
                "\"{}\" is {chars} characters long; a certificate name has at most 64",
                escaped(name)
            )));
        }
        if name.ends_with('.') || San::parse(name).is_err() {
            return Err(Error::InvalidName(alloc::format!(
                "\"{}\" is not a valid name: use a DNS name (letters, digits, '-' and '_' \
                 in dot-separated labels, e.g. collaborator1 or agg.example.org) or an IP address",
                escaped(name)
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

/// A subject alternative name: a DNS name (lower-cased), an IP address or
/// a URI with a host (NVFlare's study memberships, SPIFFE IDs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    /// `dNSName`.
    Dns(String),
    /// `iPAddress`.
    Ip(IpAddr),
    /// `uniformResourceIdentifier`, as [`San::uri`] checked it.
    Uri(String),
}

impl San {
    /// An IP address when `s` parses as one, a URI when it has a scheme
    /// (`https://…`, step-ca's rule), else a DNS name, which must be 1–253
    /// characters of labels of 1–63 letters, digits, `-` or `_`, not
    /// starting or ending with `-`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        if s.contains("://") {
            return Self::uri(s);
        }
        let lower = s.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let bad = |why: &str| {
            Error::InvalidName(alloc::format!(
                "\"{}\" is not a DNS name: {why}",
                escaped(s)
            ))
        };
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

    /// A URI SAN: `scheme://host[:port][/path][?query]`, the scheme
    /// (letters, digits, `+`, `-`, `.`) and the host (a DNS name, as
    /// [`San::parse`]) lower-cased, every other character an RFC 3986
    /// unreserved or reserved one or a `%` followed by two hex digits, at
    /// most 1024 characters. No user part and no fragment: nothing a
    /// reader could take for another name.
    pub fn uri(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::InvalidName(alloc::format!("\"{}\" is not a URI: {why}", escaped(s)))
        };
        if s.len() > 1024 {
            return Err(bad("it has more than 1024 characters"));
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("it has no scheme://"))?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(bad(
                "the scheme must be a letter then letters, digits, '+', '-' or '.'",
            ));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(bad("a user part (user@) is not allowed"));
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            Some(_) => return Err(bad("the port must be digits")),
            None => authority,
        };
        let Ok(Self::Dns(_)) = Self::parse(host) else {
            return Err(bad("the host must be a DNS name"));
        };
        let mut bytes = tail.bytes();
        while let Some(b) = bytes.next() {
            let ok = match b {
                b'%' => {
                    let hex = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_hexdigit());
                    hex(bytes.next()) && hex(bytes.next())
                }
                b'#' => false,
                _ => b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b),
            };
            if !ok {
                return Err(bad(
                    "only letters, digits, -._~!$&'()*+,;=:@/? and %XX escapes may follow the host",
                ));
            }
        }
        Ok(Self::Uri(alloc::format!(
            "{}://{}{tail}",
            scheme.to_ascii_lowercase(),
            authority.to_ascii_lowercase()
        )))
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

    /// The SANs of a certificate for `subject`: `names` (as
    /// [`parse_set`](Self::parse_set)), or the subject itself when there are
    /// none. step-ca's rule, and the one home of it here.
    pub fn for_subject<S: AsRef<str>>(subject: &str, names: &[S]) -> Result<Vec<Self>, Error> {
        Self::or_subject(subject, Self::parse_set(names)?)
    }

    /// `sans` as they are, or the subject itself when there are none: the
    /// same rule for names already parsed (a CSR's).
    pub fn or_subject(subject: &str, sans: Vec<Self>) -> Result<Vec<Self>, Error> {
        if sans.is_empty() {
            Ok(alloc::vec![Self::parse(subject)?])
        } else {
            Ok(sans)
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(d) => f.write_str(d),
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Uri(u) => f.write_str(u),
        }
    }
}

impl From<&San> for String {
    fn from(s: &San) -> Self {
        s.to_string()
    }
}

/// `text` made safe to print to a terminal or a log: printable ASCII stays,
/// everything else (control characters, escape sequences, bidi overrides,
/// zero-width and any other non-ASCII character, so no homoglyph passes for
/// a Latin letter) becomes `\u{..}`. Backslashes are doubled, so the result
/// cannot be mistaken for another text.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let _ =
                    core::fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", c as u32));
            }
        }
    }
    out
}

/// The rule for a CA's common name (a root's, an intermediate's): any text
/// of 1 to 64 characters without control characters. Unlike a node's name
/// it never becomes a file name.
pub fn check_ca_name(name: &str) -> Result<(), Error> {
    let chars = name.chars().count();
    if chars == 0 || chars > 64 || name.chars().any(char::is_control) {
        return Err(Error::InvalidName(alloc::format!(
            "a CA name is 1 to 64 printable characters; \"{}\" is not",
            escaped(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_default_to_the_subject_and_are_sorted_otherwise() {
        let none: [&str; 0] = [];
        assert_eq!(
            San::for_subject("col1", &none).unwrap(),
            [San::parse("col1").unwrap()]
        );
        let given = San::for_subject("col1", &["b.example", "10.0.0.1", "b.example"]).unwrap();
        assert_eq!(given, San::parse_set(&["10.0.0.1", "b.example"]).unwrap());
        assert!(San::for_subject("not a name", &none).is_err());
    }

    #[test]
    fn untrusted_text_is_escaped() {
        assert_eq!(escaped("col1.example"), "col1.example");
        // ESC [ 2 J clears a terminal; U+202E reverses text; U+200B is invisible;
        // U+0430 is a Cyrillic a that looks Latin.
        assert_eq!(escaped("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escaped("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
        assert_eq!(escaped("ag\u{200b}g"), "ag\\u{200b}g");
        assert_eq!(escaped("\u{430}gg"), "\\u{430}gg");
        assert_eq!(escaped("a\\u{41}"), "a\\\\u{41}");
    }

    #[test]
    fn subjects() {
        assert!(Subject::new("collaborator1").is_ok());
        assert!(Subject::new("").is_err());
        assert!(Subject::new(" x").is_err());
        assert!(Subject::new("a\nb").is_err());
        let long = alloc::format!("{}.{}", "a".repeat(31), "b".repeat(32));
        assert!(Subject::new(&long).is_ok());
        assert!(Subject::new(&alloc::format!("{long}b")).is_err());
        assert!(Subject::new("Agg.Example.org").is_ok());
        assert!(Subject::new("10.0.0.1").is_ok());
        for bad in [
            "/etc/passwd",
            "../x",
            "..",
            "a/b",
            "a b",
            "col1.",
            "-rf",
            "a\u{202e}b",
            "a\u{200b}b",
            "\u{430}gg",
            "x;y",
            "*.example",
        ] {
            let e = Subject::new(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid name"), "{bad:?}: {e}");
            assert!(e.is_ascii(), "the error prints the name escaped: {e}");
        }
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

    #[test]
    fn uri_sans() {
        let study = "https://nvidia.com/nvflare/v1/project/demo%20x/study/lung-1";
        assert_eq!(San::parse(study).unwrap(), San::Uri(study.into()));
        assert_eq!(
            San::parse("HTTPS://Example.ORG:8443/A?b=1").unwrap(),
            San::Uri("https://example.org:8443/A?b=1".into())
        );
        assert_eq!(
            San::parse("spiffe://fl.example/site/1").unwrap(),
            San::Uri("spiffe://fl.example/site/1".into())
        );
        for bad in [
            "https://",
            "https://a b/",
            "https://user@host/",
            "https://host:x/",
            "https://host/a b",
            "https://host/%zz",
            "https://host/%2",
            "https://host/#frag",
            "https://host/\u{202e}",
            "1http://host/",
            "https://-host/",
            "https://10.0.0.1/",
        ] {
            let e = San::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a URI"), "{bad:?}: {e}");
            assert!(e.is_ascii(), "the error prints the URI escaped: {e}");
        }
        assert!(San::uri(&alloc::format!("https://h/{}", "a".repeat(1024))).is_err());
    }
}
