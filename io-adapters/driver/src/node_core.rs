//! The synchronous, deterministic heart of a node: it feeds inputs to one replica and
//! carries out the effects, following the host rule.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;
use rsm_core::{
    Durable, Effect, Entry, EntryKind, Input, LogIndex, Membership, NodeId, PersistSeq, Replica,
    RequestId, Role, SnapshotMeta, Status, Storage, Transport, decode_body, encode_body,
};

use crate::config::DriverConfig;
use crate::error::{ClientError, NodeError};
use crate::pending::{Pending, PendingTable, RequestKind, Stage};
use crate::query::Queryable;

/// The ticket of one client request: every ticket a [`NodeCore`] hands out is answered by
/// exactly one [`Completion`].
pub type Ticket = RequestId;

/// What a request achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<Response, Answer> {
    /// The command committed at `index`; `response` is what the state machine returned.
    Applied {
        /// Where the command committed.
        index: LogIndex,
        /// The state machine's response.
        response: Response,
    },
    /// The answer to a linearizable read.
    Read(Answer),
    /// The configuration change committed at `index`.
    Reconfigured {
        /// Where the change committed.
        index: LogIndex,
    },
}

/// The answer to one ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion<Response, Answer> {
    /// The ticket `propose`, `read` or `reconfigure` returned.
    pub ticket: Ticket,
    /// The outcome.
    pub result: Result<Reply<Response, Answer>, ClientError>,
}

