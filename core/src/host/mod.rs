//! The reference host: the one implementation of the host rule.
//!
//! A [`Host`] owns one replica, its [`Storage`] and the user's state machine, and does
//! everything a correct host must, in one place:
//!
//! - effects run in the order the replica emitted them;
//! - every `Persist` is written to storage at once, but becomes durable only when the
//!   shell says so ([`Host::sync`] calls `Storage::sync`; a shell whose disk syncs on its
//!   own, like the simulator's, reports it with [`Host::persisted`]);
//! - a `Send` that follows a `Persist` not yet durable is held, and released (into the
//!   outbox, in emission order) only once that persist is durable;
//! - committed entries reach the state machine in order, exactly once; snapshots are taken
//!   and installed when the replica asks;
//! - client requests end exactly once, `Ok`, with a definite failure, or with an
//!   indefinite one ([`ClientError::is_definite`]): a proposal succeeded if and only if
//!   the index named by `Proposed` is applied with the same epoch.
//!
//! The host does no I/O of its own: released sends wait in an outbox the shell drains
//! ([`Host::drain_sends`]) and hands to whatever network it has, so the simulator, the
//! scripts, the node driver, the Python module and the benchmarks all run this code.
//!
//! # Follow-up inputs
//!
//! Effects ask for inputs in return (`Applied`, `Snapshot`, `Persisted`). The host feeds
//! them in one documented order. After all effects of one `step` have run, it feeds:
//!
//! 1. `Applied { through }`, once, covering every `Apply` and `InstallSnapshot` of the step;
//! 2. `Snapshot { .. }`, if the step asked for one with `TakeSnapshot`.
//!
//! Each of those steps may cause more effects and follow-ups, handled the same way, until
//! none is left. `Persisted { through }` is fed when durability is reported (by
//! [`Host::sync`] or [`Host::persisted`]), right after the sends it released reached the
//! outbox.

mod pending;

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;

use crate::entry::{Entry, EntryKind, SnapshotMeta};
use crate::error::{CodecError, RestoreError};
use crate::ids::{Epoch, LogIndex, NodeId, PersistSeq, RequestId};
use crate::io::Storage;
use crate::membership::Membership;
use crate::reject::RejectReason;
use crate::replica::{Durable, Effect, Input, Persist, Replica, Role, Status};
use crate::state_machine::Queryable;

use pending::{Pending, PendingTable, RequestKind, Stage};

/// The ticket of one client request: every ticket a [`Host`] hands out is answered by
/// exactly one [`Completion`].
pub type Ticket = RequestId;

/// Follow-up inputs one call may cause before the host calls the replica broken (a
/// replica that answers every `Applied` with another `Apply` would loop forever).
pub const FOLLOWUPS_PER_CALL_MAX: usize = 100_000;

/// The host's limits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// Client requests (proposals, reads, reconfigurations, transfers) accepted but not yet
    /// answered. A request that would exceed it fails at once with a definite `Busy`.
    pub pending_requests_max: usize,
    /// A pending request not answered after this many ticks fails with an indefinite
    /// `Timeout` (it may still take effect later).
    pub request_timeout_ticks: u64,
    /// Sends held back waiting for durability. A send beyond it is dropped and counted
    /// ([`HostStats::held_sends_dropped`]); consensus protocols tolerate lost messages.
    pub held_sends_max: usize,
    /// Record [`HostEvent`]s for the shell to read ([`Host::drain_events`]). Off costs
    /// nothing; the simulator and the scripts turn it on to check and print what happened.
    pub record_events: bool,
    /// With `record_events`, also record every send with a copy of its message
    /// ([`HostEvent::Sent`]), for shells that print messages in emission order.
    pub record_sends: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            pending_requests_max: 4096,
            request_timeout_ticks: 1000,
            held_sends_max: 1 << 20,
            record_events: false,
            record_sends: false,
        }
    }
}

