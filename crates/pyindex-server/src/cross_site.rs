//! Refusal of cross-site writes from browsers.
//!
//! Upload clients never send `Origin` or `Sec-Fetch-Site`; browsers do. A page on any web site
//! could otherwise make the visitor's browser POST a multipart upload (no preflight needed) to
//! an index on their loopback in the `open` mode, or replay credentials the browser remembers.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{StatusCode, header};

use crate::response::plain_error;

/// Whether the request comes from a page of another site than this server.
fn is_cross_site(request: &Request) -> bool {
    let headers = request.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if let Some(site) = fetch_site {
        return !matches!(site, "same-origin" | "none");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match origin {
        None => false,
        Some(origin) => {
            let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            host.is_none_or(|host| !authority.eq_ignore_ascii_case(host))
        }
    }
}

/// Middleware for routes that change state: refuses cross-site browser requests with 403.
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if is_cross_site(&request) {
        return plain_error(
            StatusCode::FORBIDDEN,
            "Cross-site request refused: publish and manage the index with twine, uv, curl or the pyindex CLI, not from a web page.",
        );
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method("POST").uri("/legacy/");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn tools_and_same_origin_pass() {
        assert!(!is_cross_site(&request(&[("host", "127.0.0.1:9001")])));
        assert!(!is_cross_site(&request(&[
            ("host", "127.0.0.1:9001"),
            ("origin", "http://127.0.0.1:9001")
        ])));
        assert!(!is_cross_site(&request(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
    }

    #[test]
    fn other_sites_are_refused() {
        assert!(is_cross_site(&request(&[
            ("host", "127.0.0.1:9001"),
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&request(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&request(&[
            ("origin", "null"),
            ("host", "127.0.0.1:9001")
        ])));
    }
}
