//! Measuring a big filestore: 300,000 files in 3,000 directories, some hard links, timed for
//! the agent's walk and for `du -sb` and `du -sB1` in the same run; printed as ratios.
//! Run: `cargo bench --bench usage`.

use stagelet::runtime::disk_walk::{default_threads, measure};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DIRS: usize = 3_000;
const FILES_PER_DIR: usize = 100;

fn make_tree(root: &Path) {
    for d in 0..DIRS {
        let dir = root.join(format!("{:02}/{d}", d % 30));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..FILES_PER_DIR {
            let path = dir.join(format!("f{f}"));
            if f % 50 == 49 {
                // Every 50th file is a hard link to the first of its directory.
                std::fs::hard_link(dir.join("f0"), path).unwrap();
            } else {
                std::fs::write(path, vec![b'x'; (f * 37) % 9000]).unwrap();
            }
        }
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn du(args: &[&str], root: &Path) -> u64 {
    let out = Command::new("du").args(args).arg(root).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The median of `runs` timings of `f`, and its last result.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut times = vec![];
    let mut last = None;
    for _ in 0..runs {
        let (v, t) = time(&mut f);
        times.push(t);
        last = Some(v);
    }
    times.sort();
    (last.unwrap(), times[runs / 2])
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (_, made) = time(|| make_tree(dir.path()));
    println!(
        "tree: {} files in {DIRS} directories, every 50th a hard link (made in {:.1} s)",
        DIRS * FILES_PER_DIR,
        made.as_secs_f64()
    );
    // Warm the cache once, so every contender reads it hot.
    du(&["-sb"], dir.path());
    const RUNS: usize = 5;
    let threads = default_threads();
    let (ours, t_ours) = median(RUNS, || measure(dir.path(), threads));
    let (ours1, t_ours1) = median(RUNS, || measure(dir.path(), 1));
    let (b, t_b) = median(RUNS, || du(&["-sb"], dir.path()));
    let (blocks, t_blocks) = median(RUNS, || du(&["-sB1"], dir.path()));
    assert_eq!(
        (ours.apparent_bytes, ours.allocated_bytes),
        (b, blocks),
        "the walk must agree with du"
    );
    assert_eq!(ours, ours1);
    println!("median of {RUNS} runs each, warm page cache");
    println!(
        "agent, {threads} threads: {:.3} s   apparent {} B, allocated {} B",
        t_ours.as_secs_f64(),
        ours.apparent_bytes,
        ours.allocated_bytes
    );
    println!("agent, 1 thread:  {:.3} s", t_ours1.as_secs_f64());
    println!(
        "du -sb:           {:.3} s   agent/du = {:.2}",
        t_b.as_secs_f64(),
        t_ours.as_secs_f64() / t_b.as_secs_f64()
    );
    println!(
        "du -sB1:          {:.3} s   agent/du = {:.2}",
        t_blocks.as_secs_f64(),
        t_ours.as_secs_f64() / t_blocks.as_secs_f64()
    );
    println!(
        "both figures: agent one walk {:.3} s, du two runs {:.3} s, ratio {:.2}",
        t_ours.as_secs_f64(),
        (t_b + t_blocks).as_secs_f64(),
        t_ours.as_secs_f64() / (t_b + t_blocks).as_secs_f64()
    );
}
