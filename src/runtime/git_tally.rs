//! What a checkout would write, counted entry by entry from `git ls-tree -r -l -z` as git
//! prints it: blocks, files and gitlinks, refused at the first entry over a limit.

use crate::core::interfaces::CheckoutLimits;
use crate::core::{Error, Result};

/// The block a file is counted in: an empty one still costs an inode and a directory entry.
const BLOCK: u64 = 4096;

/// What a checkout would write, counted as `git ls-tree -r -l -z` lists it, and its gitlinks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Each file's size rounded up to whole blocks, at least one.
    pub bytes: u64,
    /// Entries: files, symbolic links and gitlinks.
    pub files: u64,
    /// `(path, commit)` of every gitlink.
    pub links: Vec<(String, String)>,
}

impl Tally {
    /// Counts one record; `limit_exceeded` as soon as either limit is crossed, so a listing of
    /// millions of entries stops at the first one over.
    pub fn add(&mut self, record: &[u8], limits: &CheckoutLimits, hash: &str) -> Result<()> {
        let text = String::from_utf8_lossy(record);
        let Some((meta, path)) = text.split_once('\t') else {
            return Ok(());
        };
        let f: Vec<&str> = meta.split_whitespace().collect();
        let size = f.get(3).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        self.files += 1;
        self.bytes += size.div_ceil(BLOCK).max(1) * BLOCK;
        if f.first() == Some(&"160000") {
            if let Some(commit) = f.get(2) {
                self.links.push((path.to_string(), commit.to_string()));
            }
        }
        check_limits(hash, self, limits)
    }
}

/// `limit_exceeded` when a checkout would write more than `limits` allow.
fn check_limits(hash: &str, t: &Tally, limits: &CheckoutLimits) -> Result<()> {
    if t.files > limits.max_files {
        return Err(Error::LimitExceeded(format!(
            "the checkout of {hash} holds more than {} files, over git.max_checkout_files",
            limits.max_files
        )));
    }
    if t.bytes > limits.max_bytes {
        return Err(Error::LimitExceeded(format!(
            "the checkout of {hash} is over git.max_checkout_mb ({} MB; each file counted in \
             whole 4 KiB blocks)",
            limits.max_bytes / (1 << 20)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_listing_counted_in_blocks_and_stopped_at_a_limit() {
        let limits = CheckoutLimits {
            max_bytes: 1 << 20,
            max_files: 3,
        };
        let mut t = Tally::default();
        for r in [
            "100644 blob 3b18e512dba79e4c8300dd08aeb37f8e728b8dad      12\tREADME",
            "100755 blob 2b18e512dba79e4c8300dd08aeb37f8e728b8dad    4097\tbin/run",
            "160000 commit 1b18e512dba79e4c8300dd08aeb37f8e728b8dad       -\tvendor/sub",
        ] {
            t.add(r.as_bytes(), &limits, "c").unwrap();
        }
        assert_eq!((t.bytes, t.files), (4 * BLOCK, 3));
        assert_eq!(
            t.links,
            vec![(
                "vendor/sub".into(),
                "1b18e512dba79e4c8300dd08aeb37f8e728b8dad".into()
            )]
        );
        let empty = "100644 blob e69de29bb2d1d6434b8b29ae775ad8c2e48c5391       0\tx";
        let e = t.add(empty.as_bytes(), &limits, "c").unwrap_err();
        assert!(matches!(e, Error::LimitExceeded(_)), "{e}");
        let mut t = Tally::default();
        let big = CheckoutLimits {
            max_bytes: 2 * BLOCK,
            max_files: 100,
        };
        t.add(empty.as_bytes(), &big, "c").unwrap();
        t.add(empty.as_bytes(), &big, "c").unwrap();
        assert!(
            t.add(empty.as_bytes(), &big, "c").is_err(),
            "empty files take blocks"
        );
    }
}
