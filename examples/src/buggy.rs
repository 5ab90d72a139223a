//! Deliberately unsafe replicas that look right until faults strike. They exist to prove
//! that the simulator catches real bugs; never use them for anything else.

use rsm_core::{Durable, Effect, Input, Replica, RestoreError, Status};

use crate::elected::{Elected, ElectedConfig, ElectedMessage, QuorumRule};
use crate::sequencer::{CommitRule, SeqMessage, Sequencer, SequencerConfig};

/// A primary-backup replica that acknowledges (applies) a write as soon as the primary has
/// appended it, before its own disk or any backup holds it. Without crashes it is
/// indistinguishable from the correct sequencer; a primary crash with unsynced writes
/// loses acknowledged writes, and its next incarnation reuses their log positions.
#[derive(Debug)]
pub struct AckBeforeReplicate(Sequencer);

impl Replica for AckBeforeReplicate {
    type Message = SeqMessage;
    type Config = SequencerConfig;

    fn restore(mut cfg: SequencerConfig, durable: Durable) -> Result<Self, RestoreError> {
        cfg.commit_rule = CommitRule::OnLocalAppend;
        Sequencer::restore(cfg, durable).map(Self)
    }

    fn step(&mut self, input: Input<SeqMessage>, out: &mut Vec<Effect<SeqMessage>>) {
        self.0.step(input, out);
    }

    fn status(&self) -> Status {
        self.0.status()
    }
}

/// An elected-leader replica that counts `(n + 1) / 2` votes or acknowledgements as a
/// quorum. For 3, 5 or 7 nodes that is a majority and the replica is correct; for 4 nodes
/// two disjoint pairs both form "quorums", so a partition elects two leaders in one term
/// and commits divergent entries.
#[derive(Debug)]
pub struct EvenQuorum(Elected);

impl Replica for EvenQuorum {
    type Message = ElectedMessage;
    type Config = ElectedConfig;

    fn restore(mut cfg: ElectedConfig, durable: Durable) -> Result<Self, RestoreError> {
        cfg.quorum = QuorumRule::HalfRoundedUp;
        Elected::restore(cfg, durable).map(Self)
    }

    fn step(&mut self, input: Input<ElectedMessage>, out: &mut Vec<Effect<ElectedMessage>>) {
        self.0.step(input, out);
    }

    fn status(&self) -> Status {
        self.0.status()
    }
}
