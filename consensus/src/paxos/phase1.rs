//! Phase 1 (prepare and promise): the failure detector, ballots, recovering every open
//! slot at once, and becoming the leader or a follower.

use std::collections::BTreeSet;

use rsm_core::{Ballot, Entry, LogIndex, NodeId, Persist, PersistSeq, Phase};

use super::{Out, Paxos, PaxosMessage, State, ballot_epoch};
use crate::progress::Progress;

/// What one acceptor reported in its promise.
#[derive(Debug)]
pub(super) struct Promised {
    accepted: Ballot,
    commit: LogIndex,
    entries: Vec<Entry>,
}

/// A proposer's phase 1 in progress.
#[derive(Debug)]
pub(super) struct Phase1 {
    ballot: Ballot,
    /// The proposer's decided prefix when it sent its prepares: promises report the slots
    /// above it.
    commit: LogIndex,
    /// The write of the proposer's own promise: it counts once durable.
    own: PersistSeq,
    /// Each acceptor's answer: a promise, or `None` for a refusal.
    answers: Vec<(NodeId, Option<Promised>)>,
    /// Acceptors sent a prepare.
    asked: BTreeSet<NodeId>,
    transfer: bool,
}

impl Phase1 {
    fn answer(&self, id: NodeId) -> Option<bool> {
        self.answers
            .iter()
            .find(|(a, _)| *a == id)
            .map(|(_, p)| p.is_some())
    }
}

impl Paxos {
    pub(super) fn can_campaign(&self) -> bool {
        self.log.membership().0.is_voter(self.id)
    }

    pub(super) fn campaign_now(&mut self, out: &mut Out) {
        if self.state != State::Leader && self.can_campaign() {
            self.campaign(false, out);
        }
    }

    pub(super) fn handle_timeout_now(&mut self, out: &mut Out) {
        if self.can_campaign() {
            self.campaign(true, out);
        }
    }

    /// Start phase 1 with a ballot above every ballot this replica has seen.
    pub(super) fn campaign(&mut self, transfer: bool, out: &mut Out) {
        self.step_down_cleanup(out);
        let ballot = Ballot {
            round: self.promised.round.max(self.accepted.round) + 1,
            node: self.id,
        };
        self.promised = ballot;
        self.state = State::Candidate;
        self.leader = None;
        let own = self.persist_hard_state(out);
        let voters: BTreeSet<NodeId> = self.log.membership().0.all_voters().collect();
        self.phase1 = Some(Phase1 {
            ballot,
            commit: self.commit,
            own,
            answers: Vec::new(),
            asked: BTreeSet::new(),
            transfer,
        });
        self.reset_election_timer();
        self.send_prepares(voters, out);
        self.check_phase1(out);
    }

    fn send_prepares(&mut self, to: BTreeSet<NodeId>, out: &mut Out) {
        let Some(p) = self.phase1.as_mut() else {
            return;
        };
        let msg = PaxosMessage::Prepare {
            ballot: p.ballot,
            commit: p.commit,
            transfer: p.transfer,
        };
        let fresh: Vec<NodeId> = to
            .into_iter()
            .filter(|&id| id != self.id && p.asked.insert(id))
            .collect();
        for id in fresh {
            self.send(id, msg.clone(), out);
        }
    }

    /// Phase 1b at the acceptor: promise a higher ballot and report every slot above the
    /// proposer's decided prefix. A proposer whose decided prefix lies below this
    /// acceptor's trim point is refused without a promise: it could not learn the trimmed
    /// slots here, and a proposer that has them will win instead.
    pub(super) fn handle_prepare(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        commit: LogIndex,
        transfer: bool,
        out: &mut Out,
    ) {
        if ballot.node != from {
            return;
        }
        if ballot < self.promised {
            let reply = self.nack(ballot);
            self.send(from, reply, out);
            return;
        }
        // A leader heard within the minimal timeout is alive: do not help unseat it (unless
        // the prepare comes from that leader, raising its own ballot).
        let leader_alive =
            self.state == State::Leader || self.leader_silence_ticks < self.cfg.election_ticks_min;
        let from_leader = self.leader == Some(from);
        if ballot > self.promised && leader_alive && !transfer && !from_leader {
            return;
        }
        if commit < self.log.snapshot.index {
            let reply = self.nack(ballot);
            self.send(from, reply, out);
            return;
        }
        if ballot > self.promised {
            self.promised = ballot;
            self.persist_hard_state(out);
            self.become_follower(None, out);
        }
        let entries: Vec<Entry> = self
            .log
            .range(commit.next(), self.log.last_index())
            .cloned()
            .collect();
        let reply = PaxosMessage::Promise {
            ballot,
            accepted: self.accepted,
            commit: self.commit,
            entries,
        };
        self.send(from, reply, out);
    }

