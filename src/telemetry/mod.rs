//! Metrics, health endpoints, logging and signal handling shared by every subcommand.

mod logging;
mod memory;
mod metrics;
mod readiness;
mod server;
mod signal;

pub use logging::{LogFormat, init_logging};
pub use memory::return_freed_memory;
pub use metrics::{ApiOutcome, Metrics, ReconcileTimer};
pub use readiness::Readiness;
pub use server::{TelemetryServer, serve};
pub use signal::shutdown_signal;

use std::net::SocketAddr;

/// Everything that can go wrong while setting up or running telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {source}")]
    InvalidLogFilter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },

    #[error("unknown log format {0:?} (expected \"json\" or \"text\")")]
    UnknownLogFormat(String),

    #[error("failed to bind the telemetry server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("telemetry server failed: {0}")]
    Serve(#[source] std::io::Error),
}
