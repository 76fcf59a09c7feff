//! pip requirements files with exact pins: `pip freeze` and `pip-compile --generate-hashes`
//! output.
//!
//! Read like pip reads them: `\` continues a line, `#` at the start or after whitespace starts a
//! comment, global options (`--index-url`, `--only-binary`, ...) apply to installing and are
//! ignored here, `--hash` options belong to the requirement before them. Environment markers are
//! ignored: every pinned line is fetched, since the machine that mirrors is rarely the one that
//! builds. A requirement must pin one version (`==1.0` or `===1.0`).

use pep440_rs::Operator;
use pep508_rs::VersionOrUrl;

use super::{Entry, Lock, Sha256, Want, refused};
use crate::metadata::requirement::parse_requirement;

/// Options that apply to the whole install; nothing to fetch. Those taking a value may have it
/// after `=` or as the next word; either way the line holds nothing else of interest.
const GLOBAL_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--require-hashes",
    "--use-feature",
    "-c",
    "--constraint",
];

/// Parses a requirements file. Never fails as a whole: each line that cannot be fetched is
/// refused with its line number.
pub fn parse_requirements(text: &str) -> Lock {
    let mut lock = Lock::default();
    for (number, line) in logical_lines(text) {
        let origin = format!("line {number}");
        match parse_line(&line) {
            Line::Nothing => {}
            Line::Entry(name, want) => lock.entries.push(Entry { name, origin, want }),
            Line::Refused(reason) => lock.refused.push(refused(origin, reason)),
        }
    }
    lock
}

/// What one logical line holds.
enum Line {
    Nothing,
    Entry(String, Want),
    Refused(String),
}

/// The file's lines with continuations joined and comments removed, each with the number of its
/// first physical line; blank ones left out.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        joined.push_str(strip_comment(raw));
        if let Some(stripped) = joined.strip_suffix('\\') {
            pending = Some((start, stripped.to_owned()));
            continue;
        }
        out.push((start, joined));
    }
    out.extend(pending);
    out.retain(|(_, line)| !line.trim().is_empty());
    out
}

/// A line without its comment: `#` at its start or after whitespace, as pip has it.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

fn parse_line(line: &str) -> Line {
    let line = line.trim();
    if line.starts_with('-') {
        return parse_option_line(line);
    }
    // The requirement runs up to its first option (`--hash=...`).
    let (requirement, options) = match line.find(" -") {
        Some(at) => (&line[..at], &line[at..]),
        None => (line, ""),
    };
    let sha256 = match parse_hashes(options) {
        Ok(sha256) => sha256,
        Err(reason) => return Line::Refused(reason),
    };
    match pinned(requirement.trim()) {
        Ok((name, version)) => Line::Entry(name, Want::Pin { version, sha256 }),
        Err(reason) => Line::Refused(reason),
    }
}

/// A line that starts with an option: a global one (ignored) or one that names something the
/// index cannot serve.
fn parse_option_line(line: &str) -> Line {
    let option = line
        .split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    match option {
        "-e" | "--editable" => Line::Refused(
            "an editable install (-e) is built from its source, not fetched from an index"
                .to_owned(),
        ),
        "-r" | "--requirement" => Line::Refused(
            "includes another requirements file, which is not followed: run `pyindex mirror -r` \
             on that file too"
                .to_owned(),
        ),
        _ if GLOBAL_OPTIONS.contains(&option) => Line::Nothing,
        _ => Line::Refused(format!("unknown option {}", crate::text::quote(option))),
    }
}

/// The sha256 hashes among `--hash=ALG:HEX` options. Other algorithms are refused unless a
/// sha256 is given as well, since only sha256 is checked.
fn parse_hashes(options: &str) -> Result<Vec<Sha256>, String> {
    let mut words = options.split_whitespace();
    let mut sha256 = Vec::new();
    let mut others = 0;
    while let Some(word) = words.next() {
        let value = match word.split_once('=') {
            Some(("--hash", value)) => value,
            None if word == "--hash" => words.next().unwrap_or_default(),
            _ => {
                return Err(format!(
                    "unsupported requirement option {}",
                    crate::text::quote(word)
                ));
            }
        };
        match value.split_once(':') {
            Some(("sha256", hex)) => match Sha256::parse(hex) {
                Some(hash) => sha256.push(hash),
                None => {
                    return Err(format!(
                        "--hash=sha256:{} is not 64 hex digits",
                        crate::text::quote(hex)
                    ));
                }
            },
            Some(("sha384" | "sha512", _)) => others += 1,
            _ => {
                return Err(format!(
                    "--hash {} is not ALGORITHM:HEX",
                    crate::text::quote(value)
                ));
            }
        }
    }
    if sha256.is_empty() && others > 0 {
        return Err("gives only sha384/sha512 hashes; pyindex mirror checks sha256".to_owned());
    }
    Ok(sha256)
}

