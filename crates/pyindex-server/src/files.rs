//! File downloads: `/files/<sha256>/<filename>` and its PEP 658 metadata file
//! `/files/<sha256>/<filename>.metadata` (standards E1-E5).
//!
//! Published files never change, so responses carry a strong ETag (the SHA-256) and a year-long
//! immutable cache lifetime, support byte ranges, and are never content-encoded: installers hash
//! exactly the bytes they receive.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use pyindex_catalog::FileRecord;
use pyindex_storage::{BlobContent, BlobKey, ByteRange};

use crate::AppState;
use crate::response::{if_none_match, internal_error, not_found};

const FILE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
const METADATA_SUFFIX: &str = ".metadata";

/// A requested byte range, as parsed from a `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable range: send the whole file.
    Whole,
    /// One satisfiable range.
    Part(ByteRange),
    /// A range that lies outside the file.
    Unsatisfiable,
}

/// Parses a single-range `bytes=` header against a file of `len` bytes. Multiple ranges and
/// malformed headers are ignored (the whole file is sent), as RFC 9110 allows.
fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // bytes=-N: the last N bytes.
        match last.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => ByteRange {
                start: len.saturating_sub(n),
                end: len,
            },
            Err(_) => return RangeRequest::Whole,
        }
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        let end = if last.is_empty() {
            len
        } else {
            match last.parse::<u64>() {
                Ok(l) if l >= start => l.saturating_add(1).min(len),
                _ => return RangeRequest::Whole,
            }
        };
        ByteRange { start, end }
    };
    if range.start >= len {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(range)
    }
}

/// Finds the file (or metadata file) named in the URL.
async fn lookup(
    app: &AppState,
    filename: &str,
) -> Result<Option<(Arc<FileRecord>, bool)>, Response> {
    if let Some(record) = cached_file(app, filename).await? {
        return Ok(Some((record, false)));
    }
    if let Some(dist) = filename.strip_suffix(METADATA_SUFFIX)
        && let Some(record) = cached_file(app, dist).await?
    {
        return Ok(Some((record, true)));
    }
    Ok(None)
}

async fn cached_file(app: &AppState, filename: &str) -> Result<Option<Arc<FileRecord>>, Response> {
    if let Some(record) = app.pages.file(filename) {
        return Ok(Some(record));
    }
    let epoch = app.pages.epoch();
    match app.registry.catalog().file(filename).await {
        Ok(Some(record)) => {
            let record = Arc::new(record);
            app.pages.insert_file(record.clone(), epoch);
            Ok(Some(record))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(internal_error(&e.to_string())),
    }
}

/// `GET`/`HEAD /files/<sha256>/<filename>`.
pub async fn download(
    State(app): State<AppState>,
    Path((sha256, filename)): Path<(String, String)>,
    request: Request,
) -> Response {
    let (method, headers) = (request.method(), request.headers());
    let missing = || {
        not_found(&format!(
            "No file '{}' in this index.",
            filename.escape_default()
        ))
    };
    let (record, metadata) = match lookup(&app, &filename).await {
        Ok(Some(found)) => found,
        Ok(None) => return missing(),
        Err(response) => return response,
    };
    if !record.sha256.eq_ignore_ascii_case(&sha256) {
        return missing();
    }
    let blob = if metadata {
        match &record.metadata_sha256 {
            Some(sha) => sha.clone(),
            None => return missing(),
        }
    } else {
        record.sha256.clone()
    };
    let Ok(key) = BlobKey::parse(&blob) else {
        return internal_error(&format!("catalog holds an invalid blob key '{blob}'"));
    };
    let len = if metadata {
        match app.registry.blobs().size(&key).await {
            Ok(Some(len)) => len,
            Ok(None) => {
                return internal_error(&format!("metadata blob {key} is missing from storage"));
            }
            Err(e) => return internal_error(&e.to_string()),
        }
    } else {
        record.size
    };

    let etag =
        HeaderValue::from_str(&format!("\"{blob}\"")).unwrap_or(HeaderValue::from_static("\"\""));
    let last_modified = httpdate::fmt_http_date(record.uploaded.into());
    let mut base = HeaderMap::new();
    base.insert(header::ETAG, etag.clone());
    base.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(FILE_CACHE_CONTROL),
    );
    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        base.insert(header::LAST_MODIFIED, v);
    }
    if if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, base).into_response();
    }

    let range_allowed = headers.get(header::IF_RANGE).is_none_or(|v| {
        v.to_str()
            .is_ok_and(|v| v == etag.to_str().unwrap_or_default() || v == last_modified)
    });
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if range_allowed => parse_range(value, len),
        _ => RangeRequest::Whole,
    };
    let (status, part) = match range {
        RangeRequest::Whole => (StatusCode::OK, None),
        RangeRequest::Part(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeRequest::Unsatisfiable => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                base.insert(header::CONTENT_RANGE, v);
            }
            return (StatusCode::RANGE_NOT_SATISFIABLE, base).into_response();
        }
    };
    if let Some(r) = part
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1))
    {
        base.insert(header::CONTENT_RANGE, v);
    }
    let body_len = part.map_or(len, |r| r.end - r.start);
    base.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    base.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));

    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        match app.registry.blobs().get(&key, part).await {
            Ok(Some(blob)) => match blob.content {
                BlobContent::Bytes(bytes) => Body::from(bytes),
                BlobContent::Stream(stream) => Body::from_stream(stream),
            },
            Ok(None) => {
                return internal_error(&format!("blob {key} is listed but missing from storage"));
            }
            Err(e) => return internal_error(&e.to_string()),
        }
    };
    (status, base, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Part(ByteRange { start, end })
    }

    #[test]
    fn parses_the_three_range_forms() {
        assert_eq!(parse_range("bytes=0-99", 1000), part(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), part(900, 1000));
        assert_eq!(parse_range("bytes=-100", 1000), part(900, 1000));
        assert_eq!(parse_range("bytes=-5000", 1000), part(0, 1000));
        assert_eq!(parse_range("bytes=10-5000", 1000), part(10, 1000));
    }

    #[test]
    fn out_of_bounds_is_unsatisfiable_and_junk_is_ignored() {
        assert_eq!(
            parse_range("bytes=1000-", 1000),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range("bytes=-0", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 1000), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=x-y", 1000), RangeRequest::Whole);
    }
}
