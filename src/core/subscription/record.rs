//! The subscription record: a tenant with its stage limit, storage limit, profile and settings.

use crate::core::names::SubscriptionId;
use crate::core::time::Timestamp;
use crate::core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: u32 = 1;
/// A stage limit above this is a typo, not a plan.
pub const MAX_STAGE_LIMIT: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub schema_version: u32,
    pub id: SubscriptionId,
    pub stage_limit: u32,
    pub storage_limit_mb: Option<u64>,
    pub profile: String,
    pub settings: Settings,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: Timestamp,
}

/// What a subscription overrides in its profile for each new stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Extra environment for the app container; wins over the profile's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub memory_limit_mb: Option<u64>,
    pub cpu_limit: Option<f64>,
    /// A `pg_dump -Fc` file on this host restored into every new stage instead of an empty
    /// database.
    #[serde(default)]
    pub db_template: Option<String>,
}

impl Settings {
    /// Refuses what could not be handed to a container as it is. Whether `db_template` is a
    /// file is the registry's check, through `interfaces::HostFiles`.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in &self.env {
            let good_name = !k.is_empty()
                && k.len() <= 128
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !good_name {
                return Err(Error::invalid(
                    "settings.env",
                    format!("{k:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
                ));
            }
            if v.contains('\0') || v.len() > 4096 {
                return Err(Error::invalid(
                    "settings.env",
                    format!("the value of {k} has a NUL byte or is longer than 4096 bytes"),
                ));
            }
        }
        if let Some(m) = self.memory_limit_mb {
            if !(16..=1_048_576).contains(&m) {
                return Err(Error::invalid(
                    "settings.memory_limit_mb",
                    "must be between 16 and 1048576",
                ));
            }
        }
        if let Some(t) = &self.db_template {
            if !std::path::Path::new(t).is_absolute() {
                return Err(template_error(t));
            }
        }
        if let Some(c) = self.cpu_limit {
            if !(c.is_finite() && c > 0.0 && c <= 1024.0) {
                return Err(Error::invalid(
                    "settings.cpu_limit",
                    "must be a number of CPUs above 0 and at most 1024",
                ));
            }
        }
        Ok(())
    }
}

/// `db_template` is not an absolute path to a file on this host.
pub fn template_error(t: &str) -> Error {
    Error::invalid(
        "settings.db_template",
        format!("{t:?} is not an absolute path to a file on this host"),
    )
}

/// A subscription as the API shows it: the record, plus what its stages use by their last
/// measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionView {
    #[serde(flatten)]
    pub subscription: Subscription,
    pub used_bytes: u64,
    /// `used_bytes` is above `storage_limit_mb`.
    pub over_limit: bool,
}

impl std::ops::Deref for SubscriptionView {
    type Target = Subscription;
    fn deref(&self) -> &Subscription {
        &self.subscription
    }
}

/// `subscription.deploy_key`: paste `public_key` at the git host as a read-only deploy key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployKey {
    pub id: String,
    pub public_key: String,
}

pub fn check_stage_limit(limit: u32) -> Result<u32> {
    if limit > MAX_STAGE_LIMIT {
        return Err(Error::invalid(
            "stage_limit",
            format!("must be at most {MAX_STAGE_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// `0` clears the storage limit.
pub fn storage_limit(mb: u64) -> Option<u64> {
    (mb > 0).then_some(mb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_validation_names_the_field() {
        let mut s = Settings::default();
        s.env.insert("GOOD_1".into(), "x".into());
        assert!(s.validate().is_ok());
        s.env.insert("1BAD".into(), "x".into());
        let e = s.validate().unwrap_err();
        assert!(matches!(e, Error::InvalidParams { ref field, .. } if field == "settings.env"));
        let s = Settings {
            cpu_limit: Some(f64::NAN),
            ..Default::default()
        };
        assert!(
            matches!(s.validate(), Err(Error::InvalidParams { field, .. }) if field == "settings.cpu_limit")
        );
    }

    #[test]
    fn limits() {
        assert!(check_stage_limit(10_001).is_err());
        assert_eq!(check_stage_limit(3).unwrap(), 3);
        assert_eq!(storage_limit(0), None);
        assert_eq!(storage_limit(5), Some(5));
    }
}
