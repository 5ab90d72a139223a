//! Raft as a pure automaton.
//!
//! The handlers follow the paper and the thesis: elections with pre-vote and
//! check-quorum (§5.2, thesis §9.6), log replication with pipelining and fast
//! backtracking (§5.3), the commitment rule (§5.4.2), snapshots (§7), leadership transfer
//! (thesis §3.10), joint consensus and single-server changes (§6, thesis §4) and
//! linearizable reads through ReadIndex and leases (thesis §6.4).
//!
//! Persistence follows the host rule: every effect that depends on durable state follows
//! the `Persist` it depends on, and the replica counts its own vote and its own log only
//! after `Input::Persisted` covers them.
//!
//! Not offered: witnesses (voters without a state machine) and quiescing (a leader that
//! stops heartbeating an idle cluster). Both trade the simple "every voter holds the log
//! and hears the leader" reasoning that check-quorum, leases and stickiness rest on for
//! savings this toolkit's hosts do not need yet.

mod config;
mod election;
mod membership;
mod message;
mod reads;
mod replication;
mod snapshot;
mod transfer;

use std::collections::VecDeque;

use bytes::Bytes;
use rsm_core::{
    Durable, Effect, Epoch, HardState, Input, LogIndex, NodeId, Persist, PersistSeq, Phase, Prng,
    RejectReason, Replica, RequestId, RestoreError, Role, Status, Term,
};

pub use config::{ConfigError, RaftConfig};
pub use message::RaftMessage;

use crate::apply_pump::ApplyPump;
use crate::log_window::LogWindow;
use crate::persist_tracker::PersistTracker;
use crate::progress::{self, Progress, ReplicationProgress};
use crate::read_queue::ReadQueue;
use crate::snapshot_transfer::SnapshotAssembly;
use reads::{ForwardedRead, ReadOrigin};
use transfer::Transfer;

type Out = Vec<Effect<RaftMessage>>;

/// The part of a replica's role that Raft's rules switch between; learner and removed
/// are derived from the membership.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// One Raft replica: a deterministic automaton implementing [`Replica`].
///
/// Build it with [`Replica::restore`] (from `Durable::default()` for a new replica), feed
/// it inputs with [`Replica::step`] and execute the effects in order.
///
/// ```
/// use rsm_consensus::{Raft, RaftConfig};
/// use rsm_core::{Durable, Effect, Input, Membership, NodeId, Replica, Role};
///
/// let config = RaftConfig::new(NodeId(1), Membership::new([NodeId(1)]), 7);
/// let mut raft = Raft::restore(config, Durable::default()).unwrap();
/// let mut out = Vec::new();
/// while raft.status().role != Role::Leader {
///     raft.step(Input::Tick, &mut out);
///     // A single voter counts its own vote once its hard state is durable.
///     for e in std::mem::take(&mut out) {
///         if let Effect::Persist { seq, .. } = e {
///             raft.step(Input::Persisted { through: seq }, &mut out);
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Raft {
    cfg: RaftConfig,
    id: NodeId,
    rng: Prng,

    term: Term,
    vote: Option<NodeId>,
    log: LogWindow,
    commit: LogIndex,
    state: State,
    leader: Option<NodeId>,

    /// Which persists are durable, and through which index the log is.
    persist: PersistTracker,

    /// Ticks since this incarnation started, from 1.
    now: u64,
    election_elapsed: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    /// Ticks since a leader was last heard from (or since start): a voter refuses to help
    /// unseat a leader it heard within `election_ticks_min`.
    leader_silence_ticks: u64,

    votes: Vec<(NodeId, bool)>,
    /// The persist carrying a candidate's own vote: it counts once durable.
    own_vote_seq: Option<PersistSeq>,
    /// The current campaign follows a `TimeoutNow`.
    campaign_transfer: bool,

    progress: Vec<Progress>,
    /// First index this leader has neither written nor sent: proposals arriving while a
    /// write is in flight accumulate from here into one batch.
    unflushed: LogIndex,
    unflushed_bytes: usize,
    uncommitted_bytes: usize,
    transfer: Option<Transfer>,
    /// Set once this leader sent `TimeoutNow`: voters may then elect another leader
    /// without waiting, so the lease is void for the rest of the term.
    lease_revoked: bool,
    reads: ReadQueue<ReadOrigin>,

    forwarded: VecDeque<ForwardedRead>,
    incoming: Option<SnapshotAssembly>,

    /// What was handed to the host's state machine, and what it reported applied.
    apply: ApplyPump,
    /// The index of the last `TakeSnapshot` not yet answered.
    snapshot_asked: Option<LogIndex>,

    reported: (Role, Term, Option<NodeId>),
}

