//! Linearizable reads without an op: the primary confirms its view with a phase-2 quorum
//! (a `Commit` round) after the read arrived, or, opt-in, relies on its lease.

use rsm_core::{Effect, Phase, RejectReason, RequestId};

use super::{Out, Vsr};
use crate::read_queue::lease_holds;

impl Vsr {
    /// A read barrier: answered at the primary once its commit number is confirmed
    /// current; refused elsewhere with a hint (the client retries at the primary).
    pub(super) fn read(&mut self, req: RequestId, out: &mut Out) {
        if let Some(reason) = self.primary_refusal() {
            self.refuse(req, reason, out);
            return;
        }
        if self.reads.len() >= self.cfg.reads_pending_max {
            self.refuse(req, RejectReason::Busy, out);
            return;
        }
        // Until the log the view started with is committed, the commit number may lag
        // what the previous view committed.
        let opened = self.commit >= self.start_op;
        if opened && self.lease_valid() {
            out.push(Effect::ReadReady {
                req,
                index: self.commit,
            });
            return;
        }
        self.reads.push(req, self.commit);
        if opened {
            self.start_read_round(out);
        }
    }

    /// Give every read without a round a new one at the current commit number, and send
    /// the `Commit`s that confirm it.
    pub(super) fn start_read_round(&mut self, out: &mut Out) {
        if self.reads.start_round(self.commit) {
            self.send_commits(out);
            self.advance_reads(out);
        }
    }

    /// Answer, in order, every read whose round a phase-2 quorum has echoed.
    pub(super) fn advance_reads(&mut self, out: &mut Out) {
        let membership = self.log.membership().0;
        while let Some((req, index)) = self
            .reads
            .pop_confirmed(membership, self.id, &self.progress)
        {
            out.push(Effect::ReadReady { req, index });
        }
    }

    /// The lease holds while a phase-2 quorum echoed a `Commit` sent less than
    /// `election_ticks_min - lease_drift_ticks` ago: each of those backups refuses to join
    /// a view change for `election_ticks_min` of its own ticks after receiving it, and
    /// every view change needs a phase-1 quorum, which includes one of them.
    fn lease_valid(&self) -> bool {
        if !self.cfg.lease_reads || self.lease_revoked {
            return false;
        }
        let since = self.primary_quorum(Phase::Two, self.now, |p| p.lease_tick_acked);
        lease_holds(
            since,
            self.now,
            self.cfg.election_ticks_min,
            self.cfg.lease_drift_ticks,
        )
    }

    /// A primary stepping down refuses the reads it could not confirm; reads change
    /// nothing, so the refusal is definite.
    pub(super) fn reject_pending_reads(&mut self, out: &mut Out) {
        while let Some(req) = self.reads.pop() {
            self.refuse(req, RejectReason::NotLeader { hint: None }, out);
        }
    }
}
