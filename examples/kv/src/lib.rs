//! rsm-kv: a replicated key-value service built from rsm's parts, and the tools to try it.
//!
//! A server ([`server::run`]) is one Raft replica with its write-ahead log (rsm-wal), its
//! TCP transport to peers (rsm-tcp) and the node loop (rsm-driver), serving a small framed
//! request/response protocol ([`wire`]) on a client port. The client library ([`KvClient`])
//! gives exactly-once commands (a session id and a sequence number per command, retried
//! under the same number) and linearizable reads, following leader hints. Around them:
//! a closed-loop [`workload`] that records latencies and a history for the core
//! linearizability checker, and [`LocalCluster`], which runs server processes on loopback
//! and kills, restarts and pauses them.
//!
//! This crate never decides anything about consensus or durability itself: it assembles
//! and observes. Read first: [`server::ServerConfig`], [`KvClient`] and [`LocalCluster`].
//!
//! Binaries: `rsm-kv-server`, `rsm-kv` (get, put, delete, cas), `rsm-kv-demo` and
//! `rsm-kv-load`.

#![warn(missing_docs)]

pub mod client;
pub mod cluster;
pub mod data_dir;
pub mod flags;
pub mod history;
mod observe;
pub mod server;
mod storage;
pub mod wire;
pub mod workload;

pub use client::{ClientConfig, KvClient, KvError};
pub use cluster::{LocalCluster, ServerProgram};
pub use observe::{Observed, ObservedConfig, StatusBoard};
pub use storage::{DiskCounters, WalStorage};

/// The first argument that makes the demo and the load generator act as a server, so
/// they can start a cluster from their own executable whatever else was built.
pub const SERVE_SUBCOMMAND: &str = "serve";

/// Run a server from command-line flags (without the program name) until it is told to
/// stop. Prints one line when it listens; returns the process exit code.
pub fn server_main(args: impl IntoIterator<Item = String>) -> std::process::ExitCode {
    let config =
        match flags::Flags::parse(args, flags::SERVER_SWITCHES).and_then(flags::server_config) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("rsm-kv-server: {error}\n{}", flags::SERVER_USAGE);
                return std::process::ExitCode::from(2);
            }
        };
    let id = config.id;
    let protocol = config.protocol;
    let outcome = server::run(config, |bound| {
        println!(
            "rsm-kv-server {id} ({protocol}) ready: peers on {}, clients on {}",
            bound.peers, bound.clients
        );
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rsm-kv-server {id}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// This executable, run as a server through [`SERVE_SUBCOMMAND`].
pub fn embedded_server() -> std::io::Result<ServerProgram> {
    Ok(ServerProgram {
        program: std::env::current_exe()?,
        args: vec![SERVE_SUBCOMMAND.to_string()],
    })
}

/// The `main` of a tool that can start its own servers (the demo, the load generator):
/// act as a server when the first argument is [`SERVE_SUBCOMMAND`]; otherwise parse the
/// arguments and run `body` on a current-thread runtime. `Ok(true)` exits with success,
/// `Ok(false)` with failure, an error after printing it.
pub fn tool_main<O, F>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(Vec<String>) -> Result<O, String>,
    body: impl FnOnce(O) -> F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<bool, Box<dyn std::error::Error>>>,
{
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(SERVE_SUBCOMMAND) {
        args.remove(0);
        return server_main(args);
    }
    let options = match parse(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{name}: {error}\n{usage}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
        .and_then(|runtime| runtime.block_on(body(options)));
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("\n{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
