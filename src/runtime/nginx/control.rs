//! Driving the nginx master: test the configuration, reload it, and check that the reload took
//! effect (the master started new worker processes).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Control {
    pub test_command: Vec<String>,
    /// Empty: send SIGHUP to the master named in `pid_file`.
    pub reload_command: Vec<String>,
    pub pid_file: PathBuf,
    pub reload_timeout: Duration,
}

fn run(argv: &[String]) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    // nginx prints "[emerg]" lines for what is wrong and a summary line after them.
    let emerg: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[emerg]") || l.contains("[error]"))
        .collect();
    let msg = if emerg.is_empty() {
        text.trim().to_string()
    } else {
        emerg.join("; ")
    };
    Err(format!("{} failed: {msg}", argv.join(" ")))
}

impl Control {
    pub fn test(&self) -> Result<(), String> {
        run(&self.test_command)
    }

    /// Whether a live master is named in `pid_file`.
    pub fn running(&self) -> bool {
        self.master().is_ok()
    }

    fn master(&self) -> Result<Pid, String> {
        let text = std::fs::read_to_string(&self.pid_file).map_err(|e| {
            format!(
                "nginx is not running: cannot read {}: {e}",
                self.pid_file.display()
            )
        })?;
        let pid: i32 = text.trim().parse().map_err(|_| {
            format!(
                "nginx is not running: {} holds no pid",
                self.pid_file.display()
            )
        })?;
        if !alive(pid) {
            return Err(format!(
                "nginx is not running: no process {pid} from {}",
                self.pid_file.display()
            ));
        }
        Ok(Pid::from_raw(pid))
    }

    /// Reloads and waits until the new configuration takes every new connection: the master
    /// runs a worker it did not run before, and each old worker has exited or closed its
    /// listening sockets (nginx then titles it "worker process is shutting down").
    pub fn reload(&self) -> Result<(), String> {
        let master = self.master()?;
        let before = children(master);
        if self.reload_command.is_empty() {
            kill(master, Signal::SIGHUP)
                .map_err(|e| format!("cannot signal nginx master {master}: {e}"))?;
        } else {
            run(&self.reload_command)?;
        }
        let deadline = Instant::now() + self.reload_timeout;
        loop {
            let now = children(master);
            let old_listening = before
                .iter()
                .any(|pid| now.contains(pid) && !shutting_down(*pid));
            if now.difference(&before).next().is_some() && !old_listening {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nginx master {master} started no new workers within {:?}; its error log says why",
                    self.reload_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The pids whose parent is `parent`, from /proc.
fn children(parent: Pid) -> HashSet<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashSet::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| ppid_of(&stat))
                == Some(parent.as_raw())
        })
        .collect()
}

/// A dead master that nobody reaped is a zombie: not running.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat_field(&stat, 0).is_some_and(|state| state != "Z"))
}

fn shutting_down(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("shutting down"))
}

/// Field `n` after the command name of /proc/PID/stat (0: state, 1: ppid); the name itself may
/// hold spaces and ')'.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(n)
}

/// The parent pid from /proc/PID/stat.
fn ppid_of(stat: &str) -> Option<i32> {
    stat_field(stat, 1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppid_after_odd_names() {
        assert_eq!(ppid_of("123 (nginx: worker) S 77 1 1"), Some(77));
        assert_eq!(ppid_of("5 (a) b) R 9 1"), Some(9));
        assert_eq!(ppid_of("garbage"), None);
    }

    #[test]
    fn a_failing_command_reports_its_message() {
        let err = run(&[
            "sh".into(),
            "-c".into(),
            "echo 'nginx: [emerg] bad thing' >&2; exit 1".into(),
        ])
        .unwrap_err();
        assert!(err.contains("[emerg] bad thing"), "{err}");
        assert!(run(&["/nonexistent/nginx".into()])
            .unwrap_err()
            .contains("cannot run"));
    }
}
