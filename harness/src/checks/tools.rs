//! External checkers (promtool, shellcheck, bash): found on PATH, run with a
//! deadline, never on student code as a program (only `-n` / static analysis).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the external checkers are; `None` means "not installed", which makes
/// the dependent checks an environment error rather than a student failure.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub promtool: Option<PathBuf>,
    pub shellcheck: Option<PathBuf>,
    pub bash: Option<PathBuf>,
    pub deadline: Duration,
    /// shellcheck's answers for scripts already checked in one batch (grading a
    /// class: one shellcheck process for every script of every submission, see
    /// [`Tools::prefetch_shellcheck`]), keyed by the exact arguments a single run
    /// would have had. A script not in it is checked on its own, as always.
    pub shellcheck_batch: Option<Arc<HashMap<Vec<OsString>, Output>>>,
}

impl Tools {
    /// Looks the tools up on PATH.
    pub fn discover() -> Self {
        Tools {
            promtool: which("promtool"),
            shellcheck: which("shellcheck"),
            bash: which("bash"),
            deadline: Duration::from_secs(30),
            shellcheck_batch: None,
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

/// Runs shellcheck with `args` and the tools' deadline, always with `--norc`: a
/// `.shellcheckrc` in the submission (or above it) is the student's, and could switch
/// checks off. An answer [`Tools::prefetch_shellcheck`] already has is not asked again.
pub fn run_shellcheck(shellcheck: &Path, args: &[&OsStr], tools: &Tools) -> Result<Output, String> {
    if let Some(batch) = &tools.shellcheck_batch {
        let key: Vec<OsString> = args.iter().map(|a| a.to_os_string()).collect();
        if let Some(output) = batch.get(&key) {
            return Ok(output.clone());
        }
    }
    let mut all: Vec<&OsStr> = vec!["--norc".as_ref()];
    all.extend_from_slice(args);
    run(shellcheck, &all, tools.deadline)
}

/// The arguments one shellcheck run over `script` has (before `--norc`): JSON, errors
/// only, bash for a script without a shebang. The load-testing checks build the same.
pub fn shellcheck_args(script: &Path, has_shebang: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-f", "json1", "-S", "error"].map(OsString::from).into();
    if !has_shebang {
        args.extend(["-s", "bash"].map(OsString::from));
    }
    args.push(script.as_os_str().to_os_string());
    args
}

/// How many scripts one batched shellcheck process checks (a bounded command line).
const SHELLCHECK_BATCH: usize = 400;

impl Tools {
    /// Checks every script of `scripts` (absolute path, its text) with a few shellcheck
    /// processes instead of one per script (each process's start-up is paid once). Each
    /// script's answer is split out of the batch's JSON and kept under the
    /// arguments of its single run, where [`run_shellcheck`] finds it. A batch that
    /// fails as a whole (a timeout, unreadable JSON) is dropped: its scripts are then
    /// checked one by one, as without a batch.
    ///
    /// A text checked once serves every script that has it (a class's template scripts,
    /// left as they were by many students): shellcheck reads no other file (`--norc`,
    /// no `-x`), so the answer depends on the text alone. The distinct texts are split
    /// over `jobs` processes at once (one shellcheck process uses one core).
    pub fn prefetch_shellcheck(&mut self, scripts: &[(PathBuf, &str)], jobs: usize) {
        let Some(shellcheck) = self.shellcheck.clone() else {
            return;
        };
        // One representative path per distinct text.
        let mut by_text: HashMap<&str, Vec<&PathBuf>> = HashMap::new();
        for (path, text) in scripts {
            by_text.entry(text).or_default().push(path);
        }
        let mut chunks: Vec<(bool, Vec<&PathBuf>)> = Vec::new();
        for has_shebang in [true, false] {
            let group: Vec<&PathBuf> = by_text
                .iter()
                .filter(|(text, _)| text.starts_with("#!") == has_shebang)
                .map(|(_, paths)| paths[0])
                .collect();
            let size = group.len().div_ceil(jobs.max(1)).clamp(1, SHELLCHECK_BATCH);
            chunks.extend(group.chunks(size).map(|c| (has_shebang, c.to_vec())));
        }
        let deadline = self.deadline;
        let answered: Vec<Vec<(PathBuf, bool, Output)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|(has_shebang, chunk)| {
                    let shellcheck = &shellcheck;
                    scope.spawn(move || batch(shellcheck, *has_shebang, chunk, deadline))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut answers: HashMap<Vec<OsString>, Output> = HashMap::new();
        let representative: HashMap<&PathBuf, &str> = by_text
            .iter()
            .map(|(text, paths)| (paths[0], *text))
            .collect();
        for (path, has_shebang, output) in answered.into_iter().flatten() {
            let Some(text) = representative.get(&path) else {
                continue;
            };
            for same in &by_text[text] {
                answers.insert(shellcheck_args(same, has_shebang), output.clone());
            }
        }
        self.shellcheck_batch = Some(Arc::new(answers));
    }
}

/// One shellcheck process over `chunk`; each script's answer split out of its JSON.
/// Nothing when the process fails as a whole (its scripts are then checked one by one).
fn batch(
    shellcheck: &Path,
    has_shebang: bool,
    chunk: &[&PathBuf],
    deadline: Duration,
) -> Vec<(PathBuf, bool, Output)> {
    let mut args: Vec<OsString> = vec!["--norc".into()];
    args.extend(shellcheck_args(Path::new(""), has_shebang));
    args.pop(); // the empty path
    args.extend(chunk.iter().map(|p| p.as_os_str().to_os_string()));
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    // The deadline grows with the batch: each script may take what one run may.
    let deadline = deadline.saturating_mul(u32::try_from(chunk.len() / 8 + 1).unwrap_or(u32::MAX));
    let Ok(output) = run(shellcheck, &refs, deadline) else {
        return Vec::new();
    };
    let Some(per_file) = split_json1(&output.stdout, chunk) else {
        return Vec::new();
    };
    per_file
        .into_iter()
        .map(|(path, comments)| {
            let output = Output {
                success: comments.is_empty(),
                stdout: serde_json::json!({ "comments": comments }).to_string(),
                stderr: String::new(),
            };
            (path, has_shebang, output)
        })
        .collect()
}

/// shellcheck's `json1` answer for several files, split into one comment list per file
/// (every file of `files` gets one, empty when shellcheck said nothing of it).
fn split_json1(stdout: &str, files: &[&PathBuf]) -> Option<Vec<(PathBuf, Vec<serde_json::Value>)>> {
    let report: serde_json::Value = serde_json::from_str(stdout).ok()?;
    let comments = report.get("comments")?.as_array()?;
    let mut per_file: HashMap<&OsStr, Vec<serde_json::Value>> = files
        .iter()
        .map(|path| (path.as_os_str(), Vec::new()))
        .collect();
    for comment in comments {
        let file = comment.get("file").and_then(|f| f.as_str())?;
        per_file.get_mut(OsStr::new(file))?.push(comment.clone());
    }
    Some(
        files
            .iter()
            .map(|path| {
                let comments = per_file.remove(path.as_os_str()).unwrap_or_default();
                ((*path).clone(), comments)
            })
            .collect(),
    )
}

/// What a tool run produced.
#[derive(Debug, Clone)]
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
        let tools = Tools {
            shellcheck: Some(shellcheck.clone()),
            deadline,
            ..Tools::default()
        };
        let guarded = run_shellcheck(&shellcheck, &args, &tools).unwrap();
        assert!(
            guarded.stdout.contains("\"code\":2045"),
            "SC2045 must be reported despite the .shellcheckrc: {}",
            guarded.stdout
        );
    }

    #[test]
    fn a_batch_of_scripts_gives_each_the_answer_of_its_own_run() {
        let Some(shellcheck) = which("shellcheck") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.sh");
        let good = dir.path().join("good.sh");
        let bare = dir.path().join("bare.sh");
        std::fs::write(
            &bad,
            "#!/bin/bash\nfor f in $(ls *.txt); do echo \"$f\"; done\n",
        )
        .unwrap();
        std::fs::write(&good, "#!/bin/bash\necho ok\n").unwrap();
        std::fs::write(&bare, "for f in $(ls *.txt); do echo \"$f\"; done\n").unwrap();
        let mut tools = Tools {
            shellcheck: Some(shellcheck.clone()),
            deadline: Duration::from_secs(20),
            ..Tools::default()
        };
        let single = |tools: &Tools, path: &Path, shebang: bool| {
            let args = shellcheck_args(path, shebang);
            let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
            run_shellcheck(&shellcheck, &refs, tools)
                .map(|o| (o.success, o.stdout.contains("2045")))
                .unwrap()
        };
        let alone = [
            single(&tools, &bad, true),
            single(&tools, &good, true),
            single(&tools, &bare, false),
        ];
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let (bad_text, good_text, bare_text) = (read(&bad), read(&good), read(&bare));
        // A copy of a script is answered from the same run, under its own path.
        let copy = dir.path().join("copy.sh");
        std::fs::write(&copy, &bad_text).unwrap();
        tools.prefetch_shellcheck(
            &[
                (bad.clone(), bad_text.as_str()),
                (good.clone(), good_text.as_str()),
                (bare.clone(), bare_text.as_str()),
                (copy.clone(), bad_text.as_str()),
            ],
            2,
        );
        assert_eq!(tools.shellcheck_batch.as_ref().map(|b| b.len()), Some(4));
        assert_eq!(single(&tools, &copy, true), (false, true));
        let batched = [
            single(&tools, &bad, true),
            single(&tools, &good, true),
            single(&tools, &bare, false),
        ];
        assert_eq!(alone, batched);
        assert_eq!(batched, [(false, true), (true, false), (false, true)]);
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
