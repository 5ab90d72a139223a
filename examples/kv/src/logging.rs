//! The server's log: one line per event on stderr, each naming the node, filtered by
//! level.
//!
//! The library crates (rsm-wal, rsm-tcp, rsm-driver, this crate's server) only emit
//! `tracing` events; a binary installs this subscriber once, at start. The filter is
//! `--log-level` if given, else the `RUST_LOG` environment variable, else `info`; either
//! is a level (`error`, `warn`, `info`, `debug`, `trace`) or a list of per-crate
//! directives such as `info,rsm_tcp=debug`.

use std::fmt;

use rsm_core::NodeId;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The level used when neither `--log-level` nor `RUST_LOG` says otherwise.
pub const LOG_LEVEL_DEFAULT: &str = "info";

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter does not parse.
    #[error(
        "{source_name} `{filter}` is not a log level or filter (try info, debug or info,rsm_tcp=debug): {reason}"
    )]
    BadFilter {
        /// Where the filter came from: `--log-level` or `RUST_LOG`.
        source_name: &'static str,
        /// The filter as given.
        filter: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The filter to log with: `flag` (from `--log-level`) if given, else `RUST_LOG`, else
/// [`LOG_LEVEL_DEFAULT`].
pub fn filter(flag: Option<&str>) -> Result<EnvFilter, LogError> {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (source_name, filter) = match (flag, env) {
        (Some(flag), _) => ("--log-level", flag.to_string()),
        (None, Some(env)) => ("RUST_LOG", env),
        (None, None) => ("the default level", LOG_LEVEL_DEFAULT.to_string()),
    };
    EnvFilter::try_new(&filter).map_err(|e| LogError::BadFilter {
        source_name,
        filter,
        reason: e.to_string(),
    })
}

/// Send every event at or above `filter` to stderr, one line each, starting with
/// `node=ID`. Does nothing if the process already has a subscriber.
pub fn install(node: NodeId, filter: EnvFilter) {
    let format = NodePrefixed {
        node,
        inner: tracing_subscriber::fmt::format().with_ansi(false),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(format)
        .try_init();
}

/// A line format that starts every line with the node id, so that the logs of several
/// servers can be merged and still be told apart.
struct NodePrefixed<F> {
    node: NodeId,
    inner: F,
}

impl<S, N, F> FormatEvent<S, N> for NodePrefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "node={} ", self.node.get())?;
        self.inner.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_names_where_it_came_from() {
        let error = filter(Some("rsm_tcp=loud"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--log-level") && error.contains("rsm_tcp=loud"),
            "{error}"
        );
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("info,rsm_tcp=debug")).is_ok());
    }
}
