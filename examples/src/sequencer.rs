//! A fixed-sequencer replica: the lowest-numbered voter is the only leader, forever. It
//! commits an entry only once every voter has it durably, so it is safe under any crash
//! or partition, and it stalls while any voter is unreachable. It exists to show the
//! simulator passing a correct protocol, and as the base of a deliberately unsafe one.
//!
//! Each leader incarnation runs in a fresh epoch (made durable before it sends anything),
//! so an `(index, epoch)` pair names one entry, as in Raft.

use std::collections::BTreeMap;

use crate::log::Log;
use rsm_core::{
    Durable, Effect, Entry, Epoch, HardState, Input, LogIndex, Membership, NodeId, Persist,
    PersistSeq, RejectReason, Replica, RestoreError, Role, Status,
};
use serde::{Deserialize, Serialize};

/// Uncommitted entries the leader holds before refusing proposals with `Busy`.
pub const UNCOMMITTED_MAX: usize = 1024;

/// When the leader may apply an entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CommitRule {
    /// Once every voter, the leader included, has it durably. Correct.
    AllVotersDurable,
    /// As soon as the leader appends it, before any disk or backup has it. Unsafe: a
    /// leader crash loses acknowledged writes.
    OnLocalAppend,
}

/// A sequencer node's configuration.
#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// This node.
    pub id: NodeId,
    /// The voters (and learners) of the cluster.
    pub membership: Membership,
    /// Ticks between leader heartbeats (which also resend unacknowledged entries).
    pub heartbeat_ticks: u64,
    /// When entries commit.
    pub commit_rule: CommitRule,
}

impl SequencerConfig {
    /// A correct configuration with a heartbeat every 3 ticks.
    pub fn new(id: NodeId, membership: Membership) -> Self {
        Self {
            id,
            membership,
            heartbeat_ticks: 3,
            commit_rule: CommitRule::AllVotersDurable,
        }
    }
}

/// Leader to follower: entries after `prev_index`, and the commit index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Append {
    /// The leader's epoch.
    pub epoch: Epoch,
    /// Index before the first entry.
    pub prev_index: LogIndex,
    /// Epoch of the entry at `prev_index` (0 for index 0).
    pub prev_epoch: Epoch,
    /// Entries to store.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub commit: LogIndex,
}

/// Sequencer messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeqMessage {
    /// Replication and heartbeat.
    Append(Append),
    /// Follower to leader: the log matches through `match_index` (durably, because the
    /// host sends this only after the persists before it are synced), or, when
    /// `matched` is false, the follower holds nothing usable at or after `hint`.
    Ack {
        /// The epoch of the append answered.
        epoch: Epoch,
        /// Whether the consistency check passed.
        matched: bool,
        /// Matched through here.
        match_index: LogIndex,
        /// Where the leader should resume when the check failed.
        hint: LogIndex,
    },
}

/// The fixed-sequencer automaton.
#[derive(Debug)]
pub struct Sequencer {
    cfg: SequencerConfig,
    leader: NodeId,
    epoch: Epoch,
    /// The persist that claims this leader incarnation's epoch, once emitted.
    epoch_claim: Option<PersistSeq>,
    /// Whether that claim is durable (the leader may replicate).
    epoch_durable: bool,
    log: Log,
    commit: LogIndex,
    applied: LogIndex,
    ticks: u64,
    /// Per follower: highest index known durably matched in this epoch, next to send.
    followers: BTreeMap<NodeId, (LogIndex, LogIndex)>,
}

impl Sequencer {
    fn is_leader(&self) -> bool {
        self.cfg.id == self.leader
    }

    fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    fn handle_propose(
        &mut self,
        req: rsm_core::RequestId,
        command: rsm_core::Bytes,
        out: &mut Vec<Effect<SeqMessage>>,
    ) {
        if !self.is_leader() {
            out.push(Effect::Reject {
                req,
                reason: RejectReason::NotLeader {
                    hint: Some(self.leader),
                },
            });
            return;
        }
        self.claim_epoch(out);
        if (self.last_index().0 - self.commit.0) as usize >= UNCOMMITTED_MAX {
            out.push(Effect::Reject {
                req,
                reason: RejectReason::Busy,
            });
            return;
        }
        let index = self.last_index().next();
        self.log
            .append(Entry::command(index, self.epoch, command), out);
        out.push(Effect::Proposed {
            req,
            index,
            epoch: self.epoch,
        });
        self.maybe_commit(out);
        self.replicate(false, out);
    }

