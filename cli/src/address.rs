//! A CA's address, as `--ca-url` gives it and a token carries it: the one
//! parser the CA and every client share, and the one way it is written
//! back (`host:port`, an IPv6 address in brackets).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{CliError, Result};

/// The forms a CA address may take, for messages.
const FORMS: &str = "HOST:PORT (ca.example.org:9123, 10.0.0.5:9123), [IPv6]:PORT \
                     ([fd00::5]:9123) or https://HOST:PORT";

/// Where a CA serves: a DNS name or an IP address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaAddress {
    /// The name or address, without brackets.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
}

impl CaAddress {
    /// Parse `HOST:PORT`, `[IPv6]:PORT` or `https://` either of them (a
    /// trailing `/` dropped; the port 443 when an `https://` form has
    /// none). Anything else is refused, saying what was wrong and which
    /// forms are taken.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            CliError::usage(format!(
                "the CA address {text:?} {why}; write it as {FORMS}"
            ))
        };
        let trimmed = text.trim();
        let (rest, https) = match trimmed.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (rest, true),
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "has the scheme {scheme:?}: a CA is reached over https only"
                )));
            }
            None => (trimmed, false),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("names no host"));
        }
        if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
            return Err(bad(&format!(
                "has {c:?} in it: only a host and a port, no path, query or user"
            )));
        }
        if rest.chars().any(char::is_whitespace) {
            return Err(bad("has a space in it"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("opens a '[' it does not close"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!(
                    "has {host:?} in brackets, not an IPv6 address"
                )));
            }
            match after {
                "" if https => (host, None),
                "" => return Err(bad("has no port")),
                p => match p.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(bad(&format!("has {p:?} after the address"))),
                },
            }
        } else {
            match rest.matches(':').count() {
                0 if https => (rest, None),
                0 => return Err(bad("has no port")),
                1 => {
                    let (h, p) = rest.split_once(':').unwrap_or((rest, ""));
                    (h, Some(p))
                }
                _ => {
                    return Err(bad(
                        "has several ':': an IPv6 address goes in brackets, like [::1]:9123",
                    ));
                }
            }
        };
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(&format!("has the port {p:?}: a port is 1 to 65535")))?,
        };
        fedpki_core::name::San::parse(host).map_err(|e| bad(&format!("has a bad host: {e}")))?;
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host as an IP address, when it is one.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Where a CA listens, by its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listen {
    /// Only there: an IP in the CA's address, or `--bind`.
    Only(SocketAddr),
    /// `localhost`: 127.0.0.1, and ::1 where the machine has IPv6.
    Loopback(u16),
    /// A DNS name: every interface, IPv4 and (where the machine has it)
    /// IPv6.
    Everywhere(u16),
}

impl Listen {
    /// The sockets to bind, each with whether the CA may do without it (an
    /// IPv6 one on a machine without IPv6).
    pub(crate) fn sockets(self) -> Vec<(SocketAddr, bool)> {
        let both = |v4: Ipv4Addr, v6: Ipv6Addr, port| {
            vec![
                (SocketAddr::new(v4.into(), port), false),
                (SocketAddr::new(v6.into(), port), true),
            ]
        };
        match self {
            Self::Only(a) => vec![(a, false)],
            Self::Loopback(port) => both(Ipv4Addr::LOCALHOST, Ipv6Addr::LOCALHOST, port),
            Self::Everywhere(port) => both(Ipv4Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, port),
        }
    }
}

impl CaAddress {
    /// Where a CA at this address listens unless told (`--bind`): an IP
    /// there, loopback for `localhost`, every interface for a name.
    pub(crate) fn listen(&self) -> Listen {
        match self.ip() {
            Some(ip) => Listen::Only(SocketAddr::new(ip, self.port)),
            None if self.host == "localhost" => Listen::Loopback(self.port),
            None => Listen::Everywhere(self.port),
        }
    }
}

impl fmt::Display for CaAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip() {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CaAddress;

    fn ok(text: &str) -> String {
        CaAddress::parse(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .to_string()
    }

    fn refused(text: &str) -> String {
        match CaAddress::parse(text) {
            Ok(a) => panic!("{text:?} was taken as {a}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_accepted_forms_are_written_back_one_way() {
        assert_eq!(ok("ca.example.org:9123"), "ca.example.org:9123");
        assert_eq!(ok("https://ca.example.org:9123/"), "ca.example.org:9123");
        assert_eq!(ok("HTTPS://CA.example.org:9123"), "ca.example.org:9123");
        assert_eq!(ok("https://ca.example.org"), "ca.example.org:443");
        assert_eq!(ok("localhost:9123/"), "localhost:9123");
        assert_eq!(ok(" 10.0.0.5:9123 "), "10.0.0.5:9123");
        assert_eq!(ok("[::1]:9200"), "[::1]:9200");
        assert_eq!(ok("https://[fd00:0::5]:9200/"), "[fd00::5]:9200");
        assert_eq!(ok("https://[::1]"), "[::1]:443");
    }

    #[test]
    fn an_ip_is_listened_on_alone_a_name_everywhere_localhost_on_loopback() {
        use super::Listen;
        let at = |t: &str| CaAddress::parse(t).unwrap().listen();
        assert_eq!(
            at("127.0.0.1:9201"),
            Listen::Only("127.0.0.1:9201".parse().unwrap())
        );
        assert_eq!(
            at("[::1]:9200"),
            Listen::Only("[::1]:9200".parse().unwrap())
        );
        assert_eq!(at("localhost:9123"), Listen::Loopback(9123));
        assert_eq!(at("ca.example.org:9123"), Listen::Everywhere(9123));
        let sockets: Vec<String> = Listen::Everywhere(9123)
            .sockets()
            .iter()
            .map(|(a, optional)| format!("{a} {optional}"))
            .collect();
        assert_eq!(sockets, ["0.0.0.0:9123 false", "[::]:9123 true"]);
    }

    #[test]
    fn anything_else_is_refused_saying_what_and_which_forms() {
        for (text, why) in [
            ("::1:9200", "in brackets"),
            ("https://https://ca.example.org:9123", "no path"),
            ("http://ca.example.org:9123", "https only"),
            ("ca.example.org", "no port"),
            ("ca.example.org:0", "1 to 65535"),
            ("ca.example.org:99999", "1 to 65535"),
            ("ca.example.org:9123/1.0/sign", "no path"),
            ("user@ca.example.org:9123", "no path, query or user"),
            ("[::1]", "no port"),
            ("[::1:9200", "does not close"),
            ("[ca.example.org]:9123", "not an IPv6"),
            ("https:", "1 to 65535"),
            ("https::443", "several ':'"),
            ("ca example.org:9123", "space"),
            ("", "no host"),
            ("-bad-.org:9123", "bad host"),
        ] {
            let e = refused(text);
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.contains("[IPv6]:PORT"), "{text:?}: {e}");
        }
    }
}
