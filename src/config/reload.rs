//! What a SIGHUP applies: every key but the restart-only ones, listed here once. Those keep
//! their running values until the next start, and the ones that changed are named.

use super::Config;

/// `new` takes `running`'s value of one restart-only key; `changed` names it if it differed.
fn keep<T: PartialEq + Clone>(
    key: &'static str,
    running: &T,
    new: &mut T,
    changed: &mut Vec<&'static str>,
) {
    if running != new {
        changed.push(key);
        *new = running.clone();
    }
}

impl Config {
    /// `new` as a reload applies it over `self` (the running configuration): the restart-only
    /// keys keep their running values. Also returns those of them that `new` changes.
    pub fn reloaded(&self, mut new: Config) -> (Config, Vec<&'static str>) {
        let mut changed = vec![];
        let (old, n, c) = (self, &mut new, &mut changed);
        keep(
            "agent.state_dir",
            &old.agent.state_dir,
            &mut n.agent.state_dir,
            c,
        );
        keep("agent.socket", &old.agent.socket, &mut n.agent.socket, c);
        keep(
            "agent.socket_mode",
            &old.agent.socket_mode,
            &mut n.agent.socket_mode,
            c,
        );
        keep(
            "agent.socket_group",
            &old.agent.socket_group,
            &mut n.agent.socket_group,
            c,
        );
        keep(
            "agent.log_format",
            &old.agent.log_format,
            &mut n.agent.log_format,
            c,
        );
        keep("docker", &old.docker, &mut n.docker, c);
        keep("ports", &old.ports, &mut n.ports, c);
        (new, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::{Dur, PortRange};
    use super::*;

    #[test]
    fn restart_needed_lists_only_what_changed() {
        let a = Config::default();
        let mut b = a.clone();
        b.access.reader_groups.push("ops".into());
        b.lifecycle.grace_period = Dur::secs(5);
        assert!(a.reloaded(b.clone()).1.is_empty());
        b.agent.socket = "/tmp/other.sock".into();
        b.ports.http = PortRange {
            first: 30000,
            last: 30010,
        };
        assert_eq!(a.reloaded(b.clone()).1, vec!["agent.socket", "ports"]);
    }

    #[test]
    fn a_reload_applies_live_keys_and_keeps_restart_only_ones() {
        let running = Config::default();
        let mut new = running.clone();
        new.lifecycle.grace_period = Dur::secs(5);
        new.agent.socket = "/tmp/other.sock".into();
        new.agent.log_format = super::super::LogFormat::Json;
        new.docker.endpoint = "tcp://127.0.0.1:2375".into();
        let (applied, changed) = running.reloaded(new);
        assert_eq!(changed, vec!["agent.socket", "agent.log_format", "docker"]);
        assert_eq!(applied.lifecycle.grace_period, Dur::secs(5));
        assert_eq!(applied.agent, running.agent);
        assert_eq!(applied.docker, running.docker);
    }
}
