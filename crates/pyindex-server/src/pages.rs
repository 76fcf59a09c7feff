//! Rendering of simple API pages: PEP 503 HTML and PEP 691 JSON, with the PEP 592 yank
//! markers, PEP 658/714 metadata attributes, PEP 700 fields and PEP 792 project status
//! markers (standards C and D).

use std::fmt::Write;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pyindex_catalog::{FileRecord, ProjectStatus, ProjectSummary, Yank};
use pyindex_registry::ProjectPage;
use pyindex_registry::upstream::{UpstreamFile, UpstreamPage};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::negotiate::Format;

/// The simple API version served (PEP 629).
pub const API_VERSION: &str = "1.4";

/// Characters of a filename left as they are in a URL path segment.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'!');

/// The URL path of a file: `/files/<sha256>/<filename>`.
pub fn file_url(file: &FileRecord) -> String {
    format!(
        "/files/{}/{}",
        file.sha256,
        utf8_percent_encode(&file.filename, PATH_SEGMENT)
    )
}

/// Escapes text for an HTML element body or a double-quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// `upload-time` in the form PEP 700 asks for: UTC with exactly six fraction digits.
pub fn upload_time(t: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_default()
}

/// The page's start; `meta` is more `<meta>` lines, already escaped.
fn html_head(title: &str, meta: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n{meta}    \
         <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n",
        title = escape(title)
    )
}

/// The PEP 792 meta tags. The status is always given, `active` too (the PEP allows leaving
/// it out, but saying it costs nothing); the reason only when there is one.
fn status_meta(project: &ProjectSummary) -> String {
    let mut meta = format!(
        "    <meta name=\"pypi:project-status\" content=\"{}\">\n",
        project.status
    );
    if let Some(reason) = &project.status_reason {
        let _ = writeln!(
            meta,
            "    <meta name=\"pypi:project-status-reason\" content=\"{}\">",
            escape(reason)
        );
    }
    meta
}

/// The PEP 792 `project-status` object: `status` always, `reason` when there is one.
fn status_json(project: &ProjectSummary) -> Value {
    let mut status = Map::new();
    status.insert("status".into(), json!(project.status.as_str()));
    if let Some(reason) = &project.status_reason {
        status.insert("reason".into(), json!(reason));
    }
    Value::Object(status)
}

const HTML_TAIL: &str = "  </body>\n</html>\n";

/// What the root page says when upstreams are configured.
pub const PROXIED_NOTICE: &str =
    "Projects of this index only; any other name is served from the configured upstream indexes.";

/// The root page listing every local project (`proxied`: other names come from upstreams,
/// which the HTML page says).
pub fn root(projects: &[ProjectSummary], format: Format, proxied: bool) -> Vec<u8> {
    if format.is_html() {
        let mut html = html_head("Simple index", "");
        if proxied {
            let _ = writeln!(html, "    <p>{PROXIED_NOTICE}</p>");
        }
        for p in projects {
            let _ = writeln!(
                html,
                "    <a href=\"/simple/{}/\">{}</a><br>",
                p.name,
                escape(&p.display_name)
            );
        }
        html.push_str(HTML_TAIL);
        html.into_bytes()
    } else {
        let list: Vec<Value> = projects
            .iter()
            .map(|p| json!({ "name": p.display_name, "_normalized-name": p.name }))
            .collect();
        json_bytes(&json!({ "meta": { "api-version": API_VERSION }, "projects": list }))
    }
}

/// One file as a project page lists it, local or upstream.
struct Listed<'a> {
    url: String,
    filename: &'a str,
    sha256: &'a str,
    size: Option<u64>,
    requires_python: Option<&'a str>,
    /// `None` when not yanked; `Some(reason)` (possibly empty) when yanked.
    yanked: Option<Option<&'a str>>,
    metadata_sha256: Option<&'a str>,
    upload_time: Option<OffsetDateTime>,
}

