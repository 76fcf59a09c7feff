//! PEP 751 lock files (`pylock.toml`): each package's `sdist` and `wheels`, by filename, each with
//! its sha256.
//!
//! A file's filename is its `name` key, else the last segment of its `url` or `path`. Packages
//! from a `vcs` source or an `archive` URL are refused (not on an index); `directory` sources and
//! `archive` paths are local and skipped. Keys this tool does not need (markers, upload times,
//! sizes, attestations, `[tool]`) are ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Lock, LockError, LockKind, LockedFile, Sha256, refused};

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockFile {
    lock_version: String,
    #[serde(default)]
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: Option<String>,
    vcs: Option<toml::Table>,
    directory: Option<toml::Table>,
    archive: Option<Archive>,
    sdist: Option<File>,
    #[serde(default)]
    wheels: Vec<File>,
}

#[derive(Deserialize)]
struct Archive {
    url: Option<String>,
}

#[derive(Deserialize)]
struct File {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

/// Parses a `pylock.toml`. Fails as a whole on invalid TOML, a missing `lock-version`, or a major
/// version other than 1.
pub fn parse_pylock(text: &str) -> Result<Lock, LockError> {
    let file: PylockFile =
        toml::from_str(text).map_err(|e| LockError::toml(LockKind::Pylock, &e))?;
    if file.lock_version.split('.').next() != Some("1") {
        return Err(LockError(format!(
            "pylock.toml lock-version {} is not supported (this pyindex reads 1.x)",
            crate::text::quote(&file.lock_version)
        )));
    }
    let mut lock = Lock::default();
    for package in file.packages {
        add_package(&mut lock, package);
    }
    Ok(lock)
}

fn add_package(lock: &mut Lock, package: Package) {
    let shown = match &package.version {
        Some(version) => format!("{} {version}", package.name),
        None => package.name.clone(),
    };
    let origin = format!("package {shown}");
    if package.vcs.is_some() {
        lock.refused.push(refused(
            origin,
            "a VCS source, not a file on an index: the build needs network access to it",
        ));
        return;
    }
    if let Some(archive) = &package.archive {
        match &archive.url {
            Some(url) => lock.refused.push(refused(
                origin,
                format!(
                    "an archive URL ({}), not a file on an index",
                    crate::text::quote(url)
                ),
            )),
            None => lock.local.push(format!("{shown} (archive path)")),
        }
        return;
    }
    if package.directory.is_some() {
        lock.local.push(format!("{shown} (directory)"));
        return;
    }
    let files = package.sdist.iter().chain(&package.wheels).map(locked_file);
    lock.add_files(
        package.name,
        origin,
        files.collect(),
        "lists no sdist, wheel or other source",
    );
}

fn locked_file(file: &File) -> Result<LockedFile, String> {
    let filename = super::locked_filename(
        file.name.as_deref(),
        "file name",
        file.url.as_deref(),
        file.path.as_deref(),
    )?;
    let filename = filename.ok_or("a file with no name, and no url or path ending in one")?;
    let sha256 = match file.hashes.get("sha256") {
        Some(hex) => Sha256::parse(hex).ok_or_else(|| {
            format!(
                "{filename}: sha256 {} is not 64 hex digits",
                crate::text::quote(hex)
            )
        })?,
        None => {
            return Err(format!(
                "{filename}: no sha256 hash; pyindex mirror checks sha256"
            ));
        }
    };
    Ok(LockedFile { filename, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::Want;

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// Shaped like the examples of PEP 751 and the files `uv export --format pylock.toml` writes.
    fn sample() -> String {
        format!(
            r#"lock-version = "1.0"
environments = ["sys_platform == 'linux'"]
requires-python = ">=3.11"
created-by = "uv"

[[packages]]
name = "attrs"
version = "25.1.0"
requires-python = ">=3.8"
index = "http://127.0.0.1:9001/simple/"
sdist = {{ url = "http://127.0.0.1:9001/files/attrs-25.1.0.tar.gz", upload-time = 2025-01-25T11:30:12Z, size = 810562, hashes = {{ sha256 = "{a}" }} }}

[[packages.wheels]]
name = "attrs-25.1.0-py3-none-any.whl"
upload-time = 2025-01-25T11:30:10.164985+00:00
url = "http://127.0.0.1:9001/files/other-spelling.whl"
size = 63152
hashes = {{sha256 = "{b}", blake2b = "ff"}}

[[packages]]
name = "numpy"
version = "2.2.3"
marker = "python_version >= '3.11'"
wheels = [
  {{ url = "http://127.0.0.1:9001/files/numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hashes = {{ sha256 = "{c}" }} }},
]

[[packages]]
name = "app"
directory = {{ path = ".", editable = true }}

[[packages]]
name = "lib"
version = "0.1"
vcs = {{ type = "git", url = "https://git.invalid/lib.git", commit-id = "abc" }}

[[packages]]
name = "vendored"
archive = {{ path = "vendor/vendored-1.0.tar.gz", hashes = {{ sha256 = "{a}" }} }}

[tool.pyindex]
anything = 1
"#,
            a = hash('a'),
            b = hash('b'),
            c = hash('c')
        )
    }

    #[test]
    fn files_by_name_with_hashes() {
        let lock = parse_pylock(&sample()).unwrap();
        let files: Vec<(String, String)> = lock
            .entries
            .iter()
            .flat_map(|e| match &e.want {
                Want::Files(files) => files.clone(),
                Want::Pin { .. } => panic!("files"),
            })
            .map(|f| (f.filename, f.sha256.as_hex().to_owned()))
            .collect();
        assert_eq!(
            files,
            [
                ("attrs-25.1.0.tar.gz".to_owned(), hash('a')),
                ("attrs-25.1.0-py3-none-any.whl".to_owned(), hash('b')),
                (
                    "numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
                        .to_owned(),
                    hash('c')
                ),
            ]
        );
        assert_eq!(lock.entries[0].name, "attrs");
        assert_eq!(lock.entries[0].origin, "package attrs 25.1.0");
        assert_eq!(lock.local, ["app (directory)", "vendored (archive path)"]);
        assert_eq!(lock.refused.len(), 1);
        assert_eq!(lock.refused[0].origin, "package lib 0.1");
        assert!(lock.refused[0].reason.contains("VCS"));
    }

    #[test]
    fn missing_or_bad_hashes_are_refused_per_file() {
        let text = r#"lock-version = "1.0"
[[packages]]
name = "demo"
version = "1.0"
sdist = { url = "http://h.invalid/demo-1.0.tar.gz", hashes = { sha512 = "00" } }
wheels = [
  { name = "demo-1.0-py3-none-any.whl", hashes = { sha256 = "xyz" } },
  { name = "../escape.whl", hashes = { sha256 = "xyz" } },
  { hashes = { sha256 = "xyz" } },
]
"#;
        let lock = parse_pylock(text).unwrap();
        assert!(lock.entries.is_empty());
        let reasons: Vec<&str> = lock.refused.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("no sha256"));
        assert!(reasons[1].contains("not 64 hex digits"));
        assert!(reasons[2].contains("not a plain filename"));
        assert!(reasons[3].contains("no name"));
    }

    #[test]
    fn whole_file_errors() {
        let err = parse_pylock("lock-version = \"2.0\"\n").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = parse_pylock("[[packages]]\nname = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains("lock-version"), "{err}");
        let err = parse_pylock("lock-version = ").unwrap_err();
        assert!(
            err.to_string().starts_with("not a valid pylock.toml"),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}
