//! `pyindex mirror -r FILE`: fetch what a build needs through a running pyindex, so that the
//! server's upstream cache holds it before the build runs offline.
//!
//! The command is a client of the server, like pip: it reads the project pages (PEP 691 JSON),
//! downloads the files the file names and checks each one's sha256 as it streams; nothing is
//! written locally. Every run downloads everything again (the server answers from its cache),
//! which also re-checks what the cache holds.

mod http;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use pyindex_packaging::lockfile::{self, Entry, Lock, LockKind, LockedFile, Sha256, Want};
use pyindex_packaging::{canonical_version, normalize, parse_filename, parse_version};
use reqwest::Url;

use self::http::{Index, Page};
use super::Failure;
use crate::cli::MirrorArgs;
use crate::config::{DEFAULT_LISTEN, FileConfig};

/// The largest requirements or lock file read.
const MAX_FILE_BYTES: u64 = 64 << 20;
/// The environment variable holding an API token for an index that needs credentials to read.
pub const TOKEN_ENV: &str = "PYINDEX_MIRROR_TOKEN";

/// Runs `pyindex mirror`.
pub async fn run(args: MirrorArgs, config: &FileConfig) -> anyhow::Result<()> {
    let (kind, lock) = read_lock(&args.file)?;
    let url = index_url(args.index_url.as_deref(), config)?;
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let index = Index::new(url, token, args.timeout.0)?;
    index
        .check()
        .await
        .map_err(|message| Failure { code: 2, message })?;
    let mut report = Report::new(&lock);
    let downloads = plan(&index, &lock.entries, args.jobs, &mut report).await;
    fetch_all(&index, downloads, args.jobs, &mut report).await;
    report.print(&args.file, kind, &index.url);
    match report.failed.len() {
        0 => Ok(()),
        n => Err(Failure {
            code: 1,
            message: format!(
                "{n} {} not mirrored (listed above with the reason); fix them and run the same \
                 command again",
                if n == 1 { "entry was" } else { "entries were" }
            ),
        }
        .into()),
    }
}

/// Reads and parses the file; any failure ends the command with status 2.
fn read_lock(path: &Path) -> Result<(LockKind, Lock), Failure> {
    let fail = |message: String| Failure { code: 2, message };
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read {shown}: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(fail(format!(
            "{shown} is {size} bytes, more than a requirements or lock file can be \
             ({MAX_FILE_BYTES} bytes at most)"
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read {shown}: {e}")))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let kind = lockfile::detect_kind(&name, &text);
    let lock = lockfile::parse(kind, &text).map_err(|e| fail(format!("{shown}: {e}")))?;
    Ok((kind, lock))
}

/// The index URL: the flag (or its variable), else the server in the configuration file: its
/// public URL, else its listen address (a wildcard address reached over loopback).
fn index_url(flag: Option<&str>, config: &FileConfig) -> Result<Url, Failure> {
    let text = match (flag, &config.public_url) {
        (Some(url), _) => url.to_owned(),
        (None, Some(public)) => format!("{}/simple/", public.trim_end_matches('/')),
        (None, None) => {
            let listen = config.listen.unwrap_or_else(|| {
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9001)))
            });
            let ip = match listen.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            let scheme = if config.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}/simple/", SocketAddr::new(ip, listen.port()))
        }
    };
    let invalid = |why: String| Failure {
        code: 2,
        message: format!(
            "--index-url: {why}; write it as pip's --index-url takes it, e.g. http://127.0.0.1:9001/simple/"
        ),
    };
    let url = Url::parse(&text).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "{} is not an http or https URL",
            url.scheme()
        )));
    }
    Ok(url)
}

/// One file to download, with the sha256 its bytes must have.
struct Download {
    filename: String,
    url: Url,
    sha256: String,
    /// Where the expected hash comes from, for messages.
    hash_from: &'static str,
    /// The sha256 of the file's PEP 658 metadata file, when the page lists one.
    core_metadata: Option<String>,
    /// Whether this is such a metadata file (counted apart from distributions).
    is_metadata: bool,
}

