//! What a build installs, read from its lock or requirements file: pinned requirements
//! (`pip freeze`), PEP 751 `pylock.toml`, or `uv.lock`. `pyindex mirror` fetches these files
//! through the index ahead of an offline build.
//!
//! Parsing is lenient about what does not matter for fetching (unknown keys, markers) and strict
//! about what does: every file named by a lock carries a sha256, every requirement is pinned to one
//! version. An entry that cannot be fetched from an index (an editable install, a VCS or URL
//! source) is reported as [`Refused`] with the reason; the rest of the file is still read.

mod pylock;
mod requirements;
mod uvlock;

use std::fmt;

use crate::text::quote;

pub use pylock::parse_pylock;
pub use requirements::parse_requirements;
pub use uvlock::parse_uv_lock;

/// The kind of file a build's requirements come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// A pip requirements file with exact pins (`pip freeze`, `pip-compile`).
    Requirements,
    /// A PEP 751 lock file (`pylock.toml`, `pylock.NAME.toml`).
    Pylock,
    /// uv's lock file (`uv.lock`).
    UvLock,
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockKind::Requirements => "requirements file",
            LockKind::Pylock => "pylock.toml",
            LockKind::UvLock => "uv.lock",
        })
    }
}

/// Tells the kind of a file from its name, then (for other `.toml` names) from its content:
/// `uv.lock` and `pylock.toml`/`pylock.*.toml` by name; a TOML file with a top-level
/// `lock-version` is a pylock, one with `[[package]]` a uv lock; anything else is read as a
/// requirements file.
pub fn detect_kind(file_name: &str, text: &str) -> LockKind {
    let lower = file_name.to_ascii_lowercase();
    if lower == "uv.lock" {
        return LockKind::UvLock;
    }
    if lower == "pylock.toml" || (lower.starts_with("pylock.") && lower.ends_with(".toml")) {
        return LockKind::Pylock;
    }
    if (lower.ends_with(".toml") || lower.ends_with(".lock"))
        && let Ok(table) = text.parse::<toml::Table>()
    {
        if table.contains_key("lock-version") {
            return LockKind::Pylock;
        }
        if table.contains_key("package") {
            return LockKind::UvLock;
        }
    }
    LockKind::Requirements
}

/// Parses `text` as a file of the given kind.
pub fn parse(kind: LockKind, text: &str) -> Result<Lock, LockError> {
    match kind {
        LockKind::Requirements => Ok(parse_requirements(text)),
        LockKind::Pylock => parse_pylock(text),
        LockKind::UvLock => parse_uv_lock(text),
    }
}

/// What a file asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// What can be fetched from an index, in file order.
    pub entries: Vec<Entry>,
    /// Entries built from local sources (the project itself, path and directory sources): not
    /// from an index, nothing to fetch. Each is shown as `name (source)`.
    pub local: Vec<String>,
    /// Entries that name something an index cannot serve, or that are malformed.
    pub refused: Vec<Refused>,
}

/// One project release (or some of its files) to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The project name as written.
    pub name: String,
    /// Where in the file it is, e.g. `line 3` or `package idna 3.10`.
    pub origin: String,
    /// Which files.
    pub want: Want,
}

/// Which files of a project an [`Entry`] wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Every file of this version listed by the index; with hashes (`--hash`), only the files
    /// whose sha256 is among them.
    Pin {
        /// The version as written after `==`.
        version: String,
        /// The sha256 hashes the requirement allows; empty when it gives none.
        sha256: Vec<Sha256>,
    },
    /// Exactly these files, by filename.
    Files(Vec<LockedFile>),
}

/// A file named by a lock, with the hash its bytes must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedFile {
    /// The distribution filename, e.g. `idna-3.10-py3-none-any.whl`.
    pub filename: String,
    /// Its sha256.
    pub sha256: Sha256,
}

/// An entry that cannot be fetched, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Where in the file it is, e.g. `line 7` or `package demo`.
    pub origin: String,
    /// Why, in one line.
    pub reason: String,
}

/// A sha256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256(String);

impl Sha256 {
    /// Accepts 64 hex digits in either case.
    pub fn parse(hex: &str) -> Option<Sha256> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Sha256(hex.to_ascii_lowercase()))
    }

    /// The lowercase hex digits.
    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file that cannot be read as its kind at all.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LockError(String);

impl LockError {
    fn toml(kind: LockKind, err: &toml::de::Error) -> LockError {
        // The first line only: the error's Display draws the offending line underneath.
        let message = err.message().lines().next().unwrap_or("syntax error");
        let place = err
            .span()
            .map(|span| format!(" (at byte {})", span.start))
            .unwrap_or_default();
        LockError(format!("not a valid {kind}: {message}{place}"))
    }
}

