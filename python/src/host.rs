//! One generic wrapper that turns any [`Replica`] into a Python class stepped by hand
//! (`rsm.Raft`): the caller executes the effects. It is not a host: `rsm.Host` (module
//! `node`) runs a node through the reference host instead.
//!
//! [`Host`] owns the replica and a reusable effect buffer. Every step runs inside
//! `catch_unwind`: a panic surfaces as `rsm.PanicException` and *poisons* the host, which
//! drops the replica, because a replica interrupted half-way through a transition may
//! break invariants the next input relies on. A poisoned host raises `rsm.PoisonedError`
//! on every later call; rebuild it from durable state with `restore`.
//!
//! Inputs are converted (and messages decoded) before the replica sees any of them, so a
//! wrong argument or a malformed message, even in the middle of a batch, raises and leaves
//! the replica exactly as it was. Batches run with the GIL released.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::PyList;
use rsm_core::{Durable, Effect, Input, Membership, NodeId, Replica};

use crate::args::{OptionError, Options, option_error};
use crate::effects::effects_to_py;
use crate::inputs::input_from_py;

create_exception!(
    rsm,
    PoisonedError,
    PyRuntimeError,
    "A replica panicked earlier and was discarded; rebuild it from durable state with restore()."
);

/// Inputs one `step_many` call accepts at most, so a runaway producer fails loudly
/// instead of exhausting memory with effects.
pub(crate) const BATCH_INPUTS_MAX: usize = 1 << 20;

/// What the module needs to know about a protocol beyond [`Replica`].
pub(crate) trait Protocol: Replica<Message: Send> + Send + Sync + Sized + 'static {
    /// The Python class name.
    const NAME: &'static str;

    /// A configuration from the identity and keyword options. Plain data in and out, so
    /// the simulator can build configurations without the GIL.
    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<Self::Config, OptionError>;
}

/// A replica with its effect buffer, or nothing once poisoned.
pub(crate) struct Host<R: Protocol> {
    replica: Option<R>,
    /// Why the replica was discarded.
    poison: Option<String>,
    out: Vec<Effect<R::Message>>,
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

impl<R: Protocol> Host<R> {
    /// Rebuild a replica from `durable` (the default image for a new one).
    pub(crate) fn restore(config: R::Config, durable: Durable) -> PyResult<Self> {
        let replica = catch_unwind(AssertUnwindSafe(|| R::restore(config, durable)))
            .map_err(|p| PanicException::new_err(panic_message(&*p)))?
            .map_err(|e| PyValueError::new_err(format!("cannot restore {}: {e}", R::NAME)))?;
        Ok(Self {
            replica: Some(replica),
            poison: None,
            out: Vec::new(),
        })
    }

    fn replica(&self) -> PyResult<&R> {
        match &self.replica {
            Some(r) => Ok(r),
            None => Err(self.poisoned()),
        }
    }

    fn poisoned(&self) -> PyErr {
        PoisonedError::new_err(format!(
            "this {} replica panicked ({}) and was discarded; rebuild it with restore()",
            R::NAME,
            self.poison.as_deref().unwrap_or("unknown panic")
        ))
    }

    /// Run `f` on the replica, poisoning the host if it panics. Needs no GIL.
    fn guarded(
        &mut self,
        f: impl FnOnce(&mut R, &mut Vec<Effect<R::Message>>),
    ) -> Result<(), String> {
        let Some(replica) = self.replica.as_mut() else {
            return Err(String::new());
        };
        let out = &mut self.out;
        match catch_unwind(AssertUnwindSafe(|| f(replica, out))) {
            Ok(()) => Ok(()),
            Err(payload) => {
                let msg = panic_message(&*payload);
                self.replica = None;
                self.out.clear();
                self.poison = Some(msg.clone());
                Err(msg)
            }
        }
    }

    fn panicked(&self, msg: String) -> PyErr {
        if msg.is_empty() {
            self.poisoned()
        } else {
            PanicException::new_err(format!(
                "{} replica panicked and is now poisoned: {msg}",
                R::NAME
            ))
        }
    }

    /// Drain the effect buffer into a new Python list.
    fn take_effects<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        effects_to_py(py, self.out.drain(..), &list)?;
        Ok(list)
    }

    /// Feed one input; the effects it caused, in order.
    pub(crate) fn step<'py>(
        &mut self,
        py: Python<'py>,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.replica()?;
        let input = input_from_py::<R::Message>(input)?;
        self.guarded(|r, out| r.step(input, out))
            .map_err(|m| self.panicked(m))?;
        self.take_effects(py)
    }

    /// Feed many inputs in order with the GIL released; every effect, in order. All
    /// inputs are checked before the first is stepped.
    pub(crate) fn step_many<'py>(
        &mut self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.replica()?;
        let iter = inputs.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "step_many expects an iterable of inputs, not {}",
                crate::args::type_name(inputs)
            ))
        })?;
        let mut batch: Vec<Input<R::Message>> = Vec::with_capacity(inputs.len().unwrap_or(0));
        for item in iter {
            if batch.len() == BATCH_INPUTS_MAX {
                return Err(PyValueError::new_err(format!(
                    "a batch holds at most {BATCH_INPUTS_MAX} inputs"
                )));
            }
            batch.push(input_from_py::<R::Message>(&item?)?);
        }
        let outcome = py.detach(|| {
            self.guarded(|r, out| {
                for input in batch {
                    r.step(input, out);
                }
            })
        });
        outcome.map_err(|m| self.panicked(m))?;
        self.take_effects(py)
    }

    /// The replica's status.
    pub(crate) fn status(&self) -> PyResult<rsm_core::Status> {
        Ok(self.replica()?.status())
    }

    /// Panic inside the guard, exactly as a protocol bug would.
    pub(crate) fn panic_for_test(&mut self, message: String) -> PyResult<()> {
        self.replica()?;
        self.guarded(|_, _| panic!("{message}"))
            .map_err(|m| self.panicked(m))
    }
}