impl Replica for Raft {
    type Message = RaftMessage;
    type Config = RaftConfig;

    fn restore(config: RaftConfig, durable: Durable) -> Result<Self, RestoreError> {
        config.validate()?;
        let mut durable = durable;
        let log = LogWindow::restore(&config.membership, &mut durable, false)?;
        let hs = durable.hard_state;
        let term = Term(hs.epoch.0);
        if term < log.last_term() {
            return Err(RestoreError::HardStateBehindLog {
                epoch: term.0,
                entry_epoch: log.last_term().0,
            });
        }
        let snap = log.snapshot.index;
        let commit = hs.commit.clamp(snap, log.last_index());
        let mut rng = Prng::new(config.seed);
        let election_timeout = rng.range(config.election_ticks_min, config.election_ticks_max);
        let last = log.last_index();
        let mut raft = Self {
            id: config.id,
            rng,
            term,
            vote: hs.vote,
            log,
            commit,
            state: State::Follower,
            leader: None,
            persist: PersistTracker::new(last),
            now: 1,
            election_elapsed: 0,
            election_timeout,
            heartbeat_elapsed: 0,
            // With leases on, a restarted voter may have acknowledged a lease just before
            // it crashed: it starts out as if it had just heard from a leader.
            leader_silence_ticks: if config.lease_reads {
                0
            } else {
                config.election_ticks_min
            },
            votes: Vec::new(),
            own_vote_seq: None,
            campaign_transfer: false,
            progress: Vec::new(),
            unflushed: last.next(),
            unflushed_bytes: 0,
            uncommitted_bytes: 0,
            transfer: None,
            lease_revoked: false,
            reads: ReadQueue::new(),
            forwarded: VecDeque::new(),
            incoming: None,
            apply: ApplyPump::new(snap),
            snapshot_asked: None,
            reported: (Role::Follower, term, None),
            cfg: config,
        };
        raft.reported = (raft.role(), term, None);
        Ok(raft)
    }

    fn step(&mut self, input: Input<RaftMessage>, out: &mut Out) {
        let mut flush_now = true;
        match input {
            Input::Tick => self.tick(out),
            Input::Receive { from, msg } => self.receive(from, msg, out),
            Input::Propose { req, command } => flush_now = self.propose(req, command, out),
            Input::Read { req } => self.read(req, out),
            Input::Persisted { through } => self.persisted(through, out),
            Input::Applied { through } => self.applied_through(through, out),
            Input::Snapshot { meta, data } => self.snapshot_taken(meta, data, out),
            Input::Reconfigure { req, membership } => self.reconfigure(req, membership, out),
            Input::TransferLeadership { req, to } => self.transfer_leadership(req, to, out),
            Input::Campaign => self.campaign_now(out),
        }
        if flush_now && self.state == State::Leader {
            self.flush(out);
        }
        self.maybe_apply(out);
        self.report_role(out);
        debug_assert!(self.apply.applied() <= self.commit && self.commit <= self.log.last_index());
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role(),
            epoch: Epoch(self.term.0),
            leader: self.leader,
            commit: self.commit,
            applied: self.apply.applied(),
            last_index: self.log.last_index(),
            membership: self.log.membership().0.clone(),
        }
    }
}

impl Raft {
    /// The configuration this replica was built with.
    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// At a leader, how far `id`'s log is known to match; `None` elsewhere or for a
    /// non-member. Hosts use it to decide when a learner has caught up.
    pub fn progress(&self, id: NodeId) -> Option<ReplicationProgress> {
        if self.state != State::Leader {
            return None;
        }
        self.progress
            .iter()
            .find(|p| p.id == id)
            .map(Progress::view)
    }

