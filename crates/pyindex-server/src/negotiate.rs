//! Content negotiation for the simple API (PEP 691; standards B1-B7) and for compression.

/// A serialization of the simple API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/vnd.pypi.simple.v1+json`
    Json,
    /// `application/vnd.pypi.simple.v1+html`
    V1Html,
    /// `text/html`
    TextHtml,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/vnd.pypi.simple.v1+json",
            Format::V1Html => "application/vnd.pypi.simple.v1+html; charset=utf-8",
            Format::TextHtml => "text/html; charset=utf-8",
        }
    }

    /// Whether the format is HTML.
    pub fn is_html(self) -> bool {
        !matches!(self, Format::Json)
    }

    /// The format named exactly by a media type, in any case, if any (`latest` aliases `v1`).
    fn named(media_type: &str) -> Option<Format> {
        const NAMES: [(&str, Format); 5] = [
            ("application/vnd.pypi.simple.v1+json", Format::Json),
            ("application/vnd.pypi.simple.latest+json", Format::Json),
            ("application/vnd.pypi.simple.v1+html", Format::V1Html),
            ("application/vnd.pypi.simple.latest+html", Format::V1Html),
            ("text/html", Format::TextHtml),
        ];
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(media_type))
            .map(|&(_, format)| format)
    }
}

/// The message of a 406 response.
pub const NOT_ACCEPTABLE: &str = "None of the media types in the Accept header (or ?format=) can be served. \
This index serves application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html and text/html.\n";

/// Preference among exactly-named offers at equal q: JSON, then v1 HTML, then text/html.
const OFFERS: [Format; 3] = [Format::Json, Format::V1Html, Format::TextHtml];

/// One member of an `Accept` header, borrowed from it: negotiation runs on every index request,
/// so it allocates nothing (media types are compared ignoring ASCII case instead of lowercased).
struct Range<'a> {
    media_type: &'a str,
    q: u16,
}

/// Parses a q-value (`0`, `0.5`, `1.000`) into thousandths; `None` if malformed.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // "5" -> 500, "25" -> 250, "125" -> 125.
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The well-formed members of an `Accept` header, in order.
fn parse_accept(header: &str) -> impl Iterator<Item = Range<'_>> + Clone {
    header.split(',').filter_map(|member| {
        let mut parts = member.split(';');
        let media_type = parts.next()?.trim();
        if media_type.is_empty() || !media_type.contains('/') {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("q") {
                q = parse_q(value.trim())?;
            }
        }
        Some(Range { media_type, q })
    })
}

/// How specifically a range matches an offer: 3 exact, 2 `type/*`, 1 `*/*`, 0 not at all.
fn specificity(range: &str, offer: &str) -> u8 {
    if range.eq_ignore_ascii_case(offer) {
        return 3;
    }
    let offer_type = offer.split('/').next().unwrap_or_default();
    match range.split_once('/') {
        Some(("*", "*")) => 1,
        Some((t, "*")) if t.eq_ignore_ascii_case(offer_type) => 2,
        _ => 0,
    }
}

/// The media type string of an offer, without parameters, as ranges are matched against it.
fn offer_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/vnd.pypi.simple.v1+json",
        Format::V1Html => "application/vnd.pypi.simple.v1+html",
        Format::TextHtml => "text/html",
    }
}

/// Chooses the format for a request, from `?format=` if given, else from `Accept`.
/// `None` means nothing acceptable (answer 406).
pub fn choose(accept: Option<&str>, format_param: Option<&str>) -> Option<Format> {
    if let Some(param) = format_param {
        // A '+' typed in a browser arrives as a space after query decoding.
        return Format::named(&param.trim().replace(' ', "+").to_ascii_lowercase());
    }
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    // One exactly named media type without parameters (what most requests send) chooses its
    // format, as the general rule below would: answered without parsing, on every index request.
    if !accept.contains([',', ';'])
        && let Some(format) = Format::named(accept)
    {
        return Some(format);
    }
    let ranges = parse_accept(accept);
    let mut best: Option<(u16, bool, usize, Format)> = None;
    for (preference, format) in OFFERS.into_iter().enumerate() {
        // The q of the most specific matching range; aliases (`latest`) count as exact.
        let mut matched: Option<(u8, u16)> = None;
        for range in ranges.clone() {
            let spec = match Format::named(range.media_type) {
                Some(named) if named == format => 3,
                Some(_) => 0,
                None => specificity(range.media_type, offer_type(format)),
            };
            if spec > 0 && matched.is_none_or(|(s, _)| spec > s) {
                matched = Some((spec, range.q));
            }
        }
        let Some((spec, q)) = matched else { continue };
        if q == 0 {
            continue;
        }
        let exact = spec == 3;
        // Wildcard-only matches prefer text/html (what browsers, curl and hatch expect).
        let rank = if exact {
            preference
        } else {
            OFFERS.len() - 1 - preference
        };
        let candidate = (q, exact, usize::MAX - rank, format);
        if best.is_none_or(|b| (candidate.0, candidate.1, candidate.2) > (b.0, b.1, b.2)) {
            best = Some(candidate);
        }
    }
    best.map(|(_, _, _, format)| format)
}

