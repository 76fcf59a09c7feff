//! The e-mail style header block of core metadata (standards K3): fields, folded values and the
//! message body.

use super::MetadataError;
use crate::text::quote;

/// The fields of a metadata file in order, with their raw (still folded) values, and the body.
#[derive(Debug)]
pub(super) struct HeaderBlock<'a> {
    fields: Vec<(String, String)>,
    /// Everything after the blank line that ends the headers.
    pub(super) body: &'a str,
}

impl<'a> HeaderBlock<'a> {
    /// Splits `text` into header fields and body, as Python's `email` parser reads them.
    pub(super) fn parse(text: &'a str) -> Result<HeaderBlock<'a>, MetadataError> {
        let (headers, body_offset) = mailparse::parse_headers(text.as_bytes()).map_err(|e| {
            MetadataError::new(
                None,
                format!("the header block is malformed ({e}); each line must be 'Field: value'"),
            )
        })?;
        let mut fields = Vec::with_capacity(headers.len());
        for header in &headers {
            let value = std::str::from_utf8(header.get_value_raw()).map_err(|_| {
                MetadataError::new(
                    None,
                    format!(
                        "the value of '{}' is not valid UTF-8",
                        quote(&header.get_key())
                    ),
                )
            })?;
            fields.push((header.get_key().trim().to_owned(), value.to_owned()));
        }
        Ok(HeaderBlock {
            fields,
            body: text.get(body_offset..).unwrap_or(""),
        })
    }

    /// The raw values of every occurrence of `name` (case-insensitive), in order.
    pub(super) fn all(&self, name: &'static str) -> impl Iterator<Item = &str> + '_ {
        self.fields
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The raw value of a single-use field, refusing a field that appears more than once.
    pub(super) fn single(&self, name: &'static str) -> Result<Option<&str>, MetadataError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(MetadataError::new(
                Some(name),
                format!("the field '{name}' appears more than once; it may only be given once"),
            ));
        }
        Ok(first)
    }
}

/// Joins a folded value into one line: each line break and the indentation after it become a
/// single space.
pub(super) fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for (index, line) in raw.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if index == 0 {
            out.push_str(line);
        } else {
            out.push(' ');
            out.push_str(line.trim_start_matches([' ', '\t']));
        }
    }
    out.trim().to_owned()
}

/// Restores a multi-line value (legacy `Description`, `License`): keeps the line breaks and
/// removes the continuation prefix, either 7 spaces and `|` (the core metadata spec) or
/// 8 spaces (distutils/setuptools).
pub(super) fn unfold_multiline(raw: &str) -> String {
    let mut lines = Vec::new();
    for (index, line) in raw.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let content = if index == 0 {
            line
        } else if let Some(rest) = line.strip_prefix("       |") {
            rest
        } else if let Some(rest) = line.strip_prefix("        ") {
            rest
        } else {
            line.strip_prefix([' ', '\t']).unwrap_or(line)
        };
        lines.push(content);
    }
    lines.join("\n").trim_end().to_owned()
}

/// Whether a raw value was written on one line (not folded).
pub(super) fn is_single_line(raw: &str) -> bool {
    !raw.trim_end().contains(['\n', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_body_and_repeats() {
        let text = "Metadata-Version: 2.1\nName: foo\nRequires-Dist: a\nrequires-dist: b\n\nbody\n";
        let block = HeaderBlock::parse(text).unwrap();
        assert_eq!(block.single("Name").unwrap(), Some("foo"));
        assert_eq!(block.all("Requires-Dist").collect::<Vec<_>>(), ["a", "b"]);
        assert!(block.single("Requires-Dist").is_err());
        assert_eq!(block.single("Summary").unwrap(), None);
        assert_eq!(block.body, "body\n");
    }

    #[test]
    fn crlf_and_no_body() {
        let block = HeaderBlock::parse("Name: foo\r\nVersion: 1\r\n").unwrap();
        assert_eq!(block.single("version").unwrap(), Some("1"));
        assert_eq!(block.body, "");
    }

    #[test]
    fn folded_values_keep_their_raw_form_until_unfolded() {
        let block = HeaderBlock::parse("License: line one\n  line two\nName: x\n").unwrap();
        let raw = block.single("License").unwrap().unwrap();
        assert_eq!(raw, "line one\n  line two");
        assert_eq!(unfold(raw), "line one line two");
        assert!(!is_single_line(raw));
        assert!(is_single_line("one line  "));
    }

    #[test]
    fn multiline_prefixes_are_removed() {
        assert_eq!(
            unfold_multiline("Title\n       |\n       |  indented\n        plain\n\tlast"),
            "Title\n\n  indented\nplain\nlast"
        );
    }

    #[test]
    fn a_leading_space_is_malformed() {
        let err = HeaderBlock::parse(" Name: foo\n").unwrap_err();
        assert!(err.reason().contains("malformed"), "{err}");
    }

    #[test]
    fn non_ascii_values() {
        let block = HeaderBlock::parse("Author: Zoë Ünïcode\n").unwrap();
        assert_eq!(block.single("Author").unwrap(), Some("Zoë Ünïcode"));
    }
}
