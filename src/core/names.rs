//! Validated names: subscription ids, stage names and domains. A value of these types can only
//! hold what DESIGN.md allows, so nothing unchecked reaches a path, a file or a command line.

use serde::{Deserialize, Serialize};
use std::fmt;

const LABEL_MAX: usize = 32;
const DOMAIN_LABEL_MAX: usize = 63;
const DOMAIN_MAX: usize = 253;

/// Checks one DNS label: `[a-z0-9]`, inner `-`, no leading or trailing `-`.
fn check_label(label: &str, max: usize) -> Result<(), String> {
    if label.is_empty() {
        return Err("is empty".into());
    }
    if label.len() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "has the character {c:?}; only a-z, 0-9 and '-' are allowed"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(())
}

macro_rules! label_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                check_label(s, LABEL_MAX).map_err(|e| format!("{} {s:?} {e}", $what))?;
                // "--" joins subscription and stage in file names; inside a name it would be ambiguous.
                if s.contains("--") {
                    return Err(format!("{} {s:?} must not contain \"--\"", $what));
                }
                Ok(Self(s.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

label_type!(
    /// A subscription id: a DNS label of at most 32 characters.
    SubscriptionId,
    "subscription id"
);
label_type!(
    /// A stage name, unique within its subscription: a DNS label of at most 32 characters.
    StageName,
    "stage name"
);

/// A lowercase fully qualified domain name of at least two DNS labels, without trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    pub fn parse(s: &str) -> Result<Self, String> {
        let shown: String = s.chars().take(80).collect();
        let fail = |why: String| Err(format!("domain {shown:?} {why}"));
        if s.is_empty() {
            return fail("is empty".into());
        }
        if s.len() > DOMAIN_MAX {
            return fail(format!("is longer than {DOMAIN_MAX} characters"));
        }
        if s.ends_with('.') {
            return fail("must not end with '.'".into());
        }
        let labels: Vec<&str> = s.split('.').collect();
        if labels.len() < 2 {
            return fail("needs at least two labels, like example.com".into());
        }
        for label in &labels {
            if let Err(e) = check_label(label, DOMAIN_LABEL_MAX) {
                return fail(format!("has a label that {e}"));
            }
        }
        if labels[labels.len() - 1].chars().all(|c| c.is_ascii_digit()) {
            return fail("ends in a numeric label; IP addresses are not domains".into());
        }
        Ok(Domain(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Domain {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Domain::parse(&s)
    }
}

impl From<Domain> for String {
    fn from(v: Domain) -> String {
        v.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "acme", "a-b", "0", "a1-2b", &"x".repeat(32)] {
            assert!(SubscriptionId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"x".repeat(33),
            "a;",
            "../a",
            "a--b",
        ] {
            assert!(StageName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domains() {
        for ok in ["a.com", "qa.acme.example.com", "x-1.y2.io", "a.b.c.d.e.f"] {
            assert!(Domain::parse(ok).is_ok(), "{ok}");
        }
        let long = format!("{}.com", "a".repeat(300));
        for bad in [
            "a.com;",
            "a.com; include /etc/shadow",
            "a.com { }",
            "$host",
            "a.com\n",
            "include",
            "../a.com",
            "a..com",
            "-a.com",
            "a.com.",
            "A.com",
            "*.a.com",
            "a.c\u{043e}m",
            "\"a.com\"",
            "1.2.3.4",
            "com",
            long.as_str(),
        ] {
            let err = Domain::parse(bad).unwrap_err();
            assert!(err.starts_with("domain "), "{err}");
        }
    }
}
