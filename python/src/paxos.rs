//! `rsm.Paxos`: the Multi-Paxos automaton from `rsm-consensus`, configured by keyword
//! arguments named after [`PaxosConfig`]'s fields.

use pyo3::prelude::*;
use rsm_consensus::registry::{PaxosProtocol, Protocol as _};
use rsm_consensus::{Paxos, PaxosConfig};
use rsm_core::{Membership, NodeId};

use crate::args::{OptionError, Options};
use crate::host::{Protocol, protocol_class};

impl Protocol for Paxos {
    const NAME: &'static str = "Paxos";

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<PaxosConfig, OptionError> {
        PaxosProtocol::config(id, membership, seed, options)
    }
}

protocol_class!(
    /// A Multi-Paxos replica (proposer, acceptor and learner): a deterministic automaton
    /// with no I/O of its own.
    ///
    /// `Paxos(id, members, *, seed=0, **options)` builds a new replica. `members` is an
    /// iterable of voter ids (at most 999) or a `Membership`, whose quorum sizes may be
    /// flexible; `seed` drives the failure detector's jitter; every other keyword names a
    /// limit or timeout (in ticks) of the Rust `PaxosConfig`, for example
    /// `election_ticks_min=10, heartbeat_ticks=2, lease_reads=True`. Unknown keywords raise
    /// `TypeError`, inconsistent values `ValueError`.
    ///
    /// Feed inputs with `step` / `step_many` and execute the returned effects in order. A
    /// Rust panic inside the replica raises `PanicException` and poisons the replica:
    /// later calls raise `PoisonedError`, and it must be rebuilt with `Paxos.restore`.
    PyPaxos,
    "Paxos",
    Paxos
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPaxos>()
}
