//! The HTTP client for upstream indexes.

use std::time::Duration;

use reqwest::header::{ACCEPT, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{Client as Http, StatusCode};
use url::Url;

use crate::UpstreamError;
use crate::page::UpstreamPage;
use crate::parse::{JSON_CONTENT_TYPE, parse_html, parse_json};

/// What pyindex asks an upstream for: JSON, with HTML as the fallback (PEP 691).
const PAGE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.1";
/// The largest project page read from an upstream.
const MAX_PAGE_BYTES: usize = 64 << 20;

/// One configured upstream index.
#[derive(Clone)]
pub struct IndexUrl {
    /// The simple index URL, slash-terminated, without credentials.
    url: Url,
    /// Basic-auth credentials, from the URL's userinfo or the environment.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for IndexUrl {
    // Credentials are never shown, also not in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl IndexUrl {
    /// Parses an index URL (http or https); credentials in its userinfo are taken out of it,
    /// else `fallback` credentials (from the environment) are used.
    pub fn parse(text: &str, fallback: Option<(String, String)>) -> Result<IndexUrl, String> {
        let mut url = Url::parse(text.trim()).map_err(|e| {
            format!("--upstream '{text}' is not a URL ({e}): give a simple index URL such as pip's --index-url takes")
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "--upstream '{}' must be an http or https URL with a host, such as pip's --index-url takes",
                url.scheme()
            ));
        }
        let credentials = if url.username().is_empty() {
            fallback
        } else {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((decode(url.username()), decode(url.password().unwrap_or(""))))
        };
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(IndexUrl { url, credentials })
    }

    /// The URL, without credentials: safe to log and to store.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Whether `url` is on this index's origin (credentials are sent only there).
    fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.url.origin()
    }
}

/// What an upstream answered for a project page.
pub enum PageAnswer {
    /// A page, with the validators for the next conditional request.
    Page {
        /// The parsed page.
        page: UpstreamPage,
        /// Its ETag.
        etag: Option<String>,
        /// Its Last-Modified.
        last_modified: Option<String>,
    },
    /// The page did not change since the validators given.
    NotModified,
    /// The upstream does not know the project.
    NotFound,
}

/// The validators of a stored page.
#[derive(Default)]
pub struct Validators<'a> {
    /// The ETag.
    pub etag: Option<&'a str>,
    /// The Last-Modified.
    pub last_modified: Option<&'a str>,
}

/// An HTTP client for the configured upstreams.
#[derive(Clone)]
pub struct Client {
    http: Http,
    indexes: Vec<IndexUrl>,
    timeout: Duration,
}

impl Client {
    /// A client for `indexes` with `timeout` for connecting, for a whole page, and for each
    /// read of a file's body.
    pub fn new(indexes: Vec<IndexUrl>, timeout: Duration) -> Result<Client, UpstreamError> {
        let http = Http::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("pyindex/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        Ok(Client {
            http,
            indexes,
            timeout,
        })
    }

    /// The configured upstreams, in priority order.
    pub fn indexes(&self) -> &[IndexUrl] {
        &self.indexes
    }

    fn authorized(&self, url: &Url, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self
            .indexes
            .iter()
            .find(|index| index.same_origin(url))
            .and_then(|index| index.credentials.as_ref())
        {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Asks `index` for the page of `project` (a normalized name).
    pub async fn page(
        &self,
        index: &IndexUrl,
        project: &str,
        validators: Validators<'_>,
    ) -> Result<PageAnswer, UpstreamError> {
        let url = index
            .url
            .join(&format!("{project}/"))
            .map_err(|e| UpstreamError::Client(e.to_string()))?;
        let mut request = self
            .authorized(&url, self.http.get(url.clone()))
            .header(ACCEPT, PAGE_ACCEPT)
            .timeout(self.timeout);
        if let Some(etag) = validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(date) = validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, date);
        }
        let response = request.send().await.map_err(|e| unreachable(index, &e))?;
        match response.status() {
            StatusCode::NOT_MODIFIED => return Ok(PageAnswer::NotModified),
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(PageAnswer::NotFound),
            status if !status.is_success() => {
                return Err(UpstreamError::Unavailable(format!(
                    "{} answered {status} for the project '{project}'",
                    index.as_str()
                )));
            }
            _ => {}
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let (etag, last_modified) = (header(ETAG), header(LAST_MODIFIED));
        let json = header(reqwest::header::CONTENT_TYPE)
            .is_some_and(|t| t.trim_start().starts_with(JSON_CONTENT_TYPE));
        let base = response.url().clone();
        let body = read_limited(index, response, MAX_PAGE_BYTES).await?;
        let page = if json {
            parse_json(project, &base, &body)
        } else {
            parse_html(project, &base, &body)
        }
        .map_err(|e| UpstreamError::Unavailable(format!("{}: {e}", index.as_str())))?;
        Ok(PageAnswer::Page {
            page,
            etag,
            last_modified,
        })
    }

    /// Starts the download of a file at `url`.
    pub async fn file(&self, url: &str) -> Result<reqwest::Response, UpstreamError> {
        let parsed = Url::parse(url).map_err(|e| UpstreamError::Client(e.to_string()))?;
        let response = self
            .authorized(&parsed, self.http.get(parsed.clone()))
            .send()
            .await
            .map_err(|e| {
                UpstreamError::Unavailable(format!(
                    "could not fetch {}: {e}",
                    without_query(&parsed)
                ))
            })?;
        if !response.status().is_success() {
            return Err(UpstreamError::Unavailable(format!(
                "{} answered {}",
                without_query(&parsed),
                response.status()
            )));
        }
        Ok(response)
    }
}

fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    let _ = url.set_password(None);
    url.into()
}

fn unreachable(index: &IndexUrl, error: &reqwest::Error) -> UpstreamError {
    // reqwest's message names the URL, which carries no credentials (they are held apart).
    let what = if error.is_timeout() {
        "did not answer in time"
    } else {
        "could not be reached"
    };
    UpstreamError::Unavailable(format!("{} {what}: {error}", index.as_str()))
}

/// The body of a page, refused past `limit` bytes (no project page is that large).
async fn read_limited(
    index: &IndexUrl,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(index, &e))? {
        body.extend_from_slice(&chunk);
        if body.len() > limit {
            return Err(UpstreamError::Unavailable(format!(
                "{} sent a project page larger than {limit} bytes",
                index.as_str()
            )));
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        let index = IndexUrl::parse("http://bob:s%40cret@127.0.0.1:8080/simple", None).unwrap();
        assert_eq!(index.as_str(), "http://127.0.0.1:8080/simple/");
        assert_eq!(
            index.credentials,
            Some(("bob".to_owned(), "s@cret".to_owned()))
        );
        assert!(!format!("{index:?}").contains("cret"));
        let env = Some(("env".to_owned(), "pw".to_owned()));
        let index = IndexUrl::parse("http://127.0.0.1/simple/", env.clone()).unwrap();
        assert_eq!(index.credentials, env);
        assert!(IndexUrl::parse("ftp://127.0.0.1/simple/", None).is_err());
        assert!(IndexUrl::parse("not a url", None).is_err());
    }
}
