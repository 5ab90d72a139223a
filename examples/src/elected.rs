//! An elected-leader replica in the style of Raft (terms, votes with the up-to-date log
//! check, append consistency check, commit by quorum in the current term, ReadIndex reads
//! confirmed by a quorum heartbeat round), without pre-vote, snapshots or membership
//! changes. With [`QuorumRule::Majority`] it is safe; the rule is a knob so that one
//! counting mistake can be shown to the simulator (see [`crate::buggy::EvenQuorum`]).

use std::collections::{BTreeMap, BTreeSet};

use rsm_core::{
    Bytes, Durable, Effect, Entry, Epoch, HardState, Input, LogIndex, Membership, NodeId, Persist,
    PersistSeq, Prng, RejectReason, Replica, RequestId, RestoreError, Role, Status,
};
use serde::{Deserialize, Serialize};

use crate::log::Log;

/// Uncommitted entries a leader holds before refusing proposals with `Busy`.
pub const UNCOMMITTED_MAX: usize = 1024;

/// Read barriers a leader holds waiting for their heartbeat round.
pub const READS_PENDING_MAX: usize = 256;

/// How many of `n` voters make a quorum.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum QuorumRule {
    /// `n / 2 + 1`: any two quorums intersect. Correct.
    Majority,
    /// `(n + 1) / 2`: a majority for odd `n`, exactly half for even `n`, so two disjoint
    /// halves of a four-node cluster both form "quorums". Unsafe.
    HalfRoundedUp,
}

impl QuorumRule {
    /// The quorum size for `n` voters.
    pub fn size(self, n: usize) -> usize {
        match self {
            QuorumRule::Majority => n / 2 + 1,
            QuorumRule::HalfRoundedUp => n.div_ceil(2),
        }
    }
}

/// An elected replica's configuration.
#[derive(Clone, Debug)]
pub struct ElectedConfig {
    /// This node.
    pub id: NodeId,
    /// The voters.
    pub membership: Membership,
    /// Election timeout: drawn from `[election_ticks_min, 2 * election_ticks_min)`.
    pub election_ticks_min: u64,
    /// Ticks between leader heartbeats.
    pub heartbeat_ticks: u64,
    /// Seed of the election-jitter PRNG.
    pub seed: u64,
    /// How quorums are counted.
    pub quorum: QuorumRule,
}

impl ElectedConfig {
    /// A correct configuration with the usual timing (elections after 10-19 ticks,
    /// heartbeats every 2).
    pub fn new(id: NodeId, membership: Membership, seed: u64) -> Self {
        Self {
            id,
            membership,
            election_ticks_min: 10,
            heartbeat_ticks: 2,
            seed,
            quorum: QuorumRule::Majority,
        }
    }
}

/// Messages of the elected replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectedMessage {
    /// A candidate asks for a vote.
    RequestVote {
        /// The candidate's term.
        term: Epoch,
        /// Its last log index.
        last_index: LogIndex,
        /// The term of its last entry.
        last_term: Epoch,
    },
    /// The answer to `RequestVote`.
    Vote {
        /// The voter's term.
        term: Epoch,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Replication and heartbeat; `round` numbers the leader's read-confirmation rounds.
    Append {
        /// The leader's term.
        term: Epoch,
        /// Index before the first entry.
        prev_index: LogIndex,
        /// Term of the entry at `prev_index`.
        prev_term: Epoch,
        /// Entries to store.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: LogIndex,
        /// The read round this message confirms.
        round: u64,
    },
    /// The answer to `Append`.
    Ack {
        /// The follower's term.
        term: Epoch,
        /// Matched through this index, or `None` with a resume hint.
        matched: Result<LogIndex, LogIndex>,
        /// The read round echoed.
        round: u64,
    },
}

type Out = Vec<Effect<ElectedMessage>>;

/// Leader-side view of one follower.
#[derive(Copy, Clone, Debug, Default)]
struct Progress {
    matched: LogIndex,
    next: LogIndex,
    round: u64,
}

/// The elected-leader automaton.
#[derive(Debug)]
pub struct Elected {
    cfg: ElectedConfig,
    rng: Prng,
    role: Role,
    term: Epoch,
    vote: Option<NodeId>,
    leader: Option<NodeId>,
    log: Log,
    commit: LogIndex,
    applied: LogIndex,
    elapsed: u64,
    timeout: u64,
    votes: BTreeSet<NodeId>,
    /// The persist holding this candidate's own vote; it counts once durable.
    own_vote: Option<PersistSeq>,
    own_vote_durable: bool,
    progress: BTreeMap<NodeId, Progress>,
    round: u64,
    reads: Vec<(RequestId, LogIndex, u64)>,
}

