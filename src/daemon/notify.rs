//! systemd notifications: READY=1, STOPPING=1, RELOADING=1 and watchdog pings. Outside systemd
//! (no NOTIFY_SOCKET) every call is a no-op.

use sd_notify::NotifyState;
use std::time::Duration;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready() {
    send(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

pub fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// Pings the watchdog at half the interval systemd asked for, if it asked.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let every = Duration::from_micros(usec) / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}