impl HostConfig {
    /// The same limits with every bound raised to at least 1, so that no queue is unusable.
    pub fn sanitized(self) -> Self {
        Self {
            pending_requests_max: self.pending_requests_max.max(1),
            request_timeout_ticks: self.request_timeout_ticks.max(1),
            held_sends_max: self.held_sends_max.max(1),
            record_events: self.record_events,
            record_sends: self.record_sends,
        }
    }
}

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
    /// The answer to a linearizable read, served after applying through `index`.
    Read {
        /// The index the state machine had applied when it answered.
        index: LogIndex,
        /// The answer.
        answer: Answer,
    },
    /// The configuration change committed at `index`.
    Reconfigured {
        /// Where the change committed.
        index: LogIndex,
    },
}

/// The answer to one ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion<Response, Answer> {
    /// The ticket the request was given.
    pub ticket: Ticket,
    /// The outcome.
    pub result: Result<Reply<Response, Answer>, ClientError>,
}

/// The completion type of a host driving state machine `M`.
pub type CompletionOf<M> =
    Completion<<M as crate::StateMachine>::Response, <M as Queryable>::Answer>;

/// Why a client request did not complete with a result.
///
/// Each error is either *definite* (the request did not and will not take effect) or
/// *indefinite* (it may have taken effect, or may still); see [`ClientError::is_definite`].
/// A definite error is never reported for something that might have happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The replica refused the request, or the host did because too many requests are
    /// pending (`Rejected(RejectReason::Busy)`). Definite unless the reason is
    /// `LeadershipLost`.
    #[error("request refused: {0}")]
    Rejected(RejectReason),
    /// A different entry was committed where the proposal had been appended, so the
    /// proposal was discarded. Definite.
    #[error("another entry committed at index {index}; the proposal was discarded")]
    Superseded {
        /// Where the proposal had been appended.
        index: LogIndex,
    },
    /// The node was not running when the request arrived. Definite.
    #[error("the node is not running")]
    NotRunning,
    /// No answer within `request_timeout_ticks`. Indefinite.
    #[error("no answer in time; the request may still take effect")]
    Timeout,
    /// The node stopped with the request in flight. Indefinite.
    #[error("the node stopped with the request in flight; outcome unknown")]
    Shutdown,
    /// The proposal's index was applied (or covered by a snapshot) before the host could
    /// tell which entry committed there. Indefinite.
    #[error("index {index} was applied before its entry could be matched; outcome unknown")]
    OutcomeUnknown {
        /// Where the proposal had been appended.
        index: LogIndex,
    },
}

impl ClientError {
    /// True when the request certainly did not and will not take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            ClientError::Rejected(reason) => reason.is_definite(),
            ClientError::Superseded { .. } | ClientError::NotRunning => true,
            ClientError::Timeout | ClientError::Shutdown | ClientError::OutcomeUnknown { .. } => {
                false
            }
        }
    }

    /// The leader the answering replica believes in, if the error names one.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self {
            ClientError::Rejected(reason) => reason.leader_hint(),
            _ => None,
        }
    }
}

