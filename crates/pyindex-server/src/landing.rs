//! The address of this server as clients should write it in commands (shown on the web pages
//! and in error messages): the public URL, or else the scheme and address the client used.

use std::net::SocketAddr;

use axum::extract::Request;
use http::{HeaderMap, Uri, header};

use crate::AppState;
use crate::forwarded::RequestOrigin;

/// Longest address accepted from a request: a full DNS name and a port.
const MAX_ADDRESS: usize = 253 + 6;

/// The URL clients use to reach the index (`scheme://host[:port]`), for pages and messages
/// that show commands: the public URL when one is set, else the request's scheme (see
/// [`RequestOrigin`]) and [`address`].
pub fn base_url(app: &AppState, request: &Request) -> String {
    base_url_from(app, request.extensions(), request.headers(), request.uri())
}

/// [`base_url`] from the parts of a request.
pub fn base_url_from(
    app: &AppState,
    extensions: &http::Extensions,
    headers: &HeaderMap,
    uri: &Uri,
) -> String {
    if let Some(public) = &app.public_url {
        return public.base().to_owned();
    }
    let https = extensions
        .get::<RequestOrigin>()
        .is_some_and(|origin| origin.https);
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", address(app, headers, uri))
}

/// The address clients use to reach the index (`host` or `host:port`): the request's `Host`
/// (or, in HTTP/2, its authority) when it is a plain address, else the listen address.
fn address(app: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    let requested = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    match requested.filter(|a| is_plain_address(a)) {
        Some(address) => address.to_owned(),
        None => listen_address(app.listen),
    }
}

/// Whether `text` is a bare `host[:port]`: ASCII letters, digits, `.`, `-`, `:`, `[` and `]`
/// only. None of these means anything in HTML, so an accepted address is written into the page
/// as it is: a whitelist instead of an escaping function or a template engine (askama, used for
/// real pages) for one tiny page. `[` and `]` are glob characters in a shell (zsh refuses an
/// unmatched glob), so the commands shown quote the URL in single quotes, which no accepted
/// address contains.
fn is_plain_address(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_ADDRESS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The listen address as clients would type it; `HOST` stands for a wildcard address.
fn listen_address(listen: Option<SocketAddr>) -> String {
    match listen {
        Some(addr) if !addr.ip().is_unspecified() => addr.to_string(),
        Some(addr) => format!("HOST:{}", addr.port()),
        None => "HOST".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_only() {
        for ok in [
            "127.0.0.1:9001",
            "pypi.internal",
            "[::1]:9001",
            "my-host.example:80",
        ] {
            assert!(is_plain_address(ok), "{ok}");
        }
        for bad in [
            "",
            "<script>alert(1)</script>",
            "a\"onload=\"x",
            "host/path",
            "user@host",
            "h'x",
            "a b",
            "h&amp;",
            &"a".repeat(MAX_ADDRESS + 1),
        ] {
            assert!(!is_plain_address(bad), "{bad}");
        }
    }

    #[test]
    fn wildcard_listen_addresses_are_not_shown() {
        assert_eq!(
            listen_address(Some("127.0.0.1:9001".parse().unwrap())),
            "127.0.0.1:9001"
        );
        assert_eq!(
            listen_address(Some("[::1]:9001".parse().unwrap())),
            "[::1]:9001"
        );
        assert_eq!(
            listen_address(Some("0.0.0.0:9001".parse().unwrap())),
            "HOST:9001"
        );
        assert_eq!(listen_address(None), "HOST");
    }
}
