//! Port choice: the lowest port of a range that no stage holds and nothing on the host uses.

use crate::config::types::PortRange;
use std::collections::HashSet;

/// `busy` asks the host (something listens, a container publishes it).
pub fn choose(range: PortRange, held: &HashSet<u16>, busy: impl Fn(u16) -> bool) -> Option<u16> {
    (range.first..=range.last).find(|p| !held.contains(p) && !busy(*p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_held_and_busy_ports() {
        let r = PortRange {
            first: 100,
            last: 104,
        };
        let held: HashSet<u16> = [100, 102].into();
        assert_eq!(choose(r, &held, |p| p == 101), Some(103));
        assert_eq!(choose(r, &HashSet::new(), |_| false), Some(100));
        assert_eq!(choose(r, &held, |p| p != 102), None);
        let all: HashSet<u16> = (100..=104).collect();
        assert_eq!(choose(r, &all, |_| false), None);
    }
}