/// Why a host stopped. Every variant is fatal: the host acts on nothing after it, so that
/// nothing that may not be durable is ever acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum HostError<E: std::error::Error + 'static> {
    /// Storage refused a write.
    #[error("storage write failed: {0}")]
    Write(#[source] E),
    /// Storage failed to make writes durable.
    #[error("storage sync failed: {0}")]
    Sync(#[source] E),
    /// The state machine could not load a snapshot the replica installed or restarted from.
    #[error("state machine could not restore a snapshot: {0}")]
    SnapshotRestore(#[source] CodecError),
    /// The replica could not be rebuilt from durable state.
    #[error("replica could not restore: {0}")]
    Restore(#[source] RestoreError),
    /// The replica broke the contract (numbered persists out of order, asked for a
    /// snapshot beyond what it applied, applied out of order, or looped on follow-ups).
    #[error("the replica broke the contract: {0}")]
    Contract(String),
    /// The host had already stopped.
    #[error("the host has stopped")]
    Stopped,
}

/// Counters a host keeps about its own work.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Calls to `Storage::sync`.
    pub syncs: u64,
    /// Persist operations written.
    pub writes: u64,
    /// Messages released to the outbox.
    pub sends: u64,
    /// Sends dropped because `held_sends_max` were already waiting.
    pub held_sends_dropped: u64,
    /// Inputs fed to the replica (requests, messages, ticks and follow-ups).
    pub steps: u64,
    /// Snapshots taken at the replica's request.
    pub snapshots_taken: u64,
    /// Snapshots installed from peers.
    pub snapshots_installed: u64,
}

/// What the host did, for shells that check or print it (recorded only with
/// [`HostConfig::record_events`]), in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent<Message, Response> {
    /// The replica sent `msg` to `to`: it left at once (`held_behind` is `None`) or waits
    /// for persist `held_behind` to become durable.
    Sent {
        /// The recipient.
        to: NodeId,
        /// The message.
        msg: Message,
        /// The persist the send waits for, if any.
        held_behind: Option<PersistSeq>,
    },
    /// Persist `seq` was written to storage (not yet durable).
    Persist {
        /// The persist's number.
        seq: PersistSeq,
        /// The write.
        op: Persist,
    },
    /// Persists through `through` became durable; `released` held sends left.
    Durable {
        /// The highest durable persist.
        through: PersistSeq,
        /// Sends released by it.
        released: usize,
    },
    /// A committed entry reached the state machine (`response` for commands).
    Applied {
        /// The entry.
        entry: Entry,
        /// What the state machine returned, for a command.
        response: Option<Response>,
    },
    /// A request was appended at `index` in `epoch`.
    Proposed {
        /// The request.
        ticket: Ticket,
        /// Where.
        index: LogIndex,
        /// In which epoch.
        epoch: Epoch,
    },
    /// A read was cleared, to be served once the state machine reaches `index`.
    ReadReady {
        /// The read.
        ticket: Ticket,
        /// The index to apply through first.
        index: LogIndex,
    },
    /// The replica refused a request (the completion follows).
    Rejected {
        /// The request.
        ticket: Ticket,
        /// Why.
        reason: RejectReason,
    },
    /// The replica asked for a snapshot through `through`.
    TakeSnapshot {
        /// The index the snapshot must cover.
        through: LogIndex,
    },
    /// The host told the replica that its state machine applied through `through`.
    AppliedReported {
        /// The applied index reported.
        through: LogIndex,
    },
    /// A snapshot of the state machine was taken and handed to the replica.
    SnapshotTaken {
        /// What it covers.
        meta: SnapshotMeta,
    },
    /// A snapshot received from a peer replaced the state machine's state.
    SnapshotInstalled {
        /// What it covers.
        meta: SnapshotMeta,
    },
    /// The replica's role, epoch or leader changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The epoch.
        epoch: Epoch,
        /// The leader it believes in.
        leader: Option<NodeId>,
    },
}

/// The event type of a host driving replica `R` and state machine `M`.
pub type HostEventOf<R, M> =
    HostEvent<<R as Replica>::Message, <M as crate::StateMachine>::Response>;

/// One replica with its storage and state machine, run by the host rule. See the module
/// documentation for the rule and the order of follow-up inputs.
pub struct Host<R: Replica, S: Storage, M: Queryable> {
    config: HostConfig,
    replica: R,
    storage: S,
    machine: M,
    effects: Vec<Effect<R::Message>>,
    followups: VecDeque<Input<R::Message>>,
    /// Sends waiting for the persist numbered first to become durable, in emission order.
    held: VecDeque<(PersistSeq, NodeId, R::Message)>,
    /// Sends released, waiting for the shell to take them.
    outbox: Vec<(NodeId, R::Message)>,
    /// The last persist written to storage.
    written: PersistSeq,
    /// The last persist known durable.
    durable: PersistSeq,
    pending: PendingTable<M::Query>,
    /// Bounded by `pending_requests_max` (only pending requests complete) plus the
    /// requests refused at admission since the shell last drained.
    completions: VecDeque<CompletionOf<M>>,
    /// Scratch space for requests taken out of `pending`.
    resolved: Vec<(RequestId, Pending<M::Query>)>,
    events: Vec<HostEventOf<R, M>>,
    next_request: u64,
    ticks: u64,
    /// Index, epoch and membership of the state machine's applied prefix.
    applied: SnapshotMeta,
    role: Role,
    leader: Option<NodeId>,
    stats: HostStats,
    stopped: bool,
    /// A fatal error not yet returned to the owner.
    fatal: Option<HostError<S::Error>>,
}