    pub(super) fn handle_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        accepted: Ballot,
        commit: LogIndex,
        entries: Vec<Entry>,
        out: &mut Out,
    ) {
        let Some(p) = self.phase1.as_mut() else {
            return;
        };
        let consecutive = entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index.0 == p.commit.0 + 1 + k as u64);
        if self.state != State::Candidate
            || p.ballot != ballot
            || accepted > ballot
            || !consecutive
            || p.answers.iter().any(|(a, _)| *a == from)
        {
            return;
        }
        p.answers.push((
            from,
            Some(Promised {
                accepted,
                commit,
                entries,
            }),
        ));
        self.check_phase1(out);
    }

    pub(super) fn handle_nack(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        promised: Ballot,
        leader: Option<NodeId>,
        out: &mut Out,
    ) {
        if promised > self.promised {
            // A voter that promised a higher ballot refuses this leader. If no live leader
            // owns that ballot (an acceptor that campaigned while cut off has come back),
            // nobody would lead until a failure detector fires: the leader runs phase 1
            // again at once, above it, and the acceptors that follow it let it through
            // their lease. Otherwise it follows the live leader.
            let leader_refused = self.state == State::Leader
                && ballot == self.promised
                && self.log.membership().0.is_voter(from);
            self.observe_ballot(promised, out);
            if leader_refused && leader.is_none() {
                self.campaign(false, out);
            } else if leader.is_some_and(|l| l != self.id) {
                self.leader = leader;
            }
            return;
        }
        let Some(p) = self.phase1.as_mut() else {
            return;
        };
        if self.state != State::Candidate
            || p.ballot != ballot
            || p.answers.iter().any(|(a, _)| *a == from)
        {
            return;
        }
        p.answers.push((from, None));
        if promised < ballot {
            // Refused for being behind the acceptor's trim point: a leader that has the
            // trimmed slots will send a snapshot; leave the field to it for a while.
            self.campaign_after_tick = self.now + 2 * self.cfg.election_ticks_max;
        }
        self.check_phase1(out);
    }

    /// Count the answers: with a phase-1 quorum of promises (the proposer's own counting
    /// once durable), recover the log; with enough refusals, give up.
    pub(super) fn check_phase1(&mut self, out: &mut Out) {
        let Some(p) = self.phase1.as_ref() else {
            return;
        };
        if self.state != State::Candidate {
            return;
        }
        let me = self.id;
        let own = self.persist.is_durable(p.own).then_some(true);
        let vote = |id: NodeId| if id == me { own } else { p.answer(id) };
        let membership = self.log.membership().0;
        match membership.vote_result(Phase::One, vote) {
            Some(false) => {
                self.become_follower(None, out);
                return;
            }
            None => return,
            Some(true) => {}
        }
        let (recovered, commit) = self.recover();
        // The recovered log may name another configuration: its phase-1 quorum must have
        // promised too (module docs, "Reconfiguration").
        let recovered_membership = recovered
            .iter()
            .rev()
            .find_map(Entry::membership)
            .unwrap_or_else(|| self.log.membership_at(p.commit));
        if recovered_membership != *membership
            && !recovered_membership.is_quorum(Phase::One, |id| vote(id) == Some(true))
        {
            if recovered_membership.vote_result(Phase::One, vote) == Some(false) {
                self.become_follower(None, out);
                return;
            }
            let more: BTreeSet<NodeId> = recovered_membership.all_voters().collect();
            self.send_prepares(more, out);
            return;
        }
        self.become_leader(recovered, commit, out);
    }

    /// The log the new leader proposes: for each slot above the prepare's decided prefix,
    /// the value of the promise with the highest accepted ballot that holds it (the
    /// proposer's own log included), and the highest decided prefix reported.
    fn recover(&self) -> (Vec<Entry>, LogIndex) {
        let Some(p) = self.phase1.as_ref() else {
            return (Vec::new(), self.commit);
        };
        let mut slots: Vec<(Ballot, &Entry)> = self
            .log
            .range(p.commit.next(), self.log.last_index())
            .map(|e| (self.accepted, e))
            .collect();
        let mut commit = self.commit;
        for promise in p.answers.iter().filter_map(|(_, a)| a.as_ref()) {
            commit = commit.max(promise.commit);
            for (k, e) in promise.entries.iter().enumerate() {
                match slots.get_mut(k) {
                    Some(slot) if promise.accepted > slot.0 => *slot = (promise.accepted, e),
                    Some(_) => {}
                    None => slots.push((promise.accepted, e)),
                }
            }
        }
        let end = LogIndex(p.commit.0 + slots.len() as u64);
        let entries = slots.into_iter().map(|(_, e)| e.clone()).collect();
        (entries, commit.min(end))
    }

    /// Phase 1 succeeded: adopt the recovered log as this ballot's, synchronise the own
    /// acceptor, open the ballot with a no-op and start phase 2 everywhere.
    fn become_leader(&mut self, recovered: Vec<Entry>, commit: LogIndex, out: &mut Out) {
        let Some(p) = self.phase1.take() else {
            return;
        };
        debug_assert_eq!(p.ballot, self.promised);
        debug_assert!(
            self.persist.is_durable(p.own),
            "a leader's own promise is durable"
        );
        let base = p.commit;
        let end = LogIndex(base.0 + recovered.len() as u64);
        let same = |e: &Entry| {
            self.log
                .entry(e.index)
                .is_some_and(|h| h.epoch == e.epoch && h.kind == e.kind)
        };
        let cut = recovered
            .iter()
            .position(|e| !same(e))
            .map_or(end.next(), |k| LogIndex(base.0 + 1 + k as u64));
        debug_assert!(cut > self.commit, "decided slots never change");
        if cut <= self.log.last_index() {
            self.log.truncate_from(cut);
            self.persist.forget_after(cut.prev());
            self.persist_log(Persist::Truncate { from: cut }, out);
        }
        let fresh: Vec<Entry> = recovered
            .into_iter()
            .skip((cut.0 - base.0 - 1) as usize)
            .collect();
        if !fresh.is_empty() {
            for e in &fresh {
                self.log.push(e.clone());
            }
            self.persist_log(Persist::Accept { entries: fresh }, out);
        }
        self.accepted = self.promised;
        self.commit = self.commit.max(commit);
        self.own_sync = Some(self.persist_hard_state(out));
        self.state = State::Leader;
        self.leader = Some(self.id);
        self.sync_end = end;
        self.transfer = None;
        self.lease_revoked = false;
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.leader_silence_ticks = 0;
        self.reads.restart_rounds();
        self.sync_through = None;
        self.uncommitted_bytes = self.log.bytes_after(self.commit);
        self.progress.clear();
        let promised_commits: Vec<(NodeId, LogIndex)> = p
            .answers
            .iter()
            .filter_map(|(id, a)| a.as_ref().map(|a| (*id, a.commit)))
            .collect();
        self.track_members();
        for pr in &mut self.progress {
            let from = promised_commits
                .iter()
                .find(|(id, _)| *id == pr.id)
                .map_or(self.commit, |(_, c)| (*c).min(self.commit));
            pr.next_index = from.next();
        }
        let index = self.log.last_index().next();
        let noop = Entry::noop(index, ballot_epoch(self.promised));
        self.ballot_start = index;
        self.uncommitted_bytes += noop.size_bytes();
        self.unflushed = index;
        self.unflushed_bytes = noop.size_bytes();
        self.log.push(noop);
        self.report_role(out);
        debug_assert!(self.commit < self.log.last_index());
    }

    /// Track every member but this replica, keeping what is known of those already tracked.
    pub(super) fn track_members(&mut self) {
        let members: Vec<NodeId> = self.log.membership().0.members().collect();
        self.progress.retain(|p| members.contains(&p.id));
        for id in members {
            if id != self.id && !self.progress.iter().any(|p| p.id == id) {
                let next = self.commit.next();
                self.progress.push(Progress::new(id, next, self.now));
            }
        }
    }

    pub(super) fn become_follower(&mut self, leader: Option<NodeId>, out: &mut Out) {
        self.step_down_cleanup(out);
        self.state = State::Follower;
        self.leader = leader;
        self.phase1 = None;
        self.reset_election_timer();
    }

    fn step_down_cleanup(&mut self, out: &mut Out) {
        if self.state != State::Leader {
            return;
        }
        self.persist_unflushed(out);
        self.reject_pending_reads(out);
        self.progress.clear();
        self.transfer = None;
        self.own_sync = None;
        self.state = State::Follower;
    }
}
