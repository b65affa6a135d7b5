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
        let Some(bash) = which("bash") else { return };
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
    fn kills_a_tool_that_overruns_its_deadline() {
        let Some(bash) = which("bash") else { return };
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
