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

/// The largest size a setting may name: sizes beyond it are typing mistakes, and `bytesize`
/// saturates rather than fails on overflow.
const LARGEST: u64 = 1 << 50;

impl FromStr for ByteSize {
    type Err = String;

    /// Parsed by `bytesize` (binary units `KiB`, `MiB`, `GiB`, decimal `KB`, `MB`, `GB`, any
    /// case, with or without a space); the error says what to write.
    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        text.parse::<bytesize::ByteSize>()
            .ok()
            .map(|size| size.as_u64())
            .filter(|&n| n <= LARGEST && !text.is_empty())
            .map(ByteSize)
            .ok_or_else(|| {
                format!(
                    "'{text}' is not a size: write a number of bytes, or a number with KiB, MiB, GiB, KB, MB or GB"
                )
            })
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
        assert_eq!("1.5 KiB".parse(), Ok(ByteSize(1536)));
    }

    #[test]
    fn refuses_junk_and_overflow() {
        assert!("".parse::<ByteSize>().is_err());
        assert!("ten MiB".parse::<ByteSize>().is_err());
        assert!("-1".parse::<ByteSize>().is_err());
        assert!("99999999999999TiB".parse::<ByteSize>().is_err());
    }
}
