//! Leader election (§5.2): timeouts, pre-vote, votes, and the transitions between roles.

use rsm_core::{Entry, Epoch, LogIndex, NodeId, Phase, Term};

use super::{Out, Raft, RaftMessage, State};
use crate::progress::Progress;

/// A vote request, as the voter judges it.
#[derive(Copy, Clone, Debug)]
pub(super) struct Ballot {
    pub term: Term,
    pub pre_vote: bool,
    pub last_index: LogIndex,
    pub last_term: Term,
    pub transfer: bool,
    pub priority: u64,
}

impl Raft {
    /// Whether this replica may stand for election: only voters of its latest
    /// configuration do.
    pub(super) fn can_campaign(&self) -> bool {
        self.log.membership().0.is_voter(self.id)
    }

    /// Whether a leader was heard from within the shortest election timeout (or this
    /// replica leads). Such a replica refuses to help elect anyone else.
    pub(super) fn in_leader_lease(&self) -> bool {
        self.state == State::Leader || self.leader_silence_ticks < self.cfg.election_ticks_min
    }

    /// Vote stickiness (thesis §4.2.3), when configured: a replica that heard a leader
    /// recently ignores candidates, so a node that was partitioned away cannot unseat a
    /// healthy leader.
    pub(super) fn sticky(&self) -> bool {
        self.cfg.vote_stickiness && self.in_leader_lease()
    }

    /// The election timeout fired (or a transfer asked for it): start a pre-vote round, or
    /// a real election when pre-vote is off or the leader handed over.
    pub(super) fn campaign(&mut self, transfer: bool, out: &mut Out) {
        if self.cfg.pre_vote && !transfer {
            self.become_pre_candidate(out);
        } else {
            self.become_candidate(transfer, out);
        }
    }

    /// `Input::Campaign`: campaign now, as if the election timeout had fired (with a
    /// pre-vote round when configured). A leader, or a replica that may not stand, ignores it.
    pub(super) fn campaign_now(&mut self, out: &mut Out) {
        if self.state != State::Leader && self.can_campaign() {
            self.campaign(false, out);
        }
    }

    fn become_pre_candidate(&mut self, out: &mut Out) {
        self.step_down_cleanup(out);
        self.state = State::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.campaign_transfer = false;
        self.reset_election_timer();
        self.request_votes(true, out);
        self.check_election(out);
    }

    /// §5.2: increment the term, vote for self, ask every voter. The own vote counts once
    /// the hard state holding it is durable.
    pub(super) fn become_candidate(&mut self, transfer: bool, out: &mut Out) {
        self.step_down_cleanup(out);
        self.term = Term(self.term.0 + 1);
        self.vote = Some(self.id);
        self.state = State::Candidate;
        self.leader = None;
        self.votes.clear();
        self.campaign_transfer = transfer;
        self.own_vote_seq = Some(self.persist_hard_state(out));
        self.reset_election_timer();
        self.request_votes(false, out);
        self.check_election(out);
    }

    fn request_votes(&mut self, pre_vote: bool, out: &mut Out) {
        let term = if pre_vote {
            Term(self.term.0 + 1)
        } else {
            self.term
        };
        let msg = RaftMessage::RequestVote {
            term,
            pre_vote,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            transfer: self.campaign_transfer,
            priority: self.cfg.priority,
        };
        let voters: Vec<NodeId> = self.log.membership().0.all_voters().collect();
        for to in voters {
            if to != self.id {
                self.send(to, msg.clone(), out);
            }
        }
    }

    /// Count the votes: a quorum wins, a quorum of refusals loses.
    pub(super) fn check_election(&mut self, out: &mut Out) {
        let own = match self.state {
            State::PreCandidate => Some(true),
            State::Candidate => self
                .own_vote_seq
                .is_some_and(|s| self.persist.is_durable(s))
                .then_some(true),
            _ => return,
        };
        let me = self.id;
        let votes = &self.votes;
        let result = self.log.membership().0.vote_result(Phase::One, |id| {
            if id == me {
                own
            } else {
                votes.iter().find(|(v, _)| *v == id).map(|(_, g)| *g)
            }
        });
        match (result, self.state) {
            (Some(true), State::PreCandidate) => self.become_candidate(false, out),
            (Some(true), State::Candidate) => self.become_leader(out),
            (Some(false), _) => self.become_follower(self.term, None, out),
            _ => {}
        }
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        pre_vote: bool,
        granted: bool,
        out: &mut Out,
    ) {
        let listening = match self.state {
            State::PreCandidate => pre_vote,
            State::Candidate => !pre_vote,
            _ => false,
        };
        if !listening
            || !self.log.membership().0.is_voter(from)
            || self.votes.iter().any(|(v, _)| *v == from)
        {
            return;
        }
        self.votes.push((from, granted));
        self.check_election(out);
    }

