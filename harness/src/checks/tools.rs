//! External checkers (promtool, shellcheck, bash): found on PATH, run with a
//! deadline, never on student code as a program (only `-n` / static analysis).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the external checkers are; `None` means "not installed", which makes
/// the dependent checks an environment error rather than a student failure.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub promtool: Option<PathBuf>,
    pub shellcheck: Option<PathBuf>,
    pub bash: Option<PathBuf>,
    pub deadline: Duration,
}

impl Tools {
    /// Looks the tools up on PATH.
    pub fn discover() -> Self {
        Tools {
            promtool: which("promtool"),
            shellcheck: which("shellcheck"),
            bash: which("bash"),
            deadline: Duration::from_secs(30),
        }
    }

    /// No tools at all (tests of the environment-error path).
    pub fn none() -> Self {
        Tools {
            deadline: Duration::from_secs(30),
            ..Tools::default()
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs shellcheck with `args` and a deadline, always with `--norc`: a `.shellcheckrc`
/// in the submission (or above it) is the student's, and could switch checks off.
pub fn run_shellcheck(
    shellcheck: &Path,
    args: &[&std::ffi::OsStr],
    deadline: Duration,
) -> Result<Output, String> {
    let mut all: Vec<&std::ffi::OsStr> = vec!["--norc".as_ref()];
    all.extend_from_slice(args);
    run(shellcheck, &all, deadline)
}

/// What a tool run produced.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with a deadline; the child is killed when it runs out.
pub fn run(
    program: &Path,
    args: &[&std::ffi::OsStr],
    deadline: Duration,
) -> Result<Output, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    // Drain both pipes on threads so a chatty tool cannot block on a full pipe.
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stdout_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {} s",
                    program.display(),
                    deadline.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("waiting for {}: {e}", program.display())),
        }
    };
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Output {
        success: status.success(),
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_tool_and_reports_failure() {
        // Not skipped when bash is missing: a test that returns early cannot fail.
        let bash = which("bash").expect("bash on PATH (the offline suite needs it; ci/tools.sh)");
        let ok = run(
            &bash,
            &["-c".as_ref(), "echo hi".as_ref()],
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(ok.success);
        assert_eq!(ok.stdout.trim(), "hi");
        let failed = run(
            &bash,
            &["-c".as_ref(), "echo bad >&2; exit 3".as_ref()],
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(!failed.success);
        assert_eq!(failed.stderr.trim(), "bad");
    }

    #[test]
    fn a_shellcheckrc_in_the_submission_cannot_switch_shellcheck_off() {
        let shellcheck = which("shellcheck").expect("shellcheck on PATH (ci/tools.sh installs it)");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".shellcheckrc"), "disable=all\n").unwrap();
        let script = dir.path().join("load.sh");
        std::fs::write(
            &script,
            "#!/bin/bash\nfor f in $(ls *.txt); do echo \"$f\"; done\n",
        )
        .unwrap();
        let args = [
            "-f".as_ref(),
            "json1".as_ref(),
            "-S".as_ref(),
            "error".as_ref(),
            script.as_os_str(),
        ];
        let deadline = Duration::from_secs(20);
        // The rc file works on a plain run: the test below could fail.
        let plain = run(&shellcheck, &args, deadline).unwrap();
        assert!(!plain.stdout.contains("2045"), "{}", plain.stdout);
        let guarded = run_shellcheck(&shellcheck, &args, deadline).unwrap();
        assert!(
            guarded.stdout.contains("\"code\":2045"),
            "SC2045 must be reported despite the .shellcheckrc: {}",
            guarded.stdout
        );
    }

    #[test]
    fn kills_a_tool_that_overruns_its_deadline() {
        // Not skipped when bash is missing: a test that returns early cannot fail.
        let bash = which("bash").expect("bash on PATH (the offline suite needs it; ci/tools.sh)");
        let started = Instant::now();
        let result = run(
            &bash,
            &["-c".as_ref(), "sleep 5".as_ref()],
            Duration::from_millis(100),
        );
        assert!(result.unwrap_err().contains("did not finish"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
