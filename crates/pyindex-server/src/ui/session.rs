//! Who is looking at a page: a browser session (cookie), credentials in `Authorization` (for
//! tools and tests), or no one; and the guard of the `all` mode. The handlers get them through
//! the extractors [`Reader`] (a reading page), [`SignedIn`] (a page of one's own account) and
//! [`SessionForm`] (a form that changes something: the one place anti-forgery tokens are
//! checked).

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use pyindex_registry::{AccessMode, BrowserSession, Identity};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::auth::{address_of, identify};
use crate::forwarded::RequestOrigin;
use crate::response::registry_error;

/// The session cookie's name.
pub const COOKIE: &str = "pyindex_session";

/// The visitor of a page.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// Who, if anyone.
    pub identity: Option<Identity>,
    /// The browser session, if signed in through the sign-in page.
    pub session: Option<BrowserSession>,
    /// The session id from the cookie (to sign out).
    pub session_id: Option<String>,
}

impl Viewer {
    /// The account name, if any.
    pub fn user(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.user.name.as_str())
    }

    /// The session's anti-forgery token, or empty.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    /// Whether `token` is this session's anti-forgery token.
    pub fn csrf_matches(&self, token: &str) -> bool {
        let Some(session) = &self.session else {
            return false;
        };
        !token.is_empty() && bool::from(session.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// The session id in the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// Who is asking: the session, else `Authorization` credentials, else no one. Bad credentials
/// answer with their error.
async fn viewer(app: &AppState, parts: &Parts) -> Result<Viewer, Response> {
    if app.registry.access_mode() == AccessMode::Open {
        return Ok(Viewer::default());
    }
    if let Some(id) = session_cookie(&parts.headers) {
        match app.registry.browser_session(&id).await {
            Ok(Some(session)) => {
                return Ok(Viewer {
                    identity: Some(session.identity.clone()),
                    session: Some(session),
                    session_id: Some(id),
                });
            }
            Ok(None) => {}
            Err(e) => return Err(registry_error(&e)),
        }
    }
    let address = address_of(&parts.extensions);
    let identity = identify(app, &parts.headers, &address).await?;
    Ok(Viewer {
        identity,
        ..Viewer::default()
    })
}

/// The viewer of a page that the access mode may close: in `all`, a browser without a session
/// or credentials is sent to the sign-in page (and back here afterwards); a tool (which does
/// not ask for HTML) gets 401 with the Basic challenge, like every other private read.
async fn reader(app: &AppState, parts: &Parts) -> Result<Viewer, Response> {
    let viewer = viewer(app, parts).await?;
    if let Err(e) = app.registry.authorize_read(viewer.identity.as_ref()) {
        if !wants_html(&parts.headers) {
            return Err(registry_error(&e));
        }
        return Err(to_sign_in(
            parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        ));
    }
    Ok(viewer)
}

/// The visitor of a reading page, allowed by the access mode (see [`reader`]), with the
/// request's head for the page's chrome. Rejected with the sign-in redirect or the 401.
pub struct Reader {
    /// Who.
    pub viewer: Viewer,
    /// The request's head.
    pub parts: Parts,
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Reader, Response> {
        let viewer = reader(app, parts).await?;
        Ok(Reader {
            viewer,
            parts: parts.clone(),
        })
    }
}

/// A visitor signed in through the sign-in page (a browser session), for the pages of one's
/// own account. Rejected with a redirect to the sign-in page (back to the tokens page).
pub struct SignedIn {
    /// Who, with the session.
    pub viewer: Viewer,
    /// The request's head.
    pub parts: Parts,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<SignedIn, Response> {
        let viewer = viewer(app, parts).await?;
        if viewer.session.is_none() {
            return Err(to_sign_in("/account/tokens"));
        }
        Ok(SignedIn {
            viewer,
            parts: parts.clone(),
        })
    }
}

/// A form that carries the session's anti-forgery token in its `csrf` field.
pub trait CarriesCsrf {
    /// The token the form carried (empty if none).
    fn csrf(&self) -> &str;
}

/// A form posted by a signed-in browser session whose anti-forgery token matches the session's
/// (cross-site posts are refused before, by `cross_site::refuse_cross_site`).
pub struct SessionForm<T> {
    /// Who, with the session.
    pub viewer: Viewer,
    /// The request's head.
    pub parts: Parts,
    /// The form.
    pub form: T,
}

/// Why a [`SessionForm`] was refused.
pub enum FormRefusal {
    /// Who is asking could not be told (bad credentials, an error): the answer.
    Failed(Response),
    /// No browser session.
    NotSignedIn,
    /// The form's fields could not be read.
    Incomplete,
    /// The anti-forgery token is missing or wrong.
    Forged,
}

impl IntoResponse for FormRefusal {
    fn into_response(self) -> Response {
        match self {
            FormRefusal::Failed(response) => response,
            FormRefusal::NotSignedIn => to_sign_in("/account/tokens"),
            FormRefusal::Incomplete => (
                StatusCode::BAD_REQUEST,
                "The form was incomplete: reload the page and try again.",
            )
                .into_response(),
            FormRefusal::Forged => (
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site: reload the page and try again.",
            )
                .into_response(),
        }
    }
}

impl<T: DeserializeOwned + CarriesCsrf + Send> FromRequest<AppState> for SessionForm<T> {
    type Rejection = FormRefusal;

    async fn from_request(request: Request, app: &AppState) -> Result<SessionForm<T>, FormRefusal> {
        let (parts, body) = request.into_parts();
        let viewer = viewer(app, &parts).await.map_err(FormRefusal::Failed)?;
        if viewer.session.is_none() {
            return Err(FormRefusal::NotSignedIn);
        }
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts.clone(), body), app)
            .await
            .map_err(|_| FormRefusal::Incomplete)?;
        if !viewer.csrf_matches(form.csrf()) {
            return Err(FormRefusal::Forged);
        }
        Ok(SessionForm {
            viewer,
            parts,
            form,
        })
    }
}

/// Whether the client asks for HTML by name, as browsers do (tools send `*/*` or nothing).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// A redirect to the sign-in page that comes back to `next` (a local path) afterwards.
pub fn to_sign_in(next: &str) -> Response {
    let next = percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC);
    Redirect::to(&format!("/signin?next={next}")).into_response()
}

/// `next` if it is a path on this server (never `//host` or a URL with a scheme).
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(next)
}

/// Whether the request came over HTTPS (directly or through a trusted proxy), or the public
/// URL is HTTPS: then the session cookie is marked `Secure`.
pub fn is_https(app: &AppState, request: &Request) -> bool {
    let public_https = app
        .public_url
        .as_ref()
        .is_some_and(|url| url.base().starts_with("https://"));
    public_https
        || request
            .extensions()
            .get::<RequestOrigin>()
            .is_some_and(|origin| origin.https)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pyindex_session=abc ; b=2"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/project/x/"), Some("/project/x/"));
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "x",
            "",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }
}
