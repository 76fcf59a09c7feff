//! The benchmark's ceiling server: how fast a bare axum server on this machine answers the bytes
//! pyindex serves, with no middleware, no cache invalidation, no checks.
//!
//! It loads a snapshot written by `bench/snapshot.py` (every index page pyindex served, in each
//! format and encoding, with its response headers; the headers of every file URL, plus metadata
//! file bodies) and the corpus's flat file directory, then answers from memory. Negotiation is
//! reduced to a substring test; ranges and conditional requests other than an exact
//! `If-None-Match` are not supported. Not a server to run for anything but the benchmark.
//!
//! ```text
//! pyindex-ceiling --listen 127.0.0.1:9100 --snapshot DIR --files DIR
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::Deserialize;

/// The same allocator as pyindex, so that the comparison measures the work each server does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `manifest.json` of a snapshot.
#[derive(Deserialize)]
struct Manifest {
    pages: Vec<PageEntry>,
    files: Vec<FileEntry>,
}

#[derive(Deserialize)]
struct PageEntry {
    path: String,
    variants: Vec<VariantEntry>,
}

#[derive(Deserialize)]
struct VariantEntry {
    /// `json`, `v1html` or `html`.
    format: String,
    gzip: bool,
    headers: Vec<(String, String)>,
    /// Body file, relative to the snapshot directory.
    body: String,
}

#[derive(Deserialize)]
struct FileEntry {
    path: String,
    headers: Vec<(String, String)>,
    /// Body: a file of the snapshot directory, or (if absent) `name` in the files directory.
    body: Option<String>,
    name: String,
}

/// One response held in memory.
struct Answer {
    headers: HeaderMap,
    etag: Option<HeaderValue>,
    body: Bytes,
}

/// Index formats, in the order of [`Page::variants`].
const FORMATS: [&str; 3] = ["json", "v1html", "html"];

/// A page: `variants[format * 2 + gzip]`.
struct Page {
    variants: [Option<Answer>; 6],
}

enum Entry {
    Page(Box<Page>),
    File(Answer),
}

type Table = Arc<HashMap<String, Entry>>;

fn answer(headers: &[(String, String)], body: Bytes) -> anyhow::Result<Answer> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    Ok(Answer {
        etag: map.get(header::ETAG).cloned(),
        headers: map,
        body,
    })
}

fn read(path: &Path) -> anyhow::Result<Bytes> {
    Ok(Bytes::from(std::fs::read(path).with_context(|| {
        format!("could not read {}", path.display())
    })?))
}

fn load(snapshot: &Path, files: &Path) -> anyhow::Result<HashMap<String, Entry>> {
    let text = std::fs::read(snapshot.join("manifest.json"))
        .with_context(|| format!("no snapshot manifest in {}", snapshot.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)?;
    let mut table = HashMap::new();
    for p in manifest.pages {
        let mut page = Page {
            variants: Default::default(),
        };
        for v in p.variants {
            let Some(format) = FORMATS.iter().position(|f| *f == v.format) else {
                bail!("unknown format '{}' in the snapshot", v.format);
            };
            let body = read(&snapshot.join(&v.body))?;
            page.variants[format * 2 + usize::from(v.gzip)] = Some(answer(&v.headers, body)?);
        }
        table.insert(p.path, Entry::Page(Box::new(page)));
    }
    for f in manifest.files {
        let body = match &f.body {
            Some(rel) => read(&snapshot.join(rel))?,
            None => read(&files.join(&f.name))?,
        };
        table.insert(f.path, Entry::File(answer(&f.headers, body)?));
    }
    Ok(table)
}

/// The variant index for a request: a substring test on `Accept` and `Accept-Encoding`.
fn variant(headers: &HeaderMap) -> usize {
    let has = |name: header::HeaderName, needle: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(needle))
    };
    let format = if has(header::ACCEPT, "json") {
        0
    } else if has(header::ACCEPT, "simple.v1+html") {
        1
    } else {
        2
    };
    format * 2 + usize::from(has(header::ACCEPT_ENCODING, "gzip"))
}

fn respond(found: &Answer, request: &Request) -> Response {
    let not_modified = found.etag.as_ref().is_some_and(|etag| {
        request
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == etag)
    });
    let mut response = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(found.body.clone()))
    };
    *response.headers_mut() = found.headers.clone();
    response
}

async fn serve(State(table): State<Table>, request: Request) -> Response {
    let found = match table.get(request.uri().path()) {
        Some(Entry::Page(page)) => page.variants[variant(request.headers())].as_ref(),
        Some(Entry::File(file)) => Some(file),
        None => None,
    };
    match found {
        Some(found) => respond(found, &request),
        None => {
            let mut r = Response::new(Body::from("not in the snapshot\n"));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

struct Args {
    listen: SocketAddr,
    snapshot: PathBuf,
    files: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut listen = None;
    let mut snapshot = None;
    let mut files = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse()?),
            "--snapshot" => snapshot = Some(PathBuf::from(value)),
            "--files" => files = Some(PathBuf::from(value)),
            _ => bail!("unknown argument {flag}; usage: --listen ADDR --snapshot DIR --files DIR"),
        }
    }
    Ok(Args {
        listen: listen.context("--listen ADDR is required")?,
        snapshot: snapshot.context("--snapshot DIR is required")?,
        files: files.context("--files DIR is required")?,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let table: Table = Arc::new(load(&args.snapshot, &args.files)?);
    eprintln!("pyindex-ceiling: {} paths on {}", table.len(), args.listen);
    let app = Router::new().fallback(serve).with_state(table);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn variant_follows_accept_and_encoding() {
        assert_eq!(variant(&HeaderMap::new()), 4);
        assert_eq!(
            variant(&headers(&[(
                header::ACCEPT,
                "application/vnd.pypi.simple.v1+json"
            )])),
            0
        );
        assert_eq!(
            variant(&headers(&[
                (header::ACCEPT, "application/vnd.pypi.simple.v1+html"),
                (header::ACCEPT_ENCODING, "gzip, deflate")
            ])),
            3
        );
    }
}
