//! The daemon: loads the configuration, opens the state, binds the socket, serves the API and
//! handles signals, talking to systemd throughout.

pub mod conn;
pub mod logging;
pub mod notify;
pub mod reload;
pub mod serve;
pub mod signals;
pub mod socket;
pub mod start;

/// Exit status for a configuration error; systemd's unit lists it in RestartPreventExitStatus.
pub const EXIT_CONFIG: u8 = 78;
/// Exit status when the socket or state cannot be set up (another daemon running included).
pub const EXIT_SETUP: u8 = 71;
