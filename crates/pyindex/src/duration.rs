//! Durations for settings: `30s`, `2m`, `500ms`, `1h`, or a plain number of seconds.
//!
//! Parsed by `humantime` (`30s`, `2m`, `1h 30m`, `7days`); a plain number is seconds, like the
//! TOML file's numbers.

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A positive duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "DurationSetting")]
pub struct Timeout(pub Duration);

/// A duration as written in the TOML file: seconds as a number, or a string with a unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationSetting {
    Seconds(u64),
    Text(String),
}

impl TryFrom<DurationSetting> for Timeout {
    type Error = String;

    fn try_from(setting: DurationSetting) -> Result<Timeout, String> {
        match setting {
            DurationSetting::Seconds(n) => format!("{n}s").parse(),
            DurationSetting::Text(text) => text.parse(),
        }
    }
}

impl FromStr for Timeout {
    type Err = String;

    fn from_str(text: &str) -> Result<Timeout, String> {
        match parse_millis(text) {
            Some(ms) if ms > 0 => Ok(Timeout(Duration::from_millis(ms))),
            _ => Err(format!(
                "'{}' is not a duration: write a positive number with ms, s, m, h or d (e.g. 30s, 2m, 7d), or a number of seconds",
                text.trim()
            )),
        }
    }
}

/// A duration that may be zero: an age bound such as `verify --grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Duration);

impl FromStr for Age {
    type Err = String;

    fn from_str(text: &str) -> Result<Age, String> {
        parse_millis(text)
            .map(|ms| Age(Duration::from_millis(ms)))
            .ok_or_else(|| {
                format!(
                    "'{}' is not a duration: write a number with ms, s, m, h or d (e.g. 0s, 30m, 1h, 7d), or a number of seconds",
                    text.trim()
                )
            })
    }
}

/// Milliseconds in `text` (`30s`, `2m`, `45`), or `None` if it is no duration.
fn parse_millis(text: &str) -> Option<u64> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text).ok()?,
    };
    u64::try_from(duration.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_plain_seconds() {
        assert_eq!("30s".parse(), Ok(Timeout(Duration::from_secs(30))));
        assert_eq!("2m".parse(), Ok(Timeout(Duration::from_secs(120))));
        assert_eq!("1h".parse(), Ok(Timeout(Duration::from_secs(3600))));
        assert_eq!("7d".parse(), Ok(Timeout(Duration::from_secs(7 * 86_400))));
        assert_eq!("500ms".parse(), Ok(Timeout(Duration::from_millis(500))));
        assert_eq!("45".parse(), Ok(Timeout(Duration::from_secs(45))));
        assert_eq!(" 5s ".parse(), Ok(Timeout(Duration::from_secs(5))));
        assert_eq!("1.5s".parse(), Ok(Timeout(Duration::from_millis(1500))));
        assert_eq!("1h 30m".parse(), Ok(Timeout(Duration::from_secs(5400))));
        assert_eq!(
            "7days".parse(),
            Ok(Timeout(Duration::from_secs(7 * 86_400)))
        );
    }

    #[test]
    fn refuses_zero_junk_and_overflow() {
        for bad in [
            "",
            "0",
            "0s",
            "s",
            "-1s",
            "10 fortnights",
            "99999999999999999999h",
        ] {
            let err = bad.parse::<Timeout>().unwrap_err();
            assert!(err.contains("not a duration"), "{bad}: {err}");
        }
        assert!("18446744073709551615h".parse::<Timeout>().is_err());
    }

    #[test]
    fn ages_may_be_zero_but_not_junk() {
        assert_eq!("0s".parse(), Ok(Age(Duration::ZERO)));
        assert_eq!("1h".parse(), Ok(Age(Duration::from_secs(3600))));
        for bad in ["", "s", "-1s", "a day"] {
            let err = bad.parse::<Age>().unwrap_err();
            assert!(err.contains("not a duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn reads_toml_numbers_and_strings() {
        #[derive(Deserialize)]
        struct T {
            a: Timeout,
            b: Timeout,
        }
        let t: T = toml::from_str("a = 30\nb = \"2m\"").unwrap();
        assert_eq!(t.a, Timeout(Duration::from_secs(30)));
        assert_eq!(t.b, Timeout(Duration::from_secs(120)));
        assert!(toml::from_str::<T>("a = 0\nb = \"1s\"").is_err());
    }
}