    /// Send every follower what it lacks; `resend` restarts from its matched index (lost
    /// messages are recovered by the next heartbeat).
    fn replicate(&mut self, resend: bool, out: &mut Vec<Effect<SeqMessage>>) {
        if !self.epoch_durable {
            return;
        }
        let last = self.last_index();
        let ids: Vec<NodeId> = self.followers.keys().copied().collect();
        for id in ids {
            let (matched, next) = self.followers[&id];
            let next = if resend { matched.next() } else { next }.min(last.next());
            if next > last && !resend {
                continue;
            }
            let entries = self.log.batch(next);
            let end = next.0 + entries.len() as u64 - 1;
            let prev_index = next.prev();
            out.push(Effect::Send {
                to: id,
                msg: SeqMessage::Append(Append {
                    epoch: self.epoch,
                    prev_index,
                    prev_epoch: self.log.epoch_at(prev_index),
                    entries,
                    commit: self.commit,
                }),
            });
            self.followers.insert(id, (matched, LogIndex(end + 1)));
        }
    }

    fn handle_append(&mut self, from: NodeId, m: Append, out: &mut Vec<Effect<SeqMessage>>) {
        let Append {
            epoch,
            prev_index,
            prev_epoch,
            entries,
            commit,
        } = m;
        if from != self.leader || self.is_leader() || epoch < self.epoch {
            return;
        }
        if epoch > self.epoch {
            self.epoch = epoch;
            out.push(Effect::RoleChanged {
                role: Role::Follower,
                epoch,
                leader: Some(self.leader),
            });
        }
        let reply = match self.log.accept(prev_index, prev_epoch, entries, out) {
            Ok(verified) => {
                // Only what this message proved to match the leader may commit here; the
                // acknowledgement leaves after every persist before it is durable.
                let new_commit = commit.min(verified);
                if new_commit > self.commit {
                    self.commit = new_commit;
                    self.emit_applies(out);
                }
                (true, verified, LogIndex(0))
            }
            Err(m) => (false, LogIndex(0), m.hint),
        };
        out.push(Effect::Send {
            to: from,
            msg: SeqMessage::Ack {
                epoch,
                matched: reply.0,
                match_index: reply.1,
                hint: reply.2,
            },
        });
    }

    fn handle_ack(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        matched: bool,
        match_index: LogIndex,
        hint: LogIndex,
        out: &mut Vec<Effect<SeqMessage>>,
    ) {
        if !self.is_leader() || epoch != self.epoch {
            return;
        }
        let Some(&(m, next)) = self.followers.get(&from) else {
            return;
        };
        if matched {
            let m = m.max(match_index);
            self.followers.insert(from, (m, next.max(m.next())));
            self.maybe_commit(out);
        } else {
            let next = LogIndex(hint.0.max(1))
                .min(next)
                .min(self.last_index().next());
            self.followers.insert(from, (m, next));
            self.replicate(false, out);
        }
    }

    fn maybe_commit(&mut self, out: &mut Vec<Effect<SeqMessage>>) {
        if self.cfg.commit_rule == CommitRule::OnLocalAppend {
            self.commit = self.last_index();
            self.emit_applies(out);
            return;
        }
        let mut candidate = self.log.durable_index();
        for v in &self.cfg.membership.voters {
            if *v != self.cfg.id {
                candidate = candidate.min(self.followers.get(v).map_or(LogIndex(0), |f| f.0));
            }
        }
        // Entries of earlier incarnations commit along with one of this epoch.
        if candidate > self.commit && self.log.epoch_at(candidate) == self.epoch {
            self.commit = candidate;
            self.emit_applies(out);
        }
    }

    fn emit_applies(&mut self, out: &mut Vec<Effect<SeqMessage>>) {
        let through = self.commit.min(self.last_index());
        if through > self.applied {
            let entries = self.log.slice(self.applied.next(), through);
            self.applied = through;
            out.push(Effect::Apply { entries });
        }
    }

