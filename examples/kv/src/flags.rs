//! Command-line flags of the KV binaries, parsed with clap.
//!
//! The pieces shared by several binaries live here so that they read and fail the same
//! way everywhere: addresses are `HOST:PORT` (a hostname is resolved), member lists are
//! `ID=HOST:PORT,...`, durations are human-readable (`500ms`, `10s`), and common flags
//! can be given as environment variables (`RSM_PEERS`, `RSM_DATA_DIR`, ...). A flag
//! given on the command line wins over its environment variable.
//!
//! [`ServerArgs`] is the server's flag set: the `rsm-kv-server` binary parses it through
//! [`ServerCli`], and the tools that start their own servers pass the same flags to a
//! child process. To add a server flag, add a field to [`ServerArgs`] and read it in
//! [`ServerArgs::config`].

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser};
use clap_complete::Shell;
use rsm_core::NodeId;

use crate::client::ClientConfig;
use crate::data_dir::StartMode;
use crate::server::{PeerTransport, ServerConfig, protocol_name, protocol_option};
use rsm_consensus::registry::OptionValue;

/// Resolve `HOST:PORT` (an IP address or a hostname) to the first address it names.
pub fn resolve(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    if !s.contains(':') {
        return Err(format!("`{s}` is not HOST:PORT (the port is missing)"));
    }
    let mut addrs = s
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

/// Parse a human-readable duration such as `250ms`, `10s` or `1m 30s`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration like 500ms or 10s: {e}"))
}

/// Parse a fraction between 0 and 1 (a ratio of operations).
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a number from 0 to 1")),
    }
}

/// `1=127.0.0.1:7001,2=node2:7002`: node ids and addresses (hostnames are resolved).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAddrs(pub BTreeMap<NodeId, SocketAddr>);

/// One `ID=HOST:PORT` entry of a member list.
fn member(part: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = part
        .split_once('=')
        .ok_or_else(|| format!("`{part}` is not ID=HOST:PORT"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|e| format!("node id `{id}`: {e}"))?;
    if id == 0 {
        return Err("node ids start at 1".into());
    }
    Ok((NodeId(id), resolve(addr.trim())?))
}

/// The non-empty entries of a comma-separated list.
fn entries(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

impl FromStr for NodeAddrs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for part in entries(s) {
            let (id, addr) = member(part)?;
            if map.insert(id, addr).is_some() {
                return Err(format!("node {} is listed twice", id.get()));
            }
        }
        if map.is_empty() {
            return Err("no nodes listed".into());
        }
        Ok(NodeAddrs(map))
    }
}

/// The servers a client is told about: `ID=HOST:PORT` entries, or bare `HOST:PORT`
/// entries whose node ids the client learns by asking them, in any mix
/// (`1=node1:7201,node2:7202`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerAddrs {
    /// The entries that name their node id.
    pub named: BTreeMap<NodeId, SocketAddr>,
    /// The bare addresses.
    pub unnamed: Vec<SocketAddr>,
}

impl ServerAddrs {
    /// A client configuration for these servers (with the default timeouts).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(self.named.clone());
        config.addresses = self.unnamed.clone();
        config
    }
}

impl FromStr for ServerAddrs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut servers = ServerAddrs::default();
        for part in entries(s) {
            if part.contains('=') {
                let (id, addr) = member(part)?;
                if servers.named.insert(id, addr).is_some() {
                    return Err(format!("node {} is listed twice", id.get()));
                }
            } else {
                servers.unnamed.push(resolve(part)?);
            }
        }
        if servers.named.is_empty() && servers.unnamed.is_empty() {
            return Err("no servers listed".into());
        }
        Ok(servers)
    }
}

impl std::fmt::Display for NodeAddrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (id, addr) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{}={addr}", id.get())?;
        }
        Ok(())
    }
}

/// `--completions SHELL`: print a completion script for the binary and exit. It stands
/// alone, so no other flag is required with it.
#[derive(Args, Clone, Debug, Default)]
pub struct CompletionsArg {
    /// Print a shell completion script (bash, elvish, fish, powershell, zsh) and exit
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub completions: Option<Shell>,
}

