//! Inputs: everything that can happen to a replica, as small frozen Python classes.
//!
//! Messages arrive as the opaque `bytes` another replica's `Send` effect carried; they
//! are decoded here, before the replica sees anything, so a malformed message raises
//! `ValueError` and leaves the replica untouched.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rsm_core::{Bytes, Input, LogIndex, NodeId, PersistSeq, RequestId, decode_body};
use serde::de::DeserializeOwned;

use crate::args::{type_name, u64_arg};
use crate::values::{Membership, SnapshotMeta, value_methods};

/// Bytes from a Python `bytes` (borrowed, not copied) or any other buffer (copied).
pub(crate) fn bytes_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<Bytes> {
    if let Ok(b) = value.extract::<Bytes>() {
        return Ok(b);
    }
    Err(PyTypeError::new_err(format!(
        "`{name}` must be bytes, not {}",
        type_name(value)
    )))
}

/// One logical clock tick. Every timeout is counted in ticks.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Tick;

value_methods!(Tick, [], {
    #[new]
    fn new() -> Self {
        Tick
    }
});

/// A message from peer `sender`: the bytes of a `Send` effect's `msg`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Receive {
    sender: u64,
    msg: Bytes,
}

value_methods!(Receive, [sender, msg], {
    #[new]
    fn new(sender: &Bound<'_, PyAny>, msg: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            sender: u64_arg(sender, "sender")?,
            msg: bytes_arg(msg, "msg")?,
        })
    }

    /// The sending replica, as authenticated by the transport.
    #[getter]
    fn sender(&self) -> u64 {
        self.sender
    }

    /// The encoded message.
    #[getter]
    fn msg<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.msg)
    }
});

/// A client command to replicate; `req` is echoed back in `Proposed` or `Reject`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Propose {
    req: u64,
    command: Bytes,
}

value_methods!(Propose, [req, command], {
    #[new]
    fn new(req: &Bound<'_, PyAny>, command: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            req: u64_arg(req, "req")?,
            command: bytes_arg(command, "command")?,
        })
    }

    /// The request id.
    #[getter]
    fn req(&self) -> u64 {
        self.req
    }

    /// The command, opaque to the protocol.
    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.command)
    }
});

/// A linearizable read barrier, answered by `ReadReady` (or `Reject`).
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Read {
    /// The request id.
    #[pyo3(get)]
    req: u64,
}

value_methods!(Read, [req], {
    #[new]
    fn new(req: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            req: u64_arg(req, "req")?,
        })
    }
});

/// Every `Persist` effect numbered `<= through` is durable.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Persisted {
    /// The highest durable persist number.
    #[pyo3(get)]
    through: u64,
}

value_methods!(Persisted, [through], {
    #[new]
    fn new(through: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            through: u64_arg(through, "through")?,
        })
    }
});

/// The host's state machine applied every entry through `through`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Applied {
    /// The highest applied index.
    #[pyo3(get)]
    through: u64,
}

value_methods!(Applied, [through], {
    #[new]
    fn new(through: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            through: u64_arg(through, "through")?,
        })
    }
});

/// The host took the snapshot a `TakeSnapshot` effect asked for: its metadata and the
/// state machine's bytes at `meta.index`.
#[pyclass(module = "rsm", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    meta: SnapshotMeta,
    data: Bytes,
}

value_methods!(Snapshot, [meta, data], {
    #[new]
    fn new(meta: SnapshotMeta, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            meta,
            data: bytes_arg(data, "data")?,
        })
    }

    /// What the snapshot covers.
    #[getter]
    fn meta(&self) -> SnapshotMeta {
        self.meta.clone()
    }

    /// The state machine's serialized state.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }
});

/// Change the membership to `membership`; `req` is echoed back in `Proposed` or `Reject`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Reconfigure {
    /// The request id.
    #[pyo3(get)]
    req: u64,
    membership: Membership,
}

