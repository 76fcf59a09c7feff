//! Small response builders shared by the handlers: plain-text errors that every upload client
//! can show (standards I5), redirects, and conditional-request checks.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper::ext::ReasonPhrase;
use pyindex_registry::{RegistryError, Rejection};

/// A `text/plain` response whose body and HTTP/1.1 reason phrase both carry `message`:
/// twine and poetry print the reason phrase, uv prints the body.
pub fn plain_error(status: StatusCode, message: &str) -> Response {
    let phrase: String = message
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(512)
        .collect();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response();
    if let Ok(reason) = ReasonPhrase::try_from(phrase.into_bytes()) {
        response.extensions_mut().insert(reason);
    }
    response
}

/// The challenge sent with every 401, so that pip and uv send or ask for credentials.
pub const WWW_AUTHENTICATE: &str = "Basic realm=\"pyindex\"";

/// The response for a registry error.
pub fn registry_error(error: &RegistryError) -> Response {
    match error {
        RegistryError::Rejected { rejection, message } => {
            let status = match rejection {
                Rejection::BadRequest => StatusCode::BAD_REQUEST,
                Rejection::Unauthorized => StatusCode::UNAUTHORIZED,
                Rejection::Forbidden => StatusCode::FORBIDDEN,
                Rejection::NotFound => StatusCode::NOT_FOUND,
                Rejection::Conflict => StatusCode::CONFLICT,
                Rejection::Gone => StatusCode::GONE,
                Rejection::BadGateway => StatusCode::BAD_GATEWAY,
                Rejection::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Rejection::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            };
            let mut response = plain_error(status, message);
            let headers = response.headers_mut();
            match rejection {
                Rejection::Unauthorized => {
                    headers.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(WWW_AUTHENTICATE),
                    );
                }
                Rejection::TooManyRequests { retry_after_secs } => {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
                }
                _ => {}
            }
            response
        }
        RegistryError::Internal(detail) => internal_error(detail),
        RegistryError::Unavailable { message } => unavailable(message),
    }
}

/// Seconds a client is asked to wait before retrying when the catalog database is unreachable.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 10;

/// A 503 with `Retry-After`: what the request needs cannot be reached now (logged as a warning).
fn unavailable(message: &str) -> Response {
    tracing::warn!(error = %message, "request refused: the catalog database is unreachable");
    let mut response = plain_error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
    );
    response
}

/// A 500 response; the detail goes to the log, not to the client.
pub fn internal_error(detail: &str) -> Response {
    tracing::error!(error = %detail, "request failed");
    plain_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal server error; the request can be retried. The server log has the details.",
    )
}

/// A 404 response.
pub fn not_found(message: &str) -> Response {
    plain_error(StatusCode::NOT_FOUND, message)
}

/// A 301 redirect to `location`.
pub fn moved_permanently(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => not_found("Not found."),
    }
}

/// Whether `If-None-Match` in `headers` matches `etag` (weak comparison, as RFC 9110 asks).
pub fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    // Most requests send no If-None-Match: answered before the ETag is checked as text.
    if !headers.contains_key(header::IF_NONE_MATCH) {
        return false;
    }
    let Some(etag) = etag.to_str().ok() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_carries_message_in_reason_and_body() {
        let response = plain_error(StatusCode::BAD_REQUEST, "Bad thing: é");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let reason = response.extensions().get::<ReasonPhrase>().unwrap();
        assert_eq!(reason.as_bytes(), b"Bad thing: ?");
    }

    #[test]
    fn an_unreachable_database_is_503_with_retry_after() {
        let error = RegistryError::Unavailable {
            message: "The catalog database is unreachable (x); retry later.".into(),
        };
        let response = registry_error(&error);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "10");
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let etag = HeaderValue::from_static("\"abc\"");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&headers, &etag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!if_none_match(&headers, &etag));
    }
}