impl CompletionsArg {
    /// If a script was asked for, write the one for `C` to stdout and return true.
    pub fn print_if_asked<C: CommandFactory>(&self) -> bool {
        let Some(shell) = self.completions else {
            return false;
        };
        let mut command = C::command();
        let name = command.get_name().to_string();
        clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
        true
    }
}

/// The flags of one server.
///
/// The required flags are `Option`s marked `required`: clap still refuses a command line
/// without them, but `--completions` (which stands alone) can be read without them.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// This server's node id (at least 1)
    #[arg(long, env = "RSM_ID", required = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: Option<u64>,
    /// Every member with its peer address, this server included
    #[arg(
        long,
        env = "RSM_PEERS",
        required = true,
        value_name = "ID=HOST:PORT,..."
    )]
    pub peers: Option<NodeAddrs>,
    /// Where clients connect
    #[arg(long, env = "RSM_CLIENT_LISTEN", required = true, value_name = "HOST:PORT", value_parser = resolve)]
    pub client_listen: Option<SocketAddr>,
    /// Where the write-ahead log lives (created if missing)
    #[arg(long, env = "RSM_DATA_DIR", required = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to listen for peers [default: this server's entry in --peers]
    #[arg(long, env = "RSM_LISTEN", value_name = "HOST:PORT", value_parser = resolve)]
    pub listen: Option<SocketAddr>,
    /// Every member's client address, so that a refusal can tell a client where the
    /// leader is [default: only this server's]
    #[arg(long, env = "RSM_CLIENTS", value_name = "ID=HOST:PORT,...")]
    pub clients: Option<NodeAddrs>,
    /// The consensus protocol: a name in the protocol registry (raft, ...)
    #[arg(long, env = "RSM_PROTOCOL", default_value = "raft", value_parser = protocol_name)]
    pub protocol: String,
    /// Peers of another cluster id are refused
    #[arg(long, env = "RSM_CLUSTER_ID", default_value_t = 1)]
    pub cluster_id: u64,
    /// How servers reach each other: tcp, or shm (shared-memory rings, for servers on one
    /// machine)
    #[arg(long, env = "RSM_TRANSPORT", default_value = "tcp", value_parser = ["tcp", "shm"])]
    pub transport: String,
    /// Where shm servers listen, one Unix socket each [default: the temporary directory]
    #[arg(long, env = "RSM_SHM_DIR", value_name = "DIR")]
    pub shm_dir: Option<PathBuf>,
    /// Real length of one logical tick, in milliseconds
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub tick_ms: u64,
    /// Shortest election timeout, in ticks
    #[arg(long, default_value_t = 30)]
    pub election_ticks_min: u64,
    /// Election timeouts are drawn below this many ticks
    #[arg(long, default_value_t = 60)]
    pub election_ticks_max: u64,
    /// A leader's heartbeat period, in ticks
    #[arg(long, default_value_t = 3)]
    pub heartbeat_ticks: u64,
    /// A protocol option, repeatable: any option of the protocol's registry entry, such
    /// as pre_vote=false or batch_entries_max=64 for Raft
    #[arg(long = "option", value_name = "NAME=VALUE", value_parser = protocol_option)]
    pub options: Vec<(String, OptionValue)>,
    /// Start a new cluster of the members in --peers on an empty --data-dir (the first
    /// start of every member). Without --bootstrap or --join the directory must hold this
    /// node's data
    #[arg(long, conflicts_with = "join")]
    pub bootstrap: bool,
    /// Start, on an empty --data-dir, a node the cluster has already added (as a learner)
    #[arg(long)]
    pub join: bool,
    /// Client connections open at once; at the limit a new one closes the idlest
    /// [default: 1024]
    #[arg(long, value_name = "N")]
    pub client_connections_max: Option<usize>,
    /// Request bytes the client port buffers at once, over all connections; a frame
    /// that would overrun it is refused [default: 67108864 (64 MiB)]
    #[arg(long, value_name = "BYTES")]
    pub client_buffered_bytes_max: Option<usize>,
    /// How long a new client connection may take to send its first complete request
    /// [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub client_handshake_timeout: Option<Duration>,
    /// How long a client connection may take after an answer to send its next complete
    /// request [default: 5m]
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub client_idle_timeout: Option<Duration>,
    /// Largest frame body, in bytes, on the client port and between peers; a larger
    /// request is refused from its header [default: 16777216 (16 MiB)]
    #[arg(long, value_name = "BYTES")]
    pub frame_bytes_max: Option<usize>,
    /// What to log on stderr: a level (error, warn, info, debug, trace) or per-crate
    /// directives such as info,rsm_tcp=debug [default: RUST_LOG, else info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl ServerArgs {
    /// The server configuration these flags describe; an error naming the first required
    /// flag that is missing (only possible when these flags were not parsed by clap).
    pub fn config(&self) -> Result<ServerConfig, clap::Error> {
        let missing = |flag: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("the flag --{flag} is required\n"),
            )
        };
        let id = NodeId(self.id.ok_or_else(|| missing("id"))?);
        let peers = self.peers.as_ref().ok_or_else(|| missing("peers"))?;
        let client_listen = self.client_listen.ok_or_else(|| missing("client-listen"))?;
        let data_dir = self.data_dir.as_ref().ok_or_else(|| missing("data-dir"))?;
        let mut config = ServerConfig::new(id, peers.0.clone(), client_listen, data_dir.clone());
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(clients) = &self.clients {
            config.clients = clients.0.clone();
        }
        config.clients.insert(id, client_listen);
        config.protocol = self.protocol.clone();
        config.cluster_id = self.cluster_id;
        config.transport = match self.transport.as_str() {
            "shm" => PeerTransport::Shm {
                dir: self.shm_dir.clone().unwrap_or_else(std::env::temp_dir),
            },
            _ => PeerTransport::Tcp,
        };
        config.tick = Duration::from_millis(self.tick_ms);
        config.election_ticks_min = self.election_ticks_min;
        config.election_ticks_max = self.election_ticks_max;
        config.heartbeat_ticks = self.heartbeat_ticks;
        config.options = self.options.clone();
        let port = &mut config.client_port;
        port.connections_max = self.client_connections_max.unwrap_or(port.connections_max);
        port.buffered_bytes_max = self
            .client_buffered_bytes_max
            .unwrap_or(port.buffered_bytes_max);
        port.handshake_timeout = self
            .client_handshake_timeout
            .unwrap_or(port.handshake_timeout);
        port.idle_timeout = self.client_idle_timeout.unwrap_or(port.idle_timeout);
        config.frame_bytes_max = self.frame_bytes_max.unwrap_or(config.frame_bytes_max);
        config.start = match (self.bootstrap, self.join) {
            (true, _) => StartMode::Bootstrap,
            (false, true) => StartMode::Join,
            (false, false) => StartMode::Restart,
        };
        Ok(config)
    }

    /// The environment variables the server flags read, so that a tool starting servers
    /// of its own can keep its environment from overriding nothing it meant to set.
    pub fn env_names() -> Vec<String> {
        ServerArgs::augment_args(clap::Command::new("server"))
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    }
}

