//! The web interface: server-rendered pages (askama templates, escaped by default) for people
//! with a browser: the home page and search, project and version pages, "Using this index",
//! and, when accounts exist, sign-in and one's own API tokens.
//!
//! Every page works without JavaScript and is served with a strict Content-Security-Policy
//! (no script at all, styles and images from this server only), so that even a mistake in
//! escaping could not run code. Pages follow the access mode: in `all`, every page but the
//! sign-in page needs a session or credentials.

mod account;
mod links;
mod pages;
mod session;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};

use crate::AppState;

/// The policy of every UI page: nothing runs, nothing loads from another host.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The one stylesheet, embedded in the binary.
const STYLE: &str = include_str!("style.css");

/// The UI's routes.
pub fn routes() -> Router<AppState> {
    let forms = Router::new()
        .route("/signin", post(account::sign_in))
        .route("/signout", post(account::sign_out))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route_layer(axum::middleware::from_fn(
            crate::cross_site::refuse_cross_site,
        ));
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/project/{name}/", get(pages::project))
        .route("/project/{name}", get(pages::project_redirect))
        .route("/project/{name}/{version}/", get(pages::version))
        .route("/using", get(pages::using))
        .route("/signin", get(account::sign_in_page))
        .route("/account/tokens", get(account::tokens_page))
        .route("/ui/style.css", get(style))
        .merge(forms)
        .route_layer(axum::middleware::from_fn(security_headers))
}

/// Adds the security headers to every UI response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    response
}

async fn style() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// A rendered template as an HTML response (500 if rendering failed, which askama's compile
/// time checks leave to I/O-like errors only).
fn html(status: StatusCode, page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => crate::response::internal_error(&format!("page rendering failed: {e}")),
    }
}

#[cfg(test)]
mod tests;
