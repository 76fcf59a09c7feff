//! The legacy upload API (`POST /legacy/`, also `/legacy` and `/`; standards G and H).
//!
//! This handler is transport only: it streams the multipart body, spooling the `content` part
//! to disk (hashed on the way, never held in memory) and collecting the text fields, then hands
//! both to [`pyindex_registry::Registry::upload`], which owns every rule.

use std::time::Duration;

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{StatusCode, header};
use pyindex_packaging::ProjectName;
use pyindex_registry::{Identity, Published, RegistryError, UploadRequest, UploadedContent};

use pyindex_storage::StorageError;

use crate::AppState;
use crate::auth::{address_of, identify};
use crate::response::{plain_error, registry_error};

/// Text fields larger than this are refused (descriptions are the largest legitimate ones).
const MAX_FIELD_BYTES: usize = 4 * 1024 * 1024;
/// The most text a whole form may carry.
const MAX_TEXT_BYTES: usize = 8 * 1024 * 1024;
/// The most fields a form may have (real uploads send a few dozen).
const MAX_FIELDS: usize = 1000;
/// Room for the text fields and multipart framing on top of the file size limit.
const FORM_OVERHEAD: u64 = 16 * 1024 * 1024;
/// How much of a refused body is read before answering, so the client sees the answer
/// instead of a connection reset.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// How long draining waits for more of a refused body before answering anyway.
const DRAIN_IDLE: Duration = Duration::from_secs(1);
/// How long draining a refused body takes at most.
const DRAIN_TOTAL: Duration = Duration::from_secs(10);

/// Reads and discards up to [`DRAIN_LIMIT`] bytes of a refused body, so that a client still
/// sending it reads the answer instead of a connection reset. A client that waits for
/// `100 Continue` gets the answer at once (the body is never asked for), and one that sends
/// nothing more is answered after [`DRAIN_IDLE`].
pub(crate) async fn drain(request: Request) {
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        return;
    }
    let mut stream = request.into_body().into_data_stream();
    let mut seen = 0;
    let read = async {
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(DRAIN_IDLE, stream.next()).await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    };
    // A client trickling bytes must not hold the answer back for long either.
    let _ = tokio::time::timeout(DRAIN_TOTAL, read).await;
}

