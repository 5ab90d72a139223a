//! Effects: everything a replica asks of its host, in the order it must happen, as small
//! frozen Python classes. Messages leave as opaque `bytes` (the protocol's message encoded
//! with `rsm_core::encode_body`), ready for any transport.
//!
//! The host rule, the only one a Python host must learn: execute effects in order; a
//! `Send` that follows a `Persist` leaves only after that `Persist` is durable, reported
//! with `Persisted(through=seq)`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use rsm_core::{Bytes, Effect, RejectReason, encode_body};
use serde::Serialize;

use crate::values::{Entry, Membership, SnapshotMeta, role_name, value_methods};

/// Send `msg` (opaque bytes) to replica `to`; deliver it there as `Receive(sender, msg)`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Send {
    to: u64,
    msg: Bytes,
}

value_methods!(Send, [to, msg], {
    #[new]
    fn new(to: &Bound<'_, PyAny>, msg: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            to: crate::args::u64_arg(to, "to")?,
            msg: crate::inputs::bytes_arg(msg, "msg")?,
        })
    }

    /// The recipient.
    #[getter]
    fn to(&self) -> u64 {
        self.to
    }

    /// The encoded message.
    #[getter]
    fn msg<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.msg)
    }
});

/// Make one write durable, then report it with `Persisted(through=seq)`. `data` is the
/// write encoded as bytes: store it (or apply it to a `Durable`) and hand the result to
/// `restore` after a restart.
#[pyclass(module = "rsm", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Persist {
    pub(crate) seq: u64,
    pub(crate) op: rsm_core::Persist,
}

value_methods!(Persist, [seq, kind], {
    /// This persist's number (consecutive from 1 in each incarnation).
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// `"append"`, `"accept"`, `"truncate"`, `"hard_state"`, `"snapshot"` or `"compact"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.op {
            rsm_core::Persist::Append { .. } => "append",
            rsm_core::Persist::Accept { .. } => "accept",
            rsm_core::Persist::Truncate { .. } => "truncate",
            rsm_core::Persist::HardState(_) => "hard_state",
            rsm_core::Persist::Snapshot { .. } => "snapshot",
            rsm_core::Persist::Compact { .. } => "compact",
        }
    }

    /// The write, encoded: what a Python host stores in its log.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        encode_body(&self.op, &mut out).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &out))
    }

    /// The entries an `"append"` or `"accept"` writes; empty for other kinds.
    #[getter]
    fn entries(&self) -> Vec<Entry> {
        match &self.op {
            rsm_core::Persist::Append { entries } | rsm_core::Persist::Accept { entries } => {
                entries.iter().map(|e| Entry { inner: e.clone() }).collect()
            }
            _ => Vec::new(),
        }
    }
});

/// Apply these committed entries, in order, to the state machine, then report
/// `Applied(through=...)`.
#[pyclass(module = "rsm", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Apply {
    entries: Vec<rsm_core::Entry>,
}

value_methods!(Apply, [entries], {
    /// The committed entries, consecutive.
    #[getter]
    fn entries(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .map(|e| Entry { inner: e.clone() })
            .collect()
    }
});

/// Proposal (or reconfiguration) `req` was appended at `index` in `epoch`; it took effect
/// if and only if an `Apply` later delivers `index` with the same epoch.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Proposed {
    /// The request id.
    #[pyo3(get)]
    req: u64,
    /// Where it was appended.
    #[pyo3(get)]
    index: u64,
    /// The epoch of the appended entry.
    #[pyo3(get)]
    epoch: u64,
}

value_methods!(Proposed, [req, index, epoch]);

/// Read `req` may be served once the state machine has applied through `index`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ReadReady {
    /// The request id.
    #[pyo3(get)]
    req: u64,
    /// The index to apply through before serving the read.
    #[pyo3(get)]
    index: u64,
}

value_methods!(ReadReady, [req, index]);

/// Request `req` was refused. Protocol refusals come back as this effect, never as an
/// exception. `definite` says whether the request certainly did not and will not take
/// effect; `leader` names the replica to retry at, when known.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Reject {
    /// The request id.
    #[pyo3(get)]
    req: u64,
    reason: RejectReason,
}

value_methods!(Reject, [req, reason, definite, leader], {
    /// `"not_leader"`, `"transfer_in_progress"`, `"too_large"`, `"busy"`, `"removed"`,
    /// `"config_change_in_progress"`, `"invalid_config"`, `"not_voter"`, `"unsupported"` or
    /// `"leadership_lost"`.
    #[getter]
    fn reason(&self) -> &'static str {
        reject_reason_name(&self.reason)
    }

    /// True when the request certainly did not and will not take effect.
    #[getter]
    fn definite(&self) -> bool {
        self.reason.is_definite()
    }

    /// The leader the refusing replica believes in, if the reason names one.
    #[getter]
    fn leader(&self) -> Option<u64> {
        self.reason.leader_hint().map(|n| n.0)
    }

    /// The refusal explained for a person.
    #[getter]
    fn detail(&self) -> String {
        self.reason.to_string()
    }
});

