//! A cluster of server processes on loopback, for the demo, the load generator and the
//! end-to-end test: start, kill (SIGKILL), restart, pause (SIGSTOP), resume (SIGCONT).
//!
//! Every child is killed when the [`LocalCluster`] is dropped, on every exit path of its
//! owner, and (on Linux) also when the thread that spawned it dies, so no server outlives
//! the program that started it.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rsm_core::{NodeId, Role};
use tokio::time::{Instant, sleep};

use crate::client::{ClientConfig, KvClient};
use crate::data_dir::StartMode;
use crate::flags::{NodeAddrs, ServerArgs};
use crate::wire::ServerStatus;

/// How to start one server: a program and the arguments that come before the server
/// flags (none for `rsm-kv-server`; a subcommand for a program that embeds the server).
#[derive(Clone, Debug)]
pub struct ServerProgram {
    /// The executable.
    pub program: PathBuf,
    /// Arguments placed before the server flags.
    pub args: Vec<String>,
}

#[derive(Debug)]
struct LocalNode {
    client_addr: SocketAddr,
    data_dir: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// How the next start treats the data directory: the first bootstraps the cluster.
    start: StartMode,
}

/// Server processes on 127.0.0.1 with data in one directory.
#[derive(Debug)]
pub struct LocalCluster {
    program: ServerProgram,
    extra_args: Vec<String>,
    peers: NodeAddrs,
    nodes: BTreeMap<NodeId, LocalNode>,
    data_root: PathBuf,
    /// Deleted on drop, after the children are gone.
    _temp: Option<tempfile::TempDir>,
}

