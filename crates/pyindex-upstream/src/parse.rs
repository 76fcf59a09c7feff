//! Parsing an upstream project page: PEP 691 JSON or PEP 503 HTML, resolved against the page's
//! URL into an [`UpstreamPage`]. Parsing never panics: unusable entries are skipped, and a
//! body that is not a page in the format it claims is an error.

use scraper::{Html, Selector};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::page::{UpstreamFile, UpstreamPage, filename_version};

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the upstream page is not a valid {format} project page: {detail}")]
pub struct ParseError {
    format: &'static str,
    detail: String,
}

/// The PEP 691 JSON content type.
pub const JSON_CONTENT_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// Whether `sha256` is 64 hex digits.
fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn sha256_of(text: &str) -> Option<String> {
    is_sha256(text).then(|| text.to_ascii_lowercase())
}

/// `url` resolved against `base`, without its fragment, or `None` for what is not http(s).
fn resolve(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href).ok()?;
    url.set_fragment(None);
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// The last path segment of `url`, percent-decoded: the filename a link names.
fn last_segment(url: &Url) -> Option<String> {
    let segment = url.path_segments()?.next_back()?;
    let name = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?;
    (!name.is_empty()).then(|| name.into_owned())
}

#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    versions: Vec<String>,
    files: Vec<Value>,
}

/// The file's entry in a JSON page, or `None` when it lacks what pyindex needs (a filename, a
/// URL and a SHA-256) or is malformed.
fn json_file(base: &Url, entry: &Value) -> Option<UpstreamFile> {
    let filename = entry.get("filename")?.as_str()?.to_owned();
    let url = resolve(base, entry.get("url")?.as_str()?)?;
    let sha256 = sha256_of(entry.get("hashes")?.get("sha256")?.as_str()?)?;
    let yanked = match entry.get("yanked") {
        Some(Value::Bool(true)) => Some(String::new()),
        Some(Value::String(reason)) => Some(reason.clone()),
        _ => None,
    };
    let metadata = entry
        .get("core-metadata")
        .or_else(|| entry.get("dist-info-metadata"));
    let core_metadata_sha256 = metadata
        .and_then(|m| m.get("sha256"))
        .and_then(Value::as_str)
        .and_then(sha256_of);
    Some(UpstreamFile {
        version: filename_version(&filename),
        filename,
        url: url.into(),
        sha256,
        size: entry.get("size").and_then(Value::as_u64),
        requires_python: entry
            .get("requires-python")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        yanked,
        core_metadata_sha256,
        upload_time: entry
            .get("upload-time")
            .and_then(Value::as_str)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
    })
}

/// Parses a PEP 691 JSON project page fetched from `base`.
pub fn parse_json(name: &str, base: &Url, body: &[u8]) -> Result<UpstreamPage, ParseError> {
    let page: JsonPage = serde_json::from_slice(body).map_err(|e| ParseError {
        format: "JSON",
        detail: e.to_string(),
    })?;
    let files = page
        .files
        .iter()
        .filter_map(|f| json_file(base, f))
        .collect();
    Ok(UpstreamPage::new(name, files, page.versions))
}

/// The hash of a `data-core-metadata` / `data-dist-info-metadata` value (`sha256=<hex>`).
fn metadata_hash(value: &str) -> Option<String> {
    sha256_of(value.strip_prefix("sha256=")?)
}

/// The `#sha256=` fragment of a link.
fn fragment_sha256(href: &str) -> Option<String> {
    let (_, fragment) = href.split_once('#')?;
    fragment
        .split('&')
        .find_map(|part| part.strip_prefix("sha256="))
        .and_then(sha256_of)
}

