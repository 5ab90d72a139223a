//! `rsm.Durable`: what a replica made durable, kept by a Python host and handed back to
//! `restore` after a restart. Writes are applied with the contract's reference semantics
//! (`rsm_core::Durable::apply`), so a Python host stores exactly what a Rust one would.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rsm_core::{decode_body, encode_body};

use crate::args::type_name;
use crate::effects::Persist;
use crate::values::{Entry, HardState, SnapshotMeta, value_methods};

/// A replica's durable image: hard state, snapshot and log. Apply every `Persist` effect
/// to it (in order) to keep it current; `to_bytes()` / `from_bytes()` store it whole.
#[pyclass(module = "rsm", eq)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Durable {
    pub(crate) inner: rsm_core::Durable,
}

value_methods!(Durable, [hard_state, snapshot_index, last_index], {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Apply one write: a `Persist` effect or the bytes of its `data`. Raises
    /// `ValueError` (and changes nothing) if the write is malformed or does not fit the
    /// log (a gap, or an index below the snapshot).
    fn apply(&mut self, write: &Bound<'_, PyAny>) -> PyResult<()> {
        let decoded;
        let op = if let Ok(p) = write.cast::<Persist>() {
            &p.get().op
        } else if let Ok(b) = write.cast::<PyBytes>() {
            decoded = decode_body::<rsm_core::Persist>(b.as_bytes())
                .map_err(|e| PyValueError::new_err(format!("malformed persist record: {e}")))?;
            &decoded
        } else {
            return Err(PyTypeError::new_err(format!(
                "expected a Persist effect or its bytes, not {}",
                type_name(write)
            )));
        };
        self.inner
            .apply(op)
            .map_err(|e| PyValueError::new_err(format!("persist refused: {e}")))
    }

    /// The whole image encoded as bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        encode_body(&self.inner, &mut out).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Rebuild an image from `to_bytes()` output; `ValueError` if it does not decode.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        decode_body::<rsm_core::Durable>(data)
            .map(|inner| Self { inner })
            .map_err(|e| PyValueError::new_err(format!("malformed durable image: {e}")))
    }

    /// The last hard state written.
    #[getter]
    fn hard_state(&self) -> HardState {
        HardState {
            inner: self.inner.hard_state.clone(),
        }
    }

    /// The durable log after the snapshot.
    #[getter]
    fn entries(&self) -> Vec<Entry> {
        self.inner
            .entries
            .iter()
            .map(|e| Entry { inner: e.clone() })
            .collect()
    }

    /// The last snapshot written, as `(meta, data)`, or `None`.
    #[getter]
    fn snapshot<'py>(&self, py: Python<'py>) -> Option<(SnapshotMeta, Bound<'py, PyBytes>)> {
        self.inner.snapshot.as_ref().map(|(meta, data)| {
            (
                SnapshotMeta {
                    inner: meta.clone(),
                },
                PyBytes::new(py, data),
            )
        })
    }

    /// The snapshot's last index, or 0.
    #[getter]
    fn snapshot_index(&self) -> u64 {
        self.inner.snapshot_index().0
    }

    /// The index of the last durable entry (or of the snapshot if the log is empty).
    #[getter]
    fn last_index(&self) -> u64 {
        self.inner.last_index().0
    }
});

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Durable>()
}
