//! Authentication over HTTP: credentials from the `Authorization` header (Basic with a user or
//! `__token__`, or `Bearer`/`token` with a token; standards G7), the client address, and the
//! guard that keeps every read private in the `all` access mode.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use http::request::Parts;
use http::{HeaderMap, header};
use pyindex_registry::{AccessMode, Credentials, Identity};

use crate::AppState;
use crate::forwarded::RequestOrigin;
use crate::response::registry_error;

/// The client's address (see [`address_of`]), or `unknown` when the server was not started
/// with connection info (as in unit tests).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> Result<ClientAddress, Self::Rejection> {
        Ok(ClientAddress(address_of(&parts.extensions)))
    }
}

/// The client for throttling and the audit log: its IPv4 address, or the /64 network of an
/// IPv6 one (one host usually holds a whole /64, so single addresses would be free). The
/// address is the listener's [`RequestOrigin`] (the forwarded client behind a trusted proxy),
/// else the TCP peer.
pub fn address_of(extensions: &http::Extensions) -> String {
    let origin = extensions.get::<RequestOrigin>().map(|o| o.client);
    let peer = || {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
    };
    match origin.or_else(peer) {
        Some(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_none() => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(ip) => ip.to_canonical().to_string(),
        None => "unknown".to_owned(),
    }
}

/// The credentials in an `Authorization` header, if any.
pub fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some(Credentials::basic(user, password))
    } else if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        Some(Credentials::Token(rest.to_owned()))
    } else {
        None
    }
}

/// The authenticated caller: `Ok(None)` without credentials, or in the open mode (where
/// credentials are not needed and so are not checked); an error response for bad ones.
pub async fn identify(
    app: &AppState,
    headers: &HeaderMap,
    address: &str,
) -> Result<Option<Identity>, Response> {
    if app.registry.access_mode() == AccessMode::Open {
        return Ok(None);
    }
    match credentials(headers) {
        None => Ok(None),
        Some(credentials) => app
            .registry
            .authenticate(&credentials, address)
            .await
            .map(Some)
            .map_err(|e| registry_error(&e)),
    }
}

/// Middleware for read routes in the `all` mode: refuses requests without valid credentials.
pub async fn require_read(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match check_read(&app, request.headers(), request.extensions()).await {
        Ok(()) => next.run(request).await,
        Err(refused) => refused,
    }
}

/// Whether the caller of a request with these headers and extensions may read the index
/// (always, but in the `all` mode); the refusal to send when not.
pub async fn check_read(
    app: &AppState,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> Result<(), Response> {
    if app.registry.access_mode() != AccessMode::All {
        return Ok(());
    }
    let address = address_of(extensions);
    let identity = identify(app, headers, &address).await?;
    app.registry
        .authorize_read(identity.as_ref())
        .map_err(|e| registry_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn parses_basic_bearer_and_token_schemes() {
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:pa:ss");
        assert!(matches!(credentials(&with_auth(&format!("Basic {basic}"))),
            Some(Credentials::Password { user, password }) if user == "alice" && password == "pa:ss"));
        let token = base64::engine::general_purpose::STANDARD.encode("__token__:pyindex_abc");
        assert!(
            matches!(credentials(&with_auth(&format!("basic {token}"))), Some(Credentials::Token(t)) if t == "pyindex_abc")
        );
        assert!(
            matches!(credentials(&with_auth("Bearer pyindex_x")), Some(Credentials::Token(t)) if t == "pyindex_x")
        );
        assert!(
            matches!(credentials(&with_auth("token pyindex_y")), Some(Credentials::Token(t)) if t == "pyindex_y")
        );
    }

    #[test]
    fn junk_is_no_credentials() {
        assert!(credentials(&HeaderMap::new()).is_none());
        assert!(credentials(&with_auth("Basic !!!")).is_none());
        assert!(credentials(&with_auth("Digest x")).is_none());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("alice");
        assert!(credentials(&with_auth(&format!("Basic {no_colon}"))).is_none());
    }
}
