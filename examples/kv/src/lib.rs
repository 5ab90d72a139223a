//! rsm-kv: a replicated key-value service built from rsm's parts, and the tools to try it.
//!
//! A server ([`server::run`]) is one replica of any protocol in the registry (Raft,
//! Multi-Paxos) with its write-ahead log (rsm-wal), its TCP transport to peers (rsm-tcp)
//! and the node loop (rsm-driver), serving a small framed
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

pub mod cli;
pub mod client;
pub mod client_port;
pub mod cluster;
pub mod data_dir;
pub mod flags;
pub mod history;
pub mod logging;
pub mod server;
mod session;
pub mod wire;
pub mod workload;

pub use client::{ClientConfig, KvClient, KvError};
pub use cluster::{LocalCluster, ServerProgram};
pub use session::KvSession;

/// The first argument that makes the demo and the load generator act as a server, so
/// they can start a cluster from their own executable whatever else was built.
pub const SERVE_SUBCOMMAND: &str = "serve";

/// Run a server from command-line flags (without the program name) until it is told to
/// stop. Prints one line when it listens; returns the process exit code (2 for a usage
/// error, after printing it with the usage).
pub fn server_main(args: impl IntoIterator<Item = String>) -> std::process::ExitCode {
    use clap::Parser;
    let program = std::iter::once("rsm-kv-server".to_string());
    let cli = match flags::ServerCli::try_parse_from(program.chain(args)) {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    if cli.completions.print_if_asked::<flags::ServerCli>() {
        return std::process::ExitCode::SUCCESS;
    }
    let config = match cli.server.config() {
        Ok(config) => config,
        Err(error) => return usage_error(&error),
    };
    let id = config.id;
    let protocol = config.protocol.clone();
    match logging::filter(cli.server.log_level.as_deref()) {
        Ok(filter) => logging::install(id, filter),
        Err(error) => {
            eprintln!("rsm-kv-server {id}: {error}");
            return std::process::ExitCode::from(2);
        }
    }
    let outcome = server::run(config, |bound| {
        println!(
            "rsm-kv-server {id} ({protocol}) ready: peers on {}, clients on {}",
            bound.peers, bound.clients
        );
        tracing::info!(peers = %bound.peers, clients = %bound.clients, "serving");
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "stopped");
            eprintln!("rsm-kv-server {id}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Print a clap error (or the help or version it stands for) and give its exit code:
/// 0 for `--help` and `--version`, 2 for a usage error.
pub fn usage_error(error: &clap::Error) -> std::process::ExitCode {
    let _ = error.print();
    std::process::ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
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
/// arguments as `P` (printing a completion script instead if `completions` says so) and
/// run `body` on a current-thread runtime. `Ok(true)` exits with success, `Ok(false)`
/// with failure, an error after printing it.
pub fn tool_main<P, F>(
    completions: impl FnOnce(&P) -> &flags::CompletionsArg,
    body: impl FnOnce(P) -> F,
) -> std::process::ExitCode
where
    P: clap::Parser,
    F: std::future::Future<Output = Result<bool, Box<dyn std::error::Error>>>,
{
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(SERVE_SUBCOMMAND) {
        return server_main(args.drain(2..));
    }
    let options = match P::try_parse_from(args) {
        Ok(options) => options,
        Err(error) => return usage_error(&error),
    };
    if completions(&options).print_if_asked::<P>() {
        return std::process::ExitCode::SUCCESS;
    }
    let name = P::command().get_name().to_string();
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
