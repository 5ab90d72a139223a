//! Multi-Paxos as a pure automaton.
//!
//! Every replica is a proposer, an acceptor and a learner. Ballots are `(round, node)`
//! pairs; a proposer that suspects the leader (its failure detector fires after a
//! jittered number of silent ticks) runs phase 1 for all open slots at once with a fresh
//! ballot, and a stable leader skips phase 1 entirely, running only phase 2 for each
//! batch of slots ("Paxos Made Moderately Complex", §3; "Paxos Made Live", §5.2).
//!
//! # How acceptors keep what they accepted
//!
//! Each slot's value is an [`Entry`] whose epoch is the ballot that *created* it; a leader
//! that recovers a value in phase 1 proposes it again unchanged, so a decided value has
//! one identity everywhere (hosts match a proposal's `(index, epoch)` against what is
//! applied). What a classic acceptor keeps per slot, the ballot it last accepted there,
//! is kept per acceptor instead: `accepted` is the last ballot whose leader
//! *synchronised* the acceptor, and the acceptor's log is consecutive (as in Sequence
//! Paxos, the protocol under Omni-Paxos):
//!
//! - Phase 2 for ballot `b` starts, at each acceptor, with a synchronisation: the leader
//!   sends its log from the acceptor's decided prefix through `sync_end`, the last slot it
//!   recovered in phase 1, in bounded chunks. Chunks overwrite slots in place
//!   (`Persist::Accept`, which discards nothing); the chunk that reaches `sync_end` also
//!   discards every slot above it and then records `accepted = b` in the hard state.
//!   Until then the acceptor takes no new slot of `b`; after, every slot it holds above
//!   its decided prefix is `b`'s (or, after a crash mid-way through a later
//!   synchronisation, a later ballot's).
//! - A promise reports `accepted` and the acceptor's slots above the proposer's decided
//!   prefix. The proposer takes, for each slot, the value of the promise with the highest
//!   `accepted` that holds the slot. Each promise holds a consecutive run from the same
//!   start, so the recovered log has no holes: the gaps a failed leader leaves in other
//!   protocols cannot arise, and the new leader opens its ballot with one no-op.
//!
//! Why this cannot lose a decided value: say `x` was decided in slot `t` at ballot `c`.
//! Every later ballot that completes phase 1 recovers `x` at `t` (the induction of the
//! Paxos proof): its phase-1 quorum meets some acceptor `a` that accepted `x` at `c` and
//! reports `accepted >= c` (it recorded `c`'s synchronisation before accepting, and the
//! hard state only grows). Any acceptor reporting `accepted = m >= c` that holds `t` holds
//! `x`: it was synchronised by `m` (whose log holds `x` at `t` by induction, or `t` is in
//! its decided prefix), and since then only ballots `>= m` wrote to it. A synchronisation
//! that crashes half-way leaves later-ballot values under an older `accepted`; those agree
//! with everything decided below that later ballot, and what it discards lies above its
//! `sync_end`, where nothing was decided below it. So the highest-`accepted` holder of
//! `t` holds `x`.
//!
//! # Reconfiguration
//!
//! Configuration entries take effect when they enter the log, one at a time: a change of
//! one voter directly, a larger one through a joint configuration, never more than one
//! undecided, and never before the leader decided its own opening no-op. A candidate
//! whose recovered log names another configuration than the one it gathered promises in
//! also needs a phase-1 quorum of that configuration before it leads. Consecutive
//! configurations then share a quorum member in every pair of phase-1 and phase-2 quorums,
//! as in Raft's single-server changes, so a decided value is always seen.
//!
//! # A replica that lost its disk
//!
//! Promises and accepts are only as good as the disk that keeps them: a replica restored
//! from a blank or older disk has forgotten promises that proposers counted on, and
//! restarting it as a voter could let two ballots decide different values. It rejoins only
//! as a new member: removed from the configuration, started blank as a learner of the
//! current one (the KV server's `--join`; hosts refuse a blank data directory otherwise),
//! brought up to date by the leader's synchronisation or a snapshot, then promoted. The
//! simulator's `wipe` fault runs exactly this under load in every seed that draws it.
//!
//! Persistence follows the host rule: promises and accepts are written before the reply
//! that announces them, and a leader counts its own acceptor only once its
//! synchronisation is durable.

