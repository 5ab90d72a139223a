//! One replicated KV server: a replica of the protocol `--protocol` names in the registry,
//! with its write-ahead log and peer transport (TCP, or shared-memory rings between servers
//! on one machine), the node loop on a thread of its own, and a client port.
//!
//! Threads: the node loop runs on a dedicated thread (its fsyncs block only it); peer
//! links and client connections run on a small multi-threaded tokio runtime. The two meet
//! through the driver's bounded queues: the transport delivers into the channel the loop
//! reads, clients submit through its `Client`, and status requests read its `StatusView`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use rsm_consensus::registry::{
    self, OptionError, OptionValue, Protocol, TIMING_OPTIONS, UnknownProtocol, Visitor,
};
use rsm_core::kv::KvStore;
use rsm_core::{Codec, Durable, Membership, NodeId, Transport};
use rsm_driver::{
    DriverConfig, IntervalTicker, NodeCore, NodeError, NodeHandles, NodeRunner, NodeStatus,
};
use rsm_rdma::{RdmaError, Shm, ShmConfig, ShmTransport};
use rsm_tcp::{TcpConfig, TcpError, TcpTransport};
use rsm_wal::{Wal, WalConfig, WalError};
use tokio::net::TcpListener;

use crate::client_port::{Backend, ClientPort, ClientPortLimits, accept_clients};
use crate::data_dir::{self, DataDirError, Identity, StartMode};
use crate::wire::ServerStatus;

/// Check that `name` is a registered protocol (`--protocol`'s parser); an unknown name is
/// refused with the list of registered ones.
pub fn protocol_name(name: &str) -> Result<String, UnknownProtocol> {
    match registry::NAMES.contains(&name) {
        true => Ok(name.to_string()),
        false => Err(UnknownProtocol {
            name: name.to_string(),
        }),
    }
}

/// Parse `NAME=VALUE` (`--option`'s parser): a protocol option by name, with a count or
/// `true` / `false`. Whether the protocol has it is checked when the replica is configured.
pub fn protocol_option(s: &str) -> Result<(String, OptionValue), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
    let value = value
        .trim()
        .parse()
        .map_err(|e: OptionError| e.to_string())?;
    Ok((name.trim().to_string(), value))
}

/// How servers reach each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerTransport {
    /// rsm-tcp, at the addresses in `peers`.
    Tcp,
    /// rsm-rdma's shared-memory ring, for servers on one machine: server `id` of cluster
    /// `c` listens on the Unix socket `dir/rsm-kv-c-id.sock`.
    Shm {
        /// Where the servers' sockets live.
        dir: PathBuf,
    },
}

/// A started peer transport of either kind.
#[derive(Debug)]
enum Peers {
    Tcp(TcpTransport),
    Shm(ShmTransport, SocketAddr),
}

impl Peers {
    fn local_addr(&self) -> SocketAddr {
        match self {
            Peers::Tcp(t) => t.local_addr(),
            // Reported for symmetry; shared-memory peers never use it.
            Peers::Shm(_, listen) => *listen,
        }
    }
}

impl Transport for Peers {
    fn send(&self, to: NodeId, message: Bytes) {
        match self {
            Peers::Tcp(t) => t.send(to, message),
            Peers::Shm(t, _) => t.send(to, message),
        }
    }
}

/// The socket a shared-memory server listens on.
fn shm_socket(dir: &std::path::Path, cluster_id: u64, id: NodeId) -> PathBuf {
    dir.join(format!("rsm-kv-{cluster_id}-{}.sock", id.get()))
}

