//! A release's description as HTML, by its Description-Content-Type, the way the public index
//! renders READMEs: Markdown (GitHub-flavoured) through comrak, then sanitized by ammonia
//! (raw HTML in Markdown is allowed in, then everything executable is taken out); every other
//! type (reStructuredText, plain text) as escaped preformatted text.
//!
//! reStructuredText is not rendered because no Rust renderer is fit to run on uploaded text:
//! `rst_renderer` 0.4.2 panics (`not implemented`) on an ordinary README with a badge, a
//! code block and a named link, and `docutils-core` 0.1.0 (a first release) did not finish
//! within 30 s on a 1.3 kB license text. Rendering is pure and synchronous; callers run it
//! off the async runtime and store the result, so it runs once per release.

use std::borrow::Cow;
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use comrak::{Options, markdown_to_html};

/// The schemes a link or image in a README may use.
pub const URL_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// How a description is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// GitHub-flavoured Markdown.
    Markdown,
    /// CommonMark without GitHub's extensions (`text/markdown; variant=CommonMark`).
    CommonMark,
    /// Preformatted text (reStructuredText, plain text, unknown types).
    Preformatted,
}

impl Format {
    /// The format for a Description-Content-Type (`None`: plain text).
    pub fn of(content_type: Option<&str>) -> Format {
        let Some(content_type) = content_type else {
            return Format::Preformatted;
        };
        let mut parts = content_type.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default();
        if !mime.eq_ignore_ascii_case("text/markdown") {
            return Format::Preformatted;
        }
        let common_mark = parts.any(|p| {
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("variant")
                    && v.trim()
                        .trim_matches('"')
                        .eq_ignore_ascii_case("commonmark")
            })
        });
        if common_mark {
            Format::CommonMark
        } else {
            Format::Markdown
        }
    }
}

/// A rendered description, safe to put into a page as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Sanitized HTML (for Markdown) or the escaped text in a `<pre>`.
    pub html: String,
}

/// The HTML shown for a description with the given Description-Content-Type: empty when
/// there is no description (or only white space).
pub fn render_description(description: Option<&str>, content_type: Option<&str>) -> String {
    match description {
        Some(text) if !text.trim().is_empty() => render(text, Format::of(content_type)).html,
        _ => String::new(),
    }
}

/// Renders `text` in `format`.
pub fn render(text: &str, format: Format) -> Rendered {
    let html = match format {
        Format::Markdown | Format::CommonMark => {
            let mut options = Options::default();
            let gfm = format == Format::Markdown;
            options.extension.table = gfm;
            options.extension.strikethrough = gfm;
            options.extension.autolink = gfm;
            options.extension.tasklist = gfm;
            // Raw HTML passes the renderer; the sanitizer decides what stays.
            options.render.r#unsafe = true;
            SANITIZER
                .clean(&markdown_to_html(text, &options))
                .to_string()
        }
        Format::Preformatted => format!("<pre class=\"readme-text\">{}</pre>", escape(text)),
    };
    Rendered { html }
}

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut builder = Builder::default();
    builder
        .url_schemes(URL_SCHEMES.into_iter().collect())
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("nofollow noopener noreferrer"))
        // Task-list check boxes: only disabled check boxes survive (see `attribute`).
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .attribute_filter(attribute);
    builder
});

/// Keeps an `<input>` only as a check box.
fn attribute<'a>(element: &str, attribute: &str, value: &'a str) -> Option<Cow<'a, str>> {
    if element == "input" && attribute == "type" && value != "checkbox" {
        return None;
    }
    Some(Cow::Borrowed(value))
}

/// `text` with the five HTML-significant characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_content_type() {
        assert_eq!(Format::of(Some("text/markdown")), Format::Markdown);
        assert_eq!(
            Format::of(Some("text/markdown; charset=UTF-8; variant=GFM")),
            Format::Markdown
        );
        assert_eq!(
            Format::of(Some("text/markdown; variant=CommonMark")),
            Format::CommonMark
        );
        assert_eq!(Format::of(Some("text/x-rst")), Format::Preformatted);
        assert_eq!(Format::of(Some("text/plain")), Format::Preformatted);
        assert_eq!(Format::of(None), Format::Preformatted);
    }

    #[test]
    fn markdown_renders_tables_code_and_task_lists() {
        let html = render(
            "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('x')\n```\n\n- [x] done\n\n~~old~~ https://example.invalid/\n",
            Format::Markdown,
        )
        .html;
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<td>1</td>"), "{html}");
        assert!(html.contains("<code"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
        assert!(html.contains("type=\"checkbox\""), "{html}");
        assert!(
            html.contains("<a href=\"https://example.invalid/\""),
            "{html}"
        );
    }

    #[test]
    fn nothing_executable_survives() {
        let hostile = "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
            [a](javascript:alert(3)) [b](vbscript:msgbox(4)) [c](data:text/html,<script>5</script>)\n\n\
            <a href=\"JaVaScRiPt:alert(6)\">x</a> <iframe src=\"https://example.invalid\"></iframe>\n\n\
            <input type=\"text\" onfocus=\"alert(7)\" autofocus> <style>body{}</style> <svg onload=alert(8)>";
        let html = render(hostile, Format::Markdown).html.to_lowercase();
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "vbscript:",
            "data:",
            "<iframe",
            "onfocus",
            "type=\"text\"",
            "<style",
            "<svg",
            "onload",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn descriptions_render_by_their_content_type() {
        assert_eq!(render_description(None, Some("text/markdown")), "");
        assert_eq!(render_description(Some(" \n"), Some("text/markdown")), "");
        assert_eq!(
            render_description(Some("*hi*"), Some("text/markdown")),
            "<p><em>hi</em></p>\n"
        );
        assert_eq!(
            render_description(Some("*hi*"), Some("text/x-rst")),
            "<pre class=\"readme-text\">*hi*</pre>"
        );
    }

    #[test]
    fn other_types_are_escaped_text() {
        let html = render("<script>alert(1)</script>\n=====", Format::Preformatted).html;
        assert_eq!(
            html,
            "<pre class=\"readme-text\">&lt;script&gt;alert(1)&lt;/script&gt;\n=====</pre>"
        );
    }
}
