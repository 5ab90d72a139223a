//! The protocols `rsm-sim` knows, by name. Adding one is one line in [`PROTOCOLS`].

use rsm_consensus::{Raft, RaftConfig};
use rsm_core::{Membership, NodeId};
use rsm_sim::{self as sim, RunResult, SimOptions};

use crate::buggy::{AckBeforeReplicate, EvenQuorum};
use crate::elected::{Elected, ElectedConfig};
use crate::sequencer::{Sequencer, SequencerConfig};

/// A protocol the simulator can run.
#[derive(Copy, Clone, Debug)]
pub struct Protocol {
    /// The name given to `--protocol`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Whether the protocol is expected to pass every seed.
    pub safe: bool,
    /// Run one seed.
    pub run: fn(u64, &SimOptions) -> RunResult,
}

fn sequencer_config(id: NodeId, membership: &Membership, _seed: u64) -> SequencerConfig {
    SequencerConfig::new(id, membership.clone())
}

fn elected_config(id: NodeId, membership: &Membership, seed: u64) -> ElectedConfig {
    ElectedConfig::new(id, membership.clone(), seed)
}

/// Every protocol, by name.
pub const PROTOCOLS: &[Protocol] = &[
    Protocol {
        name: "raft",
        about: "rsm-consensus Raft: pre-vote, check-quorum, ReadIndex, snapshots (safe)",
        safe: true,
        run: |seed, opts| {
            sim::run::<Raft>(seed, opts, &|id, m, s| RaftConfig::swarm(seed, id, m, s))
        },
    },
    Protocol {
        name: "sequencer",
        about: "fixed sequencer that commits once every voter has an entry durably (safe)",
        safe: true,
        run: |seed, opts| sim::run::<Sequencer>(seed, opts, &sequencer_config),
    },
    Protocol {
        name: "ack-before-replicate",
        about: "primary-backup that acknowledges before replicating (unsafe on crashes)",
        safe: false,
        run: |seed, opts| sim::run::<AckBeforeReplicate>(seed, opts, &sequencer_config),
    },
    Protocol {
        name: "elected",
        about: "Raft-style elected leader with majority quorums and ReadIndex reads (safe)",
        safe: true,
        run: |seed, opts| sim::run::<Elected>(seed, opts, &elected_config),
    },
    Protocol {
        name: "even-quorum",
        about: "elected leader counting (n+1)/2 as a quorum (unsafe with 4 nodes)",
        safe: false,
        run: |seed, opts| sim::run::<EvenQuorum>(seed, opts, &elected_config),
    },
];

/// The protocol called `name`.
pub fn find(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().find(|p| p.name == name)
}