/// Define the Python class for one protocol: `protocol_class!(PyRaft, "Raft", Raft)`.
/// Everything but the docstring is shared, so a new protocol is one line here plus its
/// [`Protocol`] impl.
macro_rules! protocol_class {
    ($(#[$doc:meta])* $class:ident, $name:literal, $replica:ty) => {
        $(#[$doc])*
        #[pyclass(module = "rsm", name = $name)]
        pub(crate) struct $class {
            host: $crate::host::Host<$replica>,
        }

        impl $class {
            /// `durable` is `None` for a new replica, which must be in its membership.
            fn build(
                durable: Option<rsm_core::Durable>,
                id: &Bound<'_, PyAny>,
                members: &Bound<'_, PyAny>,
                seed: Option<&Bound<'_, PyAny>>,
                options: Option<&Bound<'_, pyo3::types::PyDict>>,
            ) -> PyResult<Self> {
                let fresh = durable.is_none();
                let durable = durable.unwrap_or_default();
                let config =
                    $crate::host::config_arg::<$replica>(id, members, seed, options, fresh)?;
                Ok(Self {
                    host: $crate::host::Host::restore(config, durable)?,
                })
            }
        }

        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = (id, members, *, seed = None, **options))]
            fn new(
                id: &Bound<'_, PyAny>,
                members: &Bound<'_, PyAny>,
                seed: Option<&Bound<'_, PyAny>>,
                options: Option<&Bound<'_, pyo3::types::PyDict>>,
            ) -> PyResult<Self> {
                Self::build(None, id, members, seed, options)
            }

            /// Rebuild a replica after a restart from what it made durable, with the same
            /// keyword arguments as the constructor. Raises `ValueError` if the durable
            /// image is inconsistent.
            #[staticmethod]
            #[pyo3(signature = (durable, id, members, *, seed = None, **options))]
            fn restore(
                durable: &$crate::durable::Durable,
                id: &Bound<'_, PyAny>,
                members: &Bound<'_, PyAny>,
                seed: Option<&Bound<'_, PyAny>>,
                options: Option<&Bound<'_, pyo3::types::PyDict>>,
            ) -> PyResult<Self> {
                Self::build(Some(durable.inner.clone()), id, members, seed, options)
            }

            /// Feed one input; returns the effects it caused, in the order the host must
            /// execute them. Protocol refusals come back as `Reject` effects.
            fn step<'py>(
                &mut self,
                py: Python<'py>,
                input: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, pyo3::types::PyList>> {
                self.host.step(py, input)
            }

            /// Feed many inputs in order, with the GIL released while the replica runs;
            /// returns every effect, in order. All inputs are checked (and messages
            /// decoded) first: if one is bad, nothing is stepped.
            fn step_many<'py>(
                &mut self,
                py: Python<'py>,
                inputs: &Bound<'py, PyAny>,
            ) -> PyResult<Bound<'py, pyo3::types::PyList>> {
                self.host.step_many(py, inputs)
            }

            /// The replica's current status.
            fn status(&self) -> PyResult<$crate::values::Status> {
                Ok($crate::values::Status {
                    inner: self.host.status()?,
                })
            }

            /// The replica's id.
            #[getter]
            fn id(&self) -> PyResult<u64> {
                Ok(self.host.status()?.id.0)
            }

            fn __repr__(&self) -> String {
                match self.host.status() {
                    Ok(s) => format!(
                        "{}(id={}, role='{}', epoch={}, commit={}, last_index={})",
                        $name,
                        s.id.0,
                        $crate::values::role_name(s.role),
                        s.epoch.0,
                        s.commit.0,
                        s.last_index.0
                    ),
                    Err(_) => format!("{}(<poisoned>)", $name),
                }
            }

            /// Panic inside the replica's guard, as a protocol bug would: for tests of
            /// how panics cross into Python (the replica is poisoned afterwards).
            fn _panic_for_test(&mut self, message: String) -> PyResult<()> {
                self.host.panic_for_test(message)
            }
        }
    };
}
pub(crate) use protocol_class;

/// The configuration for the constructor's arguments. `fresh`: a new replica (not one
/// restored from durable state), which must belong to its own membership.
pub(crate) fn config_arg<R: Protocol>(
    id: &Bound<'_, PyAny>,
    members: &Bound<'_, PyAny>,
    seed: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, pyo3::types::PyDict>>,
    fresh: bool,
) -> PyResult<R::Config> {
    let id = NodeId(crate::args::u64_arg(id, "id")?);
    let membership = crate::values::Membership::from_arg(members)?;
    if fresh {
        crate::values::check_member(id, &membership)?;
    }
    let seed = crate::args::opt_u64_arg(seed, "seed")?.unwrap_or(0);
    let options = crate::args::options_arg(options)?;
    R::config(id, membership, seed, &options).map_err(option_error)
}