    fn role(&self) -> Role {
        match self.state {
            State::Leader => Role::Leader,
            State::Candidate => Role::Candidate,
            State::PreCandidate => Role::PreCandidate,
            State::Follower => self.log.member_role(self.id),
        }
    }

    fn report_role(&mut self, out: &mut Out) {
        let now = (self.role(), self.term, self.leader);
        if now != self.reported {
            self.reported = now;
            out.push(Effect::RoleChanged {
                role: now.0,
                epoch: Epoch(now.1.0),
                leader: now.2,
            });
        }
    }

    /// Why a request addressed to a leader is refused here.
    fn not_leader_reason(&self) -> RejectReason {
        if self.role() == Role::Removed {
            RejectReason::Removed
        } else {
            RejectReason::NotLeader { hint: self.leader }
        }
    }

    /// The one leadership check of every client request (proposal, read, reconfiguration,
    /// transfer): `None` when this replica leads and may take it, else why not.
    fn leadership_refusal(&self) -> Option<RejectReason> {
        if self.state != State::Leader {
            return Some(self.not_leader_reason());
        }
        self.transfer
            .map(|t| RejectReason::TransferInProgress { target: t.target })
    }

    /// The one refusal path: answer `req` with `reason`. Every refusal is definite: a
    /// refused request was never appended.
    fn refuse(&self, req: RequestId, reason: RejectReason, out: &mut Out) {
        debug_assert!(reason.is_definite());
        out.push(Effect::Reject { req, reason });
    }

    fn send(&self, to: NodeId, msg: RaftMessage, out: &mut Out) {
        out.push(Effect::Send { to, msg });
    }

    // ---- persistence ----

    fn persist(&mut self, op: Persist, out: &mut Out) -> PersistSeq {
        self.persist.emit(op, out)
    }

    fn persist_hard_state(&mut self, out: &mut Out) -> PersistSeq {
        let hs = HardState {
            epoch: Epoch(self.term.0),
            vote: self.vote,
            commit: self.commit,
            extra: Bytes::new(),
        };
        self.persist(Persist::HardState(hs), out)
    }

    /// Emit a write that changes the log; once durable, the log as it is now is durable.
    fn persist_log(&mut self, op: Persist, out: &mut Out) {
        let last = self.log.last_index();
        self.persist.emit_log(op, last, out);
    }

    fn persisted(&mut self, through: PersistSeq, out: &mut Out) {
        if !self.persist.persisted(through) {
            return;
        }
        debug_assert!(self.persist.stable_index() <= self.log.last_index());
        match self.state {
            State::Candidate => self.check_election(out),
            State::Leader => self.maybe_commit(out),
            _ => {}
        }
    }

    // ---- time ----

    fn tick(&mut self, out: &mut Out) {
        self.now += 1;
        self.age_forwarded_reads(out);
        if self.state == State::Leader {
            self.tick_leader(out);
            return;
        }
        self.election_elapsed += 1;
        self.leader_silence_ticks = self.leader_silence_ticks.saturating_add(1);
        if self.election_elapsed >= self.election_timeout && self.can_campaign() {
            self.campaign(false, out);
        }
    }

