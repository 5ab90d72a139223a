//! The protocols `rsm-sim` knows, by name: every protocol of rsm-consensus's registry
//! ([`rsm_consensus::registry`]), then the reference replicas of this crate, safe and
//! deliberately unsafe, that show what the simulator catches ([`TEST_PROTOCOLS`]).

use std::sync::OnceLock;

use rsm_consensus::registry::{self as consensus, Visitor};
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

/// One seed of a registered consensus protocol, with the registry's swarm configuration.
fn run_registered<P: consensus::Protocol>(seed: u64, opts: &SimOptions) -> RunResult {
    sim::run::<P::Replica>(seed, opts, &|id, m, s| P::swarm_config(seed, id, m, s))
}

/// Collects the registry's protocols as simulator entries.
struct Registered(Vec<Protocol>);

impl Visitor for Registered {
    fn visit<P: consensus::Protocol>(&mut self) {
        self.0.push(Protocol {
            name: P::NAME,
            about: P::ABOUT,
            safe: true,
            run: run_registered::<P>,
        });
    }
}

/// Every protocol the simulator runs: the registry's, then [`TEST_PROTOCOLS`].
pub fn protocols() -> &'static [Protocol] {
    static ALL: OnceLock<Vec<Protocol>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut registered = Registered(Vec::new());
        consensus::visit_all(&mut registered);
        registered.0.extend_from_slice(TEST_PROTOCOLS);
        registered.0
    })
}

/// The reference replicas of this crate.
pub const TEST_PROTOCOLS: &[Protocol] = &[
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
    protocols().iter().find(|p| p.name == name)
}
