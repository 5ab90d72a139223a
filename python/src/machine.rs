//! The Python side of a node run by `rsm.Host`: the user's state machine and, when given,
//! the user's storage, each a plain Python object the reference host calls back.
//!
//! The reference host's traits report no Python exceptions, so every exception a callback
//! raises is kept in the node's [`Failure`] slot, which the `rsm.Host` call that caused it
//! reads once the host returns. An exception from `apply`, `snapshot`, `restore`, or from
//! the storage is fatal for the node: the state machine may be half-changed, so from the
//! first one on the storage refuses every write (nothing after it becomes durable) and the
//! class stops the host. An exception from `query` only fails that read (a read changes
//! nothing).

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rsm_core::{
    Bytes, CodecError, LogIndex, MemStorage, Persist, PersistError, Queryable, StateMachine,
    Storage,
};

use crate::args::type_name;

/// A Python object handed to the reference host as a response, query or answer.
#[derive(Debug)]
pub(crate) struct PyValue(pub(crate) Py<PyAny>);

impl Clone for PyValue {
    fn clone(&self) -> Self {
        Python::attach(|py| PyValue(self.0.clone_ref(py)))
    }
}

/// The first exception a callback of one node raised, shared by its machine and storage.
#[derive(Clone, Debug, Default)]
pub(crate) struct Failure(Arc<Mutex<Option<PyErr>>>);

impl Failure {
    /// Keep `error` unless an earlier one is kept already (the first is the cause).
    fn set(&self, error: PyErr) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    fn is_set(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The exception kept, taken out of the slot.
    pub(crate) fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Look up a method a callback object must have.
fn method(obj: &Bound<'_, PyAny>, role: &str, name: &str) -> PyResult<Py<PyAny>> {
    match obj.getattr(name) {
        Ok(m) if m.is_callable() => Ok(m.unbind()),
        _ => Err(PyTypeError::new_err(format!(
            "the {role} must have a method `{name}`; {} has none",
            type_name(obj)
        ))),
    }
}

/// The `bytes` a callback returned.
fn returned_bytes(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    value
        .cast::<PyBytes>()
        .map(|b| Bytes::copy_from_slice(b.as_bytes()))
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must return bytes, not {}",
                type_name(value)
            ))
        })
}

/// The user's state machine: an object with `apply(index, command) -> response`,
/// `snapshot() -> bytes`, `restore(data) -> None` and, for reads, `query(query) -> answer`.
pub(crate) struct PyMachine {
    obj: Py<PyAny>,
    apply: Py<PyAny>,
    failure: Failure,
}

impl PyMachine {
    /// Check that `obj` has the methods every node calls (`query` is looked up per read).
    pub(crate) fn new(obj: &Bound<'_, PyAny>, failure: Failure) -> PyResult<Self> {
        let apply = method(obj, "state machine", "apply")?;
        method(obj, "state machine", "snapshot")?;
        method(obj, "state machine", "restore")?;
        Ok(Self {
            obj: obj.clone().unbind(),
            apply,
            failure,
        })
    }

    /// The Python object.
    pub(crate) fn object(&self) -> &Py<PyAny> {
        &self.obj
    }

    /// Whether the object can answer reads.
    pub(crate) fn check_queryable(&self, py: Python<'_>) -> PyResult<()> {
        method(self.obj.bind(py), "state machine", "query").map(|_| ())
    }
}

impl StateMachine for PyMachine {
    /// `None` when `apply` raised: the command's outcome is then unknown.
    type Response = Option<PyValue>;

    fn apply(&mut self, index: LogIndex, command: &Bytes) -> Option<PyValue> {
        if self.failure.is_set() {
            // Nothing more is applied once a callback failed: the node is stopping.
            return None;
        }
        Python::attach(
            |py| match self.apply.call1(py, (index.0, PyBytes::new(py, command))) {
                Ok(response) => Some(PyValue(response)),
                Err(error) => {
                    self.failure.set(error);
                    None
                }
            },
        )
    }

