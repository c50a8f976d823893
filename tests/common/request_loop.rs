//! A bounded loop of requests through the test nginx (loopback only) on another thread, for
//! tests that assert what clients see while an operation runs: no 502 once the app served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// At most this many requests, whatever happens to the stop flag (about 5 minutes).
const MAX_REQUESTS: usize = 3000;

pub struct RequestLoop {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u16>>,
}

impl RequestLoop {
    /// GETs `path` with `Host: host` at `127.0.0.1:http_port` every ~100 ms until finished.
    pub fn start(http_port: u16, host: &str, path: &str) -> RequestLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let url = format!("http://127.0.0.1:{http_port}{path}");
        let host = format!("Host: {host}");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = vec![];
            while seen.len() < MAX_REQUESTS && !flag.load(Ordering::SeqCst) {
                let (status, _) = super::nginx::curl(&["-m", "5", "-H", &host, &url]);
                seen.push(status);
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        });
        RequestLoop { stop, thread }
    }

    /// Stops the loop: every status in order (0: no HTTP answer, as nginx's catch-all 444).
    pub fn finish(self) -> Vec<u16> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// The statuses from the first 200 on; empty when no 200 came.
pub fn after_first_ok(seen: &[u16]) -> &[u16] {
    seen.iter()
        .position(|s| *s == 200)
        .map_or(&[], |i| &seen[i..])
}
