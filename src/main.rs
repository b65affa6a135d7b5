//! `autoscale-conformance`: grades a student submission against the exercise's rubric.

mod progress;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use harness::checks::Tools;
use harness::class::{self, FolderKind};
use harness::criteria;
use harness::grade::{GradeOptions, LiveOptions};
use harness::report::{ClassSummary, ReplicaChart, Report, chart};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "autoscale-conformance",
    version,
    about = "Conformance suite and grader for Kubernetes autoscaling of ML workloads"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade a submission directory (a student's repository).
    Grade(GradeArgs),
    /// Chart timelines (a probe's saved JSON): an SVG each into --out, Mermaid on stdout.
    Plot {
        /// Timeline files (`--out DIR/timelines/*.json`, `target/e2e-timelines/*.json`).
        #[arg(required = true)]
        timelines: Vec<PathBuf>,
        /// Where the SVGs go.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
    },
    /// The class table from reports already written: every `DIR/*/report.json`, or
    /// one level deeper (`DIR/*/*/report.json`, downloaded workflow artifacts).
    Table {
        dir: PathBuf,
        /// Where class.md, class.csv and class.json go.
        #[arg(long)]
        out: PathBuf,
        /// Mark the rows below this score.
        #[arg(long)]
        min_score: Option<f64>,
    },
    /// List the rubric: every static check and live criterion with its points.
    Catalogue {
        /// Markdown table instead of plain text.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(clap::Args)]
struct GradeArgs {
    /// The submission directories. One is graded as before (its report on stdout);
    /// several, or a class folder (a folder of students' repositories: no files of its
    /// own, each folder in it with a README or a .git), are graded together, each
    /// into `--out DIR/<name>/`, with a class table.
    #[arg(required_unless_present = "class")]
    submissions: Vec<PathBuf>,
    /// A folder whose every (non-hidden) folder is one submission, whatever it holds.
    #[arg(long, value_name = "DIR")]
    class: Vec<PathBuf>,
    /// Only static checks: no cluster needed. Live points are reported as "not run".
    /// Without it the live probes run against the cluster of KUBECONFIG, each in a
    /// sandboxed namespace of its own, with the submission's own windows.
    #[arg(long)]
    offline: bool,
    /// What to print on stdout (grading a class: the class table, JSON or Markdown).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write every format into this directory (report.txt, report.json,
    /// junit.xml, summary.md, classroom.json, annotations.txt), the live probes'
    /// timelines into its timelines/ and their charts into its plots/. A class: one
    /// such directory per submission, and class.md, class.csv, class.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit with status 2 when the score (of any submission) is below this many points.
    #[arg(long)]
    min_score: Option<f64>,
    /// The most live grading may take, as `<number>[s|m|h]` (seconds without a unit).
    /// Probes still running then are stopped and reported "error" with that reason; a
    /// submission whose own windows could never fit a probe's cap fails before waiting.
    /// A class shares one deadline: give it about 15 minutes per submission.
    #[arg(long, default_value = "45m", value_parser = parse_deadline)]
    deadline: Duration,
    /// Probe only these live criteria (comma-separated IDs, e.g. `hpa-custom,monitoring`);
    /// the other live criteria are reported "not run: not selected". For re-running the
    /// criteria a fix touched; a full grade needs every probe.
    #[arg(long, value_delimiter = ',', value_parser = parse_live_criterion)]
    only: Vec<harness::criteria::CriterionId>,
    /// How many submissions to check at once offline (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
    /// No progress display (it is off anyway when stderr is not a terminal).
    #[arg(long, short)]
    quiet: bool,
}

/// `90`, `90s`, `45m`, `2h` as a duration: a positive whole number and a unit.
/// A signal that stopped live grading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupted {
    Sigint,
    Sigterm,
}

impl Interrupted {
    /// Says so, and the shell's status for a process ended by the signal (128 + its number).
    fn exit(self) -> ExitCode {
        let (name, status) = match self {
            Interrupted::Sigint => ("SIGINT", 130),
            Interrupted::Sigterm => ("SIGTERM", 143),
        };
        eprintln!(
            "grading stopped by {name}: the probes were stopped and what they created in the cluster was deleted; no report was written"
        );
        ExitCode::from(status)
    }
}

/// Runs `work` unless SIGINT or SIGTERM comes first. Then `work` is dropped before this
/// returns, and dropping a probe deletes what it made (each namespace's `Drop` deletes
/// it and the cluster-scoped objects mapped into it, and waits, bounded), so an
/// interrupted grading (Ctrl-C, a CI job cancelled) leaves nothing behind.
async fn until_interrupted<T>(
    work: impl std::future::Future<Output = T>,
) -> Result<T, Interrupted> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let sigterm = async {
        match terminate.as_mut() {
            Some(stream) => {
                stream.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        done = work => Ok(done),
        _ = tokio::signal::ctrl_c() => Err(Interrupted::Sigint),
        () = sigterm => Err(Interrupted::Sigterm),
    }
}

fn parse_live_criterion(name: &str) -> Result<harness::criteria::CriterionId, String> {
    harness::grade::live_criterion(name.trim())
}

fn parse_deadline(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let seconds_per_unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("unknown unit `{unit}`: use s, m or h (e.g. 45m)")),
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 45m"))?;
    match count.checked_mul(seconds_per_unit) {
        Some(0) => Err("the deadline must be above zero".into()),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Err(format!("`{text}` is too long")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Junit,
    Markdown,
    Classroom,
    /// GitHub workflow commands: each finding an annotation on the student's line.
    Github,
}

fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Text => report.to_text(),
        Format::Json => report.to_json()?,
        Format::Junit => report.to_junit()?,
        Format::Markdown => report.to_markdown(),
        Format::Classroom => report.to_classroom()?,
        Format::Github => report.to_github_annotations(),
    })
}