/// The completion type of a node core driving state machine `M`.
pub type CompletionOf<M> =
    Completion<<M as rsm_core::StateMachine>::Response, <M as Queryable>::Answer>;

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
/// (or a host with its own event loop) drives it deterministically. It follows the host
/// rule: effects are carried out in order; persists are written at once but made durable
/// only by [`NodeCore::sync`], and every `Send` emitted while a written persist is not yet
/// durable waits for that sync. A host gets group commit by feeding all the inputs it has,
/// then calling `sync` once.
///
/// Client requests return a [`Ticket`]; their outcomes are collected with
/// [`NodeCore::drain_completions`].
pub struct NodeCore<R: Replica, S: Storage, T: Transport, M: Queryable> {
    config: DriverConfig,
    replica: R,
    storage: S,
    transport: T,
    machine: M,
    /// Effects buffer, reused across steps.
    effects: Vec<Effect<R::Message>>,
    /// Inputs that effects asked for (`Applied`, `Snapshot`, `Persisted`), fed after the
    /// batch that asked for them. Each effect adds at most one, so it is bounded by the
    /// replica's batch.
    followups: VecDeque<Input<R::Message>>,
    /// Sends waiting for the next sync, in emission order.
    held: Vec<(NodeId, Bytes)>,
    written: PersistSeq,
    unsynced_writes: usize,
    pending: PendingTable<M::Query>,
    /// Bounded by `pending_requests_max`: only pending requests complete.
    completions: VecDeque<CompletionOf<M>>,
    /// Scratch space for requests taken out of `pending`.
    resolved: Vec<(RequestId, Pending<M::Query>)>,
    next_request: u64,
    ticks: u64,
    /// Index, epoch and membership of the state machine's applied prefix.
    applied: SnapshotMeta,
    role: Role,
    leader: Option<NodeId>,
    stats: NodeStats,
    /// Set once the node stops; inputs are ignored from then on.
    stopped: bool,
    /// A fatal error not yet returned to the owner.
    fatal: Option<NodeError<S::Error>>,
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> fmt::Debug for NodeCore<R, S, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCore")
            .field("status", &self.replica.status())
            .field("pending", &self.pending.len())
            .field("held_sends", &self.held.len())
            .field("unsynced_writes", &self.unsynced_writes)
            .field("stats", &self.stats)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> NodeCore<R, S, T, M> {
    /// A node around a replica with no snapshot: a new one, or one restored from a log
    /// that was never compacted. `machine` must be empty. For a restart from durable state
    /// that may hold a snapshot, use [`NodeCore::recover`].
    pub fn new(config: DriverConfig, replica: R, storage: S, transport: T, machine: M) -> Self {
        let status = replica.status();
        let applied = SnapshotMeta {
            index: status.applied,
            membership: status.membership,
            ..SnapshotMeta::default()
        };
        Self::assemble(config, replica, storage, transport, machine, applied)
    }

    /// Rebuild a node from what its storage made durable: the state machine is restored
    /// from the durable snapshot (the replica applies only entries after it), then the
    /// replica from `durable`.
    pub fn recover(
        config: DriverConfig,
        replica_config: R::Config,
        durable: Durable,
        storage: S,
        transport: T,
        mut machine: M,
    ) -> Result<Self, NodeError<S::Error>> {
        let snapshot_meta = match &durable.snapshot {
            Some((meta, data)) => {
                machine.restore(data).map_err(NodeError::SnapshotRestore)?;
                Some(meta.clone())
            }
            None => None,
        };
        let replica = R::restore(replica_config, durable).map_err(NodeError::Restore)?;
        let applied = match snapshot_meta {
            Some(meta) => meta,
            None => SnapshotMeta {
                membership: replica.status().membership,
                ..SnapshotMeta::default()
            },
        };
        Ok(Self::assemble(
            config, replica, storage, transport, machine, applied,
        ))
    }

    fn assemble(
        config: DriverConfig,
        replica: R,
        storage: S,
        transport: T,
        machine: M,
        applied: SnapshotMeta,
    ) -> Self {
        let config = config.sanitized();
        Self {
            pending: PendingTable::new(config.pending_requests_max),
            config,
            replica,
            storage,
            transport,
            machine,
            effects: Vec::new(),
            followups: VecDeque::new(),
            held: Vec::new(),
            written: PersistSeq::ZERO,
            unsynced_writes: 0,
            completions: VecDeque::new(),
            resolved: Vec::new(),
            next_request: 0,
            ticks: 0,
            applied,
            role: Role::Follower,
            leader: None,
            stats: NodeStats::default(),
            stopped: false,
            fatal: None,
        }
    }

    // ----- inputs ---------------------------------------------------------------------

    /// One tick of the node's clock: times out overdue requests, then ticks the replica.
    pub fn tick(&mut self) -> Result<(), NodeError<S::Error>> {
        self.check_running()?;
        self.ticks += 1;
        self.pending.take_expired(self.ticks, &mut self.resolved);
        self.complete_resolved(|_| Err(ClientError::Timeout));
        self.run(Some(Input::Tick));
        self.check_running()
    }

    /// Bytes a transport received from `from` (which it authenticated). Bytes that do not
    /// decode as a message are counted in [`NodeStats::malformed_inbound`] and dropped.
    pub fn receive(&mut self, from: NodeId, bytes: &[u8]) -> Result<(), NodeError<S::Error>> {
        self.check_running()?;
        match decode_body::<R::Message>(bytes) {
            Ok(msg) => self.run(Some(Input::Receive { from, msg })),
            Err(error) => {
                self.stats.malformed_inbound += 1;
                tracing::debug!(%from, %error, "dropped a malformed inbound message");
            }
        }
        self.check_running()
    }

    /// Propose a command. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn propose(&mut self, command: Bytes) -> Result<Ticket, ClientError> {
        let req = self.admit(RequestKind::Command)?;
        self.run(Some(Input::Propose { req, command }));
        Ok(req)
    }

