//! `inference-server`: simulated ML inference over HTTP. See workloads/README.md.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use workloads::server::{ServerConfig, serve};
use workloads::signal::termination_signal;

fn main() -> ExitCode {
    let config = ServerConfig::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("inference-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = termination_signal();
        let listener = match TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!(
                    "inference-server: cannot listen on {}: {error}",
                    config.listen
                );
                return ExitCode::FAILURE;
            }
        };
        // The one line on stdout: tests and scripts read the bound address from it.
        if let Ok(address) = listener.local_addr() {
            println!("listening on http://{address}");
            let _ = std::io::stdout().flush();
        }
        match serve(config, listener, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("inference-server: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