/// Take a snapshot of the state machine at `through` (already applied) and hand it back
/// with the `Snapshot` input.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TakeSnapshot {
    /// The index the snapshot must cover.
    #[pyo3(get)]
    through: u64,
}

value_methods!(TakeSnapshot, [through]);

/// Replace the state machine's state with this snapshot received from a peer; later
/// `Apply` effects continue from `meta.index + 1`.
#[pyclass(module = "rsm", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InstallSnapshot {
    meta: rsm_core::SnapshotMeta,
    data: Bytes,
}

value_methods!(InstallSnapshot, [meta, data], {
    /// What the snapshot covers.
    #[getter]
    fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            inner: self.meta.clone(),
        }
    }

    /// The state machine bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    /// The membership in force at the snapshot.
    #[getter]
    fn membership(&self) -> Membership {
        Membership {
            inner: self.meta.membership.clone(),
        }
    }
});

/// The replica's role, epoch or known leader changed.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RoleChanged {
    role: rsm_core::Role,
    /// The current epoch (Raft term).
    #[pyo3(get)]
    epoch: u64,
    /// The known leader, if any.
    #[pyo3(get)]
    leader: Option<u64>,
}

value_methods!(RoleChanged, [role, epoch, leader], {
    /// The new role, as in `Status.role`.
    #[getter]
    fn role(&self) -> &'static str {
        role_name(self.role)
    }
});

/// The name Python code sees for a refusal (`Reject.reason`, `Outcome.reason`).
pub(crate) fn reject_reason_name(reason: &RejectReason) -> &'static str {
    match reason {
        RejectReason::NotLeader { .. } => "not_leader",
        RejectReason::TransferInProgress { .. } => "transfer_in_progress",
        RejectReason::TooLarge { .. } => "too_large",
        RejectReason::Busy => "busy",
        RejectReason::Removed => "removed",
        RejectReason::ConfigChangeInProgress => "config_change_in_progress",
        RejectReason::InvalidConfig(_) => "invalid_config",
        RejectReason::NotVoter { .. } => "not_voter",
        RejectReason::Unsupported => "unsupported",
        RejectReason::LeadershipLost { .. } => "leadership_lost",
    }
}

/// Convert effects to Python objects, appending them to `list`.
pub(crate) fn effects_to_py<M: Serialize>(
    py: Python<'_>,
    effects: impl IntoIterator<Item = Effect<M>>,
    list: &Bound<'_, PyList>,
) -> PyResult<()> {
    for effect in effects {
        list.append(effect_to_py(py, effect)?)?;
    }
    Ok(())
}

fn effect_to_py<M: Serialize>(py: Python<'_>, effect: Effect<M>) -> PyResult<Bound<'_, PyAny>> {
    Ok(match effect {
        Effect::Send { to, msg } => {
            let mut buf = Vec::new();
            encode_body(&msg, &mut buf).map_err(|e| PyValueError::new_err(e.to_string()))?;
            Bound::new(
                py,
                Send {
                    to: to.0,
                    msg: Bytes::from(buf),
                },
            )?
            .into_any()
        }
        Effect::Persist { seq, op } => Bound::new(py, Persist { seq: seq.0, op })?.into_any(),
        Effect::Apply { entries } => Bound::new(py, Apply { entries })?.into_any(),
        Effect::Proposed { req, index, epoch } => Bound::new(
            py,
            Proposed {
                req: req.0,
                index: index.0,
                epoch: epoch.0,
            },
        )?
        .into_any(),
        Effect::ReadReady { req, index } => Bound::new(
            py,
            ReadReady {
                req: req.0,
                index: index.0,
            },
        )?
        .into_any(),
        Effect::Reject { req, reason } => Bound::new(py, Reject { req: req.0, reason })?.into_any(),
        Effect::TakeSnapshot { through } => {
            Bound::new(py, TakeSnapshot { through: through.0 })?.into_any()
        }
        Effect::InstallSnapshot { meta, data } => {
            Bound::new(py, InstallSnapshot { meta, data })?.into_any()
        }
        Effect::RoleChanged {
            role,
            epoch,
            leader,
        } => Bound::new(
            py,
            RoleChanged {
                role,
                epoch: epoch.0,
                leader: leader.map(|n| n.0),
            },
        )?
        .into_any(),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Send>()?;
    m.add_class::<Persist>()?;
    m.add_class::<Apply>()?;
    m.add_class::<Proposed>()?;
    m.add_class::<ReadReady>()?;
    m.add_class::<Reject>()?;
    m.add_class::<TakeSnapshot>()?;
    m.add_class::<InstallSnapshot>()?;
    m.add_class::<RoleChanged>()?;
    Ok(())
}