impl<R: Replica, S: Storage, M: Queryable> fmt::Debug for Host<R, S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("status", &self.replica.status())
            .field("pending", &self.pending.len())
            .field("held_sends", &self.held.len())
            .field("written", &self.written)
            .field("durable", &self.durable)
            .field("stats", &self.stats)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// The parts a host was built from, handed back by [`Host::into_parts`].
#[derive(Debug)]
pub struct HostParts<R, S, M> {
    /// The replica.
    pub replica: R,
    /// The storage, with whatever it holds (synced or not).
    pub storage: S,
    /// The state machine.
    pub machine: M,
}

impl<R: Replica, S: Storage, M: Queryable> Host<R, S, M> {
    /// A host around a replica with no snapshot: a new one, or one restored from a log
    /// that was never compacted. `machine` must be empty. For a restart from durable state
    /// that may hold a snapshot, use [`Host::restore`].
    pub fn new(config: HostConfig, replica: R, storage: S, machine: M) -> Self {
        let status = replica.status();
        let applied = SnapshotMeta {
            index: status.applied,
            membership: status.membership,
            ..SnapshotMeta::default()
        };
        Self::assemble(config, replica, storage, machine, applied)
    }

    /// Rebuild a node from what its storage made durable: the state machine is restored
    /// from the durable snapshot (the replica applies only entries after it), then the
    /// replica from `durable`.
    pub fn restore(
        config: HostConfig,
        replica_config: R::Config,
        durable: Durable,
        storage: S,
        mut machine: M,
    ) -> Result<Self, HostError<S::Error>> {
        let snapshot_meta = match &durable.snapshot {
            Some((meta, data)) => {
                machine.restore(data).map_err(HostError::SnapshotRestore)?;
                Some(meta.clone())
            }
            None => None,
        };
        let replica = R::restore(replica_config, durable).map_err(HostError::Restore)?;
        let applied = match snapshot_meta {
            Some(meta) => meta,
            None => SnapshotMeta {
                membership: replica.status().membership,
                ..SnapshotMeta::default()
            },
        };
        Ok(Self::assemble(config, replica, storage, machine, applied))
    }

    fn assemble(
        config: HostConfig,
        replica: R,
        storage: S,
        machine: M,
        applied: SnapshotMeta,
    ) -> Self {
        let config = config.sanitized();
        Self {
            pending: PendingTable::new(config.pending_requests_max),
            config,
            replica,
            storage,
            machine,
            effects: Vec::new(),
            followups: VecDeque::new(),
            held: VecDeque::new(),
            outbox: Vec::new(),
            written: PersistSeq::ZERO,
            durable: PersistSeq::ZERO,
            completions: VecDeque::new(),
            resolved: Vec::new(),
            events: Vec::new(),
            next_request: 0,
            ticks: 0,
            applied,
            role: Role::Follower,
            leader: None,
            stats: HostStats::default(),
            stopped: false,
            fatal: None,
        }
    }

    // ----- inputs ---------------------------------------------------------------------

    /// One tick of the node's clock: times out overdue requests, then ticks the replica.
    pub fn tick(&mut self) -> Result<(), HostError<S::Error>> {
        self.check_running()?;
        self.ticks += 1;
        self.pending.take_expired(self.ticks, &mut self.resolved);
        self.complete_resolved(|_| Err(ClientError::Timeout));
        self.run(Some(Input::Tick));
        self.check_running()
    }