mod config;
mod message;
mod phase1;
mod phase2;
mod reads;
mod reconfigure;
mod snapshot;

use bytes::Bytes;
use rsm_core::{
    Ballot, Durable, Effect, Epoch, HardState, Input, LogIndex, NodeId, Persist, PersistSeq, Prng,
    RejectReason, Replica, RequestId, RestoreError, Role, Status,
};

pub use config::{BALLOT_NODE_MAX, PaxosConfig};
pub use message::PaxosMessage;

use crate::apply_pump::ApplyPump;
use crate::log_window::LogWindow;
use crate::persist_tracker::PersistTracker;
use crate::progress::Progress;
use crate::read_queue::ReadQueue;
use crate::snapshot_transfer::SnapshotAssembly;
use phase1::Phase1;

type Out = Vec<Effect<PaxosMessage>>;

/// The epoch tools see for a ballot: `round * 1000 + node`, so that the order of epochs is
/// the order of ballots (node ids are at most [`BALLOT_NODE_MAX`]).
pub fn ballot_epoch(b: Ballot) -> Epoch {
    Epoch(
        b.round
            .saturating_mul(BALLOT_NODE_MAX + 1)
            .saturating_add(b.node.0.min(BALLOT_NODE_MAX)),
    )
}

/// What the hard state's `extra` bytes hold: the promise and the accepted ballot.
fn encode_ballots(promised: Ballot, accepted: Ballot) -> Bytes {
    let mut v = Vec::with_capacity(32);
    for x in [
        promised.round,
        promised.node.0,
        accepted.round,
        accepted.node.0,
    ] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(v)
}

fn decode_ballots(extra: &[u8]) -> Option<(Ballot, Ballot)> {
    if extra.is_empty() {
        return Some((Ballot::default(), Ballot::default()));
    }
    if extra.len() != 32 {
        return None;
    }
    let word = |k: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&extra[k * 8..k * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let ballot = |k: usize| Ballot {
        round: word(k),
        node: NodeId(word(k + 1)),
    };
    Some((ballot(0), ballot(2)))
}

/// The part of a replica's role that Paxos' rules switch between; learner and removed
/// are derived from the membership.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Follower,
    Candidate,
    Leader,
}

