//! The server's flags and their environment twins.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inference-server"));
    command
        .env_remove("CPU_MS")
        .env_remove("LISTEN")
        .env("RUST_LOG", "warn");
    command
}

#[test]
fn out_of_range_values_are_refused_before_start() {
    for args in [
        &["--cpu-ms", "-1"][..],
        &["--cpu-ms", "NaN"],
        &["--workers", "0"],
        &["--shutdown-grace-seconds", "1e12"],
        &["--listen", "not-an-address"],
    ] {
        let output = server().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
    let output = server().env("CPU_MS", "lots").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("lots"));
}

#[test]
fn the_environment_configures_the_server() {
    let mut child = server()
        .env("LISTEN", "127.0.0.1:0")
        .env("CPU_MS", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
}
