//! Quoting user-supplied text inside error messages.

/// The longest piece of user input echoed back in an error message, in characters.
const MAX_ECHO_CHARS: usize = 120;

/// Renders user-supplied text for an error message: control characters are escaped (so the
/// message stays on one line) and long input is shortened with a trailing `…`.
pub(crate) fn quote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_ECHO_CHARS + 8));
    for (count, c) in raw.chars().enumerate() {
        if count >= MAX_ECHO_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{MAX_ECHO_CHARS, quote};

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(quote("foo-1.0.tar.gz"), "foo-1.0.tar.gz");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(quote("a\nb\u{1}"), "a\\nb\\u{1}");
    }

    #[test]
    fn long_input_is_shortened() {
        let long = "x".repeat(500);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(quoted.ends_with('…'));
    }
}
