//! Timestamps: RFC 3339 UTC on the wire and in records.

use time::OffsetDateTime;

pub type Timestamp = OffsetDateTime;

pub fn now() -> Timestamp {
    OffsetDateTime::now_utc()
}

/// RFC 3339, as the API shows times. A UTC time always formats; the fallback is only a guard.
pub fn rfc3339(t: &Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// serde helpers for `Option<Timestamp>` as RFC 3339.
pub mod rfc3339_opt {
    pub use time::serde::rfc3339::option::{deserialize, serialize};
}
