//! The node loop's synchronous heart: the reference [`Host`] bound to a [`Transport`]
//! (messages encoded with the core codec) and to a group-commit policy.

use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use rsm_core::{
    ClientError, CompletionOf, Host, HostConfig, Input, LogIndex, Membership, NodeId, Queryable,
    Replica, Role, Status, Storage, Transport, decode_body, encode_body,
};

use crate::config::DriverConfig;
use crate::error::NodeError;
use crate::status::{NodeStatus, StatusPublisher, StatusView};

pub use rsm_core::{Completion, Reply, Ticket};

/// Counters a node keeps about its own work.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Calls to `Storage::sync`.
    pub syncs: u64,
    /// Persist operations written.
    pub writes: u64,
    /// Messages handed to the transport.
    pub sends: u64,
    /// Inbound messages dropped because they did not decode.
    pub malformed_inbound: u64,
    /// Outbound messages dropped because they did not encode.
    pub encode_failures: u64,
    /// Snapshots taken at the replica's request.
    pub snapshots_taken: u64,
    /// Snapshots installed from peers.
    pub snapshots_installed: u64,
}

/// One node: a replica, its storage and transport, and the user's state machine.
///
/// Every method runs to completion without blocking on anything but `Storage`, so a test
/// (or a host with its own event loop) drives it deterministically. The host rule is
/// [`Host`]'s: persists are written at once but made durable only by [`NodeCore::sync`]
/// (or by the core itself once `sync_batch_max` writes and held sends pile up), and every
/// `Send` emitted while a written persist is not yet durable waits for that sync. A shell
/// gets group commit by feeding all the inputs it has, then calling `sync` once.
///
/// Client requests return a [`Ticket`]; their outcomes are collected with
/// [`NodeCore::drain_completions`]. Readers on other threads follow the node through a
/// [`StatusView`] ([`NodeCore::status_view`]), refreshed at every `sync` and at the stop.
pub struct NodeCore<R: Replica, S: Storage, T: Transport, M: Queryable> {
    config: DriverConfig,
    host: Host<R, S, M>,
    transport: T,
    /// Encoding buffer, reused across sends.
    buf: Vec<u8>,
    malformed_inbound: u64,
    encode_failures: u64,
    sends: u64,
    published: StatusPublisher,
    /// The role, leader and snapshot counts last logged, so that each change is logged
    /// once.
    logged: Logged,
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Logged {
    role: Role,
    leader: Option<NodeId>,
    snapshots_taken: u64,
    snapshots_installed: u64,
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> fmt::Debug for NodeCore<R, S, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCore")
            .field("host", &self.host)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> NodeCore<R, S, T, M> {
    /// A node around a replica with no snapshot: a new one, or one restored from a log
    /// that was never compacted. `machine` must be empty. For a restart from durable state
    /// that may hold a snapshot, use [`NodeCore::recover`].
    pub fn new(config: DriverConfig, replica: R, storage: S, transport: T, machine: M) -> Self {
        let config = config.sanitized();
        let host = Host::new(host_config(&config), replica, storage, machine);
        Self::assemble(config, host, transport)
    }

    /// Rebuild a node from what its storage made durable: the state machine is restored
    /// from the durable snapshot (the replica applies only entries after it), then the
    /// replica from `durable`.
    pub fn recover(
        config: DriverConfig,
        replica_config: R::Config,
        durable: rsm_core::Durable,
        storage: S,
        transport: T,
        machine: M,
    ) -> Result<Self, NodeError<S::Error>> {
        let config = config.sanitized();
        let host = Host::restore(
            host_config(&config),
            replica_config,
            durable,
            storage,
            machine,
        )?;
        Ok(Self::assemble(config, host, transport))
    }

    fn assemble(config: DriverConfig, host: Host<R, S, M>, transport: T) -> Self {
        let mut core = Self {
            config,
            host,
            transport,
            buf: Vec::new(),
            malformed_inbound: 0,
            encode_failures: 0,
            sends: 0,
            published: StatusPublisher::new(),
            logged: Logged::default(),
        };
        core.logged = core.current_log_state();
        core.publish_status();
        core
    }

    // ----- inputs ---------------------------------------------------------------------

    /// One tick of the node's clock: times out overdue requests, then ticks the replica.
    pub fn tick(&mut self) -> Result<(), NodeError<S::Error>> {
        let result = self.host.tick();
        self.after(result)
    }

    /// Bytes a transport received from `from` (which it authenticated). Bytes that do not
    /// decode as a message are counted in [`NodeStats::malformed_inbound`] and dropped.
    pub fn receive(&mut self, from: NodeId, bytes: &[u8]) -> Result<(), NodeError<S::Error>> {
        match decode_body::<R::Message>(bytes) {
            Ok(msg) => {
                let result = self.host.receive(from, msg);
                self.after(result)
            }
            Err(error) => {
                self.malformed_inbound += 1;
                tracing::debug!(%from, %error, "dropped a malformed inbound message");
                self.check_running()
            }
        }
    }

    /// Propose a command. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn propose(&mut self, command: Bytes) -> Result<Ticket, ClientError> {
        let ticket = self.host.propose(command);
        self.after_request();
        ticket
    }

    /// Ask a linearizable read. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn read(&mut self, query: M::Query) -> Result<Ticket, ClientError> {
        let ticket = self.host.read(query);
        self.after_request();
        ticket
    }

