//! Loading and checking a configuration file: every error, each with its line, column and key.

use super::Config;
use serde::de::IntoDeserializer;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    /// Dotted key path, empty for a syntax error outside any key.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.line, self.column, self.key, self.message
            )
        }
    }
}

/// Reads and checks a file. An I/O error becomes a single error at 0:0.
pub fn load_file(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    parse(&text)
}

/// Cap on how many value errors one pass collects; each costs a re-deserialisation.
const MAX_ERRORS: usize = 100;

/// Parses TOML text into a [`Config`], reporting every syntax error, unknown key, bad value and
/// cross-key problem at once.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax
            .iter()
            .map(|e| at_offset(text, e.span().map_or(0, |s| s.start), "", e.message()))
            .collect());
    }
    let mut table: toml::Table = toml::from_str(text).map_err(|e| {
        vec![at_offset(
            text,
            e.span().map_or(0, |s| s.start),
            "",
            e.message(),
        )]
    })?;
    let locate = |path: &[String], msg: String| {
        let offset = span_of(doc.get_ref(), path).unwrap_or(0);
        at_offset(text, offset, &path.join("."), &msg)
    };

    let mut errors = vec![];
    let mut unknown = BTreeSet::new();
    // Each failed pass reports one bad value and removes it, so the next pass finds the next.
    let config = loop {
        let mut ignored = vec![];
        let mut on_ignored = |p: serde_ignored::Path| ignored.push(ignored_segments(&p));
        let de = serde_ignored::Deserializer::new(
            toml::Value::Table(table.clone()).into_deserializer(),
            &mut on_ignored,
        );
        let result: Result<Config, _> = serde_path_to_error::deserialize(de);
        unknown.extend(ignored);
        match result {
            Ok(c) => break Some(c),
            Err(e) => {
                let path = error_segments(e.path());
                errors.push(locate(&path, e.into_inner().message().to_string()));
                if path.is_empty() || !remove(&mut table, &path) || errors.len() >= MAX_ERRORS {
                    break None;
                }
            }
        }
    };
    for path in unknown {
        errors.push(locate(&path, "unknown key".into()));
    }
    if let Some(c) = &config {
        for (path, msg) in c.cross_check() {
            errors.push(locate(&path, msg));
        }
    }
    errors.sort_by_key(|e| (e.line, e.column));
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

fn at_offset(text: &str, offset: usize, key: &str, message: &str) -> ConfigError {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfigError {
        line,
        column,
        key: key.to_string(),
        message: message.trim().to_string(),
    }
}

/// Where a key path starts in the source: the key itself, or the table header above it.
fn span_of(table: &DeTable<'_>, path: &[String]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let (key, value): (&Spanned<_>, &Spanned<DeValue<'_>>) = table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == first.as_str())?;
    if rest.is_empty() {
        return Some(key.span().start);
    }
    let inner = match value.get_ref() {
        DeValue::Table(t) => span_of(t, rest),
        DeValue::Array(a) => {
            let i: usize = rest[0].parse().ok()?;
            let item = a.get(i)?;
            match item.get_ref() {
                DeValue::Table(t) if rest.len() > 1 => span_of(t, &rest[1..]),
                _ => Some(item.span().start),
            }
        }
        _ => None,
    };
    inner.or(Some(key.span().start))
}

fn error_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn ignored_segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    match path {
        Path::Root => vec![],
        Path::Seq { parent, index } => {
            let mut v = ignored_segments(parent);
            v.push(index.to_string());
            v
        }
        Path::Map { parent, key } => {
            let mut v = ignored_segments(parent);
            v.push(key.clone());
            v
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_segments(parent),
    }
}

/// Removes the value at `path`, so the next pass can go past it.
fn remove(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut value: &mut toml::Table = table;
    for p in parents {
        // An array element: drop the whole array; the error is already reported.
        if matches!(value.get(p), Some(toml::Value::Array(_))) {
            return value.remove(p).is_some();
        }
        match value.get_mut(p) {
            Some(toml::Value::Table(t)) => value = t,
            _ => return false,
        }
    }
    value.remove(last).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn reports_every_error_with_line_column_and_key() {
        let text = "[agent]\nsocket_mode = \"0999\"\nlog_format = \"xml\"\nbogus = 1\n\n[ports]\nhttp = \"9-1\"\n\n[lifecycle]\ngrace_period = \"soon\"\n";
        let errs = parse(text).unwrap_err();
        let got: Vec<(usize, usize, &str)> = errs
            .iter()
            .map(|e| (e.line, e.column, e.key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 1, "agent.socket_mode"),
                (3, 1, "agent.log_format"),
                (4, 1, "agent.bogus"),
                (7, 1, "ports.http"),
                (10, 1, "lifecycle.grace_period"),
            ],
            "{errs:#?}"
        );
        assert!(errs[2].message.contains("unknown key"));
        assert!(errs[0].message.contains("0999"), "{}", errs[0]);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let errs = parse("[agent]\nsocket = \n").unwrap_err();
        assert_eq!(errs[0].line, 2, "{errs:?}");
    }

    #[test]
    fn cross_key_errors_point_at_the_key() {
        let errs = parse("[agent]\ndefault_profile = \"nope\"\n").unwrap_err();
        assert_eq!(
            (errs[0].line, errs[0].key.as_str()),
            (2, "agent.default_profile")
        );
    }

    #[test]
    fn profile_components_are_checked() {
        let text = "[profiles.web.app]\nimage = \"app\"\nport = 80\nstop_signal = \"TERM!\"\n[profiles.web.db]\nimage = \"pg\"\nport = 5432\nextra = true\n";
        let errs = parse(text).unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"profiles.web.app.stop_signal"), "{errs:?}");
        assert!(keys.contains(&"profiles.web.db.extra"), "{errs:?}");
    }
}
