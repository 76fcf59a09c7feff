//! Signing in and out, and "My tokens": list, create (the secret shown once) and revoke one's
//! own API tokens through the registry's token functions. Every form that changes something
//! carries the session's anti-forgery token, and cross-site posts are refused before that.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use pyindex_catalog::TokenRecord;
use pyindex_registry::accounts::MAX_TOKEN_DAYS;
use pyindex_registry::{AccessMode, Actor, RegistryError, Rejection, TokenRequest};
use serde::Deserialize;
use time::OffsetDateTime;

use super::html;
use super::pages::{Chrome, date};
use super::session::{
    COOKIE, CarriesCsrf, FormRefusal, SessionForm, SignedIn, Viewer, is_https, local_path,
    to_sign_in,
};
use crate::AppState;
use crate::auth::address_of;
use crate::response::registry_error;

/// The expiry choices the token form offers (days; the CLI's `--expires-days`).
const EXPIRY_CHOICES: [u32; 4] = [30, 90, 365, MAX_TOKEN_DAYS];

#[derive(Template)]
#[template(path = "ui/signin.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub next: String,
    pub user: String,
    pub error: String,
}

#[derive(Debug, Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

fn next_of(next: Option<&str>) -> String {
    next.and_then(local_path).unwrap_or("/").to_owned()
}

/// `GET /signin`.
pub async fn sign_in_page(
    State(app): State<AppState>,
    Query(params): Query<NextParam>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let chrome = Chrome::new(&app, &parts, &Viewer::default());
    if app.registry.access_mode() == AccessMode::Open {
        return open_mode_has_no_accounts(chrome);
    }
    let page = SignInPage {
        chrome,
        next: next_of(params.next.as_deref()),
        user: String::new(),
        error: String::new(),
    };
    html(StatusCode::OK, page.render())
}

fn open_mode_has_no_accounts(chrome: Chrome) -> Response {
    let page = super::pages::ErrorPage {
        chrome,
        title: "No accounts here".to_owned(),
        message: "This index runs in the open access mode: nobody needs to sign in.".to_owned(),
    };
    html(StatusCode::NOT_FOUND, page.render())
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    user: String,
    password: String,
    next: Option<String>,
}

