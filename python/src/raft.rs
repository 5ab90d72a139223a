//! `rsm.Raft`: the Raft automaton from `rsm-consensus`, configured by keyword arguments
//! named after [`RaftConfig`]'s fields.

use pyo3::prelude::*;
use rsm_consensus::registry::{Protocol as _, RaftProtocol};
use rsm_consensus::{Raft, RaftConfig};
use rsm_core::{Membership, NodeId};

use crate::args::{OptionError, Options};
use crate::host::{Protocol, protocol_class};

impl Protocol for Raft {
    const NAME: &'static str = "Raft";

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<RaftConfig, OptionError> {
        RaftProtocol::config(id, membership, seed, options)
    }
}

protocol_class!(
    /// A Raft replica: a deterministic automaton with no I/O of its own.
    ///
    /// `Raft(id, members, *, seed=0, **options)` builds a new replica. `members` is an
    /// iterable of voter ids (each once) or a `Membership`, and must include `id`; `seed`
    /// drives election jitter; every other
    /// keyword names a limit or timeout (in ticks) of the Rust `RaftConfig`, for example
    /// `election_ticks_min=10, election_ticks_max=20, heartbeat_ticks=2, pre_vote=True`.
    /// Unknown keywords raise `TypeError`, inconsistent values `ValueError`.
    ///
    /// Feed inputs with `step` / `step_many` and execute the returned effects in order. A
    /// Rust panic inside the replica raises `PanicException` and poisons the replica:
    /// later calls raise `PoisonedError`, and it must be rebuilt with `Raft.restore`.
    PyRaft,
    "Raft",
    Raft
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRaft>()
}
