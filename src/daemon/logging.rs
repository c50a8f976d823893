//! Log output: text by default, or JSON lines. `RUST_LOG` filters, default `info`.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Crates that log whole request and response bodies at debug, where container environments
/// (database passwords) and API results (code-server passwords) pass. Capped whatever
/// `RUST_LOG` says, so no secret reaches a log line.
const SECRET_BEARING: [&str; 7] = [
    "bollard",
    "hyper",
    "hyper_util",
    "jsonrpsee",
    "jsonrpsee_server",
    "jsonrpsee_core",
    "tokio_postgres",
];

pub fn filter() -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for target in SECRET_BEARING {
        filter = filter.add_directive(
            format!("{target}=info")
                .parse()
                .expect("a constant directive parses"),
        );
    }
    filter
}

pub fn init(format: LogFormat) {
    let filter = filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
