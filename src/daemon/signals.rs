//! Signals: SIGTERM and SIGINT stop the daemon, SIGHUP reloads the configuration.

use futures::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;

pub enum Event {
    Stop,
    Reload,
}

/// Waits for the next signal that means something to the daemon.
pub struct SignalEvents(Signals);

impl SignalEvents {
    pub fn register() -> std::io::Result<Self> {
        Ok(SignalEvents(Signals::new([SIGTERM, SIGINT, SIGHUP])?))
    }

    pub async fn next(&mut self) -> Event {
        match self.0.next().await {
            Some(SIGHUP) => Event::Reload,
            _ => Event::Stop,
        }
    }
}
