//! A class: many submissions graded in one run. Finding them (a folder of submissions
//! or a list of them), naming them, and grading them together: the external checkers
//! batched over every submission (one shellcheck process for every script), the static
//! checks of several submissions at once on every core, and live, every submission's
//! probes on one cluster, each reserving its CPU in the cluster's ledger
//! ([`crate::cluster::capacity`]).
//!
//! # A submission folder or a class folder
//!
//! A folder given to `grade` is one submission unless it is a class folder: it holds no
//! file at its top level (hidden ones aside: `.git`, `.github`, ...), is not itself a
//! repository (no `.git`), and every folder in it that is not hidden has a README (any
//! case, any extension) or a `.git` at its top level, as a clone of a student's
//! repository has. `grade --class DIR` says it outright. A submission always has a
//! README (the exercise asks for one), so a submission is never taken for a class; a
//! class folder holding one submission without a README is not recognised, and takes
//! `--class`.

use crate::checks::Tools;
use crate::criteria;
use crate::grade::{self, GradeError, GradeOptions};
use crate::report::Report;
use crate::submission::Submission;
use crate::verdict::Verdict;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// One submission of a class: the name its reports are filed under and its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Student {
    /// Safe as one path component and in every report format: letters, digits, `.`,
    /// `_` and `-`, not starting with `.`; unique within the class.
    pub name: String,
    pub dir: PathBuf,
}

/// What a folder given to `grade` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    Submission,
    Class,
}

/// Whether `dir` is one submission or a folder of them (see the module's rule).
pub fn folder_kind(dir: &Path) -> std::io::Result<FolderKind> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == ".git" {
            return Ok(FolderKind::Submission);
        }
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        // A symbolic link is neither: the loader does not follow them either.
        let kind = entry.file_type()?;
        if kind.is_file() {
            return Ok(FolderKind::Submission);
        }
        if kind.is_dir() {
            children.push(entry.path());
        }
    }
    if children.is_empty() {
        return Ok(FolderKind::Submission);
    }
    for child in &children {
        if !looks_like_a_repository(child)? {
            return Ok(FolderKind::Submission);
        }
    }
    Ok(FolderKind::Class)
}

/// A `.git` or a README at the folder's top level.
fn looks_like_a_repository(dir: &Path) -> std::io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().to_lowercase();
        if name == ".git" || name == "readme" || name.starts_with("readme.") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The submissions of `class`: every folder in it that is not hidden, sorted by name.
