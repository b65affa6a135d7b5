//! `make bench-grade`: offline grading of the reference submission (load,
//! every static check including promtool/shellcheck, the report in all formats),
//! timed over repeated runs in a release build. Goal: under 200 ms per grading.

use harness::checks::Tools;
use harness::grade::grade_offline;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    // At run time: a bench binary reused from a shared target dir keeps the path of the
    // checkout that built it.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let reference = manifest_dir.join("../fixtures/submissions/reference");
    let tools = Tools::discover();
    let missing: Vec<&str> = [
        ("promtool", tools.promtool.is_some()),
        ("shellcheck", tools.shellcheck.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: {} not installed: those checks are skipped and the time is not comparable",
            missing.join(", ")
        );
    }
    // One warm-up run (page cache, tool binaries), then the measured runs.
    let warm = grade_offline(&reference, &tools).expect("the reference grades");
    let runs = 20;
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let report = grade_offline(&reference, &tools).expect("the reference grades");
        let rendered = [
            report.to_text(),
            report.to_json().unwrap(),
            report.to_junit().unwrap(),
            report.to_markdown(),
            report.to_classroom().unwrap(),
        ];
        std::hint::black_box(rendered);
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / runs as f64;
    println!("offline grading of fixtures/submissions/reference ({runs} runs, release):");
    println!(
        "  min {:.1} ms  median {:.1} ms  mean {:.1} ms  max {:.1} ms  (goal < 200 ms)",
        ms(times[0]),
        ms(times[runs / 2]),
        mean,
        ms(times[runs - 1])
    );
    println!(
        "  score {} / {} offline ({} live points not run)",
        warm.score.earned, warm.score.total, warm.score.not_run
    );
    if ms(times[runs / 2]) >= 200.0 {
        println!("  MEDIAN OVER THE 200 ms GOAL");
    }
}
