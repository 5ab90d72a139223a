//! Command-line flags: `--name value` or `--name=value`, plus the server's flag set.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use rsm_core::NodeId;

use crate::data_dir::StartMode;
use crate::server::{Protocol, ServerConfig};

/// A flag that is missing, unknown or does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// A required flag was not given.
    #[error("missing --{0}")]
    Missing(&'static str),
    /// A flag's value does not parse.
    #[error("bad value for --{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: String,
        /// Why.
        reason: String,
    },
    /// A flag no one asked for, or a stray argument.
    #[error("unexpected argument `{0}`")]
    Unexpected(String),
}

/// Parsed `--name value` pairs and positional arguments.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    named: BTreeMap<String, String>,
    /// Arguments that are not flags, in order.
    pub positional: Vec<String>,
}

impl Flags {
    /// Parse `args` (without the program name). `switches` are flags that take no value.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        switches: &[&str],
    ) -> Result<Self, FlagError> {
        let mut flags = Flags::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                flags.positional.push(arg);
                continue;
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None if switches.contains(&name) => (name.to_string(), "true".to_string()),
                None => {
                    let value = args.next().ok_or_else(|| FlagError::Invalid {
                        flag: name.to_string(),
                        reason: "a value must follow".into(),
                    })?;
                    (name.to_string(), value)
                }
            };
            flags.named.insert(name, value);
        }
        Ok(flags)
    }

    /// The flag's value parsed as `T`, if given.
    pub fn get<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, FlagError>
    where
        T::Err: std::fmt::Display,
    {
        match self.named.remove(name) {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|e: T::Err| FlagError::Invalid {
                    flag: name.to_string(),
                    reason: e.to_string(),
                }),
        }
    }

    /// The flag's value parsed as `T`, or `default`.
    pub fn get_or<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, FlagError>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// The flag's value parsed as `T`; an error if absent.
    pub fn require<T: FromStr>(&mut self, name: &'static str) -> Result<T, FlagError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)?.ok_or(FlagError::Missing(name))
    }

    /// Whether a switch was given.
    pub fn switch(&mut self, name: &str) -> bool {
        self.named.remove(name).is_some_and(|v| v != "false")
    }

    /// An error naming the first flag no one asked for.
    pub fn finish(&self) -> Result<(), FlagError> {
        match self.named.keys().next() {
            Some(name) => Err(FlagError::Unexpected(format!("--{name}"))),
            None => Ok(()),
        }
    }
}

/// `1=127.0.0.1:7001,2=127.0.0.1:7002`: node ids and addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAddrs(pub BTreeMap<NodeId, SocketAddr>);

impl FromStr for NodeAddrs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not ID=HOST:PORT"))?;
            let id: u64 = id.parse().map_err(|e| format!("node id `{id}`: {e}"))?;
            let addr: SocketAddr = addr.parse().map_err(|e| format!("address `{addr}`: {e}"))?;
            if map.insert(NodeId(id), addr).is_some() {
                return Err(format!("node {id} is listed twice"));
            }
        }
        if map.is_empty() {
            return Err("no nodes listed".into());
        }
        Ok(NodeAddrs(map))
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

/// The server's usage text.
pub const SERVER_USAGE: &str = "\
usage: rsm-kv-server --id N --peers 1=HOST:PORT,2=HOST:PORT,... --client-listen HOST:PORT \\
                     --data-dir DIR [--listen HOST:PORT] [--protocol raft] [--tick-ms 10]
                     [--election-ticks-min 30] [--election-ticks-max 60] [--heartbeat-ticks 3]
                     [--cluster-id 1] [--bootstrap | --join]
  --peers lists every member with its peer address, this server included;
  --listen defaults to this server's entry in --peers;
  --bootstrap starts a new cluster on an empty --data-dir, --join starts a node the
  cluster has already added (as a learner) on an empty --data-dir; without either, the
  directory must hold this node's data.";

/// The server's flags that take no value.
pub const SERVER_SWITCHES: &[&str] = &["bootstrap", "join"];

/// Build a server configuration from its flags.
pub fn server_config(mut flags: Flags) -> Result<ServerConfig, FlagError> {
    let id = NodeId(flags.require::<u64>("id")?);
    let peers: NodeAddrs = flags.require("peers")?;
    let client_listen: SocketAddr = flags.require("client-listen")?;
    let data_dir: PathBuf = flags.require("data-dir")?;
    let mut config = ServerConfig::new(id, peers.0, client_listen, data_dir);
    if let Some(listen) = flags.get("listen")? {
        config.listen = listen;
    }
    config.protocol = flags.get_or::<Protocol>("protocol", Protocol::Raft)?;
    let tick_ms = flags.get_or::<u64>("tick-ms", config.tick.as_millis() as u64)?;
    config.tick = std::time::Duration::from_millis(tick_ms);
    config.election_ticks_min = flags.get_or("election-ticks-min", config.election_ticks_min)?;
    config.election_ticks_max = flags.get_or("election-ticks-max", config.election_ticks_max)?;
    config.heartbeat_ticks = flags.get_or("heartbeat-ticks", config.heartbeat_ticks)?;
    config.cluster_id = flags.get_or("cluster-id", config.cluster_id)?;
    config.start = match (flags.switch("bootstrap"), flags.switch("join")) {
        (false, false) => StartMode::Restart,
        (true, false) => StartMode::Bootstrap,
        (false, true) => StartMode::Join,
        (true, true) => {
            return Err(FlagError::Invalid {
                flag: "join".into(),
                reason: "--bootstrap and --join exclude each other".into(),
            });
        }
    };
    if let Some(extra) = flags.positional.first() {
        return Err(FlagError::Unexpected(extra.clone()));
    }
    flags.finish()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn server_flags_fill_the_configuration() {
        let flags = Flags::parse(
            args("--id 2 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002 --client-listen=127.0.0.1:8002 --data-dir /tmp/x --tick-ms 5"),
            &[],
        )
        .unwrap();
        let config = server_config(flags).unwrap();
        assert_eq!(config.id, NodeId(2));
        assert_eq!(config.listen, "127.0.0.1:7002".parse().unwrap());
        assert_eq!(config.tick, std::time::Duration::from_millis(5));
        assert_eq!(config.peers.len(), 2);
    }

    #[test]
    fn bad_or_unknown_flags_are_named() {
        let flags = Flags::parse(args("--id x"), &[]).unwrap();
        assert!(
            matches!(server_config(flags), Err(FlagError::Invalid { flag, .. }) if flag == "id")
        );
        let flags = Flags::parse(
            args("--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d --bogus 3"),
            &[],
        )
        .unwrap();
        assert_eq!(
            server_config(flags).unwrap_err(),
            FlagError::Unexpected("--bogus".into())
        );
        let flags = Flags::parse(
            args("--id 1 --peers 1=127.0.0.1:1 --client-listen 127.0.0.1:2 --data-dir d --protocol vsr"),
            &[],
        )
        .unwrap();
        assert!(
            matches!(server_config(flags), Err(FlagError::Invalid { flag, .. }) if flag == "protocol")
        );
        assert!("1=nope".parse::<NodeAddrs>().is_err());
        assert!("1=127.0.0.1:1,1=127.0.0.1:2".parse::<NodeAddrs>().is_err());
    }
}