fn grade(args: GradeArgs) -> anyhow::Result<ExitCode> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut as_class = !args.class.is_empty() || args.submissions.len() > 1;
    for dir in &args.class {
        dirs.extend(
            class::submissions_in(dir)
                .with_context(|| format!("reading the class folder {}", dir.display()))?,
        );
    }
    for dir in &args.submissions {
        match class::folder_kind(dir) {
            Ok(FolderKind::Class) => {
                let found = class::submissions_in(dir)
                    .with_context(|| format!("reading the class folder {}", dir.display()))?;
                eprintln!(
                    "{}: a class folder (no files of its own; each folder in it has a README or a .git): {} submission(s)",
                    dir.display(),
                    found.len()
                );
                dirs.extend(found);
                as_class = true;
            }
            // A missing or unreadable folder is the loader's to report, as before.
            _ => dirs.push(dir.clone()),
        }
    }
    if as_class {
        grade_class(&args, &dirs)
    } else {
        grade_one(&args, &dirs[0])
    }
}

fn live_options(args: &GradeArgs, timelines: PathBuf) -> GradeOptions {
    GradeOptions {
        tools: Tools::discover(),
        live: Some(LiveOptions {
            timelines,
            only: args.only.clone(),
        }),
        deadline: args.deadline,
    }
}

fn grade_one(args: &GradeArgs, submission: &Path) -> anyhow::Result<ExitCode> {
    let progress = progress::Progress::new(args.quiet);
    let report = if args.offline {
        harness::grade::grade_offline(submission, &Tools::discover())?
    } else {
        let timelines = match &args.out {
            Some(dir) => dir.join("timelines"),
            None => harness::observe::default_timelines_dir(),
        };
        let options = live_options(args, timelines);
        progress.note(&format!(
            "live grading of {}: the probes run in parallel; the HPA probe waits out the submission's own scale-down window (minutes); deadline {} s",
            submission.display(),
            args.deadline.as_secs()
        ));
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        match runtime.block_on(until_interrupted(
            progress.live(harness::grade::grade(submission, &options)),
        )) {
            Ok(report) => report?,
            Err(signal) => return Ok(signal.exit()),
        }
    };
    if let Some(dir) = &args.out {
        let written = write_reports(&report, dir)?;
        eprintln!("{written}");
    }
    print!("{}", render(&report, args.format)?);
    Ok(exit_code(
        [(submission.display().to_string(), &report)].into_iter(),
        args.min_score,
    ))
}

