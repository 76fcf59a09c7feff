//! The mirror's HTTP side: one client for the index, its project pages (PEP 691 JSON) and
//! downloads checked against a sha256 as they stream.

use std::collections::HashMap;
use std::time::Duration;

use pyindex_registry::auth::TOKEN_USERNAME;
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The PEP 691 JSON media type.
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";
/// The largest project page read; pages are the server's, but memory stays bounded anyway.
const MAX_PAGE_BYTES: usize = 64 << 20;

/// The index and how to talk to it.
pub struct Index {
    client: Client,
    /// The simple index URL without credentials, ending in `/`.
    pub url: Url,
    credentials: Option<(String, String)>,
}

/// A project page: the files it lists.
#[derive(Deserialize)]
pub struct Page {
    /// The files, as listed.
    pub files: Vec<PageFile>,
}

/// One file on a project page.
#[derive(Deserialize)]
pub struct PageFile {
    /// The distribution filename.
    pub filename: String,
    /// Its URL, relative to the page or absolute.
    pub url: String,
    /// Hashes by algorithm.
    #[serde(default)]
    pub hashes: HashMap<String, String>,
    /// PEP 658 / 714: `true`/`false`, or the hashes of the file's core metadata, served at
    /// `url` + `.metadata`.
    #[serde(default, rename = "core-metadata", alias = "dist-info-metadata")]
    pub core_metadata: Option<serde_json::Value>,
}

impl PageFile {
    /// The sha256 of the file's PEP 658 metadata file, when the page lists one with it.
    pub fn core_metadata_sha256(&self) -> Option<String> {
        let hash = self.core_metadata.as_ref()?.get("sha256")?.as_str()?;
        Some(hash.to_ascii_lowercase())
    }
}

/// The outcome of one download that arrived whole.
pub struct Fetched {
    /// Bytes received.
    pub bytes: u64,
    /// Their sha256, lowercase hex.
    pub sha256: String,
}

impl Index {
    /// A client for the index at `url`; credentials from its user info or `token`.
    pub fn new(mut url: Url, token: Option<String>, timeout: Duration) -> anyhow::Result<Index> {
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let credentials = match token {
            Some(token) => Some((TOKEN_USERNAME.to_owned(), token)),
            None => user_info(&url),
        };
        // Credentials are sent explicitly, only to this origin; they never appear in messages.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let client = Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("pyindex-mirror/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Index {
            client,
            url,
            credentials,
        })
    }

    /// GET `url`, with the credentials when it is on the index's origin.
    fn get(&self, url: &Url) -> RequestBuilder {
        let request = self.client.get(url.clone());
        match &self.credentials {
            Some((user, password)) if url.origin() == self.url.origin() => {
                request.basic_auth(user, Some(password))
            }
            _ => request,
        }
    }

    /// Checks that the index answers at all, so that an unreachable server or missing
    /// credentials give one message instead of one per project.
    pub async fn check(&self) -> Result<(), String> {
        let response = self
            .get(&self.url)
            .header("Accept", SIMPLE_JSON)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot reach the index at {}: {}; is `pyindex serve` running there? Give \
                     its address with --index-url",
                    self.url,
                    describe(&e)
                )
            })?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(format!(
                "the index at {} refused the request ({}): give credentials in \
                 PYINDEX_MIRROR_TOKEN (an API token) or in the URL \
                 (http://USER:PASSWORD@HOST/simple/)",
                self.url,
                response.status()
            )),
            status => Err(format!(
                "the index at {} answered {status}; the index URL is the one pip's --index-url \
                 takes, ending in /simple/",
                self.url
            )),
        }
    }

    /// The URL of a project's page.
    pub fn page_url(&self, normalized: &str) -> Result<Url, String> {
        self.url
            .join(&format!("{normalized}/"))
            .map_err(|e| format!("no page URL for {normalized}: {e}"))
    }

    /// Reads a project page as PEP 691 JSON.
    pub async fn page(&self, url: &Url) -> Result<Page, String> {
        let mut response = self
            .get(url)
            .header("Accept", SIMPLE_JSON)
            .send()
            .await
            .map_err(|e| format!("reading its index page failed: {}", describe(&e)))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(
                    "not found on the index (404): no private project and no upstream has it"
                        .to_owned(),
                );
            }
            status => return Err(format!("its index page answered {status}")),
        }
        let json = content_type(&response).starts_with(SIMPLE_JSON);
        if !json {
            return Err(format!(
                "its index page is {}, not PEP 691 JSON ({SIMPLE_JSON}): is --index-url a \
                 pyindex server?",
                content_type(&response)
            ));
        }
        let body = read_limited(&mut response, MAX_PAGE_BYTES).await?;
        serde_json::from_slice(&body).map_err(|e| format!("its index page is not valid: {e}"))
    }

    /// Downloads `url`, hashing the bytes as they arrive; nothing is kept.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, String> {
        let mut response = self
            .get(url)
            .send()
            .await
            .map_err(|e| format!("download failed: {}", describe(&e)))?;
        if !response.status().is_success() {
            return Err(format!("download answered {}", response.status()));
        }
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("download broke off after {bytes} bytes: {}", describe(&e)))?
        {
            bytes += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Fetched {
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// The credentials in a URL's user info, percent-decoded.
fn user_info(url: &Url) -> Option<(String, String)> {
    if url.username().is_empty() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    ))
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type")
        .to_owned()
}

async fn read_limited(response: &mut Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading its index page failed: {}", describe(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("its index page is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transfer error in one line: the kind, then the innermost cause (reqwest's own message
/// only says "error sending request").
pub fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "transfer error"
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    format!("{kind} ({cause})")
}