/// The filename a URL or path ends in (query and fragment dropped, percent-escapes decoded), if
/// it has one.
fn last_segment(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let segment = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()?
        .into_owned();
    valid_filename(&decoded).then_some(decoded)
}

/// Whether `name` can be a file's name on an index page: not empty, no path separators or
/// control characters.
fn valid_filename(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

/// A locked file's name: as the lock gives it (in its `field`), else the name its URL or path
/// ends in; an error when the given name is no plain filename.
fn locked_filename(
    given: Option<&str>,
    field: &str,
    url: Option<&str>,
    path: Option<&str>,
) -> Result<Option<String>, String> {
    match given {
        Some(name) if valid_filename(name) => Ok(Some(name.to_owned())),
        Some(name) => Err(format!("{field} {} is not a plain filename", quote(name))),
        None => Ok(url.or(path).and_then(last_segment)),
    }
}

impl Lock {
    /// Records one package's files: an entry with each file that could be read, a refusal for
    /// each that could not, and `none_listed` when the package lists no file at all.
    fn add_files(
        &mut self,
        name: String,
        origin: String,
        files: Vec<Result<LockedFile, String>>,
        none_listed: &str,
    ) {
        if files.is_empty() {
            self.refused.push(refused(origin.clone(), none_listed));
        }
        let mut locked = Vec::new();
        for file in files {
            match file {
                Ok(file) => locked.push(file),
                Err(reason) => self.refused.push(Refused {
                    origin: origin.clone(),
                    reason,
                }),
            }
        }
        if !locked.is_empty() {
            self.entries.push(Entry {
                name,
                origin,
                want: Want::Files(locked),
            });
        }
    }
}

/// A refusal, with the offending text quoted safely.
fn refused(origin: impl Into<String>, reason: impl Into<String>) -> Refused {
    Refused {
        origin: quote(&origin.into()),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name_then_content() {
        assert_eq!(detect_kind("uv.lock", ""), LockKind::UvLock);
        assert_eq!(detect_kind("pylock.toml", ""), LockKind::Pylock);
        assert_eq!(detect_kind("pylock.dev.toml", ""), LockKind::Pylock);
        assert_eq!(
            detect_kind("requirements.txt", "a==1"),
            LockKind::Requirements
        );
        assert_eq!(
            detect_kind("lock.toml", "lock-version = \"1.0\"\n"),
            LockKind::Pylock
        );
        assert_eq!(
            detect_kind("other.lock", "version = 1\n[[package]]\nname = \"a\"\n"),
            LockKind::UvLock
        );
        assert_eq!(detect_kind("x.toml", "not toml ="), LockKind::Requirements);
    }

    #[test]
    fn sha256_is_checked_and_lowercased() {
        let upper = "AB".repeat(32);
        assert_eq!(Sha256::parse(&upper).unwrap().as_hex(), "ab".repeat(32));
        assert!(Sha256::parse("ab").is_none());
        assert!(Sha256::parse(&"zz".repeat(32)).is_none());
    }

    #[test]
    fn last_segments() {
        assert_eq!(
            last_segment("https://h.invalid/p/a/demo-1.0.tar.gz#sha256=00").as_deref(),
            Some("demo-1.0.tar.gz")
        );
        assert_eq!(
            last_segment("http://h.invalid/f/demo%2B1-1.0-py3-none-any.whl?x=1").as_deref(),
            Some("demo+1-1.0-py3-none-any.whl")
        );
        assert_eq!(
            last_segment("../wheels/demo-1.0.tar.gz").as_deref(),
            Some("demo-1.0.tar.gz")
        );
        assert_eq!(last_segment("https://h.invalid/dir/"), None);
        assert_eq!(last_segment("https://h.invalid/a%2Fb"), None);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    /// Lines made of the pieces requirement files and locks are built from, to reach deeper than
    /// random bytes would.
    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            ".*",
            "[a-zA-Z_.-]{0,8}(==|===|>=|@)?[0-9.*]{0,6}( ; python_version < '3')?",
            "(-e|-r|--hash|--index-url|#)[= ]?[a-z0-9:]{0,70}",
            "\\[\\[?(package|packages|packages.wheels)\\]\\]?",
            "(name|version|lock-version|url|hash|hashes|source|sdist|wheels|filename|path) = (\"[a-z0-9:./%-]{0,12}\"|1|\\{ [a-z]+ = \"[a-z0-9:./]{0,70}\" \\}|\\[\\])",
            "\\\\",
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(lines in proptest::collection::vec(line(), 0..24)) {
            let text = lines.join("\n");
            let _ = parse_requirements(&text);
            let _ = parse_pylock(&text);
            let _ = parse_uv_lock(&text);
            let _ = detect_kind("x.toml", &text);
        }

        #[test]
        fn valid_filename_never_accepts_separators(name in ".*") {
            if valid_filename(&name) {
                prop_assert!(!name.contains('/') && !name.contains('\\'));
            }
        }
    }
}