    /// Ask for a membership change. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn reconfigure(&mut self, membership: Membership) -> Result<Ticket, ClientError> {
        let ticket = self.host.reconfigure(membership);
        self.after_request();
        ticket
    }

    /// Ask the replica to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), NodeError<S::Error>> {
        let result = self.host.transfer_leadership(to);
        self.after(result)
    }

    /// Ask the replica to start an election now (`Input::Campaign`).
    pub fn campaign(&mut self) -> Result<(), NodeError<S::Error>> {
        let result = self.host.input(Input::Campaign);
        self.after(result)
    }

    /// Make every written persist durable with one `Storage::sync`, then release the sends
    /// that waited for it, in order, and tell the replica with `Persisted`. Does nothing
    /// when nothing waits. On a sync error the node stops: the waiting sends are dropped,
    /// the replica hears nothing, and pending requests end with an indefinite `Shutdown`.
    pub fn sync(&mut self) -> Result<(), NodeError<S::Error>> {
        let result = self.sync_host();
        let result = self.after(result);
        self.publish_status();
        result
    }

    /// Stop the node: pending requests end with an indefinite `Shutdown`, waiting sends
    /// are dropped, and later requests fail with a definite `NotRunning`. Call `sync` first
    /// to flush what was written.
    pub fn stop(&mut self) {
        self.host.stop();
        self.publish_status();
    }

    // ----- outputs and inspection -----------------------------------------------------

    /// Take the answers produced so far, in the order they were produced.
    pub fn drain_completions(&mut self) -> std::collections::vec_deque::Drain<'_, CompletionOf<M>> {
        self.host.drain_completions()
    }

    /// True when persists were written but not yet synced (so `sync` has work to do).
    pub fn needs_sync(&self) -> bool {
        self.host.needs_sync()
    }

    /// True once the node stopped, by `stop` or by a fatal error.
    pub fn is_stopped(&self) -> bool {
        self.host.is_stopped()
    }

    /// The replica's status.
    pub fn status(&self) -> Status {
        self.host.status()
    }

    /// The role and leader announced by the replica's last `RoleChanged`.
    pub fn role(&self) -> (Role, Option<NodeId>) {
        self.host.role()
    }

    /// The highest index the state machine has applied (or restored from a snapshot).
    pub fn applied_index(&self) -> LogIndex {
        self.host.applied_index()
    }

    /// Requests accepted and not yet answered.
    pub fn pending_requests(&self) -> usize {
        self.host.pending_requests()
    }

    /// Ticks seen so far.
    pub fn ticks(&self) -> u64 {
        self.host.ticks()
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        let host = self.host.stats();
        NodeStats {
            syncs: host.syncs,
            writes: host.writes,
            sends: self.sends,
            malformed_inbound: self.malformed_inbound,
            encode_failures: self.encode_failures,
            snapshots_taken: host.snapshots_taken,
            snapshots_installed: host.snapshots_installed,
        }
    }

    /// The user's state machine.
    pub fn machine(&self) -> &M {
        self.host.machine()
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        self.host.storage()
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The replica.
    pub fn replica(&self) -> &R {
        self.host.replica()
    }

    /// The reference host this node runs.
    pub fn host(&self) -> &Host<R, S, M> {
        &self.host
    }

    /// The configuration in force (every bound at least 1).
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// A view of this node's status for readers on other threads. It is refreshed at
    /// every [`NodeCore::sync`] and when the node stops, and says stopped (and waiters
    /// wake) once the node has stopped or was dropped.
    pub fn status_view(&self) -> StatusView {
        self.published.view()
    }

    /// Refresh the [`StatusView`] now (`sync` and `stop` already do).
    pub fn publish_status(&mut self) {
        let status = NodeStatus {
            status: self.host.status(),
            stats: self.stats(),
            storage: self.host.storage().stats(),
            pending_requests: self.host.pending_requests(),
            ticks: self.host.ticks(),
            stopped: self.host.is_stopped(),
        };
        self.published.publish(status);
    }

    // ----- after each call: group-commit bound, then the network ----------------------

    fn check_running(&self) -> Result<(), NodeError<S::Error>> {
        if self.host.is_stopped() {
            Err(NodeError::Stopped)
        } else {
            Ok(())
        }
    }

    fn after_request(&mut self) {
        if let Err(error) = self.after(Ok(())) {
            tracing::error!(%error, "node stopped");
        }
    }

    /// Sync once the batch bound is reached, then hand every released send to the
    /// transport.
    fn after(
        &mut self,
        result: Result<(), NodeError<S::Error>>,
    ) -> Result<(), NodeError<S::Error>> {
        let mut result = result;
        if result.is_ok()
            && self.host.needs_sync()
            && self.pending_batch() >= self.config.sync_batch_max
        {
            result = self.sync_host();
        }
        self.flush_sends();
        self.log_changes();
        if let Err(error) = &result
            && !matches!(error, NodeError::Stopped)
        {
            tracing::error!(%error, "node stopped");
            self.publish_status();
        }
        result
    }

    /// The host's sync, timed: a slow disk stalls the whole node, so it is worth a warning.
    fn sync_host(&mut self) -> Result<(), NodeError<S::Error>> {
        if !self.host.needs_sync() {
            return self.host.sync();
        }
        let started = Instant::now();
        let result = self.host.sync();
        let took = started.elapsed();
        if took >= self.config.sync_stall_warn {
            tracing::warn!(
                ?took,
                "storage sync stalled the node: every answer and acknowledgement waited for it"
            );
        }
        result
    }

    fn current_log_state(&self) -> Logged {
        let (role, leader) = self.host.role();
        let stats = self.host.stats();
        Logged {
            role,
            leader,
            snapshots_taken: stats.snapshots_taken,
            snapshots_installed: stats.snapshots_installed,
        }
    }

    /// One line per role change (an election started, won or lost, a leader followed)
    /// and per snapshot taken or installed.
    fn log_changes(&mut self) {
        let now = self.current_log_state();
        if now == self.logged {
            return;
        }
        let before = std::mem::replace(&mut self.logged, now);
        let through = self.host.applied_index().0;
        if now.snapshots_taken != before.snapshots_taken {
            tracing::info!(through, "took a snapshot");
        }
        if now.snapshots_installed != before.snapshots_installed {
            tracing::info!(through, "installed a snapshot received from a peer");
        }
        if (now.role, now.leader) != (before.role, before.leader) {
            let epoch = self.host.status().epoch.0;
            let leader = now.leader.map(NodeId::get);
            match now.role {
                Role::PreCandidate | Role::Candidate => {
                    tracing::info!(role = ?now.role, epoch, "starting an election");
                }
                Role::Leader => tracing::info!(epoch, "became leader"),
                Role::Removed => tracing::warn!(epoch, "removed from the cluster"),
                _ => tracing::info!(role = ?now.role, epoch, ?leader, "role changed"),
            }
        }
    }

    /// Writes not yet durable plus sends held behind them.
    fn pending_batch(&self) -> usize {
        (self.host.written().0 - self.host.durable().0) as usize + self.host.held_sends()
    }

    fn flush_sends(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        for (to, msg) in self.host.drain_sends() {
            buf.clear();
            if let Err(error) = encode_body(&msg, &mut buf) {
                self.encode_failures += 1;
                tracing::warn!(%to, %error, "dropped a message that did not encode");
                continue;
            }
            self.sends += 1;
            self.transport.send(to, Bytes::copy_from_slice(&buf));
        }
        self.buf = buf;
    }
}

fn host_config(config: &DriverConfig) -> HostConfig {
    HostConfig {
        pending_requests_max: config.pending_requests_max,
        request_timeout_ticks: config.request_timeout_ticks,
        ..HostConfig::default()
    }
}