    fn tick_leader(&mut self, out: &mut Out) {
        self.leader_silence_ticks = 0;
        self.heartbeat_elapsed += 1;
        if self.cfg.check_quorum && self.quorum_silent() {
            self.become_follower(self.term, None, out);
            return;
        }
        self.tick_transfer();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.heartbeat_round(out);
        }
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.election_timeout = self
            .rng
            .range(self.cfg.election_ticks_min, self.cfg.election_ticks_max);
    }

    // ---- messages ----

    fn receive(&mut self, from: NodeId, msg: RaftMessage, out: &mut Out) {
        if from == self.id {
            return;
        }
        let term = msg.term();
        if term > self.term {
            match &msg {
                // Probes and their grants leave the term alone: that is what pre-vote is for.
                RaftMessage::RequestVote { pre_vote: true, .. }
                | RaftMessage::RequestVoteResponse {
                    pre_vote: true,
                    granted: true,
                    ..
                } => {}
                // A live leader is known: do not let a candidate raise the term (thesis §4.2.3).
                RaftMessage::RequestVote {
                    transfer: false, ..
                } if self.sticky() => return,
                _ => {
                    let leader = msg.is_from_leader().then_some(from);
                    self.become_follower(term, leader, out);
                }
            }
        } else if term < self.term {
            match msg {
                // Tell a stale leader or pre-candidate about the newer term so it stands down.
                RaftMessage::AppendEntries { .. }
                | RaftMessage::Heartbeat { .. }
                | RaftMessage::InstallSnapshot { .. } => {
                    let reply = RaftMessage::HeartbeatResponse {
                        term: self.term,
                        read_round: 0,
                        sent_tick: 0,
                        log_behind: false,
                    };
                    self.send(from, reply, out);
                }
                RaftMessage::RequestVote { pre_vote: true, .. } => {
                    let reply = RaftMessage::RequestVoteResponse {
                        term: self.term,
                        pre_vote: true,
                        granted: false,
                    };
                    self.send(from, reply, out);
                }
                _ => {}
            }
            return;
        }
        // Whatever only a leader sends, sent in this term, makes its sender the leader.
        if msg.is_from_leader() && !self.accept_leader(from, out) {
            return;
        }
        match msg {
            RaftMessage::RequestVote {
                term,
                pre_vote,
                last_index,
                last_term,
                transfer,
                priority,
            } => {
                let ballot = election::Ballot {
                    term,
                    pre_vote,
                    last_index,
                    last_term,
                    transfer,
                    priority,
                };
                self.handle_request_vote(from, ballot, out)
            }
            RaftMessage::RequestVoteResponse {
                pre_vote, granted, ..
            } => self.handle_vote_response(from, pre_vote, granted, out),
            RaftMessage::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => self.handle_append_entries(from, prev_index, prev_term, entries, commit, out),
            RaftMessage::AppendEntriesResponse {
                success,
                index,
                hint_index,
                hint_term,
                ..
            } => self.handle_append_response(from, success, index, hint_index, hint_term, out),
            RaftMessage::Heartbeat {
                commit,
                read_round,
                sent_tick,
                ..
            } => self.handle_heartbeat(from, commit, read_round, sent_tick, out),
            RaftMessage::HeartbeatResponse {
                read_round,
                sent_tick,
                log_behind,
                ..
            } => self.handle_heartbeat_response(from, read_round, sent_tick, log_behind, out),
            RaftMessage::InstallSnapshot {
                meta,
                offset,
                data,
                done,
                ..
            } => self.handle_install_snapshot(from, meta, offset, data, done, out),
            RaftMessage::InstallSnapshotResponse {
                index,
                next_offset,
                done,
                ..
            } => self.handle_snapshot_response(from, index, next_offset, done, out),
            RaftMessage::TimeoutNow { .. } => self.handle_timeout_now(from, out),
            RaftMessage::ReadIndex { id, .. } => self.handle_read_index(from, id, out),
            RaftMessage::ReadIndexResponse { id, index, .. } => {
                self.handle_read_index_response(id, index, out)
            }
        }
    }

    /// A message only a leader sends arrived in the current term: follow its sender.
    /// Returns false if this replica leads the term itself (two leaders in one term
    /// cannot exist, so the message is bogus and ignored).
    fn accept_leader(&mut self, from: NodeId, out: &mut Out) -> bool {
        if self.state == State::Leader {
            return false;
        }
        if self.state != State::Follower || self.leader != Some(from) {
            self.become_follower(self.term, Some(from), out);
        }
        self.election_elapsed = 0;
        self.leader_silence_ticks = 0;
        true
    }

    // ---- apply ----

    /// Only committed entries this replica holds durably are applied: a crash must not
    /// lose an entry its state machine already reflects.
    fn maybe_apply(&mut self, out: &mut Out) {
        let ready = self.commit.min(self.persist.stable_index());
        self.apply.pump(
            &self.log,
            ready,
            self.cfg.apply_lag_entries_max,
            self.cfg.apply_batch_entries_max,
            out,
        );
    }

    /// The one quorum question over the followers' progress (see [`progress::quorum_value`]).
    fn leader_quorum<T: Ord + Copy + Default>(
        &self,
        phase: Phase,
        own: T,
        of: impl Fn(&Progress) -> T,
    ) -> T {
        let membership = self.log.membership().0;
        progress::quorum_value(membership, phase, self.id, own, &self.progress, of)
    }
}
