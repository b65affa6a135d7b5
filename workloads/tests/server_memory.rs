//! The memory ballast is resident, as a memory-based autoscaler would see it.
//! (Kept apart from the CPU test, which counts the CPU of every child process it reaps.)

mod common;

use common::Server;

/// Resident set size of a process, from /proc.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

#[tokio::test]
async fn the_memory_ballast_is_resident() {
    let plain = Server::start(&["--cpu-ms", "0"]).await;
    let ballasted = Server::start(&["--cpu-ms", "0", "--ballast-mib", "48"]).await;
    let difference =
        resident_bytes(ballasted.child.id()) as i64 - resident_bytes(plain.child.id()) as i64;
    let mib = difference as f64 / (1024.0 * 1024.0);
    assert!(
        (46.0..=56.0).contains(&mib),
        "the ballast adds {mib:.1} MiB resident"
    );
}