    /// A leader incarnation first makes its fresh epoch durable, then appends a no-op in
    /// it so that entries of earlier incarnations commit without waiting for a client.
    fn claim_epoch(&mut self, out: &mut Vec<Effect<SeqMessage>>) {
        if self.epoch_claim.is_some() {
            return;
        }
        let seq = self.log.persist(
            Persist::HardState(HardState {
                epoch: self.epoch,
                ..HardState::default()
            }),
            out,
        );
        self.epoch_claim = Some(seq);
        out.push(Effect::RoleChanged {
            role: Role::Leader,
            epoch: self.epoch,
            leader: Some(self.leader),
        });
        let noop = Entry::noop(self.last_index().next(), self.epoch);
        self.log.append(noop, out);
        self.maybe_commit(out);
    }

    fn handle_tick(&mut self, out: &mut Vec<Effect<SeqMessage>>) {
        self.ticks += 1;
        if self.is_leader() {
            self.claim_epoch(out);
        }
        if self.is_leader() && self.ticks.is_multiple_of(self.cfg.heartbeat_ticks.max(1)) {
            self.replicate(true, out);
        }
    }

    fn handle_persisted(&mut self, through: PersistSeq, out: &mut Vec<Effect<SeqMessage>>) {
        self.log.persisted(through);
        if self.is_leader() {
            if !self.epoch_durable && self.epoch_claim.is_some_and(|seq| through >= seq) {
                self.epoch_durable = true;
                self.replicate(true, out);
            }
            self.maybe_commit(out);
        }
    }
}

impl Replica for Sequencer {
    type Message = SeqMessage;
    type Config = SequencerConfig;

    fn restore(cfg: SequencerConfig, durable: Durable) -> Result<Self, RestoreError> {
        let leader = *cfg
            .membership
            .voters
            .first()
            .ok_or(RestoreError::NoVoters)?;
        if let Some((meta, _)) = &durable.snapshot {
            return Err(RestoreError::UnexpectedSnapshot {
                index: meta.index.0,
            });
        }
        let log = Log::from_durable(durable.entries)?;
        let last_epoch = log.last_epoch();
        let is_leader = cfg.id == leader;
        let epoch = if is_leader {
            durable.hard_state.epoch.max(last_epoch).next()
        } else {
            durable.hard_state.epoch.max(last_epoch)
        };
        let last = log.last_index();
        let followers = cfg
            .membership
            .members()
            .filter(|&m| m != cfg.id)
            .map(|m| (m, (LogIndex(0), last.next())))
            .collect();
        Ok(Self {
            leader,
            epoch,
            epoch_claim: None,
            epoch_durable: false,
            log,
            commit: LogIndex(0),
            applied: LogIndex(0),
            ticks: 0,
            followers: if is_leader {
                followers
            } else {
                BTreeMap::new()
            },
            cfg,
        })
    }

    fn step(&mut self, input: Input<SeqMessage>, out: &mut Vec<Effect<SeqMessage>>) {
        match input {
            Input::Tick => self.handle_tick(out),
            Input::Receive { from, msg } => match msg {
                SeqMessage::Append(m) => self.handle_append(from, m, out),
                SeqMessage::Ack {
                    epoch,
                    matched,
                    match_index,
                    hint,
                } => self.handle_ack(from, epoch, matched, match_index, hint, out),
            },
            Input::Propose { req, command } => self.handle_propose(req, command, out),
            Input::Read { req } => {
                if self.is_leader() {
                    // Every acknowledged write is in the leader's log, so once the
                    // leader has applied its whole log the read sees them all.
                    out.push(Effect::ReadReady {
                        req,
                        index: self.last_index(),
                    });
                } else {
                    out.push(Effect::Reject {
                        req,
                        reason: RejectReason::NotLeader {
                            hint: Some(self.leader),
                        },
                    });
                }
            }
            Input::Persisted { through } => self.handle_persisted(through, out),
            // A fixed sequencer never elects anyone.
            Input::Applied { .. } | Input::Snapshot { .. } | Input::Campaign => {}
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
            role: if self.is_leader() {
                Role::Leader
            } else {
                Role::Follower
            },
            epoch: self.epoch,
            leader: Some(self.leader),
            commit: self.commit,
            applied: self.applied,
            last_index: self.last_index(),
            membership: self.cfg.membership.clone(),
        }
    }
}
