//! `pyindex import`: take over an existing index tree.
//!
//! Two layouts are read. An nginx-style tree (`SOURCE/simple/<project>/index.html`, pages
//! written by hand, whose links may point anywhere in `SOURCE`) lists each project's files; a
//! flat directory (as pypiserver keeps them: `SOURCE/*.whl`, `*.tar.gz`, `*.zip`, optionally one
//! level of subfolders) lists nothing, and each file's metadata names its project.
//!
//! Every file goes through [`Registry::import_file`], which applies the upload's rules; each is
//! its own transaction, so an interrupted import leaves every file imported or not (at most an
//! unreferenced blob, which `pyindex verify --repair` removes), and a re-run finds the files
//! already imported and changes nothing.

mod html;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use pyindex_packaging::ProjectName;
use pyindex_registry::{ImportRequest, Published, Registry, RegistryError};
use time::OffsetDateTime;

pub use html::{Link, hrefs, resolve};

/// Files imported at once: reading, hashing and inspecting overlap with the catalog's commits.
pub const DEFAULT_JOBS: usize = 4;

/// Extensions of the distributions pyindex serves.
const DIST_SUFFIXES: [&str; 3] = [".whl", ".tar.gz", ".zip"];

/// Why a source cannot be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source is not a readable directory, or holds nothing to import.
    #[error("{0}")]
    Unusable(String),
}

/// How the source is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `SOURCE/simple/<project>/index.html`.
    Tree,
    /// Distribution files directly in `SOURCE` (or one level below).
    Flat,
}

/// One file to import, found in the source.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The file, as shown in messages (relative to the source).
    pub shown: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its filename.
    pub filename: String,
    /// The project whose page lists it (none in a flat directory).
    pub project: Option<ProjectName>,
    /// The SHA-256 its link gives.
    pub sha256: Option<String>,
    /// The page that lists it (tree layout), for "listed but missing".
    pub listed_in: Option<String>,
}

/// A file that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The file or link, as shown in messages.
    pub shown: String,
    /// Why, and what to do.
    pub reason: String,
}

/// What the source holds: the files to import and what was refused on sight.
#[derive(Debug, Default)]
pub struct Plan {
    /// Files to import.
    pub candidates: Vec<Candidate>,
    /// Links and files refused before reading them.
    pub skipped: Vec<Skipped>,
}

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files published by this run.
    pub imported: usize,
    /// Files that were already published with the same bytes.
    pub already_present: usize,
    /// Files not imported, sorted by what they are shown as.
    pub skipped: Vec<Skipped>,
}

