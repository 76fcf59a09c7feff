//! The links of a hand-written index page, and where they point.
//!
//! Written by hand rather than with an HTML parser crate: the job is narrow (the `href` of each
//! `<a>` in pages people typed for nginx to serve), and the parsers that handle all of HTML
//! (html5ever, scraper) are large builds for it. The scanner follows the HTML tokenizer's rules
//! for what matters here: tag names and attribute names are case-insensitive, values are
//! double-quoted, single-quoted or unquoted, comments are skipped, and character references in
//! values are decoded. It never panics on any input (property-tested below).

use percent_encoding::percent_decode_str;

/// The `href` of every `<a>` element, character references decoded, in page order.
pub fn hrefs(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let is_anchor = rest.len() >= 2
            && rest.as_bytes()[0].eq_ignore_ascii_case(&b'a')
            && matches!(
                rest.as_bytes()[1],
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>'
            );
        if !is_anchor {
            continue;
        }
        let (href, after) = anchor_href(&rest[1..]);
        if let Some(href) = href {
            found.push(decode_references(&href));
        }
        rest = after;
    }
    found
}

/// Reads the attributes of a start tag up to its `>`: the first `href` value, and what follows.
fn anchor_href(mut rest: &str) -> (Option<String>, &str) {
    let mut href = None;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return (href, rest);
        }
        if let Some(after) = rest.strip_prefix('>') {
            return (href, after);
        }
        let name_len = rest
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '/' | '>' | '='))
            .unwrap_or(rest.len())
            .max(1.min(rest.len()));
        let (name, after_name) = split_at_char(rest, name_len);
        rest = after_name.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let value = match rest.strip_prefix('=') {
            Some(after_eq) => {
                let (value, after) = attribute_value(after_eq);
                rest = after;
                value
            }
            None => "",
        };
        if href.is_none() && name.eq_ignore_ascii_case("href") {
            href = Some(value.to_owned());
        }
    }
}

/// Splits at `at` bytes, moved forward to a character boundary.
fn split_at_char(text: &str, mut at: usize) -> (&str, &str) {
    while !text.is_char_boundary(at) {
        at += 1;
    }
    text.split_at(at)
}

/// A quoted or unquoted attribute value, and what follows it.
fn attribute_value(rest: &str) -> (&str, &str) {
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
    for quote in ['"', '\''] {
        if let Some(inner) = rest.strip_prefix(quote) {
            return match inner.find(quote) {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => (inner, ""),
            };
        }
    }
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '>')
        .unwrap_or(rest.len());
    (&rest[..end], &rest[end..])
}

/// Decodes the character references a hand-written `href` may hold: the five XML ones and
/// numeric ones (`&#47;`, `&#x2F;`). Anything else stays as written.
fn decode_references(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let c = match &rest[1..end] {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                name => numeric_reference(name)?,
            };
            Some((c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn numeric_reference(name: &str) -> Option<char> {
    let digits = name.strip_prefix('#')?;
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    char::from_u32(code)
}

/// Where a link points, as far as an import cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A file in the tree: its path segments from the tree's root (percent-decoded), and the
    /// SHA-256 the link's fragment gives, if any.
    File {
        /// Path segments below the tree's root; the last is the filename.
        segments: Vec<String>,
        /// `#sha256=<hex>`, lower-cased.
        sha256: Option<String>,
    },
    /// A link to a page rather than a file (`../`, `index.html`): not a distribution.
    Page,
    /// A link that cannot be imported, and why.
    Unusable(String),
}

/// Resolves `href` against the page whose directory is `page_dir` (path segments from the tree's
/// root, e.g. `["simple", "foo"]` for `/simple/foo/index.html`), as a browser would against
/// `http://host/simple/foo/`, and maps the result to the tree: an absolute path `/packages/x`
/// is `SOURCE/packages/x`.
pub fn resolve(href: &str, page_dir: &[String]) -> Link {
    let href = href.trim();
    let (rest, fragment) = href.split_once('#').unwrap_or((href, ""));
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.starts_with("//") || has_scheme(path) {
        return Link::Unusable(format!(
            "the link '{}' is a URL of another server: download the file into the tree and link \
             it with a relative path to import it",
            href.escape_default()
        ));
    }
    let sha256 = match link_sha256(fragment) {
        Ok(sha256) => sha256,
        Err(reason) => return Link::Unusable(reason),
    };
    let mut segments: Vec<String> = match path.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => page_dir.to_vec(),
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        match part {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Link::Unusable(format!(
                        "the link '{}' leads out of the tree",
                        href.escape_default()
                    ));
                }
            }
            encoded => match decode_segment(encoded) {
                Ok(segment) => segments.push(segment),
                Err(reason) => return Link::Unusable(reason),
            },
        }
        // A link ending in a directory (`../`, `./`, `sub/`) names a page, not a file.
        if i == last && matches!(part, "" | "." | "..") {
            return Link::Page;
        }
    }
    match segments.last() {
        Some(name) if !is_page_name(name) => Link::File { segments, sha256 },
        _ => Link::Page,
    }
}

fn is_page_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm")
}

fn has_scheme(path: &str) -> bool {
    match path.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// The `sha256=` value of a link's fragment; other hash names (`md5=`, ...) are not checked.
fn link_sha256(fragment: &str) -> Result<Option<String>, String> {
    let Some((name, value)) = fragment.split_once('=') else {
        return Ok(None);
    };
    if !name.eq_ignore_ascii_case("sha256") {
        return Ok(None);
    }
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Some(value.to_ascii_lowercase()))
    } else {
        Err(format!(
            "the link's '#sha256=' value '{}' is not 64 hexadecimal characters: correct the page",
            value.escape_default()
        ))
    }
}