/// Everything one server needs. Build it with [`ServerConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This server's node id (at least 1).
    pub id: NodeId,
    /// Every member of the cluster, this server included, with its peer address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// Where to listen for clients.
    pub client_listen: SocketAddr,
    /// The client addresses of the members this server knows (its own included), given
    /// to clients in its status so that they can follow a leader hint to a server they
    /// were not told about.
    pub clients: BTreeMap<NodeId, SocketAddr>,
    /// This node's data directory: its identity stamp and write-ahead log.
    pub data_dir: PathBuf,
    /// Whether the data directory must hold this member's data (a restart) or be empty
    /// (bootstrapping a new cluster, joining one that added this node).
    pub start: StartMode,
    /// The consensus protocol: a name in the protocol registry (`rsm_consensus::registry`).
    pub protocol: String,
    /// Peers of another cluster id are refused by the transport.
    pub cluster_id: u64,
    /// How servers reach each other.
    pub transport: PeerTransport,
    /// Real length of one logical tick.
    pub tick: Duration,
    /// Shortest election timeout, in ticks.
    pub election_ticks_min: u64,
    /// Election timeouts are drawn from `[election_ticks_min, election_ticks_max)`.
    pub election_ticks_max: u64,
    /// A leader's heartbeat period, in ticks.
    pub heartbeat_ticks: u64,
    /// Options of the protocol's registry entry by name, applied after the timing ones;
    /// one the protocol does not have stops the start, naming it.
    pub options: Vec<(String, OptionValue)>,
    /// The node loop's limits (request queue, pending requests, batch sizes).
    pub driver: DriverConfig,
    /// Messages from peers waiting between the transport and the node loop.
    pub peer_inbound_queue_max: usize,
    /// The client port's limits: connections, buffered bytes, timeouts.
    pub client_port: ClientPortLimits,
    /// Largest frame body on the client port and between peers, in bytes.
    pub frame_bytes_max: usize,
    /// Worker threads of the network runtime.
    pub network_threads: usize,
}

impl ServerConfig {
    /// A configuration with a 10 ms tick, elections after 30 to 60 ticks, heartbeats
    /// every 3, and default bounds.
    pub fn new(
        id: NodeId,
        peers: BTreeMap<NodeId, SocketAddr>,
        client_listen: SocketAddr,
        data_dir: PathBuf,
    ) -> Self {
        let listen = peers
            .get(&id)
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Self {
            id,
            peers,
            listen,
            clients: BTreeMap::from([(id, client_listen)]),
            client_listen,
            data_dir,
            start: StartMode::Restart,
            protocol: "raft".to_string(),
            cluster_id: 1,
            transport: PeerTransport::Tcp,
            tick: Duration::from_millis(10),
            election_ticks_min: 30,
            election_ticks_max: 60,
            heartbeat_ticks: 3,
            options: Vec::new(),
            driver: DriverConfig {
                // 10 s at the default tick: a request outlives any election.
                request_timeout_ticks: 1000,
                ..DriverConfig::default()
            },
            peer_inbound_queue_max: 4096,
            client_port: ClientPortLimits::default(),
            frame_bytes_max: rsm_core::FRAME_BYTES_MAX_DEFAULT,
            network_threads: 2,
        }
    }