impl<'a> Listed<'a> {
    fn local(file: &'a FileRecord) -> Listed<'a> {
        Listed {
            url: file_url(file),
            filename: &file.filename,
            sha256: &file.sha256,
            size: Some(file.size),
            requires_python: file.requires_python.as_deref(),
            yanked: match &file.yank {
                Yank::NotYanked => None,
                Yank::Yanked(reason) => Some(reason.as_deref()),
            },
            metadata_sha256: file.metadata_sha256.as_deref(),
            upload_time: Some(file.uploaded),
        }
    }

    fn upstream(project: &str, file: &'a UpstreamFile) -> Listed<'a> {
        Listed {
            url: upstream_file_url(project, &file.filename),
            filename: &file.filename,
            sha256: &file.sha256,
            size: file.size,
            requires_python: file.requires_python.as_deref(),
            // An empty reason is a yank without reason, as PEP 592 reads `data-yanked=""`.
            yanked: file
                .yanked
                .as_deref()
                .map(|reason| Some(reason).filter(|r| !r.is_empty())),
            metadata_sha256: file.core_metadata_sha256.as_deref(),
            upload_time: file.upload_time,
        }
    }
}

/// The URL path of an upstream file on this index: `/files/upstream/<project>/<filename>`,
/// apart from published files (an upstream may list a filename published here too).
pub fn upstream_file_url(project: &str, filename: &str) -> String {
    format!(
        "/files/upstream/{project}/{}",
        utf8_percent_encode(filename, PATH_SEGMENT)
    )
}

/// A project's page listing its files (as the registry gives them: none while the project is
/// quarantined).
pub fn project(project: &ProjectPage, format: Format) -> Vec<u8> {
    let files: Vec<Listed<'_>> = project.files.iter().map(Listed::local).collect();
    render(&project.project, &project.versions, &files, format)
}

/// A proxied project's page: the upstream's files (as the registry lets them be seen), with
/// URLs on this index and the upstream's hashes, sizes, yanks, metadata and upload times.
pub fn proxied(page: &UpstreamPage, format: Format) -> Vec<u8> {
    let summary = ProjectSummary {
        name: page.name.clone(),
        display_name: page.name.clone(),
        status: ProjectStatus::Active,
        status_reason: None,
    };
    let files: Vec<Listed<'_>> = page
        .files
        .iter()
        .map(|file| Listed::upstream(&page.name, file))
        .collect();
    render(&summary, &page.versions, &files, format)
}

fn render(
    project: &ProjectSummary,
    versions: &[String],
    files: &[Listed<'_>],
    format: Format,
) -> Vec<u8> {
    if format.is_html() {
        project_html(project, files)
    } else {
        project_json(project, versions, files)
    }
}

fn project_html(project: &ProjectSummary, files: &[Listed<'_>]) -> Vec<u8> {
    let mut html = html_head(
        &format!("Links for {}", project.name),
        &status_meta(project),
    );
    for file in files {
        let _ = write!(html, "    <a href=\"{}#sha256={}\"", file.url, file.sha256);
        if let Some(rp) = file.requires_python {
            let _ = write!(html, " data-requires-python=\"{}\"", escape(rp));
        }
        if let Some(reason) = file.yanked {
            let _ = write!(html, " data-yanked=\"{}\"", escape(reason.unwrap_or("")));
        }
        if let Some(meta) = file.metadata_sha256 {
            let _ = write!(
                html,
                " data-core-metadata=\"sha256={meta}\" data-dist-info-metadata=\"sha256={meta}\""
            );
        }
        let _ = writeln!(html, ">{}</a><br>", escape(file.filename));
    }
    html.push_str(HTML_TAIL);
    html.into_bytes()
}

fn project_json(project: &ProjectSummary, versions: &[String], files: &[Listed<'_>]) -> Vec<u8> {
    let files: Vec<Value> = files.iter().map(file_json).collect();
    json_bytes(&json!({
        "meta": { "api-version": API_VERSION },
        "project-status": status_json(project),
        "name": project.name,
        "versions": versions,
        "files": files,
    }))
}

fn file_json(file: &Listed<'_>) -> Value {
    let mut obj = Map::new();
    obj.insert("filename".into(), json!(file.filename));
    obj.insert("url".into(), json!(file.url));
    obj.insert("hashes".into(), json!({ "sha256": file.sha256 }));
    obj.insert("requires-python".into(), json!(file.requires_python));
    if let Some(size) = file.size {
        obj.insert("size".into(), json!(size));
    }
    if let Some(t) = file.upload_time {
        obj.insert("upload-time".into(), json!(upload_time(t)));
    }
    let yanked = match file.yanked {
        None => json!(false),
        Some(None) => json!(true),
        Some(Some(reason)) => json!(reason),
    };
    obj.insert("yanked".into(), yanked);
    if let Some(meta) = file.metadata_sha256 {
        obj.insert("core-metadata".into(), json!({ "sha256": meta }));
    }
    Value::Object(obj)
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, version: &str, yank: Yank) -> FileRecord {
        FileRecord {
            project: "shared-pkg".into(),
            filename: name.into(),
            version: version.into(),
            kind: pyindex_packaging::DistKind::Wheel,
            size: 42,
            sha256: "ab".repeat(32),
            requires_python: Some(">=3.8".into()),
            metadata_sha256: Some("cd".repeat(32)),
            uploaded: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            yank,
            project_status: ProjectStatus::Active,
            project_status_reason: None,
        }
    }

    fn sample() -> ProjectPage {
        ProjectPage {
            project: ProjectSummary {
                name: "shared-pkg".into(),
                display_name: "Shared_Pkg".into(),
                status: ProjectStatus::Active,
                status_reason: None,
            },
            versions: vec!["0.9.0+cu1".into(), "0.9.1".into(), "0.10.0".into()],
            files: vec![
                file(
                    "shared_pkg-0.10.0-py3-none-any.whl",
                    "0.10.0",
                    Yank::NotYanked,
                ),
                file(
                    "shared_pkg-0.9.0+cu1-py3-none-any.whl",
                    "0.9.0+cu1",
                    Yank::Yanked(Some("bad <build> & \"x\"".into())),
                ),
                file(
                    "shared_pkg-0.9.1-py3-none-any.whl",
                    "0.9.1",
                    Yank::Yanked(None),
                ),
            ],
        }
    }

    #[test]
    fn html_escapes_attributes_and_marks_yanks() {
        let html = String::from_utf8(project(&sample(), Format::TextHtml)).unwrap();
        assert!(html.contains("<meta name=\"pypi:repository-version\" content=\"1.4\">"));
        assert!(html.contains("data-requires-python=\"&gt;=3.8\""));
        assert!(html.contains("data-yanked=\"bad &lt;build&gt; &amp; &quot;x&quot;\""));
        assert!(html.contains("data-yanked=\"\""));
        assert!(html.contains(&format!(
            "data-core-metadata=\"sha256={0}\" data-dist-info-metadata=\"sha256={0}\"",
            "cd".repeat(32)
        )));
        assert!(html.contains(&format!(
            "/files/{}/shared_pkg-0.9.0+cu1-py3-none-any.whl#sha256={}\"",
            "ab".repeat(32),
            "ab".repeat(32)
        )));
        assert!(html.contains(">shared_pkg-0.10.0-py3-none-any.whl</a>"));
    }

    #[test]
    fn json_has_pep700_fields_and_the_versions() {
        let value: Value = serde_json::from_slice(&project(&sample(), Format::Json)).unwrap();
        assert_eq!(value["meta"]["api-version"], "1.4");
        assert_eq!(value["name"], "shared-pkg");
        assert_eq!(value["versions"], json!(["0.9.0+cu1", "0.9.1", "0.10.0"]));
        let files = value["files"].as_array().unwrap();
        assert_eq!(files[0]["size"], 42);
        assert_eq!(files[0]["upload-time"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(files[0]["yanked"], false);
        assert_eq!(files[1]["yanked"], "bad <build> & \"x\"");
        assert_eq!(files[2]["yanked"], true);
        assert_eq!(files[0]["requires-python"], ">=3.8");
        assert_eq!(files[0]["core-metadata"]["sha256"], "cd".repeat(32));
        assert!(files[0].get("dist-info-metadata").is_none());
        assert!(!files[0]["url"].as_str().unwrap().contains('#'));
    }

    fn with_status(status: ProjectStatus, reason: Option<&str>) -> ProjectPage {
        let mut project = sample();
        project.project.status = status;
        project.project.status_reason = reason.map(str::to_owned);
        project
    }

    #[test]
    fn status_is_announced_in_html() {
        let html = String::from_utf8(project(&sample(), Format::TextHtml)).unwrap();
        assert!(html.contains(
            "<meta name=\"pypi:repository-version\" content=\"1.4\">\n    \
             <meta name=\"pypi:project-status\" content=\"active\">\n    <title>"
        ));
        assert!(!html.contains("pypi:project-status-reason"));
        let archived = with_status(ProjectStatus::Archived, Some("use <b> & \"c\""));
        let html = String::from_utf8(project(&archived, Format::TextHtml)).unwrap();
        assert!(html.contains("<meta name=\"pypi:project-status\" content=\"archived\">"));
        assert!(html.contains(
            "<meta name=\"pypi:project-status-reason\" content=\"use &lt;b&gt; &amp; &quot;c&quot;\">"
        ));
        assert_eq!(html.matches("<a href=").count(), 3);
    }

    #[test]
    fn status_is_announced_in_json() {
        let value: Value = serde_json::from_slice(&project(&sample(), Format::Json)).unwrap();
        assert_eq!(value["project-status"], json!({ "status": "active" }));
        let deprecated = with_status(ProjectStatus::Deprecated, Some("use courier2"));
        let value: Value = serde_json::from_slice(&project(&deprecated, Format::Json)).unwrap();
        assert_eq!(
            value["project-status"],
            json!({ "status": "deprecated", "reason": "use courier2" })
        );
        assert_eq!(value["files"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_page_without_files_keeps_its_versions() {
        let mut quarantined = with_status(ProjectStatus::Quarantined, Some("malware"));
        quarantined.files.clear();
        let html = String::from_utf8(project(&quarantined, Format::TextHtml)).unwrap();
        assert!(!html.contains("<a "));
        assert!(html.contains("content=\"quarantined\""));
        let value: Value = serde_json::from_slice(&project(&quarantined, Format::Json)).unwrap();
        assert_eq!(value["files"], json!([]));
        assert_eq!(value["versions"].as_array().unwrap().len(), 3);
        assert_eq!(value["project-status"]["status"], "quarantined");
    }

    #[test]
    fn proxied_pages_keep_upstream_fields_with_urls_on_this_index() {
        let file = |name: &str, yanked: Option<&str>, time: Option<i64>| UpstreamFile {
            filename: name.into(),
            url: format!("http://127.0.0.1:1/f/{name}"),
            sha256: "ab".repeat(32),
            size: time.map(|_| 7),
            requires_python: Some(">=3.9".into()),
            yanked: yanked.map(str::to_owned),
            core_metadata_sha256: Some("cd".repeat(32)),
            upload_time: time.map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap()),
            version: None,
        };
        let page = UpstreamPage {
            name: "up".into(),
            versions: vec!["1.0".into(), "2.0".into()],
            files: vec![
                file("up-1.0.tar.gz", Some(""), None),
                file("up-2.0.tar.gz", None, Some(1_700_000_000)),
            ],
        };
        let value: Value = serde_json::from_slice(&proxied(&page, Format::Json)).unwrap();
        assert_eq!(value["versions"], json!(["1.0", "2.0"]));
        let files = value["files"].as_array().unwrap();
        assert_eq!(files[0]["url"], "/files/upstream/up/up-1.0.tar.gz");
        assert_eq!(files[0]["yanked"], true);
        assert!(files[0].get("upload-time").is_none());
        assert!(files[0].get("size").is_none());
        assert_eq!(files[1]["upload-time"], "2023-11-14T22:13:20.000000Z");
        assert_eq!(files[1]["size"], 7);
        assert_eq!(files[1]["core-metadata"]["sha256"], "cd".repeat(32));
        let html = String::from_utf8(proxied(&page, Format::TextHtml)).unwrap();
        assert!(html.contains(&format!(
            "<a href=\"/files/upstream/up/up-2.0.tar.gz#sha256={}\" data-requires-python=\"&gt;=3.9\"",
            "ab".repeat(32)
        )));
        assert!(html.contains("data-yanked=\"\""));
    }

    #[test]
    fn root_lists_projects_in_both_formats() {
        let projects = vec![ProjectSummary {
            name: "a-b".into(),
            display_name: "A_B".into(),
            status: ProjectStatus::Active,
            status_reason: None,
        }];
        let html = String::from_utf8(root(&projects, Format::TextHtml, false)).unwrap();
        assert!(html.contains("<a href=\"/simple/a-b/\">A_B</a>"));
        assert!(!html.contains(PROXIED_NOTICE));
        let html = String::from_utf8(root(&projects, Format::TextHtml, true)).unwrap();
        assert!(html.contains(PROXIED_NOTICE));
        let value: Value = serde_json::from_slice(&root(&projects, Format::Json, true)).unwrap();
        assert_eq!(value["projects"][0]["name"], "A_B");
    }
}
