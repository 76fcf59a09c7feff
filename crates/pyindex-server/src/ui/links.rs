//! Links taken from uploaded metadata (project URLs, home page, author e-mail): only `http`,
//! `https` and `mailto` URLs become links; anything else is shown as text or not at all.

/// A link for a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// What the link says.
    pub label: String,
    /// Where it goes: an `http`, `https` or `mailto` URL.
    pub href: String,
}

/// `url` if it is an absolute `http`, `https` or `mailto` URL without spaces or control
/// characters (which browsers strip, hiding a scheme such as `java\tscript:`).
pub fn safe_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once(':')?;
    let allowed = match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => rest.starts_with("//") && rest.len() > 2,
        "mailto" => !rest.is_empty(),
        _ => false,
    };
    allowed.then(|| url.to_owned())
}

/// A `mailto:` link for an e-mail field such as `Jane <jane@example.invalid>`, if it holds an
/// address that looks like one.
pub fn mail_link(field: &str) -> Option<Link> {
    let address = match (field.find('<'), field.rfind('>')) {
        (Some(start), Some(end)) if start < end => &field[start + 1..end],
        _ => field,
    }
    .trim();
    let valid = address.contains('@')
        && address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(c));
    valid.then(|| Link {
        label: field.trim().to_owned(),
        href: format!("mailto:{address}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_and_mail_urls_pass() {
        for ok in [
            "https://example.invalid/x?y=1",
            "http://h/",
            "HTTPS://H/",
            "mailto:a@b.invalid",
        ] {
            assert_eq!(safe_url(ok).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "java\tscript:alert(1)",
            " vbscript:x",
            "data:text/html,<script>alert(1)</script>",
            "//example.invalid/",
            "/relative",
            "https:alert(1)",
            "https://a b",
            "",
        ] {
            assert_eq!(safe_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mail_links_need_a_plain_address() {
        assert_eq!(
            mail_link("Jane <jane@example.invalid>").unwrap().href,
            "mailto:jane@example.invalid"
        );
        assert_eq!(mail_link("\"><script>@x"), None);
        assert_eq!(mail_link("nobody"), None);
    }
}