impl LocalCluster {
    /// Start `size` servers (ids 1..=size) on free loopback ports with data under
    /// `data_root`, or under a fresh temporary directory removed on drop if `None`.
    /// `extra_args` are appended to every server's flags.
    pub fn start(
        program: ServerProgram,
        size: u64,
        data_root: Option<PathBuf>,
        extra_args: Vec<String>,
    ) -> std::io::Result<Self> {
        let (temp, data_root) = match data_root {
            Some(root) => {
                std::fs::create_dir_all(&root)?;
                (None, root)
            }
            None => {
                let temp = tempfile::Builder::new().prefix("rsm-kv-").tempdir()?;
                let root = temp.path().to_path_buf();
                (Some(temp), root)
            }
        };
        // Hold every probe socket until all ports are chosen, so none is chosen twice.
        let probes = (0..2 * size)
            .map(|_| TcpListener::bind(("127.0.0.1", 0)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let ports = probes
            .iter()
            .map(|l| l.local_addr())
            .collect::<std::io::Result<Vec<_>>>()?;
        drop(probes);
        let mut peers = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        for i in 0..size {
            let id = NodeId(i + 1);
            peers.insert(id, ports[2 * i as usize]);
            nodes.insert(
                id,
                LocalNode {
                    client_addr: ports[2 * i as usize + 1],
                    data_dir: data_root.join(format!("n{}", id.get())),
                    child: None,
                    paused: false,
                    start: StartMode::Bootstrap,
                },
            );
        }
        let mut cluster = Self {
            program,
            extra_args,
            peers: NodeAddrs(peers),
            nodes,
            data_root,
            _temp: temp,
        };
        let ids: Vec<NodeId> = cluster.nodes.keys().copied().collect();
        for id in ids {
            cluster.spawn(id)?;
        }
        Ok(cluster)
    }

    /// The node ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Where the servers' data and logs live.
    pub fn data_root(&self) -> &Path {
        &self.data_root
    }

    /// One server's data directory.
    pub fn data_dir(&self, id: NodeId) -> Option<&Path> {
        self.nodes.get(&id).map(|n| n.data_dir.as_path())
    }

    /// Wait up to `within` for a server to exit on its own (a refusal to start, a fatal
    /// error); its exit status, or `None` if it is still running.
    pub fn wait_exit(
        &mut self,
        id: NodeId,
        within: Duration,
    ) -> std::io::Result<Option<std::process::ExitStatus>> {
        let deadline = std::time::Instant::now() + within;
        let node = self.node(id)?;
        let Some(child) = node.child.as_mut() else {
            return Ok(None);
        };
        loop {
            if let Some(status) = child.try_wait()? {
                node.child = None;
                return Ok(Some(status));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client address of every server.
    pub fn client_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.nodes
            .iter()
            .map(|(id, node)| (*id, node.client_addr))
            .collect()
    }

    /// A client configuration reaching every server.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.client_addrs())
    }

    /// The process id of a running server.
    pub fn pid(&self, id: NodeId) -> Option<u32> {
        self.nodes.get(&id)?.child.as_ref().map(Child::id)
    }

    /// Kill a server with SIGKILL (no chance to sync or say goodbye) and reap it.
    pub fn kill(&mut self, id: NodeId) -> std::io::Result<()> {
        let node = self.node(id)?;
        if let Some(mut child) = node.child.take() {
            child.kill()?;
            child.wait()?;
        }
        node.paused = false;
        Ok(())
    }

    /// Start a killed server again on the same ports and data directory.
    pub fn restart(&mut self, id: NodeId) -> std::io::Result<()> {
        if self.node(id)?.child.is_some() {
            return Err(std::io::Error::other(format!("{id} is still running")));
        }
        self.spawn(id)
    }

    /// Stop a server in its tracks with SIGSTOP.
    pub fn pause(&mut self, id: NodeId) -> std::io::Result<()> {
        self.signal(id, libc::SIGSTOP)?;
        self.node(id)?.paused = true;
        Ok(())
    }

    /// Let a paused server go on with SIGCONT.
    pub fn resume(&mut self, id: NodeId) -> std::io::Result<()> {
        self.signal(id, libc::SIGCONT)?;
        self.node(id)?.paused = false;
        Ok(())
    }

    /// Statuses of the running, unpaused servers that answer within `within`.
    pub async fn statuses(&self, within: Duration) -> BTreeMap<NodeId, ServerStatus> {
        let mut config = self.client_config();
        config.attempt_timeout = within;
        let mut client = KvClient::new(config);
        let mut statuses = BTreeMap::new();
        for (id, node) in &self.nodes {
            if node.child.is_some()
                && !node.paused
                && let Ok(status) = client.status(*id).await
            {
                statuses.insert(*id, status);
            }
        }
        statuses
    }

    /// Wait until a running server says it leads (the one with the highest epoch if
    /// several do); `None` if none does within `within`.
    pub async fn wait_for_leader(&self, within: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + within;
        loop {
            let statuses = self.statuses(Duration::from_millis(500)).await;
            let leader = statuses
                .values()
                .filter(|s| s.role == Role::Leader)
                .max_by_key(|s| s.epoch)
                .map(|s| s.id);
            if leader.is_some() {
                return leader;
            }
            if Instant::now() >= deadline {
                return None;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    fn node(&mut self, id: NodeId) -> std::io::Result<&mut LocalNode> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| std::io::Error::other(format!("no node {id}")))
    }

    fn signal(&mut self, id: NodeId, signal: libc::c_int) -> std::io::Result<()> {
        let pid = self
            .pid(id)
            .ok_or_else(|| std::io::Error::other(format!("{id} is not running")))?;
        let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
        // SAFETY: kill(2) takes plain integers; the pid is our own unreaped child, so it
        // cannot name another process.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn spawn(&mut self, id: NodeId) -> std::io::Result<()> {
        let peers = self.peers.to_string();
        let clients = NodeAddrs(self.client_addrs()).to_string();
        let log_path = self.data_root.join(format!("n{}.log", id.get()));
        let node = self
            .nodes
            .get(&id)
            .ok_or_else(|| std::io::Error::other(format!("no node {id}")))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        // A directory that already holds data (a data root reused by a later run) is
        // restarted, never bootstrapped again.
        let blank = std::fs::read_dir(&node.data_dir).map_or(true, |mut d| d.next().is_none());
        let start_flag = match node.start {
            StartMode::Bootstrap if blank => Some("--bootstrap"),
            StartMode::Join if blank => Some("--join"),
            _ => None,
        };
        let mut command = Command::new(&self.program.program);
        // Only the flags below configure a server: a variable such as RSM_LISTEN in the
        // owner's environment must not reach all of them.
        for name in ServerArgs::env_names() {
            command.env_remove(name);
        }
        command
            .args(&self.program.args)
            .arg("--id")
            .arg(id.get().to_string())
            .arg("--peers")
            .arg(&peers)
            .arg("--client-listen")
            .arg(node.client_addr.to_string())
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--clients")
            .arg(&clients)
            .args(start_flag)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: the closure runs in the child between fork and exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(|| {
                // Die with the spawning thread, so a crashed owner leaves no server behind.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn()?;
        let node = self.node(id)?;
        node.child = Some(child);
        node.paused = false;
        node.start = StartMode::Restart;
        Ok(())
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                // SIGKILL ends a stopped process too; then reap it.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