/// Finds out the source's layout and what it lists.
pub fn plan(source: &Path) -> Result<(Layout, Plan), SourceError> {
    let meta = std::fs::metadata(source).map_err(|e| {
        SourceError::Unusable(format!(
            "cannot read the import source '{}': {e}; give the folder that holds 'simple/' \
             (e.g. /var/www/pypi) or a directory of distribution files",
            source.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(SourceError::Unusable(format!(
            "the import source '{}' is not a directory: give the folder that holds 'simple/' \
             (e.g. /var/www/pypi) or a directory of distribution files",
            source.display()
        )));
    }
    let simple = source.join("simple");
    if simple.is_dir() {
        return Ok((Layout::Tree, plan_tree(source, &simple)?));
    }
    let plan = plan_flat(source)?;
    if plan.candidates.is_empty() {
        return Err(SourceError::Unusable(format!(
            "'{}' holds neither a 'simple/' folder nor distribution files (.whl, .tar.gz, \
             .zip): give the folder that holds 'simple/' (e.g. /var/www/pypi) or a directory \
             of distribution files",
            source.display()
        )));
    }
    Ok((Layout::Flat, plan))
}

fn unreadable(path: &Path, e: &std::io::Error) -> SourceError {
    SourceError::Unusable(format!("cannot read '{}': {e}", path.display()))
}

/// Visible entries of a directory, sorted by name.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, SourceError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(dir, &e))? {
        let entry = entry.map_err(|e| unreadable(dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            found.push((name, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn is_distribution(name: &str) -> bool {
    DIST_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

fn plan_tree(source: &Path, simple: &Path) -> Result<Plan, SourceError> {
    let mut plan = Plan::default();
    for (name, path) in entries(simple)? {
        if path.is_dir() {
            plan_project(source, &name, &path, &mut plan)?;
        }
    }
    Ok(plan)
}

/// One project folder: the files its page links, or, without a page, the files in it.
fn plan_project(
    source: &Path,
    folder: &str,
    dir: &Path,
    plan: &mut Plan,
) -> Result<(), SourceError> {
    let shown_dir = format!("simple/{folder}");
    let project = match ProjectName::new(folder) {
        Ok(project) => project,
        Err(e) => {
            plan.skipped.push(Skipped {
                shown: format!("{shown_dir}/"),
                reason: format!(
                    "the folder is not a project name ({e}): rename it to import its files"
                ),
            });
            return Ok(());
        }
    };
    let page_path = dir.join("index.html");
    let linked: BTreeSet<PathBuf> = if page_path.is_file() {
        let page = std::fs::read(&page_path).map_err(|e| unreadable(&page_path, &e))?;
        let page_shown = format!("{shown_dir}/index.html");
        let page_dir = vec!["simple".to_owned(), folder.to_owned()];
        let mut linked = BTreeSet::new();
        for href in hrefs(&String::from_utf8_lossy(&page)) {
            match resolve(&href, &page_dir) {
                Link::Page => {}
                Link::Unusable(reason) => plan.skipped.push(Skipped {
                    shown: format!("{page_shown}: {}", href.escape_default()),
                    reason,
                }),
                Link::File { segments, sha256 } => {
                    let shown = segments.join("/");
                    let path = segments.iter().fold(source.to_path_buf(), |p, s| p.join(s));
                    if linked.insert(path.clone()) {
                        plan.candidates.push(Candidate {
                            shown,
                            filename: segments.last().cloned().unwrap_or_default(),
                            path,
                            project: Some(project.clone()),
                            sha256,
                            listed_in: Some(page_shown.clone()),
                        });
                    }
                }
            }
        }
        linked
    } else {
        BTreeSet::new()
    };
    let has_page = page_path.is_file();
    for (name, path) in entries(dir)? {
        if !path.is_file() || !is_distribution(&name) || linked.contains(&path) {
            continue;
        }
        let shown = format!("{shown_dir}/{name}");
        if has_page {
            plan.skipped.push(Skipped {
                shown,
                reason: format!(
                    "in the folder but not linked from {shown_dir}/index.html, so installers \
                     never saw it: link it there and import again to import it"
                ),
            });
        } else {
            plan.candidates.push(Candidate {
                shown,
                filename: name,
                path,
                project: Some(project.clone()),
                sha256: None,
                listed_in: None,
            });
        }
    }
    Ok(())
}

/// Distribution files in `source` and in its immediate subfolders (pypiserver's layout).
fn plan_flat(source: &Path) -> Result<Plan, SourceError> {
    let mut plan = Plan::default();
    for (name, path) in entries(source)? {
        if path.is_dir() {
            for (inner, inner_path) in entries(&path)? {
                if inner_path.is_file() && is_distribution(&inner) {
                    plan.candidates.push(flat_candidate(
                        format!("{name}/{inner}"),
                        inner,
                        inner_path,
                    ));
                }
            }
        } else if is_distribution(&name) {
            plan.candidates
                .push(flat_candidate(name.clone(), name, path));
        }
    }
    Ok(plan)
}

fn flat_candidate(shown: String, filename: String, path: PathBuf) -> Candidate {
    Candidate {
        shown,
        path,
        filename,
        project: None,
        sha256: None,
        listed_in: None,
    }
}

/// What happened to one candidate.
enum Outcome {
    Imported,
    AlreadyPresent,
    Skipped(Skipped),
}

/// Imports every candidate, `jobs` at a time, calling `progress` after each file.
pub async fn run(
    registry: &Registry,
    plan: Plan,
    jobs: usize,
    mut progress: impl FnMut(&str),
) -> Summary {
    let mut summary = Summary {
        skipped: plan.skipped,
        ..Summary::default()
    };
    let mut outcomes = futures::stream::iter(plan.candidates)
        .map(|candidate| async move {
            let shown = candidate.shown.clone();
            (shown, import_one(registry, candidate).await)
        })
        .buffer_unordered(jobs.max(1));
    while let Some((shown, outcome)) = outcomes.next().await {
        match outcome {
            Outcome::Imported => summary.imported += 1,
            Outcome::AlreadyPresent => summary.already_present += 1,
            Outcome::Skipped(skipped) => summary.skipped.push(skipped),
        }
        progress(&shown);
    }
    summary.skipped.sort_by(|a, b| a.shown.cmp(&b.shown));
    summary
}

async fn import_one(registry: &Registry, candidate: Candidate) -> Outcome {
    let skip = |reason: String| {
        Outcome::Skipped(Skipped {
            shown: candidate.shown.clone(),
            reason,
        })
    };
    let modified = match tokio::fs::metadata(&candidate.path).await {
        Ok(meta) if meta.is_file() => meta.modified().ok(),
        Ok(_) => return skip("not a regular file".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return skip(match &candidate.listed_in {
                Some(page) => {
                    format!("listed in {page} but missing: remove the link or restore the file")
                }
                None => "missing (removed while importing)".to_owned(),
            });
        }
        Err(e) => return skip(format!("cannot read it: {e}")),
    };
    let request = ImportRequest {
        source: candidate.path.clone(),
        filename: candidate.filename.clone(),
        project: candidate.project.clone(),
        expected_sha256: candidate.sha256.clone(),
        uploaded: modified.map_or_else(OffsetDateTime::now_utc, OffsetDateTime::from),
    };
    match registry.import_file(request).await {
        Ok(Published::Added { .. }) => Outcome::Imported,
        Ok(Published::AlreadyPresent { .. }) => Outcome::AlreadyPresent,
        Err(RegistryError::Rejected { message, .. }) => skip(message),
        Err(e @ (RegistryError::Internal(_) | RegistryError::Unavailable { .. })) => {
            skip(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, content: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn a_tree_lists_linked_files_and_reports_unlinked_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sha = "ab".repeat(32);
        write(
            &root.join("simple/foo/index.html"),
            format!(
                "<a href='foo-1.0.tar.gz#sha256={sha}'>x</a><a href=\"/packages/foo-2.0.whl\">y</a>\
                 <a href=\"../\">up</a><a href=\"foo-1.0.tar.gz\">again</a>\
                 <a href=\"https://elsewhere.invalid/foo-3.0.whl\">z</a>"
            )
            .as_bytes(),
        );
        write(&root.join("simple/foo/foo-1.0.tar.gz"), b"x");
        write(&root.join("simple/foo/foo-0.1.tar.gz"), b"x");
        write(&root.join("simple/bar/bar-1.0.whl"), b"x");
        write(&root.join("simple/index.html"), b"<a href='foo/'>foo</a>");
        let (layout, plan) = super::plan(root).unwrap();
        assert_eq!(layout, Layout::Tree);
        let shown: Vec<_> = plan.candidates.iter().map(|c| c.shown.as_str()).collect();
        assert_eq!(
            shown,
            [
                "simple/bar/bar-1.0.whl",
                "simple/foo/foo-1.0.tar.gz",
                "packages/foo-2.0.whl"
            ]
        );
        assert_eq!(plan.candidates[1].sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(plan.candidates[2].path, root.join("packages/foo-2.0.whl"));
        assert_eq!(plan.candidates[2].project.as_ref().unwrap().as_str(), "foo");
        let skipped: Vec<_> = plan.skipped.iter().map(|s| s.shown.as_str()).collect();
        assert_eq!(
            skipped,
            [
                "simple/foo/index.html: https://elsewhere.invalid/foo-3.0.whl",
                "simple/foo/foo-0.1.tar.gz"
            ]
        );
    }

    #[test]
    fn a_flat_directory_lists_distributions_one_level_deep() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("a-1.0.tar.gz"), b"x");
        write(&root.join("b/b-1.0-py3-none-any.whl"), b"x");
        write(&root.join("b/deeper/c-1.0.zip"), b"x");
        write(&root.join("notes.txt"), b"x");
        let (layout, plan) = super::plan(root).unwrap();
        assert_eq!(layout, Layout::Flat);
        let shown: Vec<_> = plan.candidates.iter().map(|c| c.shown.as_str()).collect();
        assert_eq!(shown, ["a-1.0.tar.gz", "b/b-1.0-py3-none-any.whl"]);
        assert!(plan.candidates.iter().all(|c| c.project.is_none()));
    }

    #[test]
    fn an_unusable_source_says_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let err = super::plan(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the import source"), "{err}");
        let err = super::plan(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("neither a 'simple/' folder nor distribution files"),
            "{err}"
        );
    }
}