impl Download {
    /// The file's PEP 658 metadata file (`URL.metadata`), when the page lists one. pip and uv
    /// read it before the distribution, so a build offline needs it cached too.
    fn metadata_file(&self) -> Option<Download> {
        let sha256 = self.core_metadata.clone()?;
        let mut url = self.url.clone();
        url.set_fragment(None);
        url.set_path(&format!("{}.metadata", self.url.path()));
        Some(Download {
            filename: format!("{}.metadata", self.filename),
            url,
            sha256,
            hash_from: "the index page",
            core_metadata: None,
            is_metadata: true,
        })
    }
}

/// What happened, for the summary.
struct Report {
    fetched: usize,
    /// PEP 658 metadata files fetched besides the distributions.
    metadata: usize,
    bytes: u64,
    local: Vec<String>,
    /// `(what, why)`.
    failed: Vec<(String, String)>,
}

impl Report {
    fn new(lock: &Lock) -> Report {
        Report {
            fetched: 0,
            metadata: 0,
            bytes: 0,
            local: lock.local.clone(),
            failed: lock
                .refused
                .iter()
                .map(|r| (r.origin.clone(), r.reason.clone()))
                .collect(),
        }
    }

    fn print(&self, file: &Path, kind: LockKind, index: &Url) {
        let local = match self.local.len() {
            0 => String::new(),
            n => format!("; {n} local (not from an index): {}", self.local.join(", ")),
        };
        let metadata = match self.metadata {
            0 => String::new(),
            1 => " with 1 metadata file".to_owned(),
            n => format!(" with {n} metadata files"),
        };
        println!(
            "Mirrored {} ({kind}) through {index}: {} {} fetched and verified{metadata} ({}), {} failed{local}.",
            file.display(),
            self.fetched,
            if self.fetched == 1 { "file" } else { "files" },
            human_size(self.bytes),
            self.failed.len(),
        );
        for (what, why) in &self.failed {
            println!("failed {what}: {why}");
        }
    }
}

/// A byte count for people: bytes, KiB, MiB or GiB with one decimal.
fn human_size(bytes: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match units.iter().find(|(_, size)| bytes >= *size) {
        Some((unit, size)) => format!("{:.1} {unit}", bytes as f64 / *size as f64),
        None => format!("{bytes} bytes"),
    }
}