/// Every format of `report` into `dir`, the charts of its timelines into `dir/plots/`
/// and into summary.md; says what went where.
fn write_reports(report: &Report, dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (format, name) in [
        (Format::Text, "report.txt"),
        (Format::Json, "report.json"),
        (Format::Junit, "junit.xml"),
        (Format::Markdown, "summary.md"),
        (Format::Classroom, "classroom.json"),
        (Format::Github, "annotations.txt"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, render(report, format)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut charts = Vec::new();
    for (criterion, path) in report.timeline_files() {
        let timeline = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<harness::timeline::Timeline>(&text).ok());
        match timeline {
            Some(timeline) => charts.extend(ReplicaChart::from_timeline(&criterion, &timeline)),
            None => eprintln!(
                "warning: the timeline {path} could not be read: no chart for {criterion}"
            ),
        }
    }
    let mut said = format!(
        "reports: {}/{{report.txt,report.json,junit.xml,summary.md,classroom.json,annotations.txt}}",
        dir.display()
    );
    if !charts.is_empty() {
        let plots = dir.join("plots");
        write_charts(&charts, &plots)?;
        let summary = dir.join("summary.md");
        let mut markdown = render(report, Format::Markdown)?;
        markdown.push_str(&chart::charts_markdown(&charts, Some("plots")));
        std::fs::write(&summary, markdown)
            .with_context(|| format!("writing {}", summary.display()))?;
        said.push_str(&format!(
            "\nplots: {} ({} SVG, also as Mermaid charts in summary.md)",
            plots.display(),
            charts.len()
        ));
    }
    Ok(said)
}

fn write_charts(charts: &[ReplicaChart], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for chart in charts {
        let path = dir.join(chart.file_name());
        std::fs::write(&path, chart.to_svg()?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn grade_class(args: &GradeArgs, dirs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let Some(out) = &args.out else {
        anyhow::bail!("grading several submissions writes one report folder each: give --out DIR");
    };
    if dirs.is_empty() {
        anyhow::bail!("no submissions to grade");
    }
    let students = class::name_students(dirs);
    let jobs = args.jobs.unwrap_or_else(class::default_jobs).max(1);
    let progress = progress::Progress::new(args.quiet);
    let bar = progress.bar(
        students.len() as u64,
        if args.offline { "checked" } else { "graded" },
    );
    let done = |graded: &class::Graded| {
        let score = match &graded.report {
            Ok(report) => format!("{} / {}", report.score.earned, report.score.total),
            Err(error) => format!("not graded: {error}"),
        };
        bar.done(&format!("{}: {score}", graded.student.name));
    };
    let started = std::time::Instant::now();
    let graded = if args.offline {
        class::grade_offline(&students, &Tools::discover(), jobs, &done)
    } else {
        // Each submission's timelines go to OUT/<name>/timelines/ (class::grade_live).
        let options = live_options(args, out.clone());
        progress.note(&format!(
            "live grading of {} submissions on one cluster: quick probes together, capacity-bound ones one at a time; deadline {} s for the whole class",
            students.len(),
            args.deadline.as_secs()
        ));
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        match runtime.block_on(until_interrupted(
            progress.live(class::grade_live(&students, options, jobs, &done)),
        )) {
            Ok(graded) => graded,
            Err(signal) => return Ok(signal.exit()),
        }
    };
    bar.finish();
    let elapsed = started.elapsed();
    for graded in &graded {
        if let Ok(report) = &graded.report {
            // Live timelines were saved under <name>/timelines/; the report points at them.
            write_reports(report, &out.join(&graded.student.name))?;
        }
    }
    let paths: Vec<String> = graded
        .iter()
        .map(|g| g.student.dir.display().to_string())
        .collect();
    let summary = ClassSummary::build(
        graded.iter().zip(&paths).map(|(g, path)| {
            (
                g.student.name.as_str(),
                path.as_str(),
                g.report.as_ref().map_err(|e| e.to_string()),
            )
        }),
        args.min_score,
    );
    write_class_table(&summary, out)?;
    match args.format {
        Format::Json => println!("{}", summary.to_json()?),
        _ => print!("{}", summary.to_markdown()),
    }
    eprintln!(
        "graded {} submission(s) in {:.1} s; class table: {}/class.{{md,csv,json}}; each submission's reports and plots: {}/<name>/",
        graded.len(),
        elapsed.as_secs_f64(),
        out.display(),
        out.display(),
    );
    if graded.iter().any(|g| g.report.is_err()) {
        eprintln!("some submissions could not be graded (status not-graded in the table)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(exit_code(
        graded
            .iter()
            .filter_map(|g| g.report.as_ref().ok().map(|r| (g.student.name.clone(), r))),
        args.min_score,
    ))
}

/// 3 when the environment was broken for any, else 2 when any is below `min_score`.
fn exit_code<'a>(
    reports: impl Iterator<Item = (String, &'a Report)>,
    min_score: Option<f64>,
) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    let mut below = false;
    for (name, report) in reports {
        if report.score.environment_errors > 0.0 {
            eprintln!(
                "{name}: {} point(s) not judged: the cluster's environment was broken (see the \"error\" items); not the submission's fault",
                report.score.environment_errors
            );
            code = ExitCode::from(3);
        }
        if let Some(minimum) = min_score
            && report.score.earned < minimum
        {
            eprintln!(
                "{name}: score {} is below --min-score {minimum}",
                report.score.earned
            );
            below = true;
        }
    }
    if code == ExitCode::SUCCESS && below {
        code = ExitCode::from(2);
    }
    code
}

fn table(dir: &Path, out: &Path, min_score: Option<f64>) -> anyhow::Result<ExitCode> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for level in [1, 2] {
        let mut folders = vec![dir.to_path_buf()];
        for _ in 0..level {
            folders = folders
                .iter()
                .filter_map(|f| class::submissions_in(f).ok())
                .flatten()
                .collect();
        }
        for folder in folders {
            let report = folder.join("report.json");
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if report.is_file() {
                found.push((class::safe_name(&name), report));
            }
        }
    }
    found.sort();
    let mut rows: Vec<(String, String, Result<Report, String>)> = Vec::new();
    for (name, path) in found {
        let report = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<Report>(&text)
                    .map_err(|e| format!("{} is not a report: {e}", path.display()))
            });
        rows.push((name, path.display().to_string(), report));
    }
    if rows.is_empty() {
        anyhow::bail!("no report.json under {}", dir.display());
    }
    let summary = ClassSummary::build(
        rows.iter().map(|(name, path, report)| {
            (
                name.as_str(),
                path.as_str(),
                report.as_ref().map_err(Clone::clone),
            )
        }),
        min_score,
    );
    write_class_table(&summary, out)?;
    print!("{}", summary.to_markdown());
    Ok(ExitCode::SUCCESS)
}