/// The 413 answer; the connection is closed since the rest of the body is not read.
fn too_large(limit: u64) -> Response {
    let mut response = registry_error(&StorageError::TooLarge { limit }.into());
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

/// Whether a body read failed because the client sent nothing for the body timeout (the
/// listener wraps every request body in tower-http's `TimeoutBody`).
fn is_body_stall(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// The answer to a failed read of the form: 408 when the client stopped sending (the
/// connection is closed), else 400. A spool file being written is removed when it is dropped.
fn unreadable_form(error: MultipartError) -> Response {
    if !is_body_stall(&error) {
        return bad_multipart(error);
    }
    tracing::info!("upload aborted: the client sent nothing for the body timeout");
    let mut response = plain_error(
        StatusCode::REQUEST_TIMEOUT,
        "The upload stalled: no data arrived for the body timeout (--body-timeout), so it was aborted. \
         Check the network and upload again.",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

fn bad_multipart(detail: impl std::fmt::Display) -> Response {
    plain_error(
        StatusCode::BAD_REQUEST,
        &format!("Invalid multipart/form-data body: {detail}"),
    )
}

async fn read_text(mut field: Field<'_>) -> Result<String, Response> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(unreadable_form)? {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_FIELD_BYTES {
            return Err(plain_error(
                StatusCode::BAD_REQUEST,
                &format!("The field '{name}' is larger than {MAX_FIELD_BYTES} bytes."),
            ));
        }
    }
    String::from_utf8(buf).map_err(|_| {
        plain_error(
            StatusCode::BAD_REQUEST,
            &format!("The field '{name}' is not valid UTF-8."),
        )
    })
}

async fn spool_content(app: &AppState, mut field: Field<'_>) -> Result<UploadedContent, Response> {
    let Some(filename) = field.file_name().map(str::to_owned) else {
        return Err(plain_error(
            StatusCode::BAD_REQUEST,
            "The 'content' part has no filename in its Content-Disposition header.",
        ));
    };
    let mut writer = app
        .registry
        .spool()
        .create(app.max_upload_size)
        .await
        .map_err(|e| registry_error(&e.into()))?;
    while let Some(chunk) = field.chunk().await.map_err(unreadable_form)? {
        writer.write(&chunk).await.map_err(|e| match e {
            StorageError::TooLarge { limit } => too_large(limit),
            other => registry_error(&other.into()),
        })?;
    }
    let file = writer
        .finish()
        .await
        .map_err(|e| registry_error(&e.into()))?;
    Ok(UploadedContent { filename, file })
}

async fn read_form(
    app: &AppState,
    identity: Option<&Identity>,
    mut multipart: Multipart,
) -> Result<UploadRequest, Response> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut text_bytes = 0;
    let mut content = None;
    while let Some(field) = multipart.next_field().await.map_err(unreadable_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "content" {
            if content.is_some() {
                return Err(plain_error(
                    StatusCode::BAD_REQUEST,
                    "The upload has more than one 'content' part.",
                ));
            }
            // Every client sends `name` before the file: refuse a caller without rights on
            // the project, or a project closed to uploads, before spooling what may be a
            // gigabyte.
            if let Some((_, claimed)) = fields.iter().find(|(k, _)| k == "name")
                && let Ok(project) = ProjectName::new(claimed)
            {
                app.registry
                    .may_start_upload(identity, &project)
                    .await
                    .map_err(|e| registry_error(&e))?;
            }
            content = Some(spool_content(app, field).await?);
        } else if field.file_name().is_some() && name != "gpg_signature" {
            return Err(plain_error(
                StatusCode::BAD_REQUEST,
                &format!("The field '{name}' was sent as a file; only 'content' may be a file."),
            ));
        } else {
            let value = read_text(field).await?;
            text_bytes += value.len();
            if fields.len() >= MAX_FIELDS || text_bytes > MAX_TEXT_BYTES {
                return Err(plain_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "The form is too large: at most {MAX_FIELDS} fields and {MAX_TEXT_BYTES} bytes of text."
                    ),
                ));
            }
            if name != "gpg_signature" {
                fields.push((name, value));
            }
        }
    }
    Ok(UploadRequest {
        fields,
        content,
        identity: None,
        address: String::new(),
    })
}

/// `POST /legacy/`: publish one file. Every outcome is counted in the metrics.
pub async fn upload(State(app): State<AppState>, request: Request) -> Response {
    let response = receive(&app, request).await;
    if !response.status().is_success() {
        app.metrics.upload_refused(response.status());
    }
    response
}

