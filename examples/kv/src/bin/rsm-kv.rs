//! `rsm-kv`: the command-line client (get, put, delete, compare-and-swap, status).

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use rsm_kv::cli::{self, Exit, Output};
use rsm_kv::flags::{self, CompletionsArg, ServerAddrs};
use rsm_kv::{KvClient, usage_error};

/// The command-line client of the replicated key-value service.
///
/// Commands go to the leader: the client follows leader hints and retries until the
/// operation succeeds, is refused, or --timeout passes (a write is applied at most once
/// however often it is retried).
#[derive(Parser, Debug)]
#[command(
    name = "rsm-kv",
    version,
    override_usage = "rsm-kv [OPTIONS] --servers <[ID=]HOST:PORT,...> <COMMAND>",
    after_help = cli::EXIT_CODES_HELP
)]
struct Cli {
    /// The servers' client addresses (their --client-listen), each with its node id or
    /// bare; one server is enough, the client learns the others
    #[arg(
        long,
        env = "RSM_SERVERS",
        required = true,
        value_name = "[ID=]HOST:PORT,..."
    )]
    servers: Option<ServerAddrs>,
    /// How long one command may take, retries included (e.g. 500ms, 10s)
    #[arg(long, env = "RSM_TIMEOUT", default_value = "10s", value_parser = flags::duration)]
    timeout: Duration,
    /// How results are printed
    #[arg(long, env = "RSM_OUTPUT", value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(flatten)]
    completions: CompletionsArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Lines and tables for a person
    Text,
    /// One JSON object per command, for scripts
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the value at KEY (exit status 1 if there is none)
    Get {
        /// The key
        key: String,
    },
    /// Write VALUE at KEY
    Put {
        /// The key
        key: String,
        /// The value
        value: String,
    },
    /// Remove KEY (absent keys are fine)
    Delete {
        /// The key
        key: String,
    },
    /// Set KEY to NEW if it holds EXPECTED (exit status 1 if it does not)
    Cas {
        /// The key
        key: String,
        /// The value KEY must hold; `-` means it must be absent
        expected: String,
        /// The value to set; `-` removes KEY
        new: String,
    },
    /// Print every server's role, term, commit and applied index, and how far it lags
    Status,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    if cli.completions.print_if_asked::<Cli>() {
        return ExitCode::SUCCESS;
    }
    let (Some(servers), Some(command)) = (cli.servers, cli.command) else {
        let error = Cli::command().error(
            clap::error::ErrorKind::MissingSubcommand,
            "a command is required: get, put, delete, cas or status",
        );
        return usage_error(&error);
    };
    let mut config = servers.client_config();
    config.op_timeout = cli.timeout;
    config.attempt_timeout = config.attempt_timeout.min(cli.timeout);
    let output = Output::new(cli.output == Format::Json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rsm-kv: cannot start: {error}");
            return Exit::Unavailable.into();
        }
    };
    runtime
        .block_on(execute(KvClient::new(config), command, &output))
        .into()
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn optional(s: &str) -> Option<Bytes> {
    (s != "-").then(|| bytes(s))
}

async fn execute(mut client: KvClient, command: Command, output: &Output) -> Exit {
    match command {
        Command::Get { key } => match client.get(bytes(&key)).await {
            Ok(value) => output.value(&key, value.as_ref()),
            Err(error) => output.failure(&error),
        },
        Command::Put { key, value } => match client.put(bytes(&key), bytes(&value)).await {
            Ok(()) => output.done("put", &key),
            Err(error) => output.failure(&error),
        },
        Command::Delete { key } => match client.delete(bytes(&key)).await {
            Ok(()) => output.done("delete", &key),
            Err(error) => output.failure(&error),
        },
        Command::Cas { key, expected, new } => {
            match client
                .cas(bytes(&key), optional(&expected), optional(&new))
                .await
            {
                Ok(cas) => output.cas(&key, &cas),
                Err(error) => output.failure(&error),
            }
        }
        Command::Status => {
            let statuses = cli::cluster_status(&mut client).await;
            output.status(&statuses)
        }
    }
}
