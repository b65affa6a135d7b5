//! The terminal's progress display (indicatif): a bar over a class's submissions, and
//! live, one line per running probe saying what it waits for, its budget and how long it
//! has waited. Nothing is shown when stderr is not a terminal or with `--quiet`; notes
//! are then plain lines on stderr.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// A display on stderr, or none when it is not a terminal or `quiet`.
    pub fn new(quiet: bool) -> Progress {
        let shown = !quiet && std::io::stderr().is_terminal();
        Progress {
            multi: shown.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// A line above the bars (or on stderr).
    pub fn note(&self, text: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// A bar over `len` things, each `done` when finished.
    pub fn bar(&self, len: u64, what: &str) -> Bar {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(len));
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{pos}}/{{len}} {what} [{{elapsed}}] {{wide_msg}}"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Bar { bar }
    }

    /// Runs live grading with one spinner per running probe (the library reports to it
    /// through `harness::progress`).
    pub async fn live<T>(&self, future: impl Future<Output = T>) -> T {
        if let Some(multi) = &self.multi {
            harness::progress::observe(Box::new(ProbeLines {
                multi: multi.clone(),
                lines: Arc::new(Mutex::new(HashMap::new())),
            }));
        }
        future.await
    }
}

pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn done(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
            bar.inc(1);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One spinner per running probe: `submission/criterion  waiting for X (budget N s)  [elapsed]`.
struct ProbeLines {
    multi: MultiProgress,
    lines: Arc<Mutex<HashMap<String, ProgressBar>>>,
}

impl harness::progress::Observer for ProbeLines {
    fn started(&self, probe: &str) {
        let line = self.multi.add(ProgressBar::new_spinner());
        line.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} [{elapsed} waited]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        line.set_prefix(probe.to_string());
        line.set_message("starting");
        line.enable_steady_tick(Duration::from_millis(250));
        if let Ok(mut lines) = self.lines.lock() {
            lines.insert(probe.to_string(), line);
        }
    }

    fn waiting(&self, probe: &str, what: &str, budget: Option<Duration>) {
        let Ok(lines) = self.lines.lock() else { return };
        if let Some(line) = lines.get(probe) {
            let budget =
                budget.map_or_else(String::new, |b| format!(" (budget {} s)", b.as_secs()));
            line.set_message(format!("waiting for {what}{budget}"));
            line.reset_elapsed();
        }
    }

    fn finished(&self, probe: &str) {
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        if let Some(line) = lines.remove(probe) {
            line.finish_and_clear();
            let _ = self.multi.println(format!("{probe}: probe done"));
        }
    }
}
