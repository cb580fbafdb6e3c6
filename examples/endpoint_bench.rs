//! Runs one stable endpoint in front of fixed backends until SIGINT or SIGTERM, on a
//! tokio runtime with 2 worker threads as the agent uses. `benches/endpoint_proxy.sh`
//! starts it to measure the endpoint's overhead.
//!
//! Example: `endpoint_bench --listen 127.0.0.1:18080 --backend 127.0.0.1:18081`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shipdeck::endpoint::{Backend, Endpoint};
use tokio::signal::unix::{signal, SignalKind};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "endpoint_bench",
    about = "Run a shipdeck stable endpoint in front of fixed backends"
)]
struct Options {
    /// Address to listen on, such as 127.0.0.1:18080.
    #[arg(long)]
    listen: SocketAddr,

    /// Backend address; repeat the option for several backends, which get ids 0, 1, 2...
    #[arg(long = "backend", required = true)]
    backends: Vec<SocketAddr>,

    /// Worker threads of the tokio runtime.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn main() -> ExitCode {
    let options = Options::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("endpoint_bench: starting the tokio runtime failed: {error}");
            return ExitCode::FAILURE;
        }
    };

    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("endpoint_bench: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let endpoint = Endpoint::bind(options.listen)
        .await
        .map_err(|error| error.to_string())?;
    let backends = options
        .backends
        .iter()
        .enumerate()
        .map(|(index, addr)| Backend {
            id: index as u64,
            addr: *addr,
        });
    endpoint.set_backends(backends);

    wait_for_stop_signal().await?;
    endpoint.close(Duration::from_secs(1)).await;
    Ok(())
}

async fn wait_for_stop_signal() -> Result<(), String> {
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|error| format!("installing the SIGTERM handler failed: {error}"))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|error| format!("installing the SIGINT handler failed: {error}"))?;

    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
