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
mod log;
mod membership;
mod message;
mod progress;
mod reads;
mod replication;
mod snapshot;

use std::collections::VecDeque;

use bytes::Bytes;
use rsm_core::{
    Durable, Effect, Epoch, HardState, Input, LogIndex, NodeId, Persist, PersistSeq, Prng,
    RejectReason, Replica, RestoreError, Role, SnapshotMeta, Status, Term,
};

pub use config::{ConfigError, RaftConfig};
pub use message::RaftMessage;
pub use progress::{ProgressState, ReplicationProgress};

use log::RaftLog;
use progress::Progress;
use reads::{ForwardedRead, PendingRead};
use snapshot::IncomingSnapshot;

type Out = Vec<Effect<RaftMessage>>;

/// Log writes tracked individually while not yet durable; beyond this, the newest ones
/// are tracked together.
const UNSYNCED_LOG_WRITES_MAX: usize = 1024;

/// The part of a replica's role that Raft's rules switch between; learner and removed
/// are derived from the membership.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A leadership transfer in progress at the leader.
#[derive(Copy, Clone, Debug)]
struct Transfer {
    target: NodeId,
    elapsed_ticks: u64,
    timeout_now_sent: bool,
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
    log: RaftLog,
    commit: LogIndex,
    state: State,
    leader: Option<NodeId>,

    /// Number of the next `Persist` effect.
    persist_next: PersistSeq,
    /// Every persist numbered at or below this is durable.
    durable: PersistSeq,
    /// Log writes not yet durable: their number and the log's last index when emitted.
    log_writes: VecDeque<(PersistSeq, LogIndex)>,
    /// The in-memory log is durable through this index.
    stable_index: LogIndex,

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
    read_round: u64,
    reads: VecDeque<PendingRead>,

    forwarded: VecDeque<ForwardedRead>,
    incoming: Option<IncomingSnapshot>,

    /// Highest index emitted in `Apply` (or covered by a snapshot).
    applied: LogIndex,
    /// Highest index the host reported applied.
    host_applied: LogIndex,
    /// The index of the last `TakeSnapshot` not yet answered.
    snapshot_asked: Option<LogIndex>,

    reported: (Role, Term, Option<NodeId>),
}

impl Replica for Raft {
    type Message = RaftMessage;
    type Config = RaftConfig;

    fn restore(config: RaftConfig, durable: Durable) -> Result<Self, RestoreError> {
        config.validate()?;
        let (meta, data) = match durable.snapshot {
            Some((meta, data)) => (meta, data),
            None => (
                SnapshotMeta {
                    membership: config.membership.clone(),
                    ..SnapshotMeta::default()
                },
                Bytes::new(),
            ),
        };
        let mut log = RaftLog::new(meta, data);
        for e in durable.entries {
            if e.index != log.last_index().next() {
                return Err(RestoreError::LogGap {
                    index: e.index.0,
                    previous: log.last_index().0,
                });
            }
            if e.epoch.0 < log.last_term().0 {
                return Err(RestoreError::EpochRegression {
                    index: e.index.0,
                    epoch: e.epoch.0,
                    previous: log.last_term().0,
                });
            }
            log.push(e);
        }
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
            persist_next: PersistSeq(1),
            durable: PersistSeq(0),
            log_writes: VecDeque::new(),
            stable_index: last,
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
            read_round: 0,
            reads: VecDeque::new(),
            forwarded: VecDeque::new(),
            incoming: None,
            applied: snap,
            host_applied: snap,
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
        debug_assert!(self.applied <= self.commit && self.commit <= self.log.last_index());
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role(),
            epoch: Epoch(self.term.0),
            leader: self.leader,
            commit: self.commit,
            applied: self.applied,
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
            State::Follower => {
                let m = self.log.membership().0;
                if m.is_voter(self.id) {
                    Role::Follower
                } else if m.contains(self.id) {
                    Role::Learner
                } else {
                    Role::Removed
                }
            }
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

    fn send(&self, to: NodeId, msg: RaftMessage, out: &mut Out) {
        out.push(Effect::Send { to, msg });
    }

    // ---- persistence ----

    fn persist(&mut self, op: Persist, out: &mut Out) -> PersistSeq {
        let seq = self.persist_next;
        self.persist_next = seq.next();
        out.push(Effect::Persist { seq, op });
        seq
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
        let seq = self.persist(op, out);
        let record = (seq, self.log.last_index());
        let full = self.log_writes.len() >= UNSYNCED_LOG_WRITES_MAX;
        match self.log_writes.back_mut() {
            // Merging with the previous record only delays when its entries count as
            // durable, never the reverse: safe, and it bounds the queue.
            Some(back) if full => *back = record,
            _ => self.log_writes.push_back(record),
        }
    }

    /// The in-memory log changed at and above `index + 1`: nothing there is durable
    /// until a later write says so.
    fn forget_stable_after(&mut self, index: LogIndex) {
        self.stable_index = self.stable_index.min(index);
        for w in &mut self.log_writes {
            w.1 = w.1.min(index);
        }
    }

    fn persisted(&mut self, through: PersistSeq, out: &mut Out) {
        // A report of a persist never emitted is bad input: believe only what was emitted.
        let through = through.min(self.persist_next.prev());
        if through <= self.durable {
            return;
        }
        self.durable = through;
        while let Some(&(seq, last)) = self.log_writes.front() {
            if seq > through {
                break;
            }
            self.stable_index = last;
            self.log_writes.pop_front();
        }
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
        self.election_elapsed += 1;
        self.heartbeat_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks_min {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_active() {
                self.become_follower(self.term, None, out);
                return;
            }
            for p in &mut self.progress {
                p.recent_active = false;
            }
        }
        if let Some(t) = &mut self.transfer {
            t.elapsed_ticks += 1;
            if t.elapsed_ticks >= self.cfg.election_ticks_min {
                self.transfer = None;
            }
        }
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
                } if self.in_leader_lease() => return,
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
                ..
            } => self.handle_heartbeat_response(from, read_round, sent_tick, out),
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

    fn maybe_apply(&mut self, out: &mut Out) {
        let window_end = LogIndex(
            self.host_applied
                .0
                .saturating_add(self.cfg.apply_lag_entries_max),
        );
        let target = self.commit.min(self.stable_index).min(window_end);
        while self.applied < target {
            let hi = LogIndex(
                target
                    .0
                    .min(self.applied.0 + self.cfg.apply_batch_entries_max as u64),
            );
            let mut entries = Vec::with_capacity((hi.0 - self.applied.0) as usize);
            entries.extend(self.log.range(self.applied.next(), hi).cloned());
            self.applied = hi;
            out.push(Effect::Apply { entries });
        }
    }
}