    fn validate(&self) -> Result<(), ServerError> {
        let fail = |s: &str| Err(ServerError::Config(s.to_string()));
        if self.id == NodeId(0) || self.peers.contains_key(&NodeId(0)) {
            return fail("node ids start at 1");
        }
        if !self.peers.contains_key(&self.id) {
            return fail("--peers must name this server's own id");
        }
        if self.tick.is_zero() {
            return fail("the tick must be positive");
        }
        if self.peer_inbound_queue_max == 0 || self.network_threads == 0 {
            return fail("queue bounds and thread counts must be positive");
        }
        if self.frame_bytes_max == 0 || self.frame_bytes_max > u32::MAX as usize {
            return fail("--frame-bytes-max must be between 1 and 4294967295");
        }
        self.client_port
            .check(self.frame_bytes_max)
            .map_err(ServerError::Config)
    }
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is inconsistent.
    #[error("bad configuration: {0}")]
    Config(String),
    /// The data directory is not this node's, or it lost the node's data.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// A port could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which port (clients or peers).
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The write-ahead log could not be opened.
    #[error("write-ahead log in {dir}: {source}")]
    Wal {
        /// The log's directory.
        dir: PathBuf,
        /// What went wrong.
        #[source]
        source: WalError,
    },
    /// The peer transport could not start.
    #[error("peer transport: {0}")]
    Tcp(#[from] TcpError),
    /// The shared-memory peer transport could not start.
    #[error("shared-memory peer transport: {0}")]
    Ring(#[from] RdmaError),
    /// A thread, runtime or signal handler could not be set up.
    #[error("cannot {doing}: {source}")]
    Io {
        /// What the server was doing.
        doing: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No protocol of that name is registered.
    #[error(transparent)]
    Protocol(#[from] UnknownProtocol),
    /// The replica could not be configured.
    #[error("replica configuration: {0}")]
    Replica(String),
    /// The node loop stopped with a fatal error.
    #[error("node stopped: {0}")]
    Node(#[from] NodeError<WalError>),
}

/// Wrap an I/O error with what the server was doing.
fn io_error(doing: &'static str) -> impl FnOnce(std::io::Error) -> ServerError {
    move |source| ServerError::Io { doing, source }
}

/// Addresses a started server listens on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The peer port.
    pub peers: SocketAddr,
    /// The client port.
    pub clients: SocketAddr,
}

/// Run a server until SIGINT or SIGTERM (then it syncs and stops) or a fatal error.
/// `ready` is called once both ports listen.
pub fn run(config: ServerConfig, ready: impl FnOnce(Bound)) -> Result<(), ServerError> {
    config.validate()?;
    let identity = Identity {
        cluster_id: config.cluster_id,
        node_id: config.id,
    };
    let wal_dir = data_dir::prepare(&config.data_dir, identity, config.start)?;
    let (wal, durable) =
        Wal::open(&wal_dir, WalConfig::default()).map_err(|source| ServerError::Wal {
            dir: wal_dir.clone(),
            source,
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.network_threads)
        .thread_name("network")
        .enable_all()
        .build()
        .map_err(io_error("start the network runtime"))?;
    runtime.block_on(serve(config, wal, durable, ready))
}

async fn serve(
    config: ServerConfig,
    wal: Wal,
    durable: Durable,
    ready: impl FnOnce(Bound),
) -> Result<(), ServerError> {
    // The transport delivers peers' messages into the channel the node loop reads.
    let (inbound_tx, inbound) = async_channel::bounded(config.peer_inbound_queue_max);
    let transport = start_transport(&config, inbound_tx).await?;
    let peer_addr = transport.local_addr();
    let node = start_node(
        &config,
        NodeParts {
            durable,
            wal,
            transport,
            inbound,
        },
    )?;

    // tokio sets SO_REUSEADDR, so a restarted server rebinds while its previous
    // connections linger in TIME_WAIT.
    let listener = TcpListener::bind(config.client_listen)
        .await
        .map_err(|source| ServerError::Bind {
            what: "clients",
            addr: config.client_listen,
            source,
        })?;
    let client_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        what: "clients",
        addr: config.client_listen,
        source,
    })?;
    let mut clients = config.clients.clone();
    clients.insert(config.id, client_addr);
    let view = node.handles.status.clone();
    let backend = Backend {
        client: node.handles.client.clone(),
        status: move || server_status(&view.get(), &clients),
    };
    let port = ClientPort::new(
        config.client_port.clone(),
        Codec::new(config.frame_bytes_max),
    );
    tokio::spawn(accept_clients(listener, port, backend));
    ready(Bound {
        peers: peer_addr,
        clients: client_addr,
    });

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io_error("install the SIGTERM handler"))?;
    tokio::select! {
        _ = node.handles.status.stopped() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    // The loop syncs what was written before it stops.
    node.handles.shutdown.shutdown();
    match tokio::task::spawn_blocking(node.join).await {
        Ok(None) => Ok(()),
        Ok(Some(error)) => Err(error.into()),
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

async fn start_transport(
    config: &ServerConfig,
    inbound: async_channel::Sender<(NodeId, Bytes)>,
) -> Result<Peers, ServerError> {
    let others = config.peers.iter().filter(|(id, _)| **id != config.id);
    Ok(match &config.transport {
        PeerTransport::Tcp => {
            let others = others.map(|(id, addr)| (*id, *addr)).collect();
            let mut tcp = TcpConfig::new(config.id, config.cluster_id, config.listen, others);
            tcp.frame_bytes_max = config.frame_bytes_max;
            Peers::Tcp(TcpTransport::start(tcp, inbound).await?)
        }
        PeerTransport::Shm { dir } => {
            let socket = |id| shm_socket(dir, config.cluster_id, id);
            let others = others.map(|(id, _)| (*id, socket(*id))).collect();
            let mut shm = ShmConfig::new(config.id, config.cluster_id, socket(config.id), others);
            shm.frame_bytes_max = config.frame_bytes_max;
            Peers::Shm(ShmTransport::start(Shm, shm, inbound)?, config.listen)
        }
    })
}

/// What a node is built from, whatever its protocol.
struct NodeParts {
    durable: Durable,
    wal: Wal,
    transport: Peers,
    inbound: async_channel::Receiver<(NodeId, Bytes)>,
}

/// A node running on its own thread.
struct Node {
    handles: NodeHandles<KvStore>,
    /// Waits for the node's thread; the error it stopped with, if any.
    join: Box<dyn FnOnce() -> Option<NodeError<WalError>> + Send>,
}

/// Start the node of the protocol `config.protocol` names in the registry.
fn start_node(config: &ServerConfig, parts: NodeParts) -> Result<Node, ServerError> {
    struct Start<'a> {
        config: &'a ServerConfig,
        parts: Option<NodeParts>,
        node: Option<Result<Node, ServerError>>,
    }
    impl Visitor for Start<'_> {
        fn visit<P: Protocol>(&mut self) {
            if let Some(parts) = self.parts.take() {
                self.node = Some(start::<P>(self.config, parts));
            }
        }
    }
    fn start<P: Protocol>(config: &ServerConfig, parts: NodeParts) -> Result<Node, ServerError> {
        let membership = Membership::new(config.peers.keys().copied());
        let seed = RandomState::new().hash_one(config.id);
        let ticks = [
            config.election_ticks_min,
            config.election_ticks_max,
            config.heartbeat_ticks,
        ];
        let options = TIMING_OPTIONS
            .map(String::from)
            .into_iter()
            .zip(ticks.map(OptionValue::Int));
        let options: Vec<_> = options.chain(config.options.iter().cloned()).collect();
        let replica = P::config(config.id, membership, seed, &options)
            .map_err(|e| ServerError::Replica(e.to_string()))?;
        let core = NodeCore::<P::Replica, _, _, _>::recover(
            config.driver,
            replica,
            parts.durable,
            parts.wal,
            parts.transport,
            KvStore::new(),
        )?;
        let (runner, handles) = NodeRunner::with_inbound(core, parts.inbound);
        let ticker = IntervalTicker::new(config.tick).map_err(io_error("start the tick timer"))?;
        let node = runner
            .spawn_thread(format!("node-{}", config.id.get()), ticker)
            .map_err(io_error("start the node thread"))?;
        Ok(Node {
            handles,
            join: Box::new(move || node.join().error),
        })
    }
    let mut visit = Start {
        config,
        parts: Some(parts),
        node: None,
    };
    registry::visit(&config.protocol, &mut visit)?;
    visit.node.expect("a registered protocol was visited")
}

/// The answer to a client's status request, from what the node last published.
fn server_status(node: &NodeStatus, clients: &BTreeMap<NodeId, SocketAddr>) -> ServerStatus {
    let status = &node.status;
    ServerStatus {
        id: status.id,
        role: status.role,
        epoch: status.epoch,
        leader: status.leader,
        commit: status.commit,
        applied: status.applied,
        wal_syncs: node.storage.syncs,
        wal_fsyncs: node.storage.fsyncs,
        wal_entries_synced: node.storage.entries_synced,
        clients: clients.clone(),
        client_port: Default::default(),
    }
}
