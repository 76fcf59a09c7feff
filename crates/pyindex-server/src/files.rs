//! File downloads: `/files/<sha256>/<filename>` and its PEP 658 metadata file
//! `/files/<sha256>/<filename>.metadata` (standards E1-E5).
//!
//! Published files never change, so responses carry a strong ETag (the SHA-256) and a year-long
//! immutable cache lifetime, support byte ranges, and are never content-encoded: installers hash
//! exactly the bytes they receive.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use pyindex_registry::{FileDownload, FilePart, RegistryError};
use pyindex_storage::{BlobContent, BlobKey, ByteRange};

use crate::AppState;
use crate::response::{if_none_match, internal_error, not_found, registry_error};

const FILE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

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

/// Reads a `Range` header against a file of `len` bytes (parsed by `http-range-header`, the
/// parser tower-http's file service uses). One range is served; several ranges and headers it
/// cannot read get the whole file, as RFC 9110 allows; a range wholly outside the file is
/// unsatisfiable. The range unit is matched without regard to case, as RFC 9110 says.
fn parse_range(value: &str, len: u64) -> RangeRequest {
    use http_range_header::{RangeUnsatisfiableError, parse_range_header};
    const UNIT: &str = "bytes=";
    let value = value.trim();
    let Some(spec) = value
        .get(..UNIT.len())
        .filter(|unit| unit.eq_ignore_ascii_case(UNIT))
        .map(|_| &value[UNIT.len()..])
    else {
        return RangeRequest::Whole;
    };
    let Ok(parsed) = parse_range_header(&format!("{UNIT}{spec}")) else {
        return RangeRequest::Whole;
    };
    match parsed.validate(len).as_deref() {
        Ok([range]) => RangeRequest::Part(ByteRange {
            start: *range.start(),
            end: range.end() + 1,
        }),
        Ok(_) => RangeRequest::Whole,
        Err(RangeUnsatisfiableError::Unsatisfiable) => RangeRequest::Unsatisfiable,
        Err(_) => RangeRequest::Whole,
    }
}

/// Everything needed to answer for one file URL, worked out once per catalog state.
pub struct Download {
    /// The normalized name of the project the file belongs to.
    project: String,
    /// SHA-256 of the distribution, which the URL must name.
    dist_sha256: String,
    /// The blob to send: the distribution or its metadata file.
    key: BlobKey,
    /// Its size.
    len: u64,
    /// Strong ETag: the blob's SHA-256.
    etag: HeaderValue,
    /// The upload time, as an HTTP date.
    last_modified: HeaderValue,
    /// Whether the blob is the distribution itself (not its metadata file).
    distribution: bool,
    /// The registry's refusal when the file is not served (its project is quarantined).
    /// Kept here so that the refusal is cached, and forgotten, with the rest of the answer.
    withheld: Option<RegistryError>,
}

impl Download {
    /// The normalized name of the project the file belongs to.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The answer for what the registry found for a file URL; `None` when it names no blob.
    async fn new(app: &AppState, found: FileDownload) -> Result<Option<Download>, Response> {
        let Some(blob) = found.blob_sha256() else {
            return Ok(None);
        };
        let key = BlobKey::parse(blob)
            .map_err(|_| internal_error(&format!("catalog holds an invalid blob key '{blob}'")))?;
        let record = &found.file;
        let len = match found.part {
            FilePart::Distribution => record.size,
            FilePart::Metadata => match app.registry.blobs().size(&key).await {
                Ok(Some(len)) => len,
                Ok(None) => {
                    return Err(internal_error(&format!(
                        "metadata blob {key} is missing from storage"
                    )));
                }
                Err(e) => return Err(internal_error(&e.to_string())),
            },
        };
        let header =
            |text: String| HeaderValue::from_str(&text).map_err(|e| internal_error(&e.to_string()));
        Ok(Some(Download {
            etag: header(format!("\"{key}\""))?,
            last_modified: header(httpdate::fmt_http_date(record.uploaded.into()))?,
            key,
            len,
            distribution: matches!(found.part, FilePart::Distribution),
            project: found.file.project,
            dist_sha256: found.file.sha256,
            withheld: found.withheld,
        }))
    }
}

/// Finds what the URL's filename names: a distribution, or the metadata file of one.
async fn lookup(app: &AppState, filename: &str) -> Result<Option<Arc<Download>>, Response> {
    let cached = app.cache.file(filename);
    app.metrics.file_cache(cached.is_some());
    if let Some(download) = cached {
        return Ok(Some(download));
    }
    let epoch = app.cache.epoch();
    let found = match app.registry.download(filename).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => return Err(registry_error(&e)),
    };
    let Some(download) = Download::new(app, found).await? else {
        return Ok(None);
    };
    let download = Arc::new(download);
    app.cache
        .insert_file(filename.to_owned(), download.clone(), epoch);
    Ok(Some(download))
}