/// Reads each project's page once and turns the entries into downloads; what cannot be
/// resolved goes into the report.
async fn plan(index: &Index, entries: &[Entry], jobs: usize, report: &mut Report) -> Vec<Download> {
    let names: HashSet<String> = entries.iter().map(|e| normalize(&e.name)).collect();
    let pages: HashMap<String, Result<(Url, Page), String>> = futures::stream::iter(names)
        .map(|name| async move {
            let page = async {
                let url = index.page_url(&name)?;
                let page = index.page(&url).await?;
                Ok((url, page))
            }
            .await;
            (name, page)
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    let mut seen = HashSet::new();
    let mut downloads = Vec::new();
    for entry in entries {
        let what = label(entry);
        let (page_url, page) = match pages.get(&normalize(&entry.name)) {
            Some(Ok(page)) => page,
            Some(Err(why)) => {
                report.failed.push((what, why.clone()));
                continue;
            }
            None => continue, // every entry's name was asked for above
        };
        let resolved = match &entry.want {
            Want::Pin { version, sha256 } => resolve_pin(page_url, page, version, sha256),
            Want::Files(files) => resolve_files(page_url, page, files),
        };
        for item in resolved {
            match item {
                Ok(download) if seen.insert(download.url.clone()) => {
                    downloads.extend(download.metadata_file());
                    downloads.push(download);
                }
                Ok(_) => {}
                Err(why) => report.failed.push((what.clone(), why)),
            }
        }
    }
    downloads
}

/// How an entry is named in the summary.
fn label(entry: &Entry) -> String {
    match &entry.want {
        Want::Pin { version, .. } => format!("{}=={version} ({})", entry.name, entry.origin),
        Want::Files(_) => entry.origin.clone(),
    }
}

/// The files a lock names, found on the page by filename.
fn resolve_files(
    page_url: &Url,
    page: &Page,
    files: &[LockedFile],
) -> Vec<Result<Download, String>> {
    let listed: HashMap<&str, &http::PageFile> = page
        .files
        .iter()
        .map(|f| (f.filename.as_str(), f))
        .collect();
    files
        .iter()
        .map(|wanted| {
            let file = listed.get(wanted.filename.as_str()).ok_or_else(|| {
                format!(
                    "{} is not listed on the index's page {page_url}",
                    wanted.filename
                )
            })?;
            if let Some(listed_hash) = file.hashes.get("sha256")
                && !listed_hash.eq_ignore_ascii_case(wanted.sha256.as_hex())
            {
                return Err(format!(
                    "{}: the lock file says sha256 {}, the index lists {listed_hash}; not fetched",
                    wanted.filename, wanted.sha256
                ));
            }
            download(
                page_url,
                file,
                wanted.sha256.as_hex().to_owned(),
                "the lock file",
            )
        })
        .collect()
}

/// Every file of a pinned version on the page; with `--hash` options, those whose listed
/// sha256 the requirement allows.
fn resolve_pin(
    page_url: &Url,
    page: &Page,
    version: &str,
    allowed: &[Sha256],
) -> Vec<Result<Download, String>> {
    let wanted = match parse_version(version) {
        Ok(v) => canonical_version(&v),
        Err(e) => return vec![Err(e.to_string())],
    };
    let of_version: Vec<&http::PageFile> = page
        .files
        .iter()
        .filter(|f| {
            parse_filename(&f.filename).is_ok_and(|d| canonical_version(&d.version) == wanted)
        })
        .collect();
    if of_version.is_empty() {
        return vec![Err(format!(
            "no file of version {version} on the index (versions listed: {})",
            versions_listed(page)
        ))];
    }
    let allowed: HashSet<&str> = allowed.iter().map(Sha256::as_hex).collect();
    let mut out = Vec::new();
    for file in &of_version {
        let listed = file.hashes.get("sha256").map(|h| h.to_ascii_lowercase());
        match listed {
            None => out.push(Err(format!(
                "{}: the index lists no sha256 for it, so it cannot be verified",
                file.filename
            ))),
            Some(hash) if allowed.is_empty() => {
                out.push(download(page_url, file, hash, "the index page"));
            }
            Some(hash) if allowed.contains(hash.as_str()) => {
                out.push(download(page_url, file, hash, "the requirement's --hash"));
            }
            Some(_) => {}
        }
    }
    if out.is_empty() {
        out.push(Err(format!(
            "none of the {} files of version {version} on the index has a sha256 that the \
             requirement's --hash options allow",
            of_version.len()
        )));
    }
    out
}

fn versions_listed(page: &Page) -> String {
    let mut versions: Vec<_> = page
        .files
        .iter()
        .filter_map(|f| parse_filename(&f.filename).ok())
        .map(|d| d.version)
        .collect();
    versions.sort();
    versions.dedup();
    if versions.is_empty() {
        return "none".to_owned();
    }
    let newest: Vec<String> = versions
        .iter()
        .rev()
        .take(8)
        .map(ToString::to_string)
        .collect();
    newest.join(", ")
}

fn download(
    page_url: &Url,
    file: &http::PageFile,
    sha256: String,
    hash_from: &'static str,
) -> Result<Download, String> {
    let url = page_url
        .join(&file.url)
        .map_err(|e| format!("{}: its URL {} is not valid: {e}", file.filename, file.url))?;
    Ok(Download {
        filename: file.filename.clone(),
        url,
        sha256,
        hash_from,
        core_metadata: file.core_metadata_sha256(),
        is_metadata: false,
    })
}

/// Downloads every file, `jobs` at a time, checking each one's sha256.
async fn fetch_all(index: &Index, downloads: Vec<Download>, jobs: usize, report: &mut Report) {
    let progress = Progress::new(downloads.len() as u64);
    let mut results = futures::stream::iter(downloads)
        .map(|d| async move {
            let outcome = index.fetch(&d.url).await;
            (d, outcome)
        })
        .buffer_unordered(jobs);
    while let Some((d, outcome)) = results.next().await {
        let checked = outcome.and_then(|fetched| {
            if fetched.sha256 == d.sha256 {
                Ok(fetched.bytes)
            } else {
                Err(format!(
                    "hash mismatch: the {} bytes received have sha256 {}, {} says {}",
                    fetched.bytes, fetched.sha256, d.hash_from, d.sha256
                ))
            }
        });
        match checked {
            Ok(bytes) if d.is_metadata => {
                report.metadata += 1;
                report.bytes += bytes;
                progress.done(&format!(
                    "fetched the metadata file {} ({bytes} bytes, sha256 ok)",
                    d.filename
                ));
            }
            Ok(bytes) => {
                report.fetched += 1;
                report.bytes += bytes;
                progress.done(&format!(
                    "fetched {} ({bytes} bytes, sha256 ok)",
                    d.filename
                ));
            }
            Err(why) => {
                progress.done(&format!("failed {}: {why}", d.filename));
                report.failed.push((d.filename, why));
            }
        }
    }
    progress.finish();
}

/// A progress bar on a terminal; one line per file otherwise.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(total: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}") {
            bar.set_style(style);
        }
        Progress(Some(bar))
    }

    fn done(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.inc(1),
            None => println!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(384), "384 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn a_file_with_core_metadata_brings_its_metadata_file() {
        let page: Page = serde_json::from_str(
            r#"{"files": [
                {"filename": "a-1.0-py3-none-any.whl", "url": "../../files/a-1.0-py3-none-any.whl",
                 "hashes": {"sha256": "AA"}, "core-metadata": {"sha256": "BB"}},
                {"filename": "a-1.0.tar.gz", "url": "../../files/a-1.0.tar.gz",
                 "hashes": {"sha256": "cc"}, "core-metadata": false}
            ]}"#,
        )
        .unwrap();
        let page_url = Url::parse("http://127.0.0.1:9001/simple/a/").unwrap();
        let downloads: Vec<Download> = resolve_pin(&page_url, &page, "1.0", &[])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let metadata: Vec<Download> = downloads
            .iter()
            .filter_map(Download::metadata_file)
            .collect();
        assert_eq!(metadata.len(), 1, "only the file listed with core-metadata");
        assert_eq!(
            metadata[0].url.as_str(),
            "http://127.0.0.1:9001/files/a-1.0-py3-none-any.whl.metadata"
        );
        assert_eq!(metadata[0].sha256, "bb");
        assert!(metadata[0].is_metadata && metadata[0].metadata_file().is_none());
    }

    #[test]
    fn default_index_url_from_the_configuration() {
        let url = |config: &FileConfig| index_url(None, config).unwrap().to_string();
        assert_eq!(url(&FileConfig::default()), "http://127.0.0.1:9001/simple/");
        let config = FileConfig {
            listen: Some("0.0.0.0:8080".parse().unwrap()),
            ..FileConfig::default()
        };
        assert_eq!(url(&config), "http://127.0.0.1:8080/simple/");
        let config = FileConfig {
            listen: Some("[::]:8080".parse().unwrap()),
            tls_cert: Some("cert.pem".into()),
            ..FileConfig::default()
        };
        assert_eq!(url(&config), "https://[::1]:8080/simple/");
        let config = FileConfig {
            public_url: Some("https://pypi.example.internal/".to_owned()),
            ..config
        };
        assert_eq!(url(&config), "https://pypi.example.internal/simple/");
        assert!(index_url(Some("ftp://h/simple/"), &config).is_err());
        assert!(index_url(Some("not a url"), &config).is_err());
    }
}
