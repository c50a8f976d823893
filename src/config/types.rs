//! Value types of the configuration that parse only into valid values: durations, port
//! ranges, file modes and signal names.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A duration written as `"60s"`, `"15m"`, `"1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Dur(pub Duration);

impl TryFrom<String> for Dur {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        humantime::parse_duration(s.trim())
            .map(Dur)
            .map_err(|e| format!("{s:?} is not a duration like \"60s\", \"15m\" or \"1d\": {e}"))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
}

/// An inclusive range of TCP ports written `"20000-24999"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!("{s:?} is not a port range like \"20000-24999\" (1024-65535, first <= last)")
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first: u16 = a.trim().parse().map_err(|_| bad())?;
        let last: u16 = b.trim().parse().map_err(|_| bad())?;
        if first < 1024 || first > last {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        r.to_string()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A permission mode written in octal, `"0660"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileMode(pub u32);

impl TryFrom<String> for FileMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .map(FileMode)
            .ok_or_else(|| format!("{s:?} is not an octal permission mode like \"0660\""))
    }
}

impl From<FileMode> for String {
    fn from(m: FileMode) -> String {
        format!("{:04o}", m.0)
    }
}

/// A signal name such as `"SIGTERM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SignalName(pub nix::sys::signal::Signal);

impl TryFrom<String> for SignalName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<nix::sys::signal::Signal>()
            .map(SignalName)
            .map_err(|_| format!("{s:?} is not a signal name like \"SIGTERM\""))
    }
}

impl From<SignalName> for String {
    fn from(s: SignalName) -> String {
        s.0.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_values() {
        assert_eq!(Dur::try_from("1d".to_string()).unwrap(), Dur::secs(86_400));
        assert_eq!(Dur::try_from("60s".to_string()).unwrap(), Dur::secs(60));
        assert!(Dur::try_from("soon".to_string()).is_err());
        let r = PortRange::try_from("20000-24999".to_string()).unwrap();
        assert_eq!((r.first, r.last, r.len()), (20000, 24999, 5000));
        for bad in ["1-2", "30000-20000", "abc", "20000", "20000-70000"] {
            assert!(PortRange::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert!(r.overlaps(&PortRange {
            first: 24999,
            last: 25000
        }));
        assert!(!r.overlaps(&PortRange {
            first: 25000,
            last: 29999
        }));
        assert_eq!(FileMode::try_from("0660".to_string()).unwrap().0, 0o660);
        assert!(FileMode::try_from("0999".to_string()).is_err());
        assert_eq!(String::from(FileMode(0o660)), "0660");
        assert!(SignalName::try_from("SIGINT".to_string()).is_ok());
        assert!(SignalName::try_from("TERM!".to_string()).is_err());
    }
}

/// An nginx size such as `"100m"`: digits and an optional k, m or g.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BodySize(String);

impl BodySize {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BodySize {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let digits = s.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
        let suffix_len = s.len() - digits.len();
        if digits.is_empty()
            || digits.len() > 6
            || suffix_len > 1
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!(
                "{s:?} is not a size like \"100m\" (digits, then k, m or g)"
            ));
        }
        Ok(BodySize(s))
    }
}

impl From<BodySize> for String {
    fn from(b: BodySize) -> String {
        b.0
    }
}

/// An absolute path of plain characters, safe to write into an nginx file unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SafePath(String);

impl SafePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SafePath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@".contains(c);
        if !s.starts_with('/')
            || s.len() > 1024
            || !s.chars().all(plain)
            || s.split('/').any(|p| p == "..")
        {
            return Err(format!(
                "{s:?} is not an absolute path of letters, digits and / . _ - + @ without '..'"
            ));
        }
        Ok(SafePath(s))
    }
}

impl From<SafePath> for String {
    fn from(p: SafePath) -> String {
        p.0
    }
}

#[cfg(test)]
mod nginx_value_tests {
    use super::*;

    #[test]
    fn sizes_and_paths() {
        for ok in ["100m", "0", "1G", "512k", "64"] {
            assert!(BodySize::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in ["", "m", "10mb", "1.5m", "10m;", "1 m", "9999999m"] {
            assert!(BodySize::try_from(bad.to_string()).is_err(), "{bad}");
        }
        for ok in ["/var/log/nginx", "/etc/letsencrypt/live/a.b/fullchain.pem"] {
            assert!(SafePath::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in [
            "relative", "/a/../b", "/a b", "/a;b", "/a{b}", "/a$b", "/a\nb", "/a'b",
        ] {
            assert!(SafePath::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
