//! `loadgen`: open-loop HTTP load generator. See workloads/README.md.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use workloads::loadgen::{LoadgenArgs, run};
use workloads::signal::termination_signal;

fn main() -> ExitCode {
    let args = LoadgenArgs::parse();
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let summary = runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signal = termination_signal();
        tokio::spawn(async move {
            signal.await;
            let _ = stop_tx.send(true);
        });
        // Live progress only for a person watching; Jobs and pipes get the summary alone.
        let progress = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} sent  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        let summary = run(&plan, stop_rx, progress.clone()).await;
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        summary
    });
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("loadgen: cannot encode the summary: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", summary.to_text());
    }
    ExitCode::SUCCESS
}
