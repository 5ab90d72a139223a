//! `rsm.Vsr`: the Viewstamped Replication automaton from `rsm-consensus`, configured by
//! keyword arguments named after [`VsrConfig`]'s fields.

use pyo3::prelude::*;
use rsm_consensus::registry::{Protocol as _, VsrProtocol};
use rsm_consensus::{Vsr, VsrConfig};
use rsm_core::{Membership, NodeId};

use crate::args::{OptionError, Options};
use crate::host::{Protocol, protocol_class};

impl Protocol for Vsr {
    const NAME: &'static str = "Vsr";

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<VsrConfig, OptionError> {
        VsrProtocol::config(id, membership, seed, options)
    }
}

protocol_class!(
    /// A Viewstamped Replication (Revisited) replica: a deterministic automaton with no
    /// I/O of its own. The primary of view `v` is voter number `v mod n` of the sorted
    /// voters.
    ///
    /// `Vsr(id, members, *, seed=0, **options)` builds a new replica. `members` is an
    /// iterable of voter ids or a `Membership`; `seed` drives the view-change timer's
    /// jitter; every other keyword names a limit or timeout (in ticks) of the Rust
    /// `VsrConfig`, for example `election_ticks_min=10, heartbeat_ticks=2,
    /// lease_reads=True`. Unknown keywords raise `TypeError`, inconsistent values
    /// `ValueError`.
    ///
    /// Feed inputs with `step` / `step_many` and execute the returned effects in order. A
    /// Rust panic inside the replica raises `PanicException` and poisons the replica:
    /// later calls raise `PoisonedError`, and it must be rebuilt with `Vsr.restore`.
    PyVsr,
    "Vsr",
    Vsr
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVsr>()
}
