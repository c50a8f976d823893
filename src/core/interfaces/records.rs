//! Durable storage of the core's JSON records (subscriptions, stages).

use std::io;

/// Which directory of records a key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Subscription,
    Stage,
}

/// Durable storage of JSON records. `put` must be atomic: after a crash at any instant a reader
/// sees the old bytes or the new ones, never a mix.
pub trait RecordStore: Send + Sync {
    fn put(&self, kind: RecordKind, key: &str, bytes: &[u8]) -> io::Result<()>;
    fn delete(&self, kind: RecordKind, key: &str) -> io::Result<()>;
    /// Every record of a kind as `(key, bytes)`.
    fn load_all(&self, kind: RecordKind) -> io::Result<Vec<(String, Vec<u8>)>>;
}
