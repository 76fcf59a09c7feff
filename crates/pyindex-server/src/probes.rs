//! `GET /ready`: whether the server can do its work, for load balancers and orchestrators.
//! Like `/health`, it needs no credentials and answers any `Host`.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use crate::AppState;

/// How long each check may take before it counts as failed, so that a database or bucket that
/// does not answer makes `/ready` say so instead of holding the probe.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// 200 `ready` when the catalog database (SQLite or PostgreSQL) answers a query and the blob
/// store (the files directory or the bucket) accepts a write probe, each within
/// [`CHECK_TIMEOUT`]; otherwise 503 naming what failed (the details go to the log).
pub async fn ready(State(app): State<AppState>) -> Response {
    let registry = &app.registry;
    let (catalog, storage) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, registry.catalog_generation()),
        tokio::time::timeout(CHECK_TIMEOUT, registry.blobs().check()),
    );
    let mut failed = Vec::new();
    match catalog {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "readiness check: the catalog database does not answer");
            failed.push("database: the catalog database does not answer queries");
        }
        Err(_) => {
            tracing::error!("readiness check: the catalog database did not answer in time");
            failed.push("database: the catalog database does not answer queries (timed out)");
        }
    }
    match storage {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "readiness check: the file storage is not writable");
            failed.push("storage: does not take a write (the files directory, or the bucket)");
        }
        Err(_) => {
            tracing::error!("readiness check: the file storage did not answer in time");
            failed.push("storage: does not take a write (timed out)");
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use http::Request;
    use pyindex_catalog::SqliteCatalog;
    use pyindex_packaging::archive::ArchiveLimits;
    use pyindex_registry::Registry;
    use pyindex_storage::{LocalBlobStore, Spool};
    use tower::ServiceExt;

    use crate::{AppState, router};

    async fn ready(app: &AppState) -> (http::StatusCode, String) {
        let request = Request::get("/ready").body(Body::empty()).unwrap();
        let response = router(app.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn names_the_part_that_does_not_answer() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(
            SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
                .await
                .unwrap(),
        );
        let blobs = Arc::new(LocalBlobStore::open(dir.path().join("files")).unwrap());
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let registry = Registry::new(catalog.clone(), blobs, spool, ArchiveLimits::default());
        let app = AppState::new(registry, 1 << 20);
        assert_eq!(ready(&app).await, (http::StatusCode::OK, "ready\n".into()));

        catalog.close().await;
        let (status, body) = ready(&app).await;
        assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("database: the catalog database does not answer"),
            "{body}"
        );
        assert!(!body.contains("storage"), "{body}");
    }
}
