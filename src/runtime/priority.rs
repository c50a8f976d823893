//! Lowering the calling thread's I/O and CPU priority, for background work that customers'
//! traffic must not feel. Both are per thread on Linux.

/// `ioprio_set(2)` constants (linux/ioprio.h); libc has the syscall number, not these.
const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: libc::c_int = 13;
pub const IOPRIO_CLASS_IDLE: libc::c_int = 3;
/// The highest nice value: the lowest CPU priority.
pub const NICE_LOWEST: libc::c_int = 19;

/// Idle I/O class and nice 19 for this thread. Best effort: a failure is logged once per call
/// and the work goes on at normal priority.
pub fn lower_this_thread() {
    let tid = unsafe { libc::gettid() };
    // SAFETY: plain syscalls on this thread's own id, no pointers.
    let io = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        )
    };
    let cpu = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE_LOWEST) };
    if io != 0 || cpu != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a measuring thread; it runs at normal priority"
        );
    }
}

/// This thread's I/O class and nice value, as the kernel reports them.
pub fn this_thread() -> (libc::c_int, libc::c_int) {
    let tid = unsafe { libc::gettid() };
    // SAFETY: as above.
    let io = unsafe { libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) } as libc::c_int;
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    (io >> IOPRIO_CLASS_SHIFT, nice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_only_the_calling_thread() {
        let before = this_thread();
        let inside = std::thread::spawn(|| {
            lower_this_thread();
            this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(inside, (IOPRIO_CLASS_IDLE, NICE_LOWEST));
        assert_eq!(this_thread(), before, "the test thread keeps its priority");
    }
}
