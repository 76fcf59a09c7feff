//! Timestamps as the CLI prints them.

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-25 12:00:00Z`
pub fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}
