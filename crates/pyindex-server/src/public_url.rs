//! The URL clients use to reach the index (`--public-url`), for a server behind a reverse
//! proxy or a name other than its listen address: redirects point there and pages show it.

use axum::response::Response;
use http::{HeaderValue, Uri, header};

/// A validated public URL: `http` or `https`, a host, an optional port, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `scheme://authority`, without a trailing slash.
    base: String,
    /// The host name, lowercase, without port or brackets.
    host: String,
}

impl PublicUrl {
    /// Checks a `--public-url` value. Index pages link to absolute paths (`/files/...`), so
    /// the index must be at the root of its host: a path other than `/` is refused, as are a
    /// query, a fragment and user information.
    pub fn parse(value: &str) -> Result<PublicUrl, String> {
        let refuse = |why: &str| {
            format!(
                "--public-url '{value}' {why}; give the scheme and host clients use, e.g. \
                 --public-url https://pypi.example.internal"
            )
        };
        if value.contains(['?', '#']) {
            return Err(refuse("has a query or fragment"));
        }
        let uri: Uri = value.parse().map_err(|_| refuse("is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
                s.to_ascii_lowercase()
            }
            _ => return Err(refuse("does not start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| refuse("names no host"))?;
        if authority.as_str().contains('@') {
            return Err(refuse("holds user information"));
        }
        // Shown in pages as it is: only characters that mean nothing in HTML or a shell.
        if !authority
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
        {
            return Err(refuse("has characters no host name has"));
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(refuse(
                "has a path: pyindex must be served at the root of its host name, since index \
                 pages link to absolute paths such as /files/...",
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(refuse("names no host"));
        }
        Ok(PublicUrl {
            base: format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()),
            host,
        })
    }

    /// `scheme://host[:port]`, to which absolute paths are appended.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The host name, for the `Host` check.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL of an absolute path (`/simple/...`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl PublicUrl {
    /// A `Location` that is an absolute path becomes an absolute URL on the public URL, so a
    /// client behind a proxy that rewrites nothing is sent to the right place.
    pub fn absolute_location(&self, response: &mut Response) {
        let absolute = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|location| location.starts_with('/') && !location.starts_with("//"))
            .and_then(|path| HeaderValue::from_str(&self.join(path)).ok());
        if let Some(value) = absolute {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_origins() {
        let url = PublicUrl::parse("https://PyPI.Example.internal/").unwrap();
        assert_eq!(url.base(), "https://pypi.example.internal");
        assert_eq!(url.host(), "pypi.example.internal");
        assert_eq!(
            url.join("/simple/a/"),
            "https://pypi.example.internal/simple/a/"
        );
        let url = PublicUrl::parse("http://[::1]:8443").unwrap();
        assert_eq!(url.base(), "http://[::1]:8443");
        assert_eq!(url.host(), "::1");
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in [
            "pypi.example.internal",
            "ftp://pypi.example.internal",
            "https://pypi.example.internal/pypi/",
            "https://pypi.example.internal/?x=1",
            "https://pypi.example.internal/#top",
            "https://user:pw@pypi.example.internal",
            "https://pypi.example.internal'x",
            "https://",
            "",
        ] {
            let err = PublicUrl::parse(bad).unwrap_err();
            assert!(err.contains("--public-url"), "{bad}: {err}");
        }
    }

    #[test]
    fn rewrites_path_locations_only() {
        use axum::response::IntoResponse;
        let public = PublicUrl::parse("https://pypi.internal").unwrap();
        let location = |to: &'static str| {
            let mut response = (
                [(header::LOCATION, to)],
                http::StatusCode::MOVED_PERMANENTLY,
            )
                .into_response();
            public.absolute_location(&mut response);
            response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            location("/simple/a/?x=1"),
            "https://pypi.internal/simple/a/?x=1"
        );
        assert_eq!(
            location("https://elsewhere.internal/"),
            "https://elsewhere.internal/"
        );
        assert_eq!(location("//elsewhere.internal/"), "//elsewhere.internal/");
    }
}