value_methods!(Reconfigure, [req, membership], {
    #[new]
    fn new(req: &Bound<'_, PyAny>, membership: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            req: u64_arg(req, "req")?,
            membership: Membership {
                inner: Membership::from_arg(membership)?,
            },
        })
    }

    /// The target configuration.
    #[getter]
    fn membership(&self) -> Membership {
        self.membership.clone()
    }
});

/// Hand leadership to replica `to`; a refusal comes back as `Reject` for `req`.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TransferLeadership {
    /// The replica that should lead.
    #[pyo3(get)]
    to: u64,
    /// Echoed back in `Reject`.
    #[pyo3(get)]
    req: u64,
}

value_methods!(TransferLeadership, [to, req], {
    #[new]
    #[pyo3(signature = (to, req = None))]
    fn new(to: &Bound<'_, PyAny>, req: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self {
            to: u64_arg(to, "to")?,
            req: req.map(|r| u64_arg(r, "req")).transpose()?.unwrap_or(0),
        })
    }
});

/// Start an election now, as if the election timeout had fired.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Campaign;

value_methods!(Campaign, [], {
    #[new]
    fn new() -> Self {
        Campaign
    }
});

/// Convert one Python input object. Messages are decoded here: a malformed one is a
/// `ValueError` and no input is produced.
pub(crate) fn input_from_py<M: DeserializeOwned>(obj: &Bound<'_, PyAny>) -> PyResult<Input<M>> {
    // Ordered by how often a host sends each kind.
    if let Ok(r) = obj.cast::<Receive>() {
        let r = r.get();
        let msg = decode_body::<M>(&r.msg).map_err(|e| {
            PyValueError::new_err(format!("malformed message from node {}: {e}", r.sender))
        })?;
        return Ok(Input::Receive {
            from: NodeId(r.sender),
            msg,
        });
    }
    if obj.cast::<Tick>().is_ok() {
        return Ok(Input::Tick);
    }
    if let Ok(p) = obj.cast::<Persisted>() {
        return Ok(Input::Persisted {
            through: PersistSeq(p.get().through),
        });
    }
    if let Ok(p) = obj.cast::<Propose>() {
        let p = p.get();
        return Ok(Input::Propose {
            req: RequestId(p.req),
            command: p.command.clone(),
        });
    }
    if let Ok(a) = obj.cast::<Applied>() {
        return Ok(Input::Applied {
            through: LogIndex(a.get().through),
        });
    }
    if let Ok(r) = obj.cast::<Read>() {
        return Ok(Input::Read {
            req: RequestId(r.get().req),
        });
    }
    if let Ok(s) = obj.cast::<Snapshot>() {
        let s = s.get();
        return Ok(Input::Snapshot {
            meta: s.meta.inner.clone(),
            data: s.data.clone(),
        });
    }
    if let Ok(r) = obj.cast::<Reconfigure>() {
        let r = r.get();
        return Ok(Input::Reconfigure {
            req: RequestId(r.req),
            membership: r.membership.inner.clone(),
        });
    }
    if let Ok(t) = obj.cast::<TransferLeadership>() {
        let t = t.get();
        return Ok(Input::TransferLeadership {
            req: RequestId(t.req),
            to: NodeId(t.to),
        });
    }
    if obj.cast::<Campaign>().is_ok() {
        return Ok(Input::Campaign);
    }
    Err(PyTypeError::new_err(format!(
        "expected an rsm input (Tick, Receive, Propose, Read, Persisted, Applied, Snapshot, \
         Reconfigure, TransferLeadership or Campaign), not {}",
        type_name(obj)
    )))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Tick>()?;
    m.add_class::<Campaign>()?;
    m.add_class::<Receive>()?;
    m.add_class::<Propose>()?;
    m.add_class::<Read>()?;
    m.add_class::<Persisted>()?;
    m.add_class::<Applied>()?;
    m.add_class::<Snapshot>()?;
    m.add_class::<Reconfigure>()?;
    m.add_class::<TransferLeadership>()?;
    Ok(())
}