    /// A message from `from` (authenticated by the shell's transport).
    pub fn receive(&mut self, from: NodeId, msg: R::Message) -> Result<(), HostError<S::Error>> {
        self.check_running()?;
        self.run(Some(Input::Receive { from, msg }));
        self.check_running()
    }

    /// Feed an input that carries no client request (`Tick` without request timeouts,
    /// `Receive`, and any protocol input a shell passes through). Requests go through
    /// [`Host::propose`], [`Host::read`], [`Host::reconfigure`] so that they are answered;
    /// `Persisted`, `Applied` and `Snapshot` are the host's own business and are refused.
    pub fn input(&mut self, input: Input<R::Message>) -> Result<(), HostError<S::Error>> {
        self.check_running()?;
        match input {
            Input::Persisted { .. } | Input::Applied { .. } | Input::Snapshot { .. } => {
                return Err(HostError::Contract(
                    "follow-up inputs are fed by the host, not by its shell".into(),
                ));
            }
            Input::Propose { .. } | Input::Read { .. } | Input::Reconfigure { .. } => {
                return Err(HostError::Contract(
                    "client requests go through propose, read and reconfigure".into(),
                ));
            }
            input => self.run(Some(input)),
        }
        self.check_running()
    }

    /// Propose a command. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn propose(&mut self, command: Bytes) -> Result<Ticket, ClientError> {
        let req = self.next_ticket();
        self.propose_as(req, command)
    }

    /// [`Host::propose`] under a ticket the shell chose (greater than every ticket this host
    /// has seen), for shells that number requests across nodes.
    pub fn propose_as(&mut self, req: Ticket, command: Bytes) -> Result<Ticket, ClientError> {
        self.admit(req, RequestKind::Command)?;
        self.run(Some(Input::Propose { req, command }));
        Ok(req)
    }

    /// Ask a linearizable read. Fails at once with a definite `Busy` when
    /// `pending_requests_max` requests are already pending.
    pub fn read(&mut self, query: M::Query) -> Result<Ticket, ClientError> {
        let req = self.next_ticket();
        self.read_as(req, query)
    }

    /// [`Host::read`] under a ticket the shell chose.
    pub fn read_as(&mut self, req: Ticket, query: M::Query) -> Result<Ticket, ClientError> {
        self.admit(req, RequestKind::Read(query))?;
        self.run(Some(Input::Read { req }));
        Ok(req)
    }

    /// Ask for a membership change.
    pub fn reconfigure(&mut self, membership: Membership) -> Result<Ticket, ClientError> {
        let req = self.next_ticket();
        self.reconfigure_as(req, membership)
    }

    /// [`Host::reconfigure`] under a ticket the shell chose.
    pub fn reconfigure_as(
        &mut self,
        req: Ticket,
        membership: Membership,
    ) -> Result<Ticket, ClientError> {
        self.admit(req, RequestKind::Reconfigure)?;
        self.run(Some(Input::Reconfigure { req, membership }));
        Ok(req)
    }

    /// Ask the replica to hand leadership to `to`. A refusal is not reported (the request
    /// is not tracked); watch the role instead.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), HostError<S::Error>> {
        self.check_running()?;
        self.next_request += 1;
        let req = RequestId(self.next_request);
        self.run(Some(Input::TransferLeadership { req, to }));
        self.check_running()
    }

    /// Make every written persist durable with one `Storage::sync`, then release the sends
    /// that waited for it and feed `Persisted`. Does nothing when nothing waits. On a sync
    /// error the host stops: waiting sends are dropped, the replica hears nothing, and
    /// pending requests end with an indefinite `Shutdown`.
    pub fn sync(&mut self) -> Result<(), HostError<S::Error>> {
        self.check_running()?;
        if self.written > self.durable {
            self.stats.syncs += 1;
            if let Err(error) = self.storage.sync() {
                self.fail(HostError::Sync(error));
                return self.check_running();
            }
            self.persisted(self.written)?;
        }
        self.check_running()
    }

    /// Every persist numbered `<= through` is durable, by the shell's own means (a disk
    /// that syncs on its own schedule, a script that syncs a prefix). Releases the sends
    /// held behind them, in order, and feeds `Persisted { through }`.
    pub fn persisted(&mut self, through: PersistSeq) -> Result<(), HostError<S::Error>> {
        self.check_running()?;
        if through > self.written {
            self.fail(HostError::Contract(format!(
                "durability reported through {through}, but only {} was written",
                self.written
            )));
            return self.check_running();
        }
        if through <= self.durable {
            return Ok(());
        }
        self.durable = through;
        let mut released = 0;
        while let Some((barrier, _, _)) = self.held.front() {
            if *barrier > through {
                break;
            }
            let (_, to, msg) = self.held.pop_front().expect("front exists");
            self.outbox.push((to, msg));
            released += 1;
        }
        self.stats.sends += released as u64;
        self.event(|| HostEvent::Durable { through, released });
        self.run(Some(Input::Persisted { through }));
        self.check_running()
    }

    /// Stop the host: pending requests end with an indefinite `Shutdown`, waiting sends
    /// are dropped, and later requests fail with a definite `NotRunning`. Call `sync` first
    /// to flush what was written.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.held.clear();
        self.followups.clear();
        self.pending.take_everything(&mut self.resolved);
        self.complete_resolved(|_| Err(ClientError::Shutdown));
    }

    /// Take the host apart (to crash it: the storage keeps what it keeps).
    pub fn into_parts(self) -> HostParts<R, S, M> {
        HostParts {
            replica: self.replica,
            storage: self.storage,
            machine: self.machine,
        }
    }

    // ----- outputs and inspection -----------------------------------------------------

    /// Take the sends released so far, in order, for the shell's network.
    pub fn drain_sends(&mut self) -> std::vec::Drain<'_, (NodeId, R::Message)> {
        self.outbox.drain(..)
    }

    /// Take the answers produced so far, in the order they were produced.
    pub fn drain_completions(&mut self) -> std::collections::vec_deque::Drain<'_, CompletionOf<M>> {
        self.completions.drain(..)
    }

    /// Take the events recorded so far (only with [`HostConfig::record_events`]).
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, HostEventOf<R, M>> {
        self.events.drain(..)
    }

    /// True when persists were written but are not yet durable.
    pub fn needs_sync(&self) -> bool {
        self.written > self.durable
    }

    /// The last persist written to storage.
    pub fn written(&self) -> PersistSeq {
        self.written
    }

    /// The last persist known durable.
    pub fn durable(&self) -> PersistSeq {
        self.durable
    }

    /// Sends waiting for durability.
    pub fn held_sends(&self) -> usize {
        self.held.len()
    }

    /// The sends waiting for durability, in order, each with the persist it waits for.
    pub fn held(&self) -> impl Iterator<Item = (PersistSeq, NodeId, &R::Message)> {
        self.held.iter().map(|(seq, to, msg)| (*seq, *to, msg))
    }

    /// True once the host stopped, by `stop` or by a fatal error.
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

    /// What the state machine has applied (or restored from a snapshot): index, epoch and
    /// membership.
    pub fn applied(&self) -> &SnapshotMeta {
        &self.applied
    }

    /// The highest index the state machine has applied.
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
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// The limits in force.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The user's state machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The user's state machine, mutably, for shells that keep their own bookkeeping in it
    /// (the simulator records what each command changed). Changing the replicated state
    /// here breaks the apply contract: every replica must apply the same commands.
    pub fn machine_mut(&mut self) -> &mut M {
        &mut self.machine
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutably (for shells whose storage syncs on its own schedule).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The replica.
    pub fn replica(&self) -> &R {
        &self.replica
    }

    /// `Ok` while the host runs; once it stopped, the fatal error that stopped it (once),
    /// then [`HostError::Stopped`]. For shells that must learn whether a request call
    /// (`propose`, `read`, ...), which reports only client errors, stopped the host.
    pub fn check(&mut self) -> Result<(), HostError<S::Error>> {
        self.check_running()
    }

    // ----- the effect loop ------------------------------------------------------------

    fn check_running(&mut self) -> Result<(), HostError<S::Error>> {
        match self.fatal.take() {
            Some(error) => Err(error),
            None if self.stopped => Err(HostError::Stopped),
            None => Ok(()),
        }
    }

    fn next_ticket(&self) -> Ticket {
        RequestId(self.next_request + 1)
    }

    fn admit(&mut self, req: Ticket, kind: RequestKind<M::Query>) -> Result<(), ClientError> {
        if self.stopped {
            return Err(ClientError::NotRunning);
        }
        if req.0 <= self.next_request {
            // Tickets must grow: the pending table orders deadlines by ticket.
            return Err(ClientError::Rejected(RejectReason::InvalidConfig(format!(
                "ticket {req} is not above the last ticket r{}",
                self.next_request
            ))));
        }
        if self.pending.is_full() {
            return Err(ClientError::Rejected(RejectReason::Busy));
        }
        self.next_request = req.0;
        let deadline = self.ticks.saturating_add(self.config.request_timeout_ticks);
        self.pending.insert(req, kind, deadline);
        Ok(())
    }

    /// Feed `first`, then every follow-up input the effects ask for, until none is left.
    fn run(&mut self, first: Option<Input<R::Message>>) {
        let mut effects = std::mem::take(&mut self.effects);
        let mut next = first;
        let mut fed = 0usize;
        while !self.stopped {
            let Some(input) = next.take().or_else(|| self.followups.pop_front()) else {
                break;
            };
            fed += 1;
            if fed > FOLLOWUPS_PER_CALL_MAX {
                self.fail(HostError::Contract(format!(
                    "more than {FOLLOWUPS_PER_CALL_MAX} follow-up inputs for one call"
                )));
                break;
            }
            self.stats.steps += 1;
            self.replica.step(input, &mut effects);
            let applied_before = self.applied.index;
            let mut snapshot = None;
            for effect in effects.drain(..) {
                if self.stopped {
                    // Nothing after a fatal error may happen; the rest is dropped.
                    continue;
                }
                self.execute(effect, &mut snapshot);
            }
            if self.stopped {
                break;
            }
            // The documented order: Applied, then the snapshot taken.
            if self.applied.index > applied_before {
                let through = self.applied.index;
                self.event(|| HostEvent::AppliedReported { through });
                self.followups.push_back(Input::Applied { through });
            }
            if let Some(snapshot) = snapshot {
                self.followups.push_back(snapshot);
            }
        }
        if self.stopped {
            self.followups.clear();
        }
        effects.clear();
        self.effects = effects;
    }

    fn execute(&mut self, effect: Effect<R::Message>, snapshot: &mut Option<Input<R::Message>>) {
        match effect {
            Effect::Send { to, msg } => {
                if self.config.record_events && self.config.record_sends {
                    let held_behind = (self.written > self.durable).then_some(self.written);
                    self.events.push(HostEvent::Sent {
                        to,
                        msg: msg.clone(),
                        held_behind,
                    });
                }
                if self.written > self.durable {
                    // The host rule: it follows a persist that is not durable yet.
                    if self.held.len() >= self.config.held_sends_max {
                        self.stats.held_sends_dropped += 1;
                    } else {
                        self.held.push_back((self.written, to, msg));
                    }
                } else {
                    self.stats.sends += 1;
                    self.outbox.push((to, msg));
                }
            }
            Effect::Persist { seq, op } => self.write(seq, &op),
            Effect::Apply { entries } => self.apply(&entries),
            Effect::Proposed { req, index, epoch } => {
                self.event(|| HostEvent::Proposed {
                    ticket: req,
                    index,
                    epoch,
                });
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
                self.event(|| HostEvent::ReadReady { ticket: req, index });
                if self.pending.mark_read_ready(req, index) && index <= self.applied.index {
                    self.pending
                        .take_reads_through(self.applied.index, &mut self.resolved);
                    self.answer_reads();
                }
            }
            Effect::Reject { req, reason } => {
                self.event(|| HostEvent::Rejected {
                    ticket: req,
                    reason: reason.clone(),
                });
                if self.pending.remove(req).is_some() {
                    self.complete(req, Err(ClientError::Rejected(reason)));
                }
            }
            Effect::TakeSnapshot { through } => self.take_snapshot(through, snapshot),
            Effect::InstallSnapshot { meta, data } => self.install_snapshot(meta, &data),
            Effect::RoleChanged {
                role,
                epoch,
                leader,
            } => {
                self.role = role;
                self.leader = leader;
                self.event(|| HostEvent::RoleChanged {
                    role,
                    epoch,
                    leader,
                });
            }
        }
    }

    fn write(&mut self, seq: PersistSeq, op: &Persist) {
        if seq != self.written.next() {
            self.fail(HostError::Contract(format!(
                "persist {seq} follows persist {}",
                self.written
            )));
            return;
        }
        if let Err(error) = self.storage.write(op) {
            self.fail(HostError::Write(error));
            return;
        }
        self.written = seq;
        self.stats.writes += 1;
        self.event(|| HostEvent::Persist {
            seq,
            op: op.clone(),
        });
    }

    fn apply(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        if entries[0].index != self.applied.index.next() {
            self.fail(HostError::Contract(format!(
                "asked to apply {} after applying through {}",
                entries[0].index, self.applied.index
            )));
            return;
        }
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
            if self.config.record_events {
                self.events.push(HostEvent::Applied {
                    entry: entry.clone(),
                    response,
                });
            }
        }
        self.pending
            .take_reads_through(self.applied.index, &mut self.resolved);
        self.answer_reads();
    }

    fn take_snapshot(&mut self, through: LogIndex, snapshot: &mut Option<Input<R::Message>>) {
        self.event(|| HostEvent::TakeSnapshot { through });
        if through > self.applied.index {
            self.fail(HostError::Contract(format!(
                "asked for a snapshot through {through} before applying past {}",
                self.applied.index
            )));
            return;
        }
        // The state machine cannot rewind, so the snapshot covers everything applied,
        // which includes `through`.
        let data = self.machine.snapshot();
        self.stats.snapshots_taken += 1;
        let meta = self.applied.clone();
        self.event(|| HostEvent::SnapshotTaken { meta: meta.clone() });
        *snapshot = Some(Input::Snapshot { meta, data });
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) {
        if let Err(error) = self.machine.restore(data) {
            self.fail(HostError::SnapshotRestore(error));
            return;
        }
        self.stats.snapshots_installed += 1;
        let index = meta.index;
        self.event(|| HostEvent::SnapshotInstalled { meta: meta.clone() });
        self.applied = meta;
        self.pending
            .take_appended_through(index, &mut self.resolved);
        self.complete_resolved(|p| match p.stage {
            Stage::Appended { index, .. } => Err(ClientError::OutcomeUnknown { index }),
            _ => Err(ClientError::OutcomeUnknown { index }),
        });
        self.pending.take_reads_through(index, &mut self.resolved);
        self.answer_reads();
    }

    fn answer_reads(&mut self) {
        let index = self.applied.index;
        for (req, p) in self.resolved.drain(..) {
            let result = match &p.kind {
                RequestKind::Read(query) => Ok(Reply::Read {
                    index,
                    answer: self.machine.query(query),
                }),
                // Only reads are indexed by read index; claim nothing definite otherwise.
                _ => Err(ClientError::OutcomeUnknown { index }),
            };
            self.completions.push_back(Completion {
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

    fn event(&mut self, make: impl FnOnce() -> HostEventOf<R, M>) {
        if self.config.record_events {
            self.events.push(make());
        }
    }

    fn fail(&mut self, error: HostError<S::Error>) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
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
        return Err(ClientError::OutcomeUnknown { index: entry.index });
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
        // The replica named this (index, epoch) for a request of another kind: a replica
        // bug. Claim nothing definite.
        _ => Err(ClientError::OutcomeUnknown { index }),
    }
}

#[cfg(test)]
mod tests;