    /// Ask a linearizable read. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn read(&mut self, query: M::Query) -> Result<Ticket, ClientError> {
        let req = self.admit(RequestKind::Read(query))?;
        self.run(Some(Input::Read { req }));
        Ok(req)
    }

    /// Ask for a membership change. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn reconfigure(&mut self, membership: Membership) -> Result<Ticket, ClientError> {
        let req = self.admit(RequestKind::Reconfigure)?;
        self.run(Some(Input::Reconfigure { req, membership }));
        Ok(req)
    }

    /// Ask the replica to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), NodeError<S::Error>> {
        self.check_running()?;
        self.run(Some(Input::TransferLeadership { to }));
        self.check_running()
    }

    /// Make every written persist durable with one `Storage::sync`, then release the sends
    /// that waited for it, in order, and tell the replica with `Persisted`. Does nothing
    /// when nothing waits. On a sync error the node stops: the waiting sends are dropped,
    /// the replica hears nothing, and pending requests end with an indefinite `Shutdown`.
    pub fn sync(&mut self) -> Result<(), NodeError<S::Error>> {
        self.check_running()?;
        self.sync_storage();
        self.run(None);
        self.check_running()
    }

    /// Stop the node: pending requests end with an indefinite `Shutdown`, waiting sends
    /// are dropped, and later requests fail with a definite `NotRunning`. Call `sync` first
    /// to flush what was written.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.held.clear();
        self.pending.take_everything(&mut self.resolved);
        self.complete_resolved(|_| Err(ClientError::Shutdown));
    }

    // ----- outputs and inspection -----------------------------------------------------

    /// Take the answers produced so far, in the order they were produced.
    pub fn drain_completions(&mut self) -> std::collections::vec_deque::Drain<'_, CompletionOf<M>> {
        self.completions.drain(..)
    }

    /// True when persists were written but not yet synced (so `sync` has work to do).
    pub fn needs_sync(&self) -> bool {
        self.unsynced_writes > 0
    }

    /// True once the node stopped, by `stop` or by a fatal error.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The replica's status.
    pub fn status(&self) -> Status {
        self.replica.status()
    }

    /// The role and leader announced by the replica's last `RoleChanged`.
    pub fn role(&self) -> (Role, Option<NodeId>) {
        (self.role, self.leader)
    }

    /// The highest index the state machine has applied (or restored from a snapshot).
    pub fn applied_index(&self) -> LogIndex {
        self.applied.index
    }

    /// Requests accepted and not yet answered.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Ticks seen so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// The user's state machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The replica.
    pub fn replica(&self) -> &R {
        &self.replica
    }

    /// The configuration in force (every bound at least 1).
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    // ----- the effect loop ------------------------------------------------------------

    fn check_running(&mut self) -> Result<(), NodeError<S::Error>> {
        match self.fatal.take() {
            Some(error) => Err(error),
            None if self.stopped => Err(NodeError::Stopped),
            None => Ok(()),
        }
    }

    fn admit(&mut self, kind: RequestKind<M::Query>) -> Result<Ticket, ClientError> {
        if self.stopped {
            return Err(ClientError::NotRunning);
        }
        if self.pending.is_full() {
            return Err(ClientError::Rejected(rsm_core::RejectReason::Busy));
        }
        self.next_request += 1;
        let req = RequestId(self.next_request);
        let deadline = self.ticks + self.config.request_timeout_ticks;
        self.pending.insert(req, kind, deadline);
        Ok(req)
    }

    /// Feed `first`, then every follow-up input the effects ask for, until none is left.
    fn run(&mut self, first: Option<Input<R::Message>>) {
        let mut effects = std::mem::take(&mut self.effects);
        let mut next = first;
        while !self.stopped {
            let Some(input) = next.take().or_else(|| self.followups.pop_front()) else {
                break;
            };
            self.replica.step(input, &mut effects);
            for effect in effects.drain(..) {
                if self.stopped {
                    // Nothing after a fatal error may happen; the rest is dropped.
                    continue;
                }
                self.execute(effect);
            }
        }
        if self.stopped {
            self.followups.clear();
        }
        self.effects = effects;
    }

    fn execute(&mut self, effect: Effect<R::Message>) {
        match effect {
            Effect::Send { to, msg } => self.send(to, &msg),
            Effect::Persist { seq, op } => {
                debug_assert_eq!(seq, self.written.next(), "persists are numbered in order");
                if let Err(error) = self.storage.write(&op) {
                    self.fail(NodeError::Write(error));
                    return;
                }
                self.written = seq;
                self.unsynced_writes += 1;
                self.stats.writes += 1;
                self.sync_if_batch_full();
            }
            Effect::Apply { entries } => self.apply(&entries),
            Effect::Proposed { req, index, epoch } => {
                if index <= self.applied.index {
                    // The index was applied before we learnt the proposal went there:
                    // which entry committed is no longer known.
                    if self.pending.remove(req).is_some() {
                        self.complete(req, Err(ClientError::OutcomeUnknown { index }));
                    }
                } else {
                    self.pending.mark_appended(req, index, epoch);
                }
            }
            Effect::ReadReady { req, index } => {
                if self.pending.mark_read_ready(req, index) && index <= self.applied.index {
                    self.pending
                        .take_reads_through(self.applied.index, &mut self.resolved);
                    self.answer_reads();
                }
            }
            Effect::Reject { req, reason } => {
                if self.pending.remove(req).is_some() {
                    self.complete(req, Err(ClientError::Rejected(reason)));
                }
            }
            Effect::TakeSnapshot { through } => self.take_snapshot(through),
            Effect::InstallSnapshot { meta, data } => self.install_snapshot(meta, &data),
            Effect::RoleChanged {
                role,
                epoch,
                leader,
            } => {
                tracing::debug!(?role, %epoch, ?leader, "role changed");
                self.role = role;
                self.leader = leader;
            }
        }
    }

    fn send(&mut self, to: NodeId, msg: &R::Message) {
        let mut buf = Vec::new();
        if let Err(error) = encode_body(msg, &mut buf) {
            self.stats.encode_failures += 1;
            tracing::warn!(%to, %error, "dropped a message that did not encode");
            return;
        }
        let bytes = Bytes::from(buf);
        if self.unsynced_writes > 0 {
            // The host rule: it follows a persist that is not durable yet.
            self.held.push((to, bytes));
            self.sync_if_batch_full();
        } else {
            self.stats.sends += 1;
            self.transport.send(to, bytes);
        }
    }

    fn sync_if_batch_full(&mut self) {
        if self.unsynced_writes + self.held.len() >= self.config.sync_batch_max {
            self.sync_storage();
        }
    }

    /// One sync for everything written; then the waiting sends, in order; `Persisted` is
    /// queued for the replica.
    fn sync_storage(&mut self) {
        if self.stopped || self.unsynced_writes == 0 {
            debug_assert!(self.held.is_empty() || self.stopped);
            return;
        }
        self.stats.syncs += 1;
        if let Err(error) = self.storage.sync() {
            self.fail(NodeError::Sync(error));
            return;
        }
        self.unsynced_writes = 0;
        for (to, bytes) in self.held.drain(..) {
            self.stats.sends += 1;
            self.transport.send(to, bytes);
        }
        self.followups.push_back(Input::Persisted {
            through: self.written,
        });
    }

    fn apply(&mut self, entries: &[Entry]) {
        let Some(last) = entries.last() else {
            return;
        };
        debug_assert!(
            entries
                .first()
                .is_some_and(|e| e.index == self.applied.index.next()),
            "entries are applied in order, exactly once"
        );
        for entry in entries {
            let response = match entry.kind {
                EntryKind::Command => Some(self.machine.apply(entry.index, &entry.payload)),
                EntryKind::Noop => None,
                EntryKind::Config => {
                    if let Some(membership) = entry.membership() {
                        self.applied.membership = membership;
                    }
                    None
                }
            };
            self.applied.index = entry.index;
            self.applied.epoch = entry.epoch;
            self.pending
                .take_appended_at(entry.index, &mut self.resolved);
            if !self.resolved.is_empty() {
                self.complete_resolved(|p| committed_outcome(p, entry, response.as_ref()));
            }
        }
        self.pending
            .take_reads_through(self.applied.index, &mut self.resolved);
        self.answer_reads();
        match self.followups.back_mut() {
            Some(Input::Applied { through }) => *through = last.index,
            _ => self.followups.push_back(Input::Applied {
                through: last.index,
            }),
        }
    }

    fn take_snapshot(&mut self, through: LogIndex) {
        if through > self.applied.index {
            tracing::warn!(%through, applied = %self.applied.index,
                "ignored a snapshot request beyond the applied index");
            return;
        }
        // The state machine cannot rewind, so the snapshot covers everything applied,
        // which includes `through`.
        let data = self.machine.snapshot();
        self.stats.snapshots_taken += 1;
        self.followups.push_back(Input::Snapshot {
            meta: self.applied.clone(),
            data,
        });
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) {
        if let Err(error) = self.machine.restore(data) {
            self.fail(NodeError::SnapshotRestore(error));
            return;
        }
        self.stats.snapshots_installed += 1;
        let index = meta.index;
        self.applied = meta;
        self.pending
            .take_appended_through(index, &mut self.resolved);
        self.complete_resolved(|p| {
            let Stage::Appended { index, .. } = p.stage else {
                unreachable!("only appended proposals are indexed by log position");
            };
            Err(ClientError::OutcomeUnknown { index })
        });
        self.pending.take_reads_through(index, &mut self.resolved);
        self.answer_reads();
        self.followups.push_back(Input::Applied { through: index });
    }

    fn answer_reads(&mut self) {
        let machine = &self.machine;
        let completions = &mut self.completions;
        for (req, p) in self.resolved.drain(..) {
            let result = match &p.kind {
                RequestKind::Read(query) => Ok(Reply::Read(machine.query(query))),
                _ => unreachable!("only reads are indexed by read index"),
            };
            completions.push_back(Completion {
                ticket: req,
                result,
            });
        }
    }

    fn complete_resolved(
        &mut self,
        mut outcome: impl FnMut(
            &Pending<M::Query>,
        ) -> Result<Reply<M::Response, M::Answer>, ClientError>,
    ) {
        for (req, p) in self.resolved.drain(..) {
            let result = outcome(&p);
            self.completions.push_back(Completion {
                ticket: req,
                result,
            });
        }
    }

    fn complete(
        &mut self,
        req: RequestId,
        result: Result<Reply<M::Response, M::Answer>, ClientError>,
    ) {
        self.completions.push_back(Completion {
            ticket: req,
            result,
        });
    }

    fn fail(&mut self, error: NodeError<S::Error>) {
        tracing::error!(%error, "node stopped");
        self.fatal = Some(error);
        self.stop();
    }
}

/// The outcome of a proposal appended at `entry.index` once that index is applied.
fn committed_outcome<Q, Resp: Clone, Ans>(
    p: &Pending<Q>,
    entry: &Entry,
    response: Option<&Resp>,
) -> Result<Reply<Resp, Ans>, ClientError> {
    let Stage::Appended { index, epoch } = p.stage else {
        unreachable!("only appended proposals are indexed by log position");
    };
    if epoch != entry.epoch {
        // Another leader's entry committed at this index, so ours never will.
        return Err(ClientError::Superseded { index });
    }
    match (&p.kind, entry.kind, response) {
        (RequestKind::Command, EntryKind::Command, Some(response)) => Ok(Reply::Applied {
            index,
            response: response.clone(),
        }),
        (RequestKind::Reconfigure, EntryKind::Config, _) => Ok(Reply::Reconfigured { index }),
        _ => {
            // The replica named this (index, epoch) for a request of another kind: a
            // replica bug. Claim nothing definite.
            debug_assert!(false, "entry kind does not match the request at {index}");
            Err(ClientError::OutcomeUnknown { index })
        }
    }
}