/// Parses a PEP 503 HTML project page fetched from `base` (a `<base href>` is honoured).
pub fn parse_html(name: &str, base: &Url, body: &[u8]) -> Result<UpstreamPage, ParseError> {
    let text = std::str::from_utf8(body).map_err(|e| ParseError {
        format: "HTML",
        detail: e.to_string(),
    })?;
    let document = Html::parse_document(text);
    let (Ok(links), Ok(base_tag)) = (Selector::parse("a[href]"), Selector::parse("base[href]"))
    else {
        return Err(ParseError {
            format: "HTML",
            detail: "internal selector error".into(),
        });
    };
    let base = document
        .select(&base_tag)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| base.join(href).ok())
        .unwrap_or_else(|| base.clone());
    let files = document
        .select(&links)
        .filter_map(|a| {
            let attr = |key: &str| a.value().attr(key);
            let href = attr("href")?;
            let url = resolve(&base, href)?;
            let filename = last_segment(&url)?;
            let metadata = attr("data-core-metadata").or(attr("data-dist-info-metadata"));
            Some(UpstreamFile {
                version: filename_version(&filename),
                sha256: fragment_sha256(href)?,
                filename,
                url: url.into(),
                size: None,
                requires_python: attr("data-requires-python")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                yanked: attr("data-yanked").map(str::to_owned),
                core_metadata_sha256: metadata.and_then(metadata_hash),
                upload_time: None,
            })
        })
        .collect();
    Ok(UpstreamPage::new(name, files, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const META: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn base() -> Url {
        Url::parse("http://127.0.0.1:1/simple/demo/").unwrap()
    }

    #[test]
    fn html_links_are_resolved_with_their_attributes() {
        let html = format!(
            "<html><body>\
             <a href=\"../../files/demo-1.0-py3-none-any.whl#sha256={SHA}\" data-requires-python=\"&gt;=3.8\" \
              data-core-metadata=\"sha256={META}\">demo-1.0-py3-none-any.whl</a>\
             <a href=\"http://127.0.0.1:2/x/demo-0.9.tar.gz#md5=00&amp;sha256={SHA}\" data-yanked=\"broken\">x</a>\
             <a href=\"demo-0.8.tar.gz\">no hash: skipped</a>\
             <a href=\"ftp://x/demo-0.7.tar.gz#sha256={SHA}\">other scheme: skipped</a>\
             </body></html>"
        );
        let page = parse_html("demo", &base(), html.as_bytes()).unwrap();
        assert_eq!(page.files.len(), 2);
        let wheel = page.file("demo-1.0-py3-none-any.whl").unwrap();
        assert_eq!(
            wheel.url,
            "http://127.0.0.1:1/files/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(wheel.sha256, SHA);
        assert_eq!(wheel.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(wheel.core_metadata_sha256.as_deref(), Some(META));
        assert_eq!(
            wheel.metadata_url().unwrap(),
            "http://127.0.0.1:1/files/demo-1.0-py3-none-any.whl.metadata"
        );
        assert_eq!(wheel.yanked, None);
        let sdist = page.file("demo-0.9.tar.gz").unwrap();
        assert_eq!(sdist.yanked.as_deref(), Some("broken"));
        assert_eq!(sdist.url, "http://127.0.0.1:2/x/demo-0.9.tar.gz");
        assert_eq!(page.versions, ["0.9", "1.0"]);
    }

    #[test]
    fn json_pages_keep_pep700_fields() {
        let json = format!(
            r#"{{"meta":{{"api-version":"1.1"}},"name":"demo","versions":["1.0","0.9","2.0"],
            "files":[{{"filename":"demo-1.0.tar.gz","url":"/f/demo-1.0.tar.gz","hashes":{{"sha256":"{}"}},
              "size":12,"upload-time":"2024-01-02T03:04:05.123456Z","yanked":"bad","requires-python":">=3.9",
              "core-metadata":{{"sha256":"{META}"}}}},
             {{"filename":"demo-0.9.tar.gz","url":"demo-0.9.tar.gz","hashes":{{"md5":"00"}}}},
             {{"filename":"demo-2.0.tar.gz","url":"demo-2.0.tar.gz","hashes":{{"sha256":"{SHA}"}},"yanked":true,
              "dist-info-metadata":true}}]}}"#,
            SHA.to_uppercase()
        );
        let page = parse_json("demo", &base(), json.as_bytes()).unwrap();
        assert_eq!(page.versions, ["0.9", "1.0", "2.0"]);
        assert_eq!(page.files.len(), 2);
        let one = page.file("demo-1.0.tar.gz").unwrap();
        assert_eq!(one.url, "http://127.0.0.1:1/f/demo-1.0.tar.gz");
        assert_eq!(one.sha256, SHA);
        assert_eq!(one.size, Some(12));
        assert_eq!(one.yanked.as_deref(), Some("bad"));
        assert_eq!(one.upload_time.unwrap().unix_timestamp(), 1_704_164_645);
        assert_eq!(one.core_metadata_sha256.as_deref(), Some(META));
        let two = page.file("demo-2.0.tar.gz").unwrap();
        assert_eq!(two.yanked.as_deref(), Some(""));
        assert_eq!(two.core_metadata_sha256, None);
        assert!(parse_json("demo", &base(), b"<html>").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_json("demo", &base(), &body);
            let _ = parse_html("demo", &base(), &body);
        }

        #[test]
        fn html_parser_never_panics_on_link_soup(body in "(<a href=\"[a-z./#=:0-9]{0,40}\"( data-yanked)?>x</a>|<base href=\"[a-z:/.]{0,12}\">|[<>\"a-z ]){0,20}") {
            let _ = parse_html("demo", &base(), body.as_bytes());
        }
    }
}
