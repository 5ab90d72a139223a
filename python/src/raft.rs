//! `rsm.Raft`: the Raft automaton from `rsm-consensus`, configured by keyword arguments
//! named after [`RaftConfig`]'s fields.

use pyo3::prelude::*;
use rsm_consensus::{Raft, RaftConfig};
use rsm_core::{Membership, NodeId};

use crate::args::{OptionError, OptionValue, Options};
use crate::host::{Protocol, protocol_class};

impl Protocol for Raft {
    const NAME: &'static str = "Raft";

    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<RaftConfig, OptionError> {
        let mut c = RaftConfig::new(id, membership, seed);
        for (name, value) in options {
            set_option(&mut c, name, value)?;
        }
        c.validate()
            .map_err(|e| OptionError::Value(format!("invalid Raft configuration: {e}")))?;
        Ok(c)
    }
}

/// Set one field of `c` by name.
fn set_option(c: &mut RaftConfig, name: &str, value: &OptionValue) -> Result<(), OptionError> {
    let ticks = |v: &OptionValue| match v {
        OptionValue::Int(n) => Ok(*n),
        OptionValue::Bool(_) => Err(OptionError::Type(format!(
            "Raft option `{name}` must be an int, not a bool"
        ))),
    };
    let size = |v: &OptionValue| {
        ticks(v).and_then(|n| {
            usize::try_from(n)
                .map_err(|_| OptionError::Value(format!("Raft option `{name}` is too large")))
        })
    };
    let switch = |v: &OptionValue| match v {
        OptionValue::Bool(b) => Ok(*b),
        OptionValue::Int(_) => Err(OptionError::Type(format!(
            "Raft option `{name}` must be a bool, not an int"
        ))),
    };
    match name {
        "election_ticks_min" => c.election_ticks_min = ticks(value)?,
        "election_ticks_max" => c.election_ticks_max = ticks(value)?,
        "heartbeat_ticks" => c.heartbeat_ticks = ticks(value)?,
        "pre_vote" => c.pre_vote = switch(value)?,
        "check_quorum" => c.check_quorum = switch(value)?,
        "lease_reads" => c.lease_reads = switch(value)?,
        "lease_drift_ticks" => c.lease_drift_ticks = ticks(value)?,
        "priority" => c.priority = ticks(value)?,
        "proposal_bytes_max" => c.proposal_bytes_max = size(value)?,
        "uncommitted_bytes_max" => c.uncommitted_bytes_max = size(value)?,
        "batch_entries_max" => c.batch_entries_max = size(value)?,
        "batch_bytes_max" => c.batch_bytes_max = size(value)?,
        "msg_bytes_max" => c.msg_bytes_max = size(value)?,
        "msg_entries_max" => c.msg_entries_max = size(value)?,
        "inflight_msgs_max" => c.inflight_msgs_max = size(value)?,
        "inflight_bytes_max" => c.inflight_bytes_max = size(value)?,
        "apply_batch_entries_max" => c.apply_batch_entries_max = size(value)?,
        "apply_lag_entries_max" => c.apply_lag_entries_max = ticks(value)?,
        "snapshot_entries_threshold" => c.snapshot_entries_threshold = ticks(value)?,
        "snapshot_chunk_bytes" => c.snapshot_chunk_bytes = size(value)?,
        "snapshot_bytes_max" => c.snapshot_bytes_max = size(value)?,
        "reads_pending_max" => c.reads_pending_max = size(value)?,
        _ => {
            return Err(OptionError::Type(format!(
                "Raft got an unexpected keyword argument `{name}`"
            )));
        }
    }
    Ok(())
}

protocol_class!(
    /// A Raft replica: a deterministic automaton with no I/O of its own.
    ///
    /// `Raft(id, members, *, seed=0, **options)` builds a new replica. `members` is an
    /// iterable of voter ids or a `Membership`; `seed` drives election jitter; every other
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