impl Elected {
    fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.cfg.membership.voters.iter().copied()
    }

    fn quorum(&self) -> usize {
        self.cfg.quorum.size(self.cfg.membership.voters.len())
    }

    fn reset_timer(&mut self) {
        self.elapsed = 0;
        let min = self.cfg.election_ticks_min.max(1);
        self.timeout = self.rng.range(min, 2 * min);
    }

    fn save_hard_state(&mut self, out: &mut Out) -> PersistSeq {
        self.log.persist(
            Persist::HardState(HardState {
                epoch: self.term,
                vote: self.vote,
                ..HardState::default()
            }),
            out,
        )
    }

    fn announce(&self, out: &mut Out) {
        out.push(Effect::RoleChanged {
            role: self.role,
            epoch: self.term,
            leader: self.leader,
        });
    }

    fn become_follower(&mut self, term: Epoch, leader: Option<NodeId>, out: &mut Out) {
        let changed = term != self.term || self.role != Role::Follower || leader != self.leader;
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.save_hard_state(out);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.reads.clear();
        self.progress.clear();
        if changed {
            self.announce(out);
        }
    }

    fn become_candidate(&mut self, out: &mut Out) {
        self.term = self.term.next();
        self.role = Role::Candidate;
        self.leader = None;
        self.vote = Some(self.cfg.id);
        self.votes.clear();
        self.own_vote = Some(self.save_hard_state(out));
        self.own_vote_durable = false;
        self.reset_timer();
        self.announce(out);
        let msg = ElectedMessage::RequestVote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_epoch(),
        };
        let peers: Vec<NodeId> = self.voters().filter(|&v| v != self.cfg.id).collect();
        for to in peers {
            out.push(Effect::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    fn maybe_win(&mut self, out: &mut Out) {
        let own = usize::from(self.own_vote_durable);
        if self.role == Role::Candidate && self.votes.len() + own >= self.quorum() {
            self.become_leader(out);
        }
    }

    fn become_leader(&mut self, out: &mut Out) {
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        let next = self.log.last_index().next();
        self.progress = self
            .voters()
            .filter(|&v| v != self.cfg.id)
            .map(|v| {
                (
                    v,
                    Progress {
                        next,
                        ..Progress::default()
                    },
                )
            })
            .collect();
        self.announce(out);
        // A no-op of the new term lets entries of earlier terms commit.
        self.log
            .append(Entry::noop(self.log.last_index().next(), self.term), out);
        self.broadcast(true, out);
    }

    /// Send each follower what it lacks (`resend`: from its matched index, recovering
    /// lost messages), carrying the current read round.
    fn broadcast(&mut self, resend: bool, out: &mut Out) {
        let last = self.log.last_index();
        let ids: Vec<NodeId> = self.progress.keys().copied().collect();
        for id in ids {
            let p = self.progress[&id];
            let next = if resend { p.matched.next() } else { p.next }.min(last.next());
            if !resend && next > last {
                continue;
            }
            let entries = self.log.batch(next);
            let sent_through = LogIndex(next.0 + entries.len() as u64);
            let prev_index = next.prev();
            out.push(Effect::Send {
                to: id,
                msg: ElectedMessage::Append {
                    term: self.term,
                    prev_index,
                    prev_term: self.log.epoch_at(prev_index),
                    entries,
                    commit: self.commit,
                    round: self.round,
                },
            });
            if let Some(p) = self.progress.get_mut(&id) {
                p.next = sent_through;
            }
        }
    }

    fn handle_request_vote(
        &mut self,
        from: NodeId,
        term: Epoch,
        last_index: LogIndex,
        last_term: Epoch,
        out: &mut Out,
    ) {
        if term > self.term {
            self.become_follower(term, None, out);
        }
        let up_to_date = (last_term, last_index) >= (self.log.last_epoch(), self.log.last_index());
        let granted = term == self.term
            && self.role == Role::Follower
            && self.vote.is_none_or(|v| v == from)
            && up_to_date;
        if granted && self.vote.is_none() {
            self.vote = Some(from);
            self.save_hard_state(out);
            self.reset_timer();
        }
        // The host sends this only after the vote above is durable.
        out.push(Effect::Send {
            to: from,
            msg: ElectedMessage::Vote {
                term: self.term,
                granted,
            },
        });
    }

    fn handle_vote(&mut self, from: NodeId, term: Epoch, granted: bool, out: &mut Out) {
        if term > self.term {
            self.become_follower(term, None, out);
            return;
        }
        if term == self.term && granted && self.role == Role::Candidate {
            self.votes.insert(from);
            self.maybe_win(out);
        }
    }

    fn handle_append(&mut self, from: NodeId, msg: ElectedMessage, out: &mut Out) {
        let ElectedMessage::Append {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
            round,
        } = msg
        else {
            return;
        };
        if term < self.term {
            out.push(Effect::Send {
                to: from,
                msg: ElectedMessage::Ack {
                    term: self.term,
                    matched: Err(LogIndex(0)),
                    round,
                },
            });
            return;
        }
        if self.role == Role::Leader && term == self.term {
            // Two leaders in one term: impossible with correct quorums. Ignore rather
            // than corrupt the log; the invariant checker reports the cause.
            return;
        }
        self.become_follower(term, Some(from), out);
        self.reset_timer();
        let matched = match self.log.accept(prev_index, prev_term, entries, out) {
            Ok(verified) => {
                let new_commit = commit.min(verified);
                if new_commit > self.commit {
                    self.commit = new_commit;
                    self.emit_applies(out);
                }
                Ok(verified)
            }
            Err(m) => Err(m.hint),
        };
        out.push(Effect::Send {
            to: from,
            msg: ElectedMessage::Ack {
                term: self.term,
                matched,
                round,
            },
        });
    }

    fn handle_ack(
        &mut self,
        from: NodeId,
        term: Epoch,
        matched: Result<LogIndex, LogIndex>,
        round: u64,
        out: &mut Out,
    ) {
        if term > self.term {
            self.become_follower(term, None, out);
            return;
        }
        if self.role != Role::Leader || term != self.term {
            return;
        }
        let last = self.log.last_index();
        let Some(p) = self.progress.get_mut(&from) else {
            return;
        };
        p.round = p.round.max(round);
        match matched {
            Ok(m) => {
                p.matched = p.matched.max(m.min(last));
                p.next = p.next.max(p.matched.next());
                self.maybe_commit(out);
            }
            Err(hint) => {
                p.next = LogIndex(hint.0.max(1)).min(p.next).min(last.next());
                self.broadcast(false, out);
            }
        }
        self.serve_reads(out);
    }

    fn maybe_commit(&mut self, out: &mut Out) {
        let own = self.log.durable_index();
        let mut matched: Vec<LogIndex> = self
            .voters()
            .map(|v| {
                if v == self.cfg.id {
                    own
                } else {
                    self.progress.get(&v).map_or(LogIndex(0), |p| p.matched)
                }
            })
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&candidate) = matched.get(self.quorum().saturating_sub(1)) else {
            return;
        };
        if candidate > self.commit && self.log.epoch_at(candidate) == self.term {
            self.commit = candidate;
            self.emit_applies(out);
            self.serve_reads(out);
        }
    }

    fn serve_reads(&mut self, out: &mut Out) {
        if self.reads.is_empty() {
            return;
        }
        let quorum = self.quorum();
        let confirmed = |r: u64, progress: &BTreeMap<NodeId, Progress>| {
            1 + progress.values().filter(|p| p.round >= r).count() >= quorum
        };
        let reads = std::mem::take(&mut self.reads);
        for (req, index, r) in reads {
            if confirmed(r, &self.progress) {
                out.push(Effect::ReadReady { req, index });
            } else {
                self.reads.push((req, index, r));
            }
        }
    }

    fn emit_applies(&mut self, out: &mut Out) {
        let through = self.commit.min(self.log.last_index());
        if through > self.applied {
            let entries = self.log.slice(self.applied.next(), through);
            self.applied = through;
            out.push(Effect::Apply { entries });
        }
    }

    fn handle_propose(&mut self, req: RequestId, command: Bytes, out: &mut Out) {
        if self.role != Role::Leader {
            out.push(Effect::Reject {
                req,
                reason: RejectReason::NotLeader { hint: self.leader },
            });
            return;
        }
        if (self.log.last_index().0 - self.commit.0) as usize >= UNCOMMITTED_MAX {
            out.push(Effect::Reject {
                req,
                reason: RejectReason::Busy,
            });
            return;
        }
        let index = self.log.last_index().next();
        self.log
            .append(Entry::command(index, self.term, command), out);
        out.push(Effect::Proposed {
            req,
            index,
            epoch: self.term,
        });
        self.broadcast(false, out);
    }

    fn handle_read(&mut self, req: RequestId, out: &mut Out) {
        if self.role != Role::Leader {
            out.push(Effect::Reject {
                req,
                reason: RejectReason::NotLeader { hint: self.leader },
            });
            return;
        }
        // ReadIndex: the commit index is only known complete once an entry of this term
        // committed, and only current once a quorum confirms this node still leads.
        if self.log.epoch_at(self.commit) != self.term || self.reads.len() >= READS_PENDING_MAX {
            out.push(Effect::Reject {
                req,
                reason: RejectReason::Busy,
            });
            return;
        }
        self.round += 1;
        self.reads.push((req, self.commit, self.round));
        self.broadcast(true, out);
        self.serve_reads(out);
    }

    fn handle_tick(&mut self, out: &mut Out) {
        self.elapsed += 1;
        match self.role {
            Role::Leader if self.elapsed >= self.cfg.heartbeat_ticks.max(1) => {
                self.elapsed = 0;
                self.broadcast(true, out);
            }
            Role::Leader => {}
            _ if self.cfg.membership.is_voter(self.cfg.id) && self.elapsed >= self.timeout => {
                self.become_candidate(out);
            }
            _ => {}
        }
    }

    fn handle_persisted(&mut self, through: PersistSeq, out: &mut Out) {
        self.log.persisted(through);
        if self.role == Role::Candidate && self.own_vote.is_some_and(|s| through >= s) {
            self.own_vote_durable = true;
            self.maybe_win(out);
        }
        if self.role == Role::Leader {
            self.maybe_commit(out);
        }
    }
}