fn write_class_table(summary: &ClassSummary, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in [
        ("class.md", summary.to_markdown()),
        ("class.csv", summary.to_csv()?),
        ("class.json", summary.to_json()?),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn plot(files: &[PathBuf], out: &Path) -> anyhow::Result<ExitCode> {
    let mut charts = Vec::new();
    let mut timelines = 0;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        // A probe's folder of timelines also holds its other records (a custom metric's
        // samples, a ScaledObject's states): said and skipped, so `plot DIR/*.json` works.
        match serde_json::from_str::<harness::timeline::Timeline>(&text) {
            Ok(timeline) => {
                timelines += 1;
                charts.extend(ReplicaChart::from_timeline(&timeline.name, &timeline));
            }
            Err(e) => eprintln!("skipped {}: not a timeline ({e})", file.display()),
        }
    }
    if timelines == 0 {
        anyhow::bail!(
            "none of the {} file(s) given is a timeline (a probe's saved `<name>.json`)",
            files.len()
        );
    }
    write_charts(&charts, out)?;
    print!(
        "{}",
        chart::charts_markdown(&charts, Some(&out.display().to_string()))
    );
    eprintln!("plots: {} ({} SVG)", out.display(), charts.len());
    Ok(ExitCode::SUCCESS)
}

fn catalogue(markdown: bool) -> anyhow::Result<ExitCode> {
    let rubric = harness::grade::rubric()?;
    let mut rows: Vec<[String; 6]> = Vec::new();
    for line in &rubric.lines {
        for item in &line.static_items {
            let info =
                criteria::check_info(&item.check).context("rubric names an unknown check")?;
            rows.push([
                line.title.clone(),
                format!("{}", item.points),
                "static".into(),
                item.check.clone(),
                info.severity.to_string(),
                info.expectation.to_string(),
            ]);
        }
        for item in &line.live {
            let criterion =
                criteria::find(&item.criterion).context("rubric names an unknown criterion")?;
            let cncf = criterion
                .cncf_ai_conformance
                .map(|c| format!(" (CNCF AI conformance: {c})"))
                .unwrap_or_default();
            rows.push([
                line.title.clone(),
                format!("{}", item.points),
                "live".into(),
                item.criterion.clone(),
                "-".into(),
                format!("{}{cncf}", criterion.title),
            ]);
        }
    }
    for check in &rubric.unscored.checks {
        let info = criteria::check_info(check).context("rubric names an unknown check")?;
        rows.push([
            "(no points)".into(),
            "0".into(),
            "static".into(),
            check.clone(),
            info.severity.to_string(),
            info.expectation.to_string(),
        ]);
    }
    if markdown {
        println!("| Rubric line | Points | Kind | ID | Severity | Expectation |");
        println!("|---|---:|---|---|---|---|");
        for row in rows {
            println!("| {} |", row.join(" | "));
        }
    } else {
        for row in rows {
            println!(
                "{:<40} {:>5}  {:<6} {:<40} {:<8} {}",
                row[0], row[1], row[2], row[3], row[4], row[5]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Grade(args) => grade(args),
        Command::Catalogue { markdown } => catalogue(markdown),
        Command::Plot { timelines, out } => plot(&timelines, &out),
        Command::Table {
            dir,
            out,
            min_score,
        } => table(&dir, &out, min_score),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_parse_with_and_without_a_unit() {
        assert_eq!(parse_deadline("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_deadline("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_deadline("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse_deadline("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "0", "m", "-5m", "5d", "1.5h", "99999999999999999999h"] {
            assert!(parse_deadline(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn the_default_deadline_is_the_libraries() {
        let cli = Cli::parse_from(["autoscale-conformance", "grade", "dir"]);
        let Command::Grade(args) = cli.command else {
            panic!("not grade")
        };
        assert_eq!(args.deadline, harness::grade::DEFAULT_DEADLINE);
    }
}
