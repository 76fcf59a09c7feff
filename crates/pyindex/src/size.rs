//! Human-readable byte sizes for settings: `1048576`, `10MiB`, `1GiB`, `500MB`.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeSetting")]
pub struct ByteSize(pub u64);

/// A size as written in the TOML file: a number of bytes or a string with a unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeSetting {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeSetting> for ByteSize {
    type Error = String;

    fn try_from(setting: SizeSetting) -> Result<ByteSize, String> {
        match setting {
            SizeSetting::Bytes(n) => Ok(ByteSize(n)),
            SizeSetting::Text(text) => text.parse(),
        }
    }
}

const UNITS: &[(&str, u64)] = &[
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "'{text}' is not a size: write a number of bytes, or a number with KiB, MiB, GiB, KB, MB or GB"
            )
        };
        let (number, multiplier) = UNITS
            .iter()
            .find_map(|(unit, m)| {
                text.len()
                    .checked_sub(unit.len())
                    .filter(|&at| {
                        text.is_char_boundary(at) && text[at..].eq_ignore_ascii_case(unit)
                    })
                    .map(|at| (text[..at].trim(), *m))
            })
            .unwrap_or((text, 1));
        let n: u64 = number.parse().map_err(|_| invalid())?;
        n.checked_mul(multiplier).map(ByteSize).ok_or_else(invalid)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_numbers_and_units() {
        assert_eq!("1048576".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("10MiB".parse(), Ok(ByteSize(10 << 20)));
        assert_eq!("1 GiB".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("500mb".parse(), Ok(ByteSize(500_000_000)));
        assert_eq!("7B".parse(), Ok(ByteSize(7)));
    }

    #[test]
    fn refuses_junk_and_overflow() {
        assert!("".parse::<ByteSize>().is_err());
        assert!("ten MiB".parse::<ByteSize>().is_err());
        assert!("-1".parse::<ByteSize>().is_err());
        assert!("99999999999999TiB".parse::<ByteSize>().is_err());
    }
}