    fn snapshot(&self) -> Bytes {
        Python::attach(|py| {
            let taken = self
                .obj
                .call_method0(py, intern!(py, "snapshot"))
                .and_then(|data| returned_bytes(data.bind(py), "snapshot()"));
            taken.unwrap_or_else(|error| {
                // The empty snapshot never becomes durable: the storage refuses every
                // write from now on, which stops the host.
                self.failure.set(error);
                Bytes::new()
            })
        })
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), CodecError> {
        Python::attach(|py| {
            self.obj
                .call_method1(py, intern!(py, "restore"), (PyBytes::new(py, snapshot),))
                .map(|_| ())
                .map_err(|error| {
                    let text = error.to_string();
                    self.failure.set(error);
                    CodecError::Malformed(format!("the state machine's restore raised {text}"))
                })
        })
    }
}

impl Queryable for PyMachine {
    type Query = PyValue;
    /// The answer, or the exception `query` raised.
    type Answer = Result<PyValue, PyValue>;

    fn query(&self, query: &PyValue) -> Result<PyValue, PyValue> {
        Python::attach(|py| {
            self.obj
                .call_method1(py, intern!(py, "query"), (query.0.clone_ref(py),))
                .map(PyValue)
                .map_err(|error| PyValue(error.into_value(py).into_any()))
        })
    }
}

/// Why a write or sync failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StorageError {
    /// The in-memory image refused the write.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// The storage object raised (the exception is the `HostError`'s cause).
    #[error("the storage's {method} raised {text}")]
    Python {
        /// `write` or `sync`.
        method: &'static str,
        /// The exception, as text.
        text: String,
    },
    /// A callback failed earlier; nothing is written after it.
    #[error("a state machine or storage callback raised earlier; nothing more is written")]
    Failed,
}

/// Where a node's writes go.
pub(crate) enum StorageKind {
    /// A `Durable` image in memory; `sync` does nothing.
    Memory(Box<MemStorage>),
    /// An object with `write(persist)` and `sync()`; `written` numbers the writes as the
    /// host does (from 1 in each incarnation), for the `Persist.seq` it is handed.
    Python { obj: Py<PyAny>, written: u64 },
}

/// The storage of one node.
pub(crate) struct PyStorage {
    pub(crate) kind: StorageKind,
    failure: Failure,
}

impl PyStorage {
    pub(crate) fn memory(image: rsm_core::Durable, failure: Failure) -> Self {
        Self {
            kind: StorageKind::Memory(Box::new(MemStorage {
                durable: image,
                syncs: 0,
            })),
            failure,
        }
    }

    /// Check that `obj` has `write` and `sync`.
    pub(crate) fn python(obj: &Bound<'_, PyAny>, failure: Failure) -> PyResult<Self> {
        method(obj, "storage", "write")?;
        method(obj, "storage", "sync")?;
        Ok(Self {
            kind: StorageKind::Python {
                obj: obj.clone().unbind(),
                written: 0,
            },
            failure,
        })
    }

    fn raised(&self, method: &'static str, error: PyErr) -> StorageError {
        let text = error.to_string();
        self.failure.set(error);
        StorageError::Python { method, text }
    }
}

impl Storage for PyStorage {
    type Error = StorageError;

    fn write(&mut self, op: &Persist) -> Result<(), StorageError> {
        if self.failure.is_set() {
            return Err(StorageError::Failed);
        }
        let result = match &mut self.kind {
            StorageKind::Memory(m) => return m.write(op).map_err(StorageError::from),
            StorageKind::Python { obj, written } => Python::attach(|py| {
                *written += 1;
                let persist = crate::effects::Persist {
                    seq: *written,
                    op: op.clone(),
                };
                obj.call_method1(py, intern!(py, "write"), (persist,))
                    .map(|_| ())
            }),
        };
        result.map_err(|error| self.raised("write", error))
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        if self.failure.is_set() {
            return Err(StorageError::Failed);
        }
        let result = match &mut self.kind {
            StorageKind::Memory(m) => return m.sync().map_err(StorageError::from),
            StorageKind::Python { obj, .. } => {
                Python::attach(|py| obj.call_method0(py, intern!(py, "sync")).map(|_| ()))
            }
        };
        result.map_err(|error| self.raised("sync", error))
    }
}