/// One Multi-Paxos replica (proposer, acceptor and learner): a deterministic automaton
/// implementing [`Replica`].
///
/// ```
/// use rsm_consensus::{Paxos, PaxosConfig};
/// use rsm_core::{Durable, Effect, Input, Membership, NodeId, Replica, Role};
///
/// let config = PaxosConfig::new(NodeId(1), Membership::new([NodeId(1)]), 7);
/// let mut paxos = Paxos::restore(config, Durable::default()).unwrap();
/// let mut out = Vec::new();
/// while paxos.status().role != Role::Leader {
///     paxos.step(Input::Tick, &mut out);
///     // A single acceptor counts its own promise once it is durable.
///     for e in std::mem::take(&mut out) {
///         if let Effect::Persist { seq, .. } = e {
///             paxos.step(Input::Persisted { through: seq }, &mut out);
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Paxos {
    cfg: PaxosConfig,
    id: NodeId,
    rng: Prng,

    /// The highest ballot this acceptor promised (or saw a leader of).
    promised: Ballot,
    /// The last ballot whose leader synchronised this acceptor (module docs).
    accepted: Ballot,
    log: LogWindow,
    commit: LogIndex,
    state: State,
    leader: Option<NodeId>,
    persist: PersistTracker,

    /// Ticks since this incarnation started, from 1.
    now: u64,
    election_elapsed: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    /// Ticks since a leader was last heard from: an acceptor ignores other proposers'
    /// prepares within `election_ticks_min` of it (protection against dueling proposers,
    /// and what makes a leader's lease sound).
    leader_silence_ticks: u64,

    /// A proposer's phase 1 in progress.
    phase1: Option<Phase1>,
    /// An acceptor refused this replica's prepare because its decided prefix lies below
    /// the acceptor's trim point: it does not start phase 1 again before this tick (unless
    /// a leader is heard first), so a replica that cannot win does not keep pre-empting
    /// proposers that can.
    campaign_after_tick: u64,
    /// How far a synchronisation by the current ballot's leader has reached here.
    sync_through: Option<(Ballot, LogIndex)>,

    progress: Vec<Progress>,
    /// The hard-state write that synchronised the leader's own acceptor: its log counts
    /// toward decisions once that write is durable.
    own_sync: Option<PersistSeq>,
    /// The leader's opening no-op: reads and configuration changes wait until it is decided.
    ballot_start: LogIndex,
    /// The last slot the leader recovered in phase 1.
    sync_end: LogIndex,
    unflushed: LogIndex,
    unflushed_bytes: usize,
    uncommitted_bytes: usize,
    /// A leadership transfer under way: its target and the tick it gives up at.
    transfer: Option<(NodeId, u64)>,
    /// Set once this leader sent `TimeoutNow`: the lease is void for the rest of the ballot.
    lease_revoked: bool,
    reads: ReadQueue<RequestId>,
    incoming: Option<SnapshotAssembly>,

    apply: ApplyPump,
    snapshot_asked: Option<LogIndex>,

    reported: (Role, Ballot, Option<NodeId>),
}

impl Replica for Paxos {
    type Message = PaxosMessage;
    type Config = PaxosConfig;

    fn restore(config: PaxosConfig, durable: Durable) -> Result<Self, RestoreError> {
        config.validate()?;
        let mut durable = durable;
        let log = LogWindow::restore(&config.membership, &mut durable, true)?;
        let hs = durable.hard_state;
        let (promised, accepted) =
            decode_ballots(&hs.extra).ok_or(RestoreError::MalformedHardState {
                len: hs.extra.len(),
            })?;
        if accepted > promised {
            return Err(RestoreError::MalformedHardState {
                len: hs.extra.len(),
            });
        }
        let snap = log.snapshot.index;
        let commit = hs.commit.clamp(snap, log.last_index());
        let mut rng = Prng::new(config.seed);
        let election_timeout = rng.range(config.election_ticks_min, config.election_ticks_max);
        let last = log.last_index();
        let mut paxos = Self {
            id: config.id,
            rng,
            promised,
            accepted,
            log,
            commit,
            state: State::Follower,
            leader: None,
            persist: PersistTracker::new(last),
            now: 1,
            election_elapsed: 0,
            election_timeout,
            heartbeat_elapsed: 0,
            // A restarted acceptor may have answered a leader's heartbeat just before it
            // crashed, and that leader may rely on it for its lease: it starts out as if
            // it had just heard from a leader.
            leader_silence_ticks: if config.lease_reads {
                0
            } else {
                config.election_ticks_min
            },
            phase1: None,
            campaign_after_tick: 0,
            sync_through: None,
            progress: Vec::new(),
            own_sync: None,
            ballot_start: LogIndex(0),
            sync_end: LogIndex(0),
            unflushed: last.next(),
            unflushed_bytes: 0,
            uncommitted_bytes: 0,
            transfer: None,
            lease_revoked: false,
            reads: ReadQueue::new(),
            incoming: None,
            apply: ApplyPump::new(snap),
            snapshot_asked: None,
            reported: (Role::Follower, promised, None),
            cfg: config,
        };
        paxos.reported = (paxos.role(), promised, None);
        Ok(paxos)
    }

