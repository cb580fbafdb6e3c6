//! Runs one stable endpoint in front of fixed backends until SIGINT or SIGTERM, on a
//! tokio runtime with 2 worker threads as the agent uses. `benches/endpoint_proxy.sh`
//! and `benches/http_endpoint.sh` start it to measure the endpoint's overhead. With
//! `--http`, it prints the endpoint's request counts on standard output when it stops.
//!
//! Example: `endpoint_bench --listen 127.0.0.1:18080 --backend 127.0.0.1:18081 --http`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shipdeck::endpoint::{Backend, Endpoint, EndpointConfig};
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

    /// Observe HTTP/1.1 and count requests, as for a port with `appProtocol: http`.
    #[arg(long)]
    http: bool,

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
    let config = EndpointConfig {
        http: options.http,
        ..EndpointConfig::default()
    };
    let endpoint = Endpoint::bind_with_config(options.listen, config)
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
    if let Some(requests) = endpoint.stats().requests {
        let times = &requests.response_time;
        println!(
            "requests completed={} failed={} mean_us={:.0} p95_us={:.0}",
            requests.completed,
            requests.failed,
            times.mean_micros().unwrap_or(0.0),
            times.quantile(0.95).unwrap_or(0.0),
        );
    }
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