/// `GET`/`HEAD /files/<sha256>/<filename>`.
pub async fn download(
    State(app): State<AppState>,
    Path((sha256, filename)): Path<(String, String)>,
    request: Request,
) -> Response {
    let missing = || {
        not_found(&format!(
            "No file '{}' in this index.",
            filename.escape_default()
        ))
    };
    let d = match lookup(&app, &filename).await {
        Ok(Some(d)) if d.dist_sha256.eq_ignore_ascii_case(&sha256) => d,
        Ok(_) => return missing(),
        Err(response) => return response,
    };
    if let Some(refusal) = &d.withheld {
        return registry_error(refusal);
    }
    let headers = request.headers();
    let mut response = validators(&d);
    if if_none_match(headers, &d.etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    if request.method() == Method::GET
        && let Some(response) = redirect_to_store(&app, &d).await
    {
        return response;
    }
    let part = match requested_part(headers, &d) {
        Ok(part) => part,
        Err(()) => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", d.len)) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return response;
        }
    };
    describe_content(&mut response, &d, part);
    if request.method() != Method::HEAD {
        match content(&app, &d, part).await {
            Ok(body) => *response.body_mut() = body,
            Err(response) => return response,
        }
    }
    response
}

/// An empty answer with the headers every answer for the file carries: its validators and
/// cache lifetime, and that it serves ranges.
fn validators(d: &Download) -> Response {
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(header::ETAG, d.etag.clone());
    h.insert(header::LAST_MODIFIED, d.last_modified.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(FILE_CACHE_CONTROL),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

/// The byte range asked for (`None`: the whole file), honouring `If-Range`; `Err` when the
/// range lies outside the file.
fn requested_part(headers: &http::HeaderMap, d: &Download) -> Result<Option<ByteRange>, ()> {
    let range_allowed = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v == d.etag || v == d.last_modified);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if range_allowed => parse_range(value, d.len),
        _ => RangeRequest::Whole,
    };
    match range {
        RangeRequest::Whole => Ok(None),
        RangeRequest::Part(r) => Ok(Some(r)),
        RangeRequest::Unsatisfiable => Err(()),
    }
}

/// Status, type, length and range of the content sent for `part` of the file.
fn describe_content(response: &mut Response, d: &Download, part: Option<ByteRange>) {
    let h = response.headers_mut();
    if let Some(r) = part
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", r.start, r.end - 1, d.len))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(part.map_or(d.len, |r| r.end - r.start)),
    );
    if part.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
}

/// A response body of `content`: bytes in memory go out with the head in one write.
fn body_of(content: BlobContent) -> Body {
    match content {
        BlobContent::Bytes(bytes) => Body::from(bytes),
        BlobContent::Stream(stream) => Body::from_stream(stream),
    }
}

/// The bytes of `part` of the file (all of it for `None`), streamed from the store.
async fn content(app: &AppState, d: &Download, part: Option<ByteRange>) -> Result<Body, Response> {
    match app.registry.blobs().get(&d.key, part).await {
        Ok(Some(blob)) => Ok(body_of(blob.content)),
        Ok(None) => Err(internal_error(&format!(
            "blob {} is listed but missing from storage",
            d.key
        ))),
        Err(e) => Err(internal_error(&e.to_string())),
    }
}

/// With `--storage-redirect`, a distribution's `GET` (already authorized) is answered with a
/// `302` to a presigned URL of the bucket, which serves the bytes, `Range` included; `None`
/// when downloads are streamed (no redirect configured, a metadata file, a store without such
/// URLs, or the URL could not be made: then the file is streamed, and the failure logged).
/// The redirect is not cached: the URL expires.
async fn redirect_to_store(app: &AppState, d: &Download) -> Option<Response> {
    let expires_in = app.storage_redirect?;
    if !d.distribution {
        return None;
    }
    let url = match app.registry.blobs().download_url(&d.key, expires_in).await {
        Ok(url) => url?,
        Err(e) => {
            tracing::warn!(error = %e, "could not presign a download URL; streaming instead");
            return None;
        }
    };
    let location = HeaderValue::from_str(&url).ok()?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    let h = response.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::ETAG, d.etag.clone());
    Some(response)
}

/// `GET`/`HEAD /files/upstream/<project>/<filename>`: an upstream file (or its metadata
/// file), from the cache or fetched on this first request, streamed while it is checked
/// against the upstream's SHA-256 (a mismatch breaks the transfer before its last byte).
pub async fn upstream_download(
    State(app): State<AppState>,
    Path((project, filename)): Path<(String, String)>,
    request: Request,
) -> Response {
    let target = match app.registry.upstream_download(&project, &filename).await {
        Ok(Some(target)) => target,
        Ok(None) => {
            return not_found(&format!(
                "No upstream file '{}' for the project '{}': see /simple/{}/ for its files.",
                filename.escape_default(),
                project.escape_default(),
                project.escape_default()
            ));
        }
        Err(e) => return registry_error(&e),
    };
    let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", target.sha256)) else {
        return internal_error("invalid upstream hash");
    };
    if if_none_match(request.headers(), &etag) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().insert(header::ETAG, etag);
        return response;
    }
    let (len, body, origin) = if request.method() == Method::HEAD {
        (target.size, Body::empty(), None)
    } else {
        match app.registry.upstream_file(&target).await {
            Ok(file) => (
                file.len,
                body_of(file.body),
                Some(if file.cached { "cached" } else { "fetched" }),
            ),
            Err(e) => return registry_error(&e),
        }
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(FILE_CACHE_CONTROL),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Some(origin) = origin {
        h.insert(
            crate::simple::UPSTREAM_HEADER,
            HeaderValue::from_static(origin),
        );
    }
    response
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
        assert_eq!(parse_range("Bytes=0-99", 1000), part(0, 100));
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