/// One replica of the replicated key-value service.
#[derive(Parser, Debug)]
#[command(name = "rsm-kv-server", version)]
pub struct ServerCli {
    /// The server's flags.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Completion scripts.
    #[command(flatten)]
    pub completions: CompletionsArg,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_port::ClientPortLimits;

    fn parse(s: &str) -> Result<ServerCli, clap::Error> {
        ServerCli::try_parse_from(std::iter::once("rsm-kv-server").chain(s.split_whitespace()))
    }

    #[test]
    fn server_flags_fill_the_configuration() {
        let cli = parse(
            "--id 2 --peers 1=127.0.0.1:7001,2=localhost:7002 --client-listen=127.0.0.1:8002 --data-dir /tmp/x --tick-ms 5",
        )
        .unwrap();
        let config = cli.server.config().unwrap();
        assert_eq!(config.id, NodeId(2));
        assert_eq!(config.listen.port(), 7002);
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.tick, Duration::from_millis(5));
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.clients.get(&NodeId(2)), Some(&config.client_listen));
        assert_eq!(config.start, StartMode::Restart);
        assert_eq!(config.client_port, ClientPortLimits::default());
    }

    #[test]
    fn client_port_limits_come_from_their_flags() {
        let cli = parse(
            "--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d \
             --client-connections-max 8 --client-buffered-bytes-max 65536 \
             --client-handshake-timeout 300ms --client-idle-timeout 2s --frame-bytes-max 4096",
        )
        .unwrap();
        let config = cli.server.config().unwrap();
        assert_eq!(
            config.client_port,
            ClientPortLimits {
                connections_max: 8,
                buffered_bytes_max: 65536,
                handshake_timeout: Duration::from_millis(300),
                idle_timeout: Duration::from_secs(2),
            }
        );
        assert_eq!(config.frame_bytes_max, 4096);
        assert!(config.client_port.check(config.frame_bytes_max).is_ok());
        let error = config.client_port.check(1 << 20).unwrap_err();
        assert!(error.contains("--client-buffered-bytes-max"), "{error}");
    }

    #[test]
    fn protocol_options_are_passed_on_by_name() {
        let base = "--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d";
        let cli = parse(&format!(
            "{base} --option pre_vote=false --option batch_entries_max=64"
        ))
        .unwrap();
        assert_eq!(
            cli.server.config().unwrap().options,
            [
                ("pre_vote".to_string(), OptionValue::Bool(false)),
                ("batch_entries_max".to_string(), OptionValue::Int(64)),
            ]
        );
        for bad in ["pre_vote", "batch_entries_max=-1"] {
            let error = parse(&format!("{base} --option {bad}")).unwrap_err();
            assert!(error.to_string().contains("--option"), "{error}");
        }
    }

    #[test]
    fn an_empty_directory_is_used_only_when_asked() {
        let base = "--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d";
        let start = |extra: &str| {
            parse(&format!("{base} {extra}")).map(|c| c.server.config().unwrap().start)
        };
        assert_eq!(start("--bootstrap").unwrap(), StartMode::Bootstrap);
        assert_eq!(start("--join").unwrap(), StartMode::Join);
        let error = start("--bootstrap --join").unwrap_err().to_string();
        assert!(
            error.contains("--bootstrap") && error.contains("--join"),
            "{error}"
        );
    }

    #[test]
    fn bad_or_unknown_flags_are_named() {
        let error = parse("--id x").unwrap_err().to_string();
        assert!(error.contains("--id"), "{error}");
        let error = parse("--id 0").unwrap_err().to_string();
        assert!(error.contains("--id"), "{error}");
        let error = parse(
            "--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d --bogus 3",
        )
        .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
        assert!(error.to_string().contains("--bogus"));
        let error = parse(
            "--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d --protocol zab",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("--protocol"), "{error}");
        assert!(error.contains("registered: raft"), "{error}");
        assert!("1=nope".parse::<NodeAddrs>().is_err());
        assert!("1=127.0.0.1:1,1=127.0.0.1:2".parse::<NodeAddrs>().is_err());
        assert!("0=127.0.0.1:1".parse::<NodeAddrs>().is_err());
        assert!(
            "127.0.0.1:1".parse::<NodeAddrs>().is_err(),
            "members need ids"
        );
    }

    #[test]
    fn servers_are_named_or_bare_addresses() {
        let servers: ServerAddrs = "1=127.0.0.1:7201, localhost:7202,[::1]:7203"
            .parse()
            .unwrap();
        assert_eq!(servers.named.len(), 1);
        assert_eq!(servers.named[&NodeId(1)].port(), 7201);
        let ports: Vec<u16> = servers.unnamed.iter().map(|a| a.port()).collect();
        assert_eq!(ports, [7202, 7203]);
        assert!(servers.unnamed[0].ip().is_loopback());
        let config = servers.client_config();
        assert_eq!(config.servers.len(), 1);
        assert_eq!(config.addresses.len(), 2);
        let error = "localhost".parse::<ServerAddrs>().unwrap_err();
        assert!(error.contains("port is missing"), "{error}");
        assert!(
            "1=127.0.0.1:1,1=127.0.0.1:2"
                .parse::<ServerAddrs>()
                .is_err()
        );
        assert!(" , ".parse::<ServerAddrs>().is_err());
    }

    #[test]
    fn completions_stand_alone() {
        let cli = parse("--completions bash").unwrap();
        assert_eq!(cli.completions.completions, Some(Shell::Bash));
        assert!(parse("--completions bash --id 1").is_err());
    }

    #[test]
    fn the_environment_lists_the_common_flags() {
        let names = ServerArgs::env_names();
        for name in ["RSM_ID", "RSM_PEERS", "RSM_DATA_DIR", "RSM_CLIENT_LISTEN"] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert!(duration("2").unwrap_err().contains("`2`"));
    }
}
