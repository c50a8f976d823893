//! Port choice: the lowest port of a range that no stage holds, the engine does not publish
//! and nothing on the host uses.

use super::model::Stage;
use super::Stages;
use crate::core::settings::{PortRange, Profile, Settings};
use crate::core::{Error, Result};
use std::collections::HashSet;

/// `busy` asks the host (something listens, a container publishes it).
pub fn choose(range: PortRange, held: &HashSet<u16>, busy: impl Fn(u16) -> bool) -> Option<u16> {
    (range.first..=range.last).find(|p| !held.contains(p) && !busy(*p))
}

impl Stages {
    /// The ports the engine publishes. Something on the host may use a port without any
    /// record knowing: asked before admission, then [`choose_port`](Self::choose_port) skips
    /// them along with the records' ports and what the host uses.
    pub(super) async fn engine_ports(&self) -> Result<HashSet<u16>> {
        Ok(self
            .deps
            .engine
            .published_ports()
            .await?
            .into_iter()
            .collect())
    }

    /// The app's ports from `ports.http`, free of the records (their HTTP and long-polling
    /// ports), the engine's ports and the host: the HTTP port, and a second one when the
    /// profile's app has a `longpolling_port`.
    pub(super) fn choose_ports(
        &self,
        config: &Settings,
        profile: &Profile,
        live: &[Stage],
        published: &HashSet<u16>,
    ) -> Result<(u16, Option<u16>)> {
        let held = || {
            live.iter()
                .flat_map(|s| s.http_port.into_iter().chain(s.longpolling_port))
        };
        let http = self.allocate(config, config.ports.http, "ports.http", held(), published)?;
        let longpolling = match profile.app.longpolling_port {
            Some(_) => Some(self.allocate(
                config,
                config.ports.http,
                "ports.http",
                held().chain([http]),
                published,
            )?),
            None => None,
        };
        Ok((http, longpolling))
    }

    /// A code-server port, by the same rules.
    pub(super) fn choose_code_port(
        &self,
        config: &Settings,
        live: &[Stage],
        published: &HashSet<u16>,
    ) -> Result<u16> {
        let held = live
            .iter()
            .filter_map(|s| s.code_server.as_ref().and_then(|c| c.port));
        self.allocate(
            config,
            config.ports.code_server,
            "ports.code_server",
            held,
            published,
        )
    }

    fn allocate(
        &self,
        config: &Settings,
        range: PortRange,
        key: &str,
        held: impl Iterator<Item = u16>,
        published: &HashSet<u16>,
    ) -> Result<u16> {
        let mut held: HashSet<u16> = held.collect();
        held.extend(published);
        let bind = config.ports.bind_address;
        let probe = self.deps.ports.clone();
        choose(range, &held, |p| probe.in_use(bind, p))
            .ok_or_else(|| Error::LimitExceeded(format!("no free port left in {key} {range}")))
    }
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

    /// The long-polling port is a second port of the same range, and the ports of every
    /// live record (both kinds) are skipped.
    #[test]
    fn a_longpolling_port_is_a_second_free_port() {
        use crate::core::fakes;
        use crate::core::stage::model::StageState;
        let stages = Stages::load(fakes::deps(
            fakes::store_with(&[]),
            std::sync::Arc::new(fakes::SlowMeter::default()),
        ))
        .unwrap();
        let mut config = Settings::default();
        config.ports.http = PortRange {
            first: 100,
            last: 105,
        };
        let mut held = fakes::stage("acme", "a", StageState::Running);
        (held.http_port, held.longpolling_port) = (Some(100), Some(102));
        let published: HashSet<u16> = [101].into();
        let mut profile = config.profiles["odoo"].clone();
        let live = [held];
        let choose = |p: &Profile| stages.choose_ports(&config, p, &live, &published);
        assert_eq!(choose(&profile).unwrap(), (103, None));
        profile.app.longpolling_port = Some(8072);
        assert_eq!(choose(&profile).unwrap(), (103, Some(104)));
        config.ports.http.last = 103;
        let choose = |p: &Profile| stages.choose_ports(&config, p, &live, &published);
        let e = choose(&profile).unwrap_err();
        assert!(e.to_string().contains("ports.http"), "{e}");
    }
}
