//! Timestamps: RFC 3339 UTC on the wire and in records.

use time::OffsetDateTime;

pub type Timestamp = OffsetDateTime;

pub fn now() -> Timestamp {
    OffsetDateTime::now_utc()
}

/// serde helpers for `Option<Timestamp>` as RFC 3339.
pub mod rfc3339_opt {
    pub use time::serde::rfc3339::option::{deserialize, serialize};
}