pub fn submissions_in(class: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(class)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with('.') && entry.file_type()?.is_dir() {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Names for the submissions at `dirs`, in order: each folder's own name made safe
/// ([`safe_name`]), a number added to a name already taken.
pub fn name_students(dirs: &[PathBuf]) -> Vec<Student> {
    let mut taken = BTreeSet::new();
    dirs.iter()
        .map(|dir| {
            let base = safe_name(
                &dir.canonicalize()
                    .unwrap_or_else(|_| dir.clone())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            Student {
                name,
                dir: dir.clone(),
            }
        })
        .collect()
}

/// A folder name (the student's) as a file name of ours: letters, digits, `.`, `_`, `-`
/// kept, anything else `_`, no leading `.`, at most 80 characters, never empty.
pub fn safe_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    while name.starts_with('.') {
        name.replace_range(..1, "_");
    }
    if name.is_empty() {
        name.push_str("submission");
    }
    name
}

/// One graded submission of a class (or why it could not be graded).
#[derive(Debug)]
pub struct Graded {
    pub student: Student,
    pub report: Result<Report, GradeError>,
}

/// How many submissions to work on at once offline: one per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Grades every student offline, `jobs` at a time; `done` is called as each finishes
/// (from a worker thread). The reports are in the order of `students`.
pub fn grade_offline(
    students: &[Student],
    tools: &Tools,
    jobs: usize,
    done: &(dyn Fn(&Graded) + Sync),
) -> Vec<Graded> {
    let options = GradeOptions {
        tools: tools.clone(),
        live: None,
        deadline: grade::DEFAULT_DEADLINE,
    };
    let (loaded, options) = load_and_check(students, options, jobs);
    parallel(&loaded, jobs, |(student, started, loaded)| {
        let report = match loaded {
            Err(error) => Err(copy_error(error)),
            Ok((submission, verdicts)) => futures::executor::block_on(grade::grade_loaded(
                &student.dir,
                submission,
                verdicts.clone(),
                &options,
                *started,
            )),
        };
        let graded = Graded {
            student: student.clone(),
            report,
        };
        done(&graded);
        graded
    })
}

/// Grades every student live on the cluster of KUBECONFIG: static checks as offline,
/// then every submission's probes at once, each in namespaces of its own, each once the
/// cluster's CPU ledger has reserved the CPU its pods request at their peak: probes of all
/// submissions overlap as far as the cluster's free CPU allows. `options.deadline` bounds the whole run. The
/// timelines of each go to `<options.live.timelines>/<name>/timelines/` (the CLI gives
/// its `--out`, so they sit beside that submission's reports).
pub async fn grade_live(
    students: &[Student],
    options: GradeOptions,
    jobs: usize,
    done: &(dyn Fn(&Graded) + Sync),
) -> Vec<Graded> {
    let (loaded, options) = load_and_check(students, options, jobs);
    let futures = loaded.iter().map(|(student, started, loaded)| {
        let options = options.clone();
        async move {
            let report = match loaded {
                Err(error) => Err(copy_error(error)),
                Ok((submission, verdicts)) => {
                    // Each submission's timelines in its own report folder.
                    let mut options = options;
                    if let Some(live) = &mut options.live {
                        live.timelines = live.timelines.join(&student.name).join("timelines");
                    }
                    Box::pin(grade::grade_loaded(
                        &student.dir,
                        submission,
                        verdicts.clone(),
                        &options,
                        *started,
                    ))
                    .await
                }
            };
            let graded = Graded {
                student: student.clone(),
                report,
            };
            done(&graded);
            graded
        }
    });
    futures::future::join_all(futures).await
}

type Loaded = Result<(Submission, Vec<Verdict>), GradeError>;

/// Loads every submission, shellchecks every script of all of them in one batch, and
/// runs every submission's static checks, `jobs` at a time.
fn load_and_check(
    students: &[Student],
    mut options: GradeOptions,
    jobs: usize,
) -> (Vec<(Student, Instant, Loaded)>, GradeOptions) {
    let loaded = parallel(students, jobs, |student| {
        (student.clone(), Instant::now(), grade::load(&student.dir))
    });
    let scripts: Vec<(PathBuf, &str)> = loaded
        .iter()
        .filter_map(|(_, _, loaded)| loaded.as_ref().ok())
        .flat_map(|submission| {
            submission
                .scripts
                .iter()
                .map(|s| (submission.root.join(&s.path), s.text.as_str()))
        })
        .collect();
    options.tools.prefetch_shellcheck(&scripts, jobs);
    let tools = &options.tools;
    let verdicts = parallel(&loaded, jobs, |(_, _, loaded)| match loaded {
        Ok(submission) => criteria::run_checks(submission, tools),
        Err(_) => Vec::new(),
    });
    let checked = loaded
        .into_iter()
        .zip(verdicts)
        .map(|((student, started, loaded), verdicts)| {
            (
                student,
                started,
                loaded.map(|submission| (submission, verdicts)),
            )
        })
        .collect();
    (checked, options)
}

/// `GradeError` holds an `io::Error`, which is not `Clone`.
fn copy_error(error: &GradeError) -> GradeError {
    match error {
        GradeError::Rubric(e) => {
            GradeError::Rubric(crate::report::RubricError::Invalid(e.to_string()))
        }
        GradeError::Submission { path, source } => GradeError::Submission {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
    }
}

/// `work` over every item, on up to `jobs` threads; the results in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, work(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }

    #[test]
    fn a_folder_of_repositories_is_a_class_and_a_submission_is_not() {
        let root = tempfile::tempdir().unwrap();
        let class = root.path().join("class");
        touch(&class.join("alice/README.md"));
        touch(&class.join("alice/manifests/hpa.yaml"));
        std::fs::create_dir_all(class.join("bob/.git")).unwrap();
        touch(&class.join(".github/notes.md"));
        assert_eq!(folder_kind(&class).unwrap(), FolderKind::Class);
        assert_eq!(
            submissions_in(&class).unwrap(),
            vec![class.join("alice"), class.join("bob")]
        );
        // A submission: files at its top level, or a repository itself.
        assert_eq!(
            folder_kind(&class.join("alice")).unwrap(),
            FolderKind::Submission
        );
        assert_eq!(
            folder_kind(&class.join("bob")).unwrap(),
            FolderKind::Submission
        );
        // Folders without a README (manifests/, scripts/) are a submission's own.
        let bare = root.path().join("bare");
        touch(&bare.join("manifests/hpa.yaml"));
        touch(&bare.join("scripts/load.sh"));
        assert_eq!(folder_kind(&bare).unwrap(), FolderKind::Submission);
        // The reference submission is one submission.
        let reference = crate::submission::fixture_dir("submissions/reference");
        assert_eq!(folder_kind(&reference).unwrap(), FolderKind::Submission);
        assert!(folder_kind(&root.path().join("missing")).is_err());
    }

    #[test]
    fn student_names_are_safe_file_names_and_unique() {
        assert_eq!(safe_name("alice-smith_2"), "alice-smith_2");
        assert_eq!(safe_name("../../etc"), "_._.._etc");
        assert_eq!(safe_name("a b|c\n=1"), "a_b_c__1");
        assert_eq!(safe_name(""), "submission");
        assert_eq!(safe_name(".hidden"), "_hidden");
        let students = name_students(&[
            PathBuf::from("x/alice"),
            PathBuf::from("y/alice"),
            PathBuf::from("z/al ice"),
        ]);
        let names: Vec<&str> = students.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alice", "alice-2", "al_ice"]);
    }

    #[test]
    fn work_runs_on_every_item_and_keeps_the_order() {
        let items: Vec<u32> = (0..50).collect();
        assert_eq!(
            parallel(&items, 3, |i| i * 2),
            (0..50).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(parallel(&Vec::<u32>::new(), 4, |i| *i).is_empty());
    }
}
