//! uv's lock file (`uv.lock`): each package's `sdist` and `wheels`, each with a url (or a path and
//! filename) and a `sha256:` hash.
//!
//! Packages whose `source` is `editable`, `virtual`, `path` or `directory` are local (the project
//! itself and its path dependencies) and skipped; `git` and `url` sources are refused (not on an
//! index). Everything from a `registry` source is fetched by filename through the index.

use serde::Deserialize;

use super::{Lock, LockError, LockKind, LockedFile, Sha256, refused};

/// The lock format version this reads (`version = 1`).
const SUPPORTED_VERSION: i64 = 1;

#[derive(Deserialize)]
struct UvLockFile {
    version: i64,
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: Option<String>,
    #[serde(default)]
    source: toml::Table,
    sdist: Option<File>,
    #[serde(default)]
    wheels: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
}

/// Parses a `uv.lock`. Fails as a whole on invalid TOML or a lock `version` other than 1.
pub fn parse_uv_lock(text: &str) -> Result<Lock, LockError> {
    let file: UvLockFile =
        toml::from_str(text).map_err(|e| LockError::toml(LockKind::UvLock, &e))?;
    if file.version != SUPPORTED_VERSION {
        return Err(LockError(format!(
            "uv.lock version {} is not supported (this pyindex reads version {SUPPORTED_VERSION})",
            file.version
        )));
    }
    let mut lock = Lock::default();
    for package in file.package {
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
    let kind = package.source.keys().next().map(String::as_str);
    match kind {
        None | Some("registry") => {}
        Some(local @ ("editable" | "virtual" | "path" | "directory")) => {
            lock.local.push(format!("{shown} ({local})"));
            return;
        }
        Some(other) => {
            lock.refused.push(refused(
                origin,
                format!(
                    "a {} source, not a file on an index: the build needs network access to it",
                    crate::text::quote(other)
                ),
            ));
            return;
        }
    }
    let files = package.sdist.iter().chain(&package.wheels).map(locked_file);
    lock.add_files(
        package.name,
        origin,
        files.collect(),
        "lists no sdist and no wheels",
    );
}

fn locked_file(file: &File) -> Result<LockedFile, String> {
    let filename = super::locked_filename(
        file.filename.as_deref(),
        "filename",
        file.url.as_deref(),
        file.path.as_deref(),
    )?;
    let filename = filename.ok_or("a file with no url, path or filename naming it")?;
    let hash = file
        .hash
        .as_deref()
        .ok_or_else(|| format!("{filename}: no hash; pyindex mirror checks sha256"))?;
    let sha256 = match hash.split_once(':') {
        Some(("sha256", hex)) => Sha256::parse(hex),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "{filename}: hash {} is not sha256:<64 hex digits>",
            crate::text::quote(hash)
        )
    })?;
    Ok(LockedFile { filename, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::Want;

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// Shaped like the lock files uv 0.13 writes.
    fn sample() -> String {
        format!(
            r#"version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
    {{ name = "idna" }},
]

[package.metadata]
requires-dist = [{{ name = "idna", specifier = ">=3" }}]

[[package]]
name = "idna"
version = "3.10"
source = {{ registry = "http://127.0.0.1:9001/simple/" }}
sdist = {{ url = "http://127.0.0.1:9001/files/idna-3.10.tar.gz", hash = "sha256:{a}", size = 190490, upload-time = "2024-09-15T18:07:39.745Z" }}
wheels = [
    {{ url = "http://127.0.0.1:9001/files/idna-3.10-py3-none-any.whl", hash = "sha256:{b}", size = 70442, upload-time = "2024-09-15T18:07:37.964Z" }},
]

[[package]]
name = "flat"
version = "1.0"
source = {{ registry = "../wheels" }}
wheels = [
    {{ path = "flat-1.0-py3-none-any.whl", hash = "sha256:{c}" }},
]

[[package]]
name = "from-git"
version = "0.2"
source = {{ git = "https://git.invalid/x.git?rev=main#abc" }}

[[package]]
name = "sibling"
version = "0.1"
source = {{ directory = "../sibling" }}
"#,
            a = hash('a'),
            b = hash('b'),
            c = hash('c')
        )
    }

    #[test]
    fn registry_files_by_name_with_hashes() {
        let lock = parse_uv_lock(&sample()).unwrap();
        let names: Vec<&str> = lock.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["idna", "flat"]);
        assert_eq!(
            lock.entries[0].want,
            Want::Files(vec![
                LockedFile {
                    filename: "idna-3.10.tar.gz".to_owned(),
                    sha256: Sha256::parse(&hash('a')).unwrap()
                },
                LockedFile {
                    filename: "idna-3.10-py3-none-any.whl".to_owned(),
                    sha256: Sha256::parse(&hash('b')).unwrap()
                },
            ])
        );
        assert!(
            matches!(&lock.entries[1].want, Want::Files(f) if f[0].filename == "flat-1.0-py3-none-any.whl")
        );
        assert_eq!(
            lock.local,
            ["app 0.1.0 (editable)", "sibling 0.1 (directory)"]
        );
        assert_eq!(lock.refused.len(), 1);
        assert_eq!(lock.refused[0].origin, "package from-git 0.2");
    }

    #[test]
    fn bad_hashes_are_refused_per_file() {
        let text = r#"version = 1
[[package]]
name = "demo"
version = "1.0"
source = { registry = "http://h.invalid/simple" }
sdist = { url = "http://h.invalid/demo-1.0.tar.gz", hash = "md5:00" }
wheels = [{ url = "http://h.invalid/demo-1.0-py3-none-any.whl" }]
"#;
        let lock = parse_uv_lock(text).unwrap();
        assert!(lock.entries.is_empty());
        assert_eq!(lock.refused.len(), 2);
        assert!(lock.refused[0].reason.contains("not sha256"));
        assert!(lock.refused[1].reason.contains("no hash"));
    }

    #[test]
    fn whole_file_errors() {
        let err = parse_uv_lock("version = 2\n").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = parse_uv_lock("[[package]]\n").unwrap_err();
        assert!(err.to_string().starts_with("not a valid uv.lock"), "{err}");
    }
}