/// Whether the client accepts a gzip-coded response.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let mut gzip = None;
    let mut star = None;
    for member in header.split(',') {
        let mut parts = member.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1000), |(_, v)| parse_q(v.trim()));
        let Some(q) = q else { continue };
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            star = Some(q);
        }
    }
    gzip.or(star).is_some_and(|q| q > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIP: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
    const UV: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
    const POETRY: &str = "application/vnd.pypi.simple.v1+json, */*;q=0.1";
    const BROWSER: &str =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

    #[test]
    fn installers_get_json() {
        for accept in [PIP, UV, POETRY] {
            assert_eq!(choose(Some(accept), None), Some(Format::Json), "{accept}");
        }
    }

    #[test]
    fn browsers_wildcards_and_no_header_get_text_html() {
        for accept in [Some(BROWSER), Some("*/*"), None, Some(""), Some("text/*")] {
            assert_eq!(choose(accept, None), Some(Format::TextHtml), "{accept:?}");
        }
    }

    #[test]
    fn explicit_types_and_q_values() {
        assert_eq!(choose(Some("text/html"), None), Some(Format::TextHtml));
        assert_eq!(
            choose(Some("application/vnd.pypi.simple.v1+html"), None),
            Some(Format::V1Html)
        );
        assert_eq!(
            choose(
                Some("text/html;q=0.5, application/vnd.pypi.simple.v1+json;q=0.9"),
                None
            ),
            Some(Format::Json)
        );
        assert_eq!(
            choose(
                Some("application/vnd.pypi.simple.v1+json;q=0, text/html"),
                None
            ),
            Some(Format::TextHtml)
        );
        assert_eq!(
            choose(Some("application/vnd.pypi.simple.latest+json"), None),
            Some(Format::Json)
        );
        assert_eq!(
            choose(Some("APPLICATION/VND.PYPI.SIMPLE.V1+JSON"), None),
            Some(Format::Json)
        );
    }

    #[test]
    fn a_single_named_type_chooses_as_the_general_rule_does() {
        for (accept, format) in [
            ("application/vnd.pypi.simple.v1+json", Format::Json),
            ("Application/VND.pypi.simple.LATEST+json", Format::Json),
            ("application/vnd.pypi.simple.v1+html", Format::V1Html),
            ("application/vnd.pypi.simple.latest+html", Format::V1Html),
            (" TEXT/HTML ", Format::TextHtml),
        ] {
            assert_eq!(choose(Some(accept), None), Some(format), "{accept}");
            // A trailing empty member sends the same request through the general rule.
            let general = format!("{accept},");
            assert_eq!(choose(Some(&general), None), Some(format), "{general}");
        }
    }

    #[test]
    fn unacceptable_is_none() {
        assert_eq!(choose(Some("application/json"), None), None);
        assert_eq!(choose(Some("text/plain"), None), None);
        assert_eq!(choose(Some("*/*;q=0"), None), None);
    }

    #[test]
    fn malformed_members_are_ignored() {
        assert_eq!(
            choose(
                Some("garbage, text/html;q=2, application/vnd.pypi.simple.v1+json"),
                None
            ),
            Some(Format::Json)
        );
    }

    #[test]
    fn format_parameter_overrides_accept() {
        assert_eq!(
            choose(
                Some("text/html"),
                Some("application/vnd.pypi.simple.v1+json")
            ),
            Some(Format::Json)
        );
        assert_eq!(
            choose(
                Some("text/html"),
                Some("application/vnd.pypi.simple.v1 json")
            ),
            Some(Format::Json)
        );
        assert_eq!(choose(None, Some("bogus")), None);
    }

    #[test]
    fn gzip_acceptance() {
        assert!(accepts_gzip(Some("gzip, deflate")));
        assert!(accepts_gzip(Some("gzip, deflate, zstd")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(None));
        assert!(accepts_gzip(Some("GZip;q=0.5")));
    }

    #[test]
    fn q_values_parse_to_thousandths() {
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.25"), Some(250));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q("0.x"), None);
    }
}
