//! Named failpoints for crash tests: in debug builds, `STAGELET_FAILPOINT=<name>` makes the
//! daemon kill itself with SIGKILL when it reaches that point. Release builds ignore it.

pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("STAGELET_FAILPOINT").as_deref() == Ok(name) {
        tracing::warn!(failpoint = name, "failpoint: killing the daemon");
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