impl Replica for Elected {
    type Message = ElectedMessage;
    type Config = ElectedConfig;

    fn restore(cfg: ElectedConfig, durable: Durable) -> Result<Self, RestoreError> {
        if cfg.membership.voters.is_empty() {
            return Err(RestoreError::NoVoters);
        }
        if let Some((meta, _)) = &durable.snapshot {
            return Err(RestoreError::UnexpectedSnapshot {
                index: meta.index.0,
            });
        }
        let log = Log::from_durable(durable.entries)?;
        let mut me = Self {
            rng: Prng::new(cfg.seed),
            role: Role::Follower,
            term: durable.hard_state.epoch,
            vote: durable.hard_state.vote,
            leader: None,
            log,
            commit: LogIndex(0),
            applied: LogIndex(0),
            elapsed: 0,
            timeout: 0,
            votes: BTreeSet::new(),
            own_vote: None,
            own_vote_durable: false,
            progress: BTreeMap::new(),
            round: 0,
            reads: Vec::new(),
            cfg,
        };
        me.reset_timer();
        Ok(me)
    }

    fn step(&mut self, input: Input<ElectedMessage>, out: &mut Out) {
        match input {
            Input::Tick => self.handle_tick(out),
            Input::Receive { from, msg } => {
                if !self.cfg.membership.contains(from) {
                    return;
                }
                match msg {
                    ElectedMessage::RequestVote {
                        term,
                        last_index,
                        last_term,
                    } => self.handle_request_vote(from, term, last_index, last_term, out),
                    ElectedMessage::Vote { term, granted } => {
                        self.handle_vote(from, term, granted, out)
                    }
                    m @ ElectedMessage::Append { .. } => self.handle_append(from, m, out),
                    ElectedMessage::Ack {
                        term,
                        matched,
                        round,
                    } => self.handle_ack(from, term, matched, round, out),
                }
            }
            Input::Propose { req, command } => self.handle_propose(req, command, out),
            Input::Read { req } => self.handle_read(req, out),
            Input::Persisted { through } => self.handle_persisted(through, out),
            Input::Applied { .. } | Input::Snapshot { .. } => {}
            Input::Campaign => {
                if self.role != Role::Leader && self.cfg.membership.is_voter(self.cfg.id) {
                    self.become_candidate(out);
                }
            }
            Input::Reconfigure { req, .. } | Input::TransferLeadership { req, .. } => {
                out.push(Effect::Reject {
                    req,
                    reason: RejectReason::Unsupported,
                })
            }
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.cfg.id,
            role: self.role,
            epoch: self.term,
            leader: self.leader,
            commit: self.commit,
            applied: self.applied,
            last_index: self.log.last_index(),
            membership: self.cfg.membership.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_sizes() {
        let sizes: Vec<usize> = (1..=7).map(|n| QuorumRule::Majority.size(n)).collect();
        assert_eq!(sizes, [1, 2, 2, 3, 3, 4, 4]);
        let sizes: Vec<usize> = (1..=7).map(|n| QuorumRule::HalfRoundedUp.size(n)).collect();
        assert_eq!(sizes, [1, 1, 2, 2, 3, 3, 4], "wrong exactly for even sizes");
    }
}
