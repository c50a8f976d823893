//! Exit statuses of `stagectl`: one per API error kind, so scripts can branch on them.

use crate::api::errors::kind_of_code;
use crate::core::ErrorKind;

pub const CONNECT: u8 = 69;
pub const OTHER: u8 = 1;

pub fn status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidParams => 10,
        ErrorKind::NotFound => 11,
        ErrorKind::Conflict => 12,
        ErrorKind::InvalidState => 13,
        ErrorKind::LimitExceeded => 14,
        ErrorKind::Forbidden => 15,
        ErrorKind::Docker => 20,
        ErrorKind::Nginx => 21,
        ErrorKind::Database => 22,
        ErrorKind::Git => 23,
        ErrorKind::Backup => 27,
        ErrorKind::Tls => 25,
        ErrorKind::DeployFailed => 24,
        ErrorKind::Internal => 30,
    }
}

/// The status for a JSON-RPC error code; codes outside the contract (jsonrpsee's own) are 1.
pub fn status_of_code(code: i32) -> u8 {
    kind_of_code(code).map_or(OTHER, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_per_kind() {
        let mut all: Vec<u8> = ErrorKind::ALL.iter().map(|k| status(*k)).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), ErrorKind::ALL.len());
        assert!(!all.contains(&CONNECT) && !all.contains(&OTHER) && !all.contains(&0));
        assert_eq!(status_of_code(-32005), 15);
        assert_eq!(status_of_code(-32600), OTHER);
    }
}
