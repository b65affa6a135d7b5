//! `autoscale-conformance`: grades a student submission against the exercise's rubric.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use harness::checks::Tools;
use harness::criteria;
use harness::grade::{GradeOptions, LiveOptions};
use harness::report::Report;
use std::path::PathBuf;
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
    /// List the rubric: every static check and live criterion with its points.
    Catalogue {
        /// Markdown table instead of plain text.
        #[arg(long)]
        markdown: bool,
    },
}

#[derive(clap::Args)]
struct GradeArgs {
    /// The submission directory.
    submission: PathBuf,
    /// Only static checks: no cluster needed. Live points are reported as "not run".
    /// Without it the live probes run against the cluster of KUBECONFIG, each in a
    /// sandboxed namespace of its own, with the submission's own windows.
    #[arg(long)]
    offline: bool,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write every format into this directory (report.txt, report.json,
    /// junit.xml, summary.md, classroom.json) and the live probes' timelines into
    /// its timelines/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit with status 2 when the score is below this many points.
    #[arg(long)]
    min_score: Option<f64>,
    /// The most live grading may take, as `<number>[s|m|h]` (seconds without a unit).
    /// Probes still running then are stopped and reported "error" with that reason; a
    /// submission whose own windows could never fit a probe's cap fails before waiting.
    #[arg(long, default_value = "45m", value_parser = parse_deadline)]
    deadline: Duration,
}

/// `90`, `90s`, `45m`, `2h` as a duration: a positive whole number and a unit.
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
}

fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Text => report.to_text(),
        Format::Json => report.to_json()?,
        Format::Junit => report.to_junit()?,
        Format::Markdown => report.to_markdown(),
        Format::Classroom => report.to_classroom()?,
    })
}

fn grade(args: GradeArgs) -> anyhow::Result<ExitCode> {
    let report = if args.offline {
        harness::grade::grade_offline(&args.submission, &Tools::discover())?
    } else {
        let timelines = match &args.out {
            Some(dir) => dir.join("timelines"),
            None => harness::observe::default_timelines_dir(),
        };
        let options = GradeOptions {
            tools: Tools::discover(),
            live: Some(LiveOptions { timelines }),
            deadline: args.deadline,
        };
        eprintln!(
            "live grading of {}: the probes run in parallel; the HPA probe waits out the submission's own scale-down window (minutes); deadline {} s",
            args.submission.display(),
            args.deadline.as_secs()
        );
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(harness::grade::grade(&args.submission, &options))?
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (format, name) in [
            (Format::Text, "report.txt"),
            (Format::Json, "report.json"),
            (Format::Junit, "junit.xml"),
            (Format::Markdown, "summary.md"),
            (Format::Classroom, "classroom.json"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, render(&report, format)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    print!("{}", render(&report, args.format)?);
    if report.score.environment_errors > 0.0 {
        eprintln!(
            "{} point(s) not judged: the cluster's environment was broken (see the \"error\" items); not the submission's fault",
            report.score.environment_errors
        );
        return Ok(ExitCode::from(3));
    }
    if let Some(minimum) = args.min_score
        && report.score.earned < minimum
    {
        eprintln!(
            "score {} is below --min-score {minimum}",
            report.score.earned
        );
        return Ok(ExitCode::from(2));
    }
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
