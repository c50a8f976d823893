//! Who may call what. The caller's uid and groups come from the socket (SO_PEERCRED); root and
//! admin groups may call everything, reader groups only the methods that change nothing.

use super::rpc::{access_of, Access};
use serde_json::value::RawValue;
use std::collections::HashSet;

/// The process on the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
    /// Primary and supplementary groups.
    pub gids: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Reader,
    None,
}

/// Group names resolved to ids when the configuration is (re)loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    pub admin_gids: HashSet<u32>,
    pub reader_gids: HashSet<u32>,
}

impl AccessPolicy {
    /// Resolves group names; a name that does not exist grants nothing and is reported.
    pub fn resolve(admin: &[String], reader: &[String]) -> (AccessPolicy, Vec<String>) {
        let mut missing = vec![];
        let mut gids = |names: &[String]| -> HashSet<u32> {
            names
                .iter()
                .filter_map(|n| match nix::unistd::Group::from_name(n) {
                    Ok(Some(g)) => Some(g.gid.as_raw()),
                    _ => {
                        missing.push(n.clone());
                        None
                    }
                })
                .collect()
        };
        let policy = AccessPolicy {
            admin_gids: gids(admin),
            reader_gids: gids(reader),
        };
        (policy, missing)
    }

    pub fn role(&self, caller: &Caller) -> Role {
        if caller.uid == 0 || caller.gids.iter().any(|g| self.admin_gids.contains(g)) {
            Role::Admin
        } else if caller.gids.iter().any(|g| self.reader_gids.contains(g)) {
            Role::Reader
        } else {
            Role::None
        }
    }

    pub fn allows(&self, caller: &Caller, method: &str, params: Option<&RawValue>) -> bool {
        match self.role(caller) {
            Role::Admin => true,
            Role::Reader => is_read_only(method, params),
            Role::None => false,
        }
    }
}

/// Whether this call changes nothing, by the API's table of methods
/// ([`super::rpc::METHODS`]); a method the table does not name is not read-only.
pub fn is_read_only(method: &str, params: Option<&RawValue>) -> bool {
    match access_of(method) {
        Some(Access::Read) => true,
        Some(Access::ReadUnlessRefresh) => !wants_refresh(params),
        Some(Access::Write) | None => false,
    }
}

fn wants_refresh(params: Option<&RawValue>) -> bool {
    #[derive(serde::Deserialize)]
    struct Usage {
        #[serde(default)]
        refresh: serde_json::Value,
    }
    // Anything but an explicit `false`/absent counts as a refresh: unclear means not read-only.
    params
        .and_then(|p| serde_json::from_str::<Usage>(p.get()).ok())
        .is_none_or(|u| !(u.refresh.is_null() || u.refresh == serde_json::Value::Bool(false)))
}

/// Reads the supplementary groups of a live process; the primary gid is always included.
pub fn caller_from_peer(uid: u32, gid: u32, pid: Option<i32>) -> Caller {
    let mut gids = vec![gid];
    if let Some(pid) = pid {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(line) = status.lines().find(|l| l.starts_with("Groups:")) {
                gids.extend(
                    line[7..]
                        .split_whitespace()
                        .filter_map(|g| g.parse::<u32>().ok()),
                );
            }
        }
    }
    gids.sort_unstable();
    gids.dedup();
    Caller { uid, pid, gids }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn read_only_methods() {
        for m in [
            "agent.info",
            "host.stats",
            "subscription.get",
            "subscription.list",
            "stage.get",
            "stage.list",
            "stage.logs",
            "stage.follow_logs",
            "stage.unfollow_logs",
            "stage.stats",
        ] {
            assert!(is_read_only(m, None), "{m}");
        }
        for m in [
            "subscription.create",
            "subscription.update",
            "subscription.delete",
            "stage.exec",
            "stage.sql",
            "stage.stop",
            "events.subscribe",
            "events.unsubscribe",
            "subscription.deploy_key",
            "stage.deploy",
            "stage.backup",
            "stage.backups",
            "stage.restore_backup",
            "stage.backup_delete",
            "codeserver.create",
            "codeserver.rotate_password",
            "stage.set_admin_password",
        ] {
            assert!(!is_read_only(m, None), "{m}");
        }
        assert!(is_read_only(
            "stage.usage",
            Some(&raw(r#"{"stage":"a/b"}"#))
        ));
        assert!(is_read_only(
            "stage.usage",
            Some(&raw(r#"{"stage":"a/b","refresh":false}"#))
        ));
        assert!(!is_read_only(
            "stage.usage",
            Some(&raw(r#"{"stage":"a/b","refresh":true}"#))
        ));
        assert!(!is_read_only(
            "stage.usage",
            Some(&raw(r#"{"refresh":"yes"}"#))
        ));
        assert!(!is_read_only("stage.usage", Some(&raw(r#"["a/b", true]"#))));
    }

    #[test]
    fn roles() {
        let policy = AccessPolicy {
            admin_gids: [1000].into(),
            reader_gids: [2000].into(),
        };
        let who = |uid, gids: &[u32]| Caller {
            uid,
            pid: None,
            gids: gids.to_vec(),
        };
        assert_eq!(policy.role(&who(0, &[0])), Role::Admin);
        assert_eq!(policy.role(&who(5, &[7, 1000])), Role::Admin);
        assert_eq!(policy.role(&who(5, &[2000])), Role::Reader);
        assert_eq!(policy.role(&who(65534, &[65534])), Role::None);
        assert!(policy.allows(&who(5, &[2000]), "subscription.get", None));
        assert!(!policy.allows(&who(5, &[2000]), "subscription.create", None));
        assert!(!policy.allows(&who(65534, &[65534]), "agent.info", None));
    }
}