    fn step(&mut self, input: Input<PaxosMessage>, out: &mut Out) {
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
        debug_assert!(self.accepted <= self.promised);
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role(),
            epoch: ballot_epoch(self.promised),
            leader: self.leader,
            commit: self.commit,
            applied: self.apply.applied(),
            last_index: self.log.last_index(),
            membership: self.log.membership().0.clone(),
        }
    }
}

impl Paxos {
    /// The configuration this replica was built with.
    pub fn config(&self) -> &PaxosConfig {
        &self.cfg
    }

    /// The highest ballot this acceptor promised.
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// The last ballot whose leader synchronised this acceptor.
    pub fn accepted(&self) -> Ballot {
        self.accepted
    }

    fn role(&self) -> Role {
        match self.state {
            State::Leader => Role::Leader,
            State::Candidate => Role::Candidate,
            State::Follower => self.log.member_role(self.id),
        }
    }

    fn report_role(&mut self, out: &mut Out) {
        let now = (self.role(), self.promised, self.leader);
        if now != self.reported {
            self.reported = now;
            out.push(Effect::RoleChanged {
                role: now.0,
                epoch: ballot_epoch(now.1),
                leader: now.2,
            });
        }
    }

    /// Why a request addressed to a leader is refused here, if it is.
    fn leadership_refusal(&self) -> Option<RejectReason> {
        if self.state != State::Leader {
            return Some(if self.role() == Role::Removed {
                RejectReason::Removed
            } else {
                RejectReason::NotLeader { hint: self.leader }
            });
        }
        self.transfer
            .map(|(target, _)| RejectReason::TransferInProgress { target })
    }

    /// The one refusal path; every refusal is definite (nothing refused was proposed).
    fn refuse(&self, req: RequestId, reason: RejectReason, out: &mut Out) {
        debug_assert!(reason.is_definite());
        out.push(Effect::Reject { req, reason });
    }

    fn send(&self, to: NodeId, msg: PaxosMessage, out: &mut Out) {
        out.push(Effect::Send { to, msg });
    }

    // ---- persistence ----

    fn persist_hard_state(&mut self, out: &mut Out) -> PersistSeq {
        let hs = HardState {
            epoch: ballot_epoch(self.promised),
            vote: None,
            commit: self.commit,
            extra: encode_ballots(self.promised, self.accepted),
        };
        self.persist.emit(Persist::HardState(hs), out)
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
        match self.state {
            State::Candidate => self.check_phase1(out),
            State::Leader => self.maybe_commit(out),
            State::Follower => {}
        }
    }

    // ---- time ----

    fn tick(&mut self, out: &mut Out) {
        self.now += 1;
        if self.state == State::Leader {
            self.tick_leader(out);
            return;
        }
        self.election_elapsed += 1;
        self.leader_silence_ticks = self.leader_silence_ticks.saturating_add(1);
        if self.election_elapsed >= self.election_timeout
            && self.now >= self.campaign_after_tick
            && self.can_campaign()
        {
            self.campaign(false, out);
        }
    }

