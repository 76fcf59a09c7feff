//! `GET /ready`: whether the server can do its work, for load balancers and orchestrators.
//! Like `/health`, it needs no credentials and answers any `Host`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use crate::AppState;

/// 200 `ready` when the catalog answers a query and the blob store accepts a write probe;
/// otherwise 503 naming what failed (the details go to the log).
pub async fn ready(State(app): State<AppState>) -> Response {
    let registry = &app.registry;
    let (catalog, storage) =
        tokio::join!(registry.catalog().generation(), registry.blobs().check());
    let mut failed = Vec::new();
    if let Err(e) = catalog {
        tracing::error!(error = %e, "readiness check: the catalog does not answer");
        failed.push("catalog: does not answer queries");
    }
    if let Err(e) = storage {
        tracing::error!(error = %e, "readiness check: the file storage is not writable");
        failed.push("storage: the files directory is not a writable directory");
    }
    let (status, body) = if failed.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        let mut body = String::from("not ready\n");
        for line in failed {
            body.push_str(line);
            body.push('\n');
        }
        body.push_str("See the server log for the error.\n");
        (StatusCode::SERVICE_UNAVAILABLE, body)
    };
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}
