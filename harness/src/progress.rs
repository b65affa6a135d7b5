//! What live grading is doing right now, for whoever shows it (the CLI's progress
//! display): which probe runs, what it waits for, with what budget. The library only
//! reports, through one [`Observer`] the program installs once; with none installed (the
//! tests, a program that shows nothing) a report is one atomic load and nothing else.
//!
//! The grader runs each probe inside [`probe_scope`], which names it; the bounded waits
//! of [`crate::cluster::wait`] and the recorder's markers call [`waiting`] and [`stage`],
//! which find that name in the task they run in.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// Receives progress reports. Called from the probes' tasks: keep it quick.
pub trait Observer: Send + Sync {
    /// A probe started (`probe` names the submission and the criterion).
    fn started(&self, probe: &str);
    /// The probe now waits for `what`, at most `budget` (`None`: no budget of its own).
    fn waiting(&self, probe: &str, what: &str, budget: Option<Duration>);
    /// The probe finished.
    fn finished(&self, probe: &str);
}

static OBSERVER: OnceLock<Box<dyn Observer>> = OnceLock::new();

tokio::task_local! {
    static PROBE: String;
}

/// Installs the program's observer; only the first call counts. Returns whether it did.
pub fn observe(observer: Box<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Runs `future` (one probe) as the probe `name`: started and finished are reported, and
/// the waits inside it report under that name.
pub async fn probe_scope<T>(name: String, future: impl Future<Output = T>) -> T {
    let Some(observer) = OBSERVER.get() else {
        return future.await;
    };
    observer.started(&name);
    let result = PROBE.scope(name.clone(), future).await;
    observer.finished(&name);
    result
}

/// The current probe waits for `what`, at most `budget`.
pub fn waiting(what: &str, budget: Option<Duration>) {
    if let Some(observer) = OBSERVER.get() {
        let _ = PROBE.try_with(|probe| observer.waiting(probe, what, budget));
    }
}

/// The current probe reached a stage of its own (a recorder marker: `load-start`).
pub fn stage(label: &str) {
    waiting(&format!("[{label}]"), None);
}