    fn tick_leader(&mut self, out: &mut Out) {
        self.leader_silence_ticks = 0;
        self.heartbeat_elapsed += 1;
        if self.quorum_silent() {
            self.become_follower(None, out);
            return;
        }
        if self.transfer.is_some_and(|(_, until)| self.now >= until) {
            self.transfer = None;
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

    fn receive(&mut self, from: NodeId, msg: PaxosMessage, out: &mut Out) {
        if from == self.id {
            return;
        }
        let ballot = msg.ballot();
        if msg.is_from_leader() {
            // Only a ballot's owner leads it; anything else is bogus.
            if ballot.node != from {
                return;
            }
            if ballot < self.promised {
                let reply = self.nack(ballot);
                self.send(from, reply, out);
                return;
            }
            if !self.follow_leader(ballot, out) {
                return;
            }
        }
        match msg {
            PaxosMessage::Prepare {
                ballot,
                commit,
                transfer,
            } => self.handle_prepare(from, ballot, commit, transfer, out),
            PaxosMessage::Promise {
                ballot,
                accepted,
                commit,
                entries,
            } => self.handle_promise(from, ballot, accepted, commit, entries, out),
            PaxosMessage::Nack {
                ballot,
                promised,
                leader,
            } => self.handle_nack(from, ballot, promised, leader, out),
            PaxosMessage::Accept {
                ballot,
                prev,
                entries,
                commit,
                sync_end,
            } => self.handle_accept(from, ballot, prev, entries, commit, sync_end, out),
            PaxosMessage::Accepted {
                ballot,
                index,
                synced,
                ok,
            } => self.handle_accepted(from, ballot, index, synced, ok, out),
            PaxosMessage::Heartbeat {
                ballot,
                commit,
                read_round,
                sent_tick,
            } => self.handle_heartbeat(from, ballot, commit, read_round, sent_tick, out),
            PaxosMessage::HeartbeatReply {
                ballot,
                read_round,
                sent_tick,
            } => self.handle_heartbeat_reply(from, ballot, read_round, sent_tick, out),
            PaxosMessage::Snapshot {
                ballot,
                meta,
                offset,
                data,
                done,
            } => self.handle_snapshot(from, ballot, meta, offset, data, done, out),
            PaxosMessage::SnapshotReply {
                ballot,
                index,
                next_offset,
                done,
            } => self.handle_snapshot_reply(from, ballot, index, next_offset, done, out),
            PaxosMessage::TimeoutNow { .. } => self.handle_timeout_now(out),
        }
    }

    /// A message only `ballot`'s leader sends arrived, with `ballot >= promised`: the
    /// acceptor promises it (accepting a ballot is also a promise for it) and follows its
    /// leader. Returns false if this replica leads `ballot` itself (bogus).
    fn follow_leader(&mut self, ballot: Ballot, out: &mut Out) -> bool {
        if ballot == self.promised && self.state == State::Leader {
            return false;
        }
        if ballot > self.promised {
            self.promised = ballot;
            self.persist_hard_state(out);
            self.become_follower(Some(ballot.node), out);
        } else if self.state != State::Follower || self.leader != Some(ballot.node) {
            self.become_follower(Some(ballot.node), out);
        }
        self.election_elapsed = 0;
        self.leader_silence_ticks = 0;
        self.campaign_after_tick = 0;
        true
    }

    /// The refusal of `ballot`, naming this acceptor's promise and its live leader.
    fn nack(&self, ballot: Ballot) -> PaxosMessage {
        let live =
            self.state == State::Leader || self.leader_silence_ticks < self.cfg.election_ticks_min;
        PaxosMessage::Nack {
            ballot,
            promised: self.promised,
            leader: self.leader.filter(|_| live),
        }
    }

    /// A higher ballot is known to exist: promise it and stop leading or campaigning.
    fn observe_ballot(&mut self, ballot: Ballot, out: &mut Out) {
        if ballot <= self.promised {
            return;
        }
        self.promised = ballot;
        self.persist_hard_state(out);
        if self.state != State::Follower {
            self.become_follower(None, out);
        } else {
            self.leader = None;
        }
    }

    // ---- apply ----

    /// Only decided slots this replica holds durably are applied: a crash must not lose a
    /// slot its state machine already reflects.
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

    /// The one quorum question over the acceptors' progress at a leader.
    fn leader_quorum<T: Ord + Copy + Default>(
        &self,
        phase: rsm_core::Phase,
        own: T,
        of: impl Fn(&Progress) -> T,
    ) -> T {
        let membership = self.log.membership().0;
        crate::progress::quorum_value(membership, phase, self.id, own, &self.progress, of)
    }
}