/// `POST /signin`: checks the password (throttled) and sets the session cookie.
pub async fn sign_in(State(app): State<AppState>, request: Request) -> Response {
    let https = is_https(&app, &request);
    let (parts, body) = request.into_parts();
    let chrome = Chrome::new(&app, &parts, &Viewer::default());
    if app.registry.access_mode() == AccessMode::Open {
        return open_mode_has_no_accounts(chrome);
    }
    let Ok(Form(form)) =
        Form::<SignInForm>::from_request(Request::from_parts(parts.clone(), body), &()).await
    else {
        return (StatusCode::BAD_REQUEST, "The sign-in form was incomplete.").into_response();
    };
    let address = address_of(&parts.extensions);
    let next = next_of(form.next.as_deref());
    match app
        .registry
        .sign_in(&form.user, &form.password, &address)
        .await
    {
        Ok(session) => {
            let mut cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
                session.id,
                (session.expires - OffsetDateTime::now_utc()).whole_seconds()
            );
            if https {
                cookie.push_str("; Secure");
            }
            let mut response = Redirect::to(&next).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => {
            let status = match &e {
                RegistryError::Rejected {
                    rejection: Rejection::TooManyRequests { .. },
                    ..
                } => StatusCode::TOO_MANY_REQUESTS,
                RegistryError::Rejected { .. } => StatusCode::UNAUTHORIZED,
                RegistryError::Internal(_) | RegistryError::Unavailable { .. } => {
                    return registry_error(&e);
                }
            };
            let page = SignInPage {
                chrome,
                next,
                user: form.user,
                error: e.to_string(),
            };
            html(status, page.render())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

impl CarriesCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /signout`: ends the session and clears the cookie (only the cookie when there is no
/// session, as when it has expired).
pub async fn sign_out(
    State(app): State<AppState>,
    posted: Result<SessionForm<CsrfForm>, FormRefusal>,
) -> Response {
    match posted {
        Ok(SessionForm { viewer, .. }) => {
            if let Some(id) = &viewer.session_id
                && let Err(e) = app.registry.sign_out(id).await
            {
                return registry_error(&e);
            }
        }
        Err(FormRefusal::NotSignedIn) => {}
        Err(refusal) => return refusal.into_response(),
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("pyindex_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// A token in the list.
pub struct TokenRow {
    pub id: i64,
    pub public_id: String,
    pub description: String,
    pub projects: String,
    pub access: &'static str,
    pub created: String,
    pub expires: String,
    pub state: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "ui/tokens.html")]
pub struct TokensPage {
    pub chrome: Chrome,
    pub tokens: Vec<TokenRow>,
    pub expiry_choices: Vec<u32>,
    pub created_secret: String,
    pub error: String,
}

fn token_row(t: &TokenRecord, now: OffsetDateTime) -> TokenRow {
    let expired = t.expires.is_some_and(|e| e <= now);
    let state = match (t.revoked.is_some(), expired) {
        (true, _) => "revoked",
        (false, true) => "expired",
        (false, false) => "active",
    };
    TokenRow {
        id: t.id,
        public_id: t.public_id.clone(),
        description: t.description.clone().unwrap_or_default(),
        projects: t
            .projects
            .as_ref()
            .map_or_else(|| "all projects".to_owned(), |p| p.join(", ")),
        access: if t.read_only {
            "read-only"
        } else {
            "read and publish"
        },
        created: date(t.created),
        expires: t.expires.map_or_else(|| "never".to_owned(), date),
        state,
        active: state == "active",
    }
}

async fn tokens_response(
    app: &AppState,
    parts: &Parts,
    viewer: &Viewer,
    created_secret: String,
    error: String,
) -> Response {
    let user = viewer.user().unwrap_or_default();
    let tokens = match app.registry.tokens(Some(user)).await {
        Ok(tokens) => tokens,
        Err(e) => return registry_error(&e),
    };
    let now = OffsetDateTime::now_utc();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = TokensPage {
        chrome: Chrome::new(app, parts, viewer),
        tokens: tokens.iter().map(|t| token_row(t, now)).collect(),
        expiry_choices: EXPIRY_CHOICES.to_vec(),
        created_secret,
        error,
    };
    let mut response = html(status, page.render());
    // The page may hold a new token's secret: never keep it anywhere.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /account/tokens`.
pub async fn tokens_page(
    State(app): State<AppState>,
    SignedIn { viewer, parts }: SignedIn,
) -> Response {
    tokens_response(&app, &parts, &viewer, String::new(), String::new()).await
}

#[derive(Debug, Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    projects: String,
    #[serde(default)]
    read_only: Option<String>,
    /// Days, or empty for never.
    #[serde(default)]
    expires_days: String,
}

impl CarriesCsrf for NewTokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /account/tokens`: creates a token and shows its secret once.
pub async fn create_token(
    State(app): State<AppState>,
    SessionForm {
        viewer,
        parts,
        form,
    }: SessionForm<NewTokenForm>,
) -> Response {
    let expires_days = match form.expires_days.trim() {
        "" | "never" => None,
        days => match days.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                let error = format!(
                    "The expiry must be a number of days up to {MAX_TOKEN_DAYS}, or never."
                );
                return tokens_response(&app, &parts, &viewer, String::new(), error).await;
            }
        },
    };
    let request = TokenRequest {
        projects: form
            .projects
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        read_only: form.read_only.is_some(),
        expires_days,
        description: Some(form.description.trim().to_owned()).filter(|d| !d.is_empty()),
    };
    let Some(identity) = viewer.identity.as_ref() else {
        return to_sign_in("/account/tokens");
    };
    let address = address_of(&parts.extensions);
    let actor = Actor::User {
        identity,
        address: &address,
    };
    match app
        .registry
        .create_token(actor, &identity.user.name, &request)
        .await
    {
        Ok(created) => tokens_response(&app, &parts, &viewer, created.secret, String::new()).await,
        Err(e @ RegistryError::Rejected { .. }) => {
            tokens_response(&app, &parts, &viewer, String::new(), e.to_string()).await
        }
        Err(e) => registry_error(&e),
    }
}

/// `POST /account/tokens/<id>/revoke`.
pub async fn revoke_token(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    SessionForm { viewer, parts, .. }: SessionForm<CsrfForm>,
) -> Response {
    let Some(identity) = viewer.identity.as_ref() else {
        return to_sign_in("/account/tokens");
    };
    let address = address_of(&parts.extensions);
    let actor = Actor::User {
        identity,
        address: &address,
    };
    match app
        .registry
        .revoke_token(actor, id, Some(&identity.user.name))
        .await
    {
        Ok(()) => Redirect::to("/account/tokens").into_response(),
        Err(e @ RegistryError::Rejected { .. }) => {
            tokens_response(&app, &parts, &viewer, String::new(), e.to_string()).await
        }
        Err(e) => registry_error(&e),
    }
}