/// The name and the one version a requirement pins.
fn pinned(requirement: &str) -> Result<(String, String), String> {
    if requirement.contains("://") && !requirement.contains('@')
        || requirement.starts_with(['.', '/'])
    {
        return Err(format!(
            "{} is a path or URL, not a package from an index",
            crate::text::quote(requirement)
        ));
    }
    let parsed = parse_requirement(requirement)
        .map_err(|message| format!("not a valid requirement: {message}"))?;
    let name = parsed.name.to_string();
    match &parsed.version_or_url {
        Some(VersionOrUrl::Url(url)) => Err(format!(
            "{name} @ {url} is a direct URL reference, not a package from an index"
        )),
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => match &specifiers[..] {
            [one] if matches!(one.operator(), Operator::Equal | Operator::ExactEqual) => {
                Ok((name, one.version().to_string()))
            }
            _ => Err(not_pinned(&name)),
        },
        None => Err(not_pinned(&name)),
    }
}

fn not_pinned(name: &str) -> String {
    format!(
        "{name} is not pinned to one version (==VERSION); mirror the output of `pip freeze` or a \
         lock file"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn pip_freeze_output() {
        let text = "\
# generated by pip freeze
certifi==2024.8.30
charset-normalizer==3.4.0
Flask_Login==0.6.3  # a comment
idna===3.10
pywin32==306 ; sys_platform == 'win32'
";
        let lock = parse_requirements(text);
        assert!(lock.refused.is_empty(), "{:?}", lock.refused);
        let pins: Vec<(String, String, String)> = lock
            .entries
            .iter()
            .map(|e| match &e.want {
                Want::Pin { version, sha256 } => {
                    assert!(sha256.is_empty());
                    (e.name.clone(), version.clone(), e.origin.clone())
                }
                Want::Files(_) => panic!("a pin"),
            })
            .collect();
        assert_eq!(
            pins,
            [
                ("certifi", "2024.8.30", "line 2"),
                ("charset-normalizer", "3.4.0", "line 3"),
                ("flask-login", "0.6.3", "line 4"),
                ("idna", "3.10", "line 5"),
                ("pywin32", "306", "line 6"),
            ]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        );
    }

    #[test]
    fn pip_compile_hashes_across_continuations() {
        let text = format!(
            "--index-url http://127.0.0.1:9001/simple/\n--only-binary :all:\n\
             demo==1.0 \\\n    --hash=sha256:{} \\\n    --hash sha256:{}\n    # via app\n\
             other==2.0 --hash=sha384:{} --hash=sha256:{}\n",
            hash('a'),
            hash('B'),
            "c".repeat(96),
            hash('d')
        );
        let lock = parse_requirements(&text);
        assert!(lock.refused.is_empty(), "{:?}", lock.refused);
        assert_eq!(lock.entries.len(), 2);
        assert_eq!(lock.entries[0].origin, "line 3");
        assert_eq!(
            lock.entries[0].want,
            Want::Pin {
                version: "1.0".to_owned(),
                sha256: vec![
                    Sha256::parse(&hash('a')).unwrap(),
                    Sha256::parse(&hash('b')).unwrap()
                ],
            }
        );
        assert_eq!(lock.entries[1].origin, "line 7");
        assert!(matches!(&lock.entries[1].want, Want::Pin { sha256, .. } if sha256.len() == 1));
    }

    #[test]
    fn what_cannot_be_fetched_is_refused_by_line() {
        let text = "\
-e git+https://git.invalid/app.git#egg=app
-r base.txt
./local/pkg
https://h.invalid/demo-1.0.tar.gz
demo @ https://h.invalid/demo-1.0.tar.gz
loose>=1.0
bare
star==1.*
bad==1.0 --hash=md5:abc
short==1.0 --hash=sha256:abc
only384==1.0 --hash=sha384:abc
--frobnicate
not a requirement ===
ok==1.0
";
        let lock = parse_requirements(text);
        assert_eq!(lock.entries.len(), 1);
        assert_eq!(lock.entries[0].origin, "line 14");
        let lines: Vec<&str> = lock.refused.iter().map(|r| r.origin.as_str()).collect();
        assert_eq!(
            lines,
            (1..=13).map(|n| format!("line {n}")).collect::<Vec<_>>()
        );
        assert!(lock.refused[0].reason.contains("editable"));
        assert!(lock.refused[1].reason.contains("pyindex mirror -r"));
        assert!(lock.refused[3].reason.contains("path or URL"));
        assert!(lock.refused[4].reason.contains("direct URL"));
        assert!(lock.refused[5].reason.contains("not pinned"));
        assert!(lock.refused[10].reason.contains("checks sha256"));
    }

    #[test]
    fn hash_inside_a_word_is_not_a_comment() {
        let lock = parse_requirements("demo==1.0#frag\n");
        // `1.0#frag` is not a version: refused, not silently read as `demo==1.0`.
        assert_eq!(lock.refused.len(), 1);
        assert!(lock.entries.is_empty());
    }

    #[test]
    fn trailing_continuation_at_end_of_file() {
        let lock = parse_requirements("demo==1.0 \\");
        assert_eq!(lock.entries.len(), 1);
    }
}
