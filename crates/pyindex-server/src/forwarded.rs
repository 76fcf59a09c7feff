//! Who sent a request and over which scheme, behind reverse proxies.
//!
//! `X-Forwarded-For` and `X-Forwarded-Proto` are written by whoever sends the request, so they
//! are believed only when the TCP peer is a proxy the operator trusts (`--trusted-proxy`).
//! Then the client is the right-most address in `X-Forwarded-For` that is not itself a trusted
//! proxy: every trusted hop appends the address it received from, so entries left of the first
//! untrusted one may be made up by the client. From any other peer both headers are ignored.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `--trusted-proxy` values: CIDR networks (`10.0.0.0/8`, `fd00::/8`) or single
    /// addresses.
    pub fn parse(values: &[String]) -> Result<TrustedProxies, String> {
        values
            .iter()
            .map(|value| parse_network(value))
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in a trusted network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

fn parse_network(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "--trusted-proxy '{value}' is not an IP address or CIDR network: give the \
                 address or network of your reverse proxy, e.g. --trusted-proxy 127.0.0.1 or \
                 --trusted-proxy 10.0.0.0/8"
            )
        })
}

/// Where a request comes from, as far as the server can tell: set by the listener on every
/// request, read by the throttle, the audit log and pages that show URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestOrigin {
    /// The client's address: the TCP peer, or the forwarded one from a trusted proxy.
    pub client: IpAddr,
    /// Whether the client reached the index over HTTPS: this server's TLS, or a trusted
    /// proxy's `X-Forwarded-Proto: https`.
    pub https: bool,
}

impl RequestOrigin {
    /// The origin of a request that arrived from `peer` (over TLS when `tls`) with `headers`.
    pub fn resolve(
        peer: SocketAddr,
        tls: bool,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> RequestOrigin {
        let peer = peer.ip().to_canonical();
        if !trusted.contains(peer) {
            return RequestOrigin {
                client: peer,
                https: tls,
            };
        }
        RequestOrigin {
            client: forwarded_client(peer, headers, trusted),
            https: forwarded_https(headers).unwrap_or(tls),
        }
    }
}

/// The right-most untrusted address of `X-Forwarded-For` (all its header lines in order); the
/// left-most one when every entry is trusted; the last good one when an entry is malformed.
fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer;
    for value in headers.get_all(X_FORWARDED_FOR).iter().rev() {
        let Ok(text) = value.to_str() else {
            return client;
        };
        for entry in text.rsplit(',') {
            let Some(ip) = forwarded_address(entry) else {
                return client;
            };
            client = ip;
            if !trusted.contains(ip) {
                return client;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The scheme in `X-Forwarded-Proto` (its first value, set by the outermost proxy): `None`
/// when absent or neither `http` nor `https`.
fn forwarded_https(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get(X_FORWARDED_PROTO)?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    if first.eq_ignore_ascii_case("https") {
        Some(true)
    } else if first.eq_ignore_ascii_case("http") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn trusted(values: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn origin(peer: &str, h: &HeaderMap, t: &TrustedProxies) -> RequestOrigin {
        RequestOrigin::resolve(peer.parse().unwrap(), false, h, t)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_networks_and_addresses() {
        let t = trusted(&["10.0.0.0/8", "192.168.1.7", "fd00::/8", " 172.16.5.4/12 "]);
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::ffff:10.1.2.3")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(t.contains(ip("172.31.0.1")), "host bits are ignored");
        for bad in ["", "10.0.0.0/33", "proxy.internal", "10.0.0.0/8/1"] {
            let err = TrustedProxies::parse(&[bad.to_owned()]).unwrap_err();
            assert!(err.contains("--trusted-proxy"), "{err}");
        }
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let o = origin("127.0.0.1:5000", &h, &TrustedProxies::default());
        assert_eq!(o.client, ip("127.0.0.1"));
        assert!(!o.https);
        let o = origin("198.51.100.1:5000", &h, &trusted(&["10.0.0.0/8"]));
        assert_eq!(o.client, ip("198.51.100.1"));
    }

    #[test]
    fn trusted_peer_gives_the_rightmost_untrusted_address() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-proto", "https"),
        ]);
        let o = origin("10.0.0.1:5000", &h, &t);
        assert_eq!(o.client, ip("203.0.113.9"), "1.1.1.1 may be forged");
        assert!(o.https);
        let all_trusted = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(
            origin("10.0.0.1:1", &all_trusted, &t).client,
            ip("10.9.9.9")
        );
        let with_ports = headers(&[("x-forwarded-for", "[2001:db8::1]:443, 203.0.113.5:80")]);
        assert_eq!(
            origin("10.0.0.1:1", &with_ports, &t).client,
            ip("203.0.113.5")
        );
        let junk = headers(&[("x-forwarded-for", "203.0.113.9, nonsense, 10.0.0.3")]);
        assert_eq!(
            origin("10.0.0.1:1", &junk, &t).client,
            ip("10.0.0.3"),
            "a malformed entry stops the walk at the last hop that was believed"
        );
        assert_eq!(
            origin("10.0.0.1:1", &HeaderMap::new(), &t).client,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn forwarded_scheme() {
        let t = trusted(&["127.0.0.0/8"]);
        let proto =
            |v: &str| origin("127.0.0.1:1", &headers(&[("x-forwarded-proto", v)]), &t).https;
        assert!(proto("https"));
        assert!(proto("HTTPS, http"));
        assert!(!proto("http"));
        assert!(!proto("gopher"));
        let tls = RequestOrigin::resolve(
            "127.0.0.1:1".parse().unwrap(),
            true,
            &headers(&[("x-forwarded-proto", "ftp")]),
            &t,
        );
        assert!(
            tls.https,
            "an unknown value keeps the connection's own scheme"
        );
    }
}