    /// §5.2 and §5.4.1: grant at most one vote per term, only to a candidate whose log is
    /// at least as up to date, and (thesis §4.2.3) not while a live leader is known.
    pub(super) fn handle_request_vote(&mut self, from: NodeId, b: Ballot, out: &mut Out) {
        let free = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let can_vote = free || (b.pre_vote && b.term > self.term);
        let sticky = !b.transfer && self.sticky();
        let up_to_date = self.log.is_up_to_date(b.last_index, b.last_term);
        let same_log = (b.last_term, b.last_index) == (self.log.last_term(), self.log.last_index());
        let outranked = same_log && b.priority < self.cfg.priority;
        let granted = can_vote && !sticky && up_to_date && !outranked;
        if granted && !b.pre_vote {
            self.vote = Some(from);
            self.persist_hard_state(out);
            self.reset_election_timer();
        }
        let term = if granted && b.pre_vote {
            b.term
        } else {
            self.term
        };
        let reply = RaftMessage::RequestVoteResponse {
            term,
            pre_vote: b.pre_vote,
            granted,
        };
        self.send(from, reply, out);
    }

    /// Leave any leader or candidate state for follower of `term` (raising and persisting
    /// the term if it is newer).
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, out: &mut Out) {
        self.step_down_cleanup(out);
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist_hard_state(out);
        }
        self.state = State::Follower;
        self.leader = leader;
        self.votes.clear();
        self.own_vote_seq = None;
        self.campaign_transfer = false;
        self.reset_election_timer();
    }

    /// Drop leader-only state; entries a leader appended but has not yet written are
    /// written now, so that nothing in memory is acknowledged without being durable.
    fn step_down_cleanup(&mut self, out: &mut Out) {
        if self.state != State::Leader {
            return;
        }
        self.persist_unflushed(out);
        self.reject_pending_reads(out);
        self.progress.clear();
        self.transfer = None;
        self.state = State::Follower;
    }

    /// §5.2 and §8: a new leader appends a no-op of its term so that entries of earlier
    /// terms commit (§5.4.2), then replicates.
    pub(super) fn become_leader(&mut self, out: &mut Out) {
        debug_assert_eq!(self.state, State::Candidate, "only a candidate wins");
        debug_assert_eq!(self.vote, Some(self.id), "a candidate votes for itself");
        debug_assert!(
            self.own_vote_seq
                .is_some_and(|s| self.persist.is_durable(s)),
            "a leader's own vote is durable"
        );
        self.state = State::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.own_vote_seq = None;
        self.campaign_transfer = false;
        self.transfer = None;
        self.lease_revoked = false;
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.leader_silence_ticks = 0;
        self.reads.restart_rounds();
        self.uncommitted_bytes = self.log.bytes_after(self.commit);
        // A fresh leader gives everyone a full check-quorum period from now.
        self.progress.clear();
        self.sync_progress();
        let index = self.log.last_index().next();
        let noop = Entry::noop(index, Epoch(self.term.0));
        self.uncommitted_bytes += noop.size_bytes();
        self.unflushed = index;
        self.unflushed_bytes = noop.size_bytes();
        self.log.push(noop);
        self.report_role(out);
        debug_assert_eq!(self.log.term_at(self.log.last_index()), Some(self.term));
        debug_assert!(self.commit < self.log.last_index());
        debug_assert!(
            self.log
                .membership()
                .0
                .members()
                .all(|id| id == self.id || self.progress.iter().any(|p| p.id == id)),
            "every member is tracked"
        );
    }

    /// Track the members of the latest configuration other than self, and while that
    /// configuration is uncommitted also those of the one it replaces: a removed server
    /// then usually learns of its removal and stops campaigning.
    pub(super) fn sync_progress(&mut self) {
        let (latest, at) = self.log.membership();
        let mut members: Vec<NodeId> = latest.members().filter(|&id| id != self.id).collect();
        if at > self.commit && at > self.log.snapshot.index {
            for id in self.log.membership_at(at.prev()).members() {
                if id != self.id && !members.contains(&id) {
                    members.push(id);
                }
            }
        }
        self.progress.retain(|p| members.contains(&p.id));
        let next = self.log.last_index().next();
        for id in members {
            if !self.progress.iter().any(|p| p.id == id) {
                self.progress.push(Progress::new(id, next, self.now));
            }
        }
    }

    /// Check-quorum: whether `election_ticks_min` ticks have passed since the last tick at
    /// which this leader had heard from a whole phase-2 quorum (counting itself, and counting
    /// its election as contact with everyone).
    pub(super) fn quorum_silent(&self) -> bool {
        let heard = self.leader_quorum(Phase::Two, self.now, |p| p.heard_tick);
        self.now >= heard.saturating_add(self.cfg.election_ticks_min)
    }
}
