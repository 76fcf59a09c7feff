//! The admin API (JSON) for what a CI job needs remotely:
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/projects/{project}/releases/{version}/yank` | yank (body `{"reason": "..."}`, optional) |
//! | `POST /api/v1/projects/{project}/releases/{version}/unyank` | undo a yank |
//! | `POST /api/v1/projects/{project}/status` | set the PEP 792 status (body `{"status": "archived", "reason": "..."}`) |
//! | `POST /api/v1/projects/{project}/reserve` | make a name private before its first upload (admins) |
//! | `GET /api/v1/upstream/blocks` | the blocks on upstream projects and releases (admins) |
//! | `POST /api/v1/upstream/blocks` | block an upstream project or release (admins; body `{"project": "x", "version": "1.0", "reason": "..."}`, `version` optional) |
//! | `DELETE /api/v1/upstream/blocks/{project}[/{version}]` | lift a block (admins) |
//! | `POST /api/v1/tokens` | create a token for oneself (`projects`, `read_only`, `expires_days`, `description`) |
//! | `GET /api/v1/tokens` | one's own tokens (no secrets) |
//! | `DELETE /api/v1/tokens/{id}` | revoke one of one's own tokens |
//!
//! Every route needs credentials (an account password or a token), except yanking and setting
//! a project's status in the open mode. Errors are `text/plain` with the message, like the upload API.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use pyindex_catalog::{ProjectStatus, TokenRecord, UpstreamBlock, Yank};
use pyindex_registry::{Actor, Identity, RegistryError, Rejection, ReleaseSpec, TokenRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{ClientAddress, identify};
use crate::pages::upload_time;
use crate::response::registry_error;

fn unauthenticated() -> Response {
    registry_error(&RegistryError::rejected(
        Rejection::Unauthorized,
        "This API requires credentials: an account (Basic auth) or an API token (user name __token__, or Bearer).",
    ))
}

/// An optional JSON request body: empty means all defaults; anything else must be valid JSON
/// for `T` (whatever the Content-Type says), so a malformed body is refused, never ignored.
fn json_body<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        registry_error(&RegistryError::bad_request(format!(
            "Invalid JSON body: {e}"
        )))
    })
}

/// A JSON body a route cannot do without: an empty one is refused with `example`, the form it
/// takes.
fn required_json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    example: &str,
) -> Result<T, Response> {
    json_body::<Option<T>>(body)?.ok_or_else(|| {
        registry_error(&RegistryError::bad_request(format!(
            "Send a JSON body like {example}."
        )))
    })
}

/// The authenticated caller of a route that always needs credentials (the token routes).
async fn caller(app: &AppState, headers: &HeaderMap, address: &str) -> Result<Identity, Response> {
    identify(app, headers, address)
        .await?
        .ok_or_else(unauthenticated)
}

/// Body of a yank request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YankBody {
    reason: Option<String>,
}

/// The caller of a route that is open to anonymous callers in the open mode (yank, status),
/// refused at once if it may not write at all.
async fn writer(
    app: &AppState,
    headers: &HeaderMap,
    address: &str,
) -> Result<Option<Identity>, Response> {
    let identity = identify(app, headers, address).await?;
    app.registry
        .authorize_write(identity.as_ref())
        .map_err(|e| registry_error(&e))?;
    Ok(identity)
}

fn actor<'a>(identity: &'a Option<Identity>, address: &'a str) -> Actor<'a> {
    match identity {
        Some(identity) => Actor::User { identity, address },
        None => Actor::Anonymous { address },
    }
}

async fn change_yank(
    app: &AppState,
    headers: &HeaderMap,
    address: &str,
    project: &str,
    version: &str,
    yank: Yank,
) -> Response {
    let identity = match writer(app, headers, address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let yanked = matches!(yank, Yank::Yanked(_));
    match app
        .registry
        .yank(actor(&identity, address), project, version, yank)
        .await
    {
        Ok(()) => Json(json!({ "project": project, "version": version, "yanked": yanked }))
            .into_response(),
        Err(e) => registry_error(&e),
    }
}

/// `POST .../yank`
pub async fn yank(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path((project, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reason = match json_body::<YankBody>(&body) {
        Ok(body) => body.reason,
        Err(response) => return response,
    };
    change_yank(
        &app,
        &headers,
        &address,
        &project,
        &version,
        Yank::Yanked(reason),
    )
    .await
}

/// `POST .../unyank`
pub async fn unyank(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path((project, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    change_yank(
        &app,
        &headers,
        &address,
        &project,
        &version,
        Yank::NotYanked,
    )
    .await
}

/// Body of a status request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: String,
    reason: Option<String>,
}

/// `POST /api/v1/projects/{project}/reserve`: makes a name private before its first upload
/// (admins only): never looked up upstream, 404 until it has files. `201` when reserved now,
/// `200` when the project existed already.
pub async fn reserve(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Response {
    let identity = match writer(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    match app
        .registry
        .reserve_project(actor(&identity, &address), &project)
        .await
    {
        Ok((name, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(json!({ "project": name, "reserved": created })),
            )
                .into_response()
        }
        Err(e) => registry_error(&e),
    }
}

/// `POST /api/v1/projects/{project}/status`
pub async fn set_status(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let identity = match writer(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let body = match required_json_body::<StatusBody>(
        &body,
        "{\"status\": \"archived\", \"reason\": \"...\"} (reason optional)",
    ) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let status = match body.status.parse::<ProjectStatus>() {
        Ok(status) => status,
        Err(message) => return registry_error(&RegistryError::bad_request(message)),
    };
    match app
        .registry
        .set_project_status(
            actor(&identity, &address),
            &project,
            status,
            body.reason.as_deref(),
        )
        .await
    {
        Ok(change) => Json(json!({
            "project": change.project,
            "status": change.status.as_str(),
            "reason": change.reason,
            "previous": change.previous.as_str(),
        }))
        .into_response(),
        Err(e) => registry_error(&e),
    }
}

/// Body of a token request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    read_only: bool,
    expires_days: Option<u32>,
    description: Option<String>,
}

fn token_json(t: &TokenRecord) -> Value {
    json!({
        "id": t.id,
        "public_id": t.public_id,
        "user": t.user_name,
        "projects": t.projects,
        "read_only": t.read_only,
        "description": t.description,
        "created": upload_time(t.created),
        "expires": t.expires.map(upload_time),
        "revoked": t.revoked.map(upload_time),
    })
}

/// `POST /api/v1/tokens`
pub async fn create_token(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let identity = match caller(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let body = match json_body::<TokenBody>(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request = TokenRequest {
        projects: body.projects,
        read_only: body.read_only,
        expires_days: body.expires_days,
        description: body.description,
    };
    let actor = Actor::User {
        identity: &identity,
        address: &address,
    };
    match app
        .registry
        .create_token(actor, &identity.user.name, &request)
        .await
    {
        Ok(created) => (
            StatusCode::CREATED,
            Json(json!({
                "id": created.id,
                "token": created.secret,
                "expires": created.expires.map(upload_time),
            })),
        )
            .into_response(),
        Err(e) => registry_error(&e),
    }
}

/// `GET /api/v1/tokens`
pub async fn list_tokens(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
) -> Response {
    let identity = match caller(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    match app.registry.tokens(Some(&identity.user.name)).await {
        Ok(tokens) => Json(Value::Array(tokens.iter().map(token_json).collect())).into_response(),
        Err(e) => registry_error(&e),
    }
}

/// `DELETE /api/v1/tokens/{id}`
pub async fn revoke_token(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let identity = match caller(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let actor = Actor::User {
        identity: &identity,
        address: &address,
    };
    match app
        .registry
        .revoke_token(actor, id, Some(&identity.user.name))
        .await
    {
        Ok(()) => Json(json!({ "id": id, "revoked": true })).into_response(),
        Err(e) => registry_error(&e),
    }
}

/// Body of a block request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    project: String,
    version: Option<String>,
    reason: String,
}

fn block_json(b: &UpstreamBlock) -> Value {
    json!({
        "project": b.project,
        "version": b.version,
        "reason": b.reason,
        "created": upload_time(b.created),
        "created_by": b.created_by,
    })
}

/// `GET /api/v1/upstream/blocks` (admins)
pub async fn list_blocks(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
) -> Response {
    let identity = match caller(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let actor = Actor::User {
        identity: &identity,
        address: &address,
    };
    match app.registry.upstream_blocks(actor, None).await {
        Ok(blocks) => Json(Value::Array(blocks.iter().map(block_json).collect())).into_response(),
        Err(e) => registry_error(&e),
    }
}

/// `POST /api/v1/upstream/blocks` (admins): `201` when new, `200` when the reason of an
/// existing block was replaced.
pub async fn block(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let identity = match caller(&app, &headers, &address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let body = match required_json_body::<BlockBody>(
        &body,
        "{\"project\": \"name\", \"version\": \"1.0\", \"reason\": \"...\"} (version optional: without it the whole project is blocked)",
    ) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let spec = match ReleaseSpec::new(&body.project, body.version.as_deref()) {
        Ok(spec) => spec,
        Err(e) => return registry_error(&e),
    };
    let actor = Actor::User {
        identity: &identity,
        address: &address,
    };
    match app
        .registry
        .block_upstream(actor, &spec, &body.reason)
        .await
    {
        Ok((block, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(block_json(&block))).into_response()
        }
        Err(e) => registry_error(&e),
    }
}

async fn unblock_spec(
    app: &AppState,
    headers: &HeaderMap,
    address: &str,
    project: &str,
    version: Option<&str>,
) -> Response {
    let identity = match caller(app, headers, address).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let spec = match ReleaseSpec::new(project, version) {
        Ok(spec) => spec,
        Err(e) => return registry_error(&e),
    };
    let actor = Actor::User {
        identity: &identity,
        address,
    };
    match app.registry.unblock_upstream(actor, &spec).await {
        Ok(()) => Json(json!({ "project": spec.project, "version": version, "blocked": false }))
            .into_response(),
        Err(e) => registry_error(&e),
    }
}

/// `DELETE /api/v1/upstream/blocks/{project}` (admins): lifts a whole-project block.
pub async fn unblock_project(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Response {
    unblock_spec(&app, &headers, &address, &project, None).await
}

/// `DELETE /api/v1/upstream/blocks/{project}/{version}` (admins): lifts a release block.
pub async fn unblock_release(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    Path((project, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    unblock_spec(&app, &headers, &address, &project, Some(&version)).await
}
