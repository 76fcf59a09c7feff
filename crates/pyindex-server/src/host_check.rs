//! Refusal of requests for other host names (DNS rebinding).
//!
//! A web page can point its own host name at 127.0.0.1 (DNS rebinding) and then read from, or
//! publish to, an index on the visitor's loopback as if it were same-origin. The browser still
//! sends the page's host name in `Host`, so a loopback server answers only loopback names and
//! addresses and the names allowed with `--allowed-host`; everything else gets 421.
//! A server on another address answers any host unless names are allowed explicitly.

use std::net::{IpAddr, SocketAddr};

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::response::plain_error;

/// Which `Host` values the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    /// Whether `Host` is checked at all.
    enforced: bool,
    /// Allowed names besides the loopback ones: lowercase, without brackets or trailing dot.
    allowed: Vec<String>,
}

impl Default for HostPolicy {
    /// Answers any host (the policy of a server built without one, as in unit tests).
    fn default() -> HostPolicy {
        HostPolicy {
            enforced: false,
            allowed: Vec::new(),
        }
    }
}

impl HostPolicy {
    /// The policy for a server on `listen` with the names given by `--allowed-host`: checked
    /// on a loopback address or when names are given. Fails on a name that is not a bare host
    /// name or address (with a port, a scheme or a path).
    pub fn new(listen: SocketAddr, allowed: &[String]) -> Result<HostPolicy, String> {
        let allowed = allowed
            .iter()
            .map(|name| allowed_name(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HostPolicy {
            enforced: listen.ip().is_loopback() || !allowed.is_empty(),
            allowed,
        })
    }

    /// The same policy also answering `name` (the public URL's host), without turning the
    /// check on where it was off.
    pub fn also_allowing(mut self, name: &str) -> HostPolicy {
        let name = normalize(name);
        if !self.allowed.contains(&name) {
            self.allowed.push(name);
        }
        self
    }

    /// Whether a request whose `Host` (or URI authority) is `authority` is answered.
    pub fn allows(&self, authority: &str) -> bool {
        if !self.enforced {
            return true;
        }
        // Every request is checked, so the name is compared ignoring ASCII case rather than
        // lowercased into a new string (an allocation per request in profiles of cached pages).
        let Some(name) = bare_host(authority) else {
            return false;
        };
        is_loopback(name) || self.allowed.iter().any(|allowed| same_host(allowed, name))
    }
}

/// Whether a normalized host name (`allowed`) and a bare one in any case (`name`) are the same
/// host: as addresses when both are IP addresses (`fd00:0::1` is `fd00::1`), else as text
/// ignoring ASCII case.
fn same_host(allowed: &str, name: &str) -> bool {
    match (allowed.parse::<IpAddr>(), name.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a.to_canonical() == b.to_canonical(),
        _ => allowed.eq_ignore_ascii_case(name),
    }
}

/// Checks and normalizes one `--allowed-host` value.
fn allowed_name(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(trimmed);
    let is_address = bare.parse::<IpAddr>().is_ok();
    let is_name = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !(is_address || is_name) {
        return Err(format!(
            "--allowed-host '{name}' is not a host name or IP address: give the bare name clients use, \
             without scheme, port or path (e.g. --allowed-host pyindex.internal)"
        ));
    }
    Ok(normalize(bare))
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The host name of a `Host` value or URI authority, without port, brackets or trailing dot,
/// lowercased; `None` when it is malformed.
fn host_name(authority: &str) -> Option<String> {
    bare_host(authority).map(str::to_ascii_lowercase)
}

/// [`host_name`] as it was written (not lowercased), borrowed from `authority`.
fn bare_host(authority: &str) -> Option<&str> {
    let authority = authority.trim();
    fn without_dot(name: &str) -> &str {
        name.strip_suffix('.').unwrap_or(name)
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
            return None;
        }
        return Some(without_dot(address));
    }
    let name = match authority.rsplit_once(':') {
        Some((name, port)) if valid_port(port) && !name.contains(':') => name,
        Some(_) => return None,
        None => authority,
    };
    (!name.is_empty()).then(|| without_dot(name))
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// `localhost`, names under `.localhost` (RFC 6761: always loopback), and loopback addresses;
/// in any case.
fn is_loopback(name: &str) -> bool {
    const SUFFIX: &str = ".localhost";
    name.eq_ignore_ascii_case("localhost")
        || name
            .len()
            .checked_sub(SUFFIX.len())
            .and_then(|start| name.get(start..))
            .is_some_and(|end| end.eq_ignore_ascii_case(SUFFIX))
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The 421 answer, naming the setting that would allow the host.
fn misdirected(host: &str) -> Response {
    // Echo the host only when it is a plain host name or address: a message must not carry
    // whatever markup a client put in its Host header back out.
    let plain = host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    let message = match host_name(host).filter(|_| plain) {
        Some(name) => format!(
            "Misdirected request: this server does not answer for host '{host}'; to allow it, \
             start pyindex with --allowed-host {name} (or PYINDEX_ALLOWED_HOST / allowed_host \
             in the config file)."
        ),
        None => "Misdirected request: the Host of this request is not a valid host name, and \
                 this server answers only for its own names (see --allowed-host)."
            .to_owned(),
    };
    let mut response = plain_error(StatusCode::MISDIRECTED_REQUEST, &message);
    // The body of a refused upload is not read: do not keep the connection for another request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The check of every route but `/live`, `/health`, `/ready` and `/metrics` (no index data, and
/// orchestrators and scrapers reach them by IP; `/metrics` has its own guard): the refusal of
/// a request whose `Host` or URI authority the policy does not allow, given before any of its
/// body is read; `None` when the request may go on.
pub fn refusal(policy: &HostPolicy, request: &Request) -> Option<Response> {
    if !policy.enforced
        || matches!(
            request.uri().path(),
            "/live" | "/health" | "/ready" | "/metrics"
        )
    {
        return None;
    }
    let host_header = request.headers().get(header::HOST);
    let authority = request.uri().authority().map(|a| a.as_str());
    if host_header.is_none() && authority.is_none() {
        return Some(plain_error(
            StatusCode::BAD_REQUEST,
            "The request has no Host header; send the host name of this server in it.",
        ));
    }
    if let Some(value) = host_header {
        let host = String::from_utf8_lossy(value.as_bytes());
        if !policy.allows(&host) {
            return Some(misdirected(&host));
        }
    }
    match authority {
        Some(authority) if !policy.allows(authority) => Some(misdirected(authority)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, allowed: &[&str]) -> HostPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        HostPolicy::new(listen.parse().unwrap(), &allowed).unwrap()
    }

    #[test]
    fn parses_host_values() {
        assert_eq!(host_name("localhost:9001").as_deref(), Some("localhost"));
        assert_eq!(host_name("LocalHost").as_deref(), Some("localhost"));
        assert_eq!(host_name("[::1]:9001").as_deref(), Some("::1"));
        assert_eq!(host_name("[::1]").as_deref(), Some("::1"));
        assert_eq!(host_name("127.0.0.1:80").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_name("example.com.:80").as_deref(), Some("example.com"));
        assert_eq!(host_name("[::1]x"), None);
        assert_eq!(host_name("::1"), None, "IPv6 needs brackets in Host");
        assert_eq!(host_name("host:port"), None);
        assert_eq!(host_name(":80"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn loopback_server_answers_loopback_names_only() {
        let p = policy("127.0.0.1:9001", &[]);
        for ok in [
            "localhost",
            "localhost:9001",
            "LOCALHOST:1",
            "127.0.0.1:9001",
            "127.1.2.3",
            "[::1]:9001",
            "[::1]",
            "[::ffff:127.0.0.1]:9001",
            "app.localhost:9001",
            "App.LocalHost.",
            "localhost.:9001",
            "[::FFFF:127.0.0.1]",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:9001",
            "localhost.evil.example",
            "10.0.0.1:9001",
            "[fe80::1]:9001",
            "",
            "localhost:notaport",
            "evil-localhost",
            "localhost.évil",
        ] {
            assert!(!p.allows(refused), "{refused}");
        }
        assert!(policy("[::1]:9001", &[]).allows("[::1]:9001"));
        assert!(!policy("[::1]:9001", &[]).allows("evil.example"));
    }

    #[test]
    fn allowed_names_pass_case_insensitively() {
        let p = policy(
            "127.0.0.1:9001",
            &["PyIndex.Internal", "[fd00::1]", "10.0.0.5"],
        );
        assert!(p.allows("pyindex.internal:9001"));
        assert!(p.allows("PYINDEX.INTERNAL"));
        assert!(p.allows("[fd00::1]:9001"));
        assert!(p.allows("10.0.0.5"));
        assert!(p.allows("localhost:9001"));
        assert!(!p.allows("other.internal"));
    }

    #[test]
    fn allowed_addresses_match_in_any_spelling() {
        let p = policy("127.0.0.1:9001", &["[fd00:0::1]", "10.0.0.5"]);
        assert!(p.allows("[fd00::1]:9001"));
        assert!(p.allows("[FD00:0000::0001]"));
        assert!(p.allows("[::ffff:10.0.0.5]:9001"));
        assert!(!p.allows("[fd00::2]:9001"));
        let p = policy("127.0.0.1:9001", &["fd00::1"]);
        assert!(p.allows("[fd00:0:0::1]"));
    }

    #[test]
    fn other_addresses_answer_any_host_unless_names_are_given() {
        let open = policy("0.0.0.0:9001", &[]);
        assert!(open.allows("evil.example"));
        assert!(open.allows("10.1.2.3:9001"));
        let strict = policy("0.0.0.0:9001", &["pyindex.internal"]);
        assert!(strict.allows("pyindex.internal:9001"));
        assert!(strict.allows("localhost"));
        assert!(!strict.allows("evil.example"));
        assert!(HostPolicy::default().allows("anything"));
    }

    #[test]
    fn the_public_host_is_allowed_without_turning_the_check_on() {
        let p = policy("127.0.0.1:9001", &[]).also_allowing("PyPI.example.internal");
        assert!(p.allows("pypi.example.internal"));
        assert!(!p.allows("evil.example"));
        let open = policy("0.0.0.0:9001", &[]).also_allowing("pypi.example.internal");
        assert!(open.allows("evil.example"));
    }

    #[test]
    fn refuses_malformed_allowed_names() {
        let listen = "127.0.0.1:1".parse().unwrap();
        for bad in ["http://x", "x:80", "x/y", "", "a b"] {
            let err = HostPolicy::new(listen, &[bad.to_owned()]).unwrap_err();
            assert!(err.contains("--allowed-host"), "{err}");
        }
    }

    #[tokio::test]
    async fn answers_421_naming_the_setting() {
        use axum::body::Body;
        let policy = policy("127.0.0.1:9001", &[]);
        let check = |path: &str, host: Option<&str>| {
            let mut builder = Request::builder().uri(path);
            if let Some(host) = host {
                builder = builder.header(header::HOST, host);
            }
            refusal(&policy, &builder.body(Body::empty()).unwrap()).map(|r| r.status())
        };
        let refused = refusal(
            &policy,
            &Request::builder()
                .uri("/simple/")
                .header(header::HOST, "evil.example:9001")
                .body(Body::empty())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("--allowed-host evil.example "), "{text}");
        assert!(text.contains("PYINDEX_ALLOWED_HOST"), "{text}");
        assert_eq!(check("/simple/", Some("localhost:9001")), None);
        assert_eq!(check("/health", Some("10.0.0.7:9001")), None);
        assert_eq!(
            check("http://evil.example/simple/", Some("localhost")),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        assert_eq!(check("/simple/", None), Some(StatusCode::BAD_REQUEST));
    }
}