/// Percent-decodes one path segment; it must stay one plain segment.
fn decode_segment(encoded: &str) -> Result<String, String> {
    let decoded = percent_decode_str(encoded).decode_utf8().map_err(|_| {
        format!(
            "the link segment '{}' is not UTF-8 once decoded",
            encoded.escape_default()
        )
    })?;
    if decoded.contains(['/', '\\', '\0']) || decoded == "." || decoded == ".." {
        return Err(format!(
            "the link segment '{}' decodes to a path, not a name",
            encoded.escape_default()
        ));
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dir(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| (*p).to_owned()).collect()
    }

    fn file(parts: &[&str], sha256: Option<&str>) -> Link {
        Link::File {
            segments: dir(parts),
            sha256: sha256.map(str::to_owned),
        }
    }

    #[test]
    fn anchors_quoted_either_way_or_not_at_all() {
        let page = r#"<html><body>
            <a href="a-1.0.tar.gz">a</a>
            <A HREF='b-1.0.tar.gz'>b</A>
            <a class=x href=c-1.0.tar.gz>c</a>
            <a
               title="x > y" href = "d&amp;e.whl" >d</a>
            <!-- <a href="commented.whl"> -->
            <abbr href="not-a-link.whl"></abbr>
            <a name="no-href">n</a>
            <link href="style.css">
        </body></html>"#;
        assert_eq!(
            hrefs(page),
            ["a-1.0.tar.gz", "b-1.0.tar.gz", "c-1.0.tar.gz", "d&e.whl"]
        );
    }

    #[test]
    fn character_references_are_decoded() {
        assert_eq!(
            decode_references("a&#47;b&#x2F;c&quot;&unknown;&"),
            "a/b/c\"&unknown;&"
        );
    }

    #[test]
    fn relative_dot_and_absolute_paths_resolve_into_the_tree() {
        let page = dir(&["simple", "foo"]);
        let sha = "ab".repeat(32);
        assert_eq!(
            resolve("foo-1.0.tar.gz", &page),
            file(&["simple", "foo", "foo-1.0.tar.gz"], None)
        );
        assert_eq!(
            resolve(
                &format!("./foo-1.0.whl#sha256={}", sha.to_uppercase()),
                &page
            ),
            file(&["simple", "foo", "foo-1.0.whl"], Some(&sha))
        );
        assert_eq!(
            resolve("../../packages/foo-1.0.whl#md5=00", &page),
            file(&["packages", "foo-1.0.whl"], None)
        );
        assert_eq!(
            resolve("/packages/foo-1.0.whl?x=1", &page),
            file(&["packages", "foo-1.0.whl"], None)
        );
        assert_eq!(
            resolve("foo%2B1-1.0%20x.whl", &page),
            file(&["simple", "foo", "foo+1-1.0 x.whl"], None)
        );
    }

    #[test]
    fn pages_are_not_files() {
        let page = dir(&["simple", "foo"]);
        for href in [
            "../",
            "./",
            "..",
            "index.html",
            "/simple/",
            "",
            "#top",
            "sub/",
        ] {
            assert_eq!(resolve(href, &page), Link::Page, "{href}");
        }
    }

    #[test]
    fn unusable_links_say_why() {
        let page = dir(&["simple", "foo"]);
        for (href, words) in [
            ("https://example.invalid/x.whl", "URL of another server"),
            ("//example.invalid/x.whl", "URL of another server"),
            ("../../../x.whl", "leads out of the tree"),
            ("x.whl#sha256=abc", "not 64 hexadecimal"),
            ("a%2Fb.whl", "decodes to a path"),
            ("%2e%2e", "decodes to a path"),
            ("%ff.whl", "not UTF-8"),
        ] {
            match resolve(href, &page) {
                Link::Unusable(reason) => assert!(reason.contains(words), "{href}: {reason}"),
                other => panic!("{href}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn scanning_never_panics(html in ".{0,300}") {
            let _ = hrefs(&html);
        }

        #[test]
        fn scanning_tag_soup_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("<a".to_owned()), Just("<A ".to_owned()), Just("href".to_owned()),
                    Just("=".to_owned()), Just("\"".to_owned()), Just("'".to_owned()),
                    Just(">".to_owned()), Just("<!--".to_owned()), Just("-->".to_owned()),
                    Just("&#x".to_owned()), Just(";".to_owned()), Just("/".to_owned()),
                    ".{0,4}",
                ],
                0..40,
            )
        ) {
            let _ = hrefs(&parts.concat());
        }

        #[test]
        fn resolving_never_panics_nor_leaves_the_tree(href in ".{0,80}", depth in 0usize..3) {
            let page: Vec<String> = (0..depth).map(|i| format!("d{i}")).collect();
            if let Link::File { segments, .. } = resolve(&href, &page) {
                prop_assert!(!segments.is_empty());
                for s in &segments {
                    prop_assert!(!s.is_empty() && s != "." && s != ".." && !s.contains('/'));
                }
            }
        }

        #[test]
        fn a_quoted_href_is_found_whatever_it_holds(value in "[^\"&<]{0,40}") {
            let page = format!("<p><a href=\"{value}\">x</a></p>");
            prop_assert_eq!(hrefs(&page), vec![value]);
        }
    }
}