/// Receives and publishes one upload; counts the successes (the caller counts refusals).
async fn receive(app: &AppState, request: Request) -> Response {
    // Credentials first, before a byte of the body is read (standards H1).
    let address = address_of(request.extensions());
    let identity = match identify(app, request.headers(), &address).await {
        Ok(identity) => identity,
        Err(response) => {
            drain(request).await;
            return response;
        }
    };
    if let Err(e) = app.registry.authorize_write(identity.as_ref()) {
        drain(request).await;
        return registry_error(&e);
    }
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        drain(request).await;
        return plain_error(
            StatusCode::BAD_REQUEST,
            "The request body must be multipart/form-data, as sent by twine, uv publish and other upload clients.",
        );
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_upload_size.saturating_add(FORM_OVERHEAD)) {
        drain(request).await;
        return too_large(app.max_upload_size);
    }
    let multipart = match Multipart::from_request(request, &()).await {
        Ok(multipart) => multipart,
        Err(rejection) => return bad_multipart(rejection.body_text()),
    };
    let mut form = match read_form(app, identity.as_ref(), multipart).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    form.identity = identity;
    form.address = address;
    match app.registry.upload(form).await {
        Ok(Published::Added { filename, project }) => {
            tracing::info!(%project, %filename, "published");
            app.metrics.upload_published();
            (StatusCode::OK, format!("Published {filename}.\n")).into_response()
        }
        Ok(Published::AlreadyPresent { filename }) => {
            app.metrics.upload_already_present();
            (
                StatusCode::OK,
                format!(
                    "{filename} is already published with identical content; nothing changed.\n"
                ),
            )
                .into_response()
        }
        Err(e @ RegistryError::Rejected { .. }) => {
            tracing::info!(error = %e, "upload refused");
            registry_error(&e)
        }
        Err(e) => registry_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use futures::StreamExt;
    use pyindex_catalog::{
        AuditEntry, Catalog, NewFile, ProjectStatus, ReleaseMetadata, SqliteCatalog,
    };
    use pyindex_packaging::archive::ArchiveLimits;
    use pyindex_registry::{AccessMode, Actor, Registry};
    use pyindex_storage::{LocalBlobStore, Spool};
    use time::OffsetDateTime;
    use tower::ServiceExt;

    use crate::{AppState, router};

    fn audit() -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: "test".into(),
            action: "publish".into(),
            subject: "courier".into(),
            address: None,
            detail: None,
        }
    }

    /// An open index holding `courier` 1.0 (a catalog row only), archived.
    async fn archived_courier(dir: &std::path::Path) -> Registry {
        let catalog = Arc::new(
            SqliteCatalog::open(&dir.join("catalog.sqlite3"))
                .await
                .unwrap(),
        );
        let file = NewFile {
            project: "courier".into(),
            display_name: "courier".into(),
            version: "1.0".into(),
            canonical_version: "1".into(),
            filename: "courier-1.0-py3-none-any.whl".into(),
            dist_key: pyindex_packaging::parse_filename("courier-1.0-py3-none-any.whl")
                .unwrap()
                .identity(),
            kind: pyindex_packaging::DistKind::Wheel,
            size: 1,
            sha256: "ab".repeat(32),
            md5: "cd".repeat(16),
            blake2_256: "ef".repeat(32),
            requires_python: None,
            metadata_sha256: None,
            release: ReleaseMetadata::default(),
            uploaded: OffsetDateTime::now_utc(),
            uploader: None,
        };
        catalog.add_file(&file, &audit()).await.unwrap();
        let blobs = Arc::new(LocalBlobStore::open(dir.join("files")).unwrap());
        let spool = Spool::open(dir.join("tmp")).unwrap();
        let registry = Registry::new(catalog, blobs, spool, ArchiveLimits::default())
            .with_access_mode(AccessMode::Open);
        registry
            .set_project_status(Actor::Cli, "courier", ProjectStatus::Archived, None)
            .await
            .unwrap();
        registry
    }

    #[tokio::test]
    async fn a_closed_project_is_refused_before_the_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let app = AppState::new(archived_courier(dir.path()).await, 1 << 20);
        let head = "--X\r\nContent-Disposition: form-data; name=\":action\"\r\n\r\nfile_upload\r\n\
             --X\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\ncourier\r\n\
             --X\r\nContent-Disposition: form-data; name=\"content\"; filename=\"courier-2.0-py3-none-any.whl\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nPK";
        // The rest of the file never arrives: only an answer given before reading the file
        // comes at all (else the timeout below fails the test).
        let rest = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
        let body = futures::stream::iter([Ok(bytes::Bytes::from(head))]).chain(rest);
        let request = http::Request::post("/legacy/")
            .header("content-type", "multipart/form-data; boundary=X")
            .body(Body::from_stream(body))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(60), router(app).oneshot(request))
            .await
            .expect("no answer while the file was still arriving: the server waited for it")
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, http::StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("Project 'courier' is archived"), "{body}");
    }
}
