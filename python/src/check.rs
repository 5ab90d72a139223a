//! The linearizability checker from Python: `rsm.Operation` records one client call,
//! `rsm.check(ops)` returns a `Verdict`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::time::Duration;

use rsm_check::{
    Budget, Call, CheckConfig, CheckMode, History, Operation as CoreOperation, Outcome, Ret,
    Verdict as CoreVerdict,
};

use crate::args::{bool_arg, opt_u64_arg, str_arg, type_name, u64_arg};
use crate::values::value_methods;

/// One client operation on a key-value register with its real-time interval.
///
/// `Operation(client, key, call, invoke, complete, *, value=None, expected=None,
/// new=None, swapped=None, outcome="ok")` where `call` is `"read"`, `"write"` or
/// `"cas"`. For a read, `value` is what it returned (`None`: absent); for a write, the
/// value written (`None`: delete); a compare-and-swap names `expected` and `new` and, when
/// it completed, whether it `swapped`. `outcome` is `"ok"`, `"fail"` (definitely did not
/// happen) or `"indeterminate"` (may have happened any time after `invoke`; `complete` is
/// then ignored). Times are any monotonic integers.
#[pyclass(module = "rsm", frozen, eq, hash, from_py_object)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Operation {
    pub(crate) inner: CoreOperation,
}

value_methods!(
    Operation,
    [
        client, key, call, value, expected, new, swapped, invoke, complete, outcome
    ],
    {
        #[new]
        #[pyo3(signature = (client, key, call, invoke, complete, *, value = None, expected = None, new = None, swapped = None, outcome = None))]
        #[allow(clippy::too_many_arguments)]
        fn py_new(
            client: &Bound<'_, PyAny>,
            key: &Bound<'_, PyAny>,
            call: &Bound<'_, PyAny>,
            invoke: &Bound<'_, PyAny>,
            complete: &Bound<'_, PyAny>,
            value: Option<&Bound<'_, PyAny>>,
            expected: Option<&Bound<'_, PyAny>>,
            new: Option<&Bound<'_, PyAny>>,
            swapped: Option<&Bound<'_, PyAny>>,
            outcome: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<Self> {
            let outcome_name = match outcome {
                None => "ok".to_string(),
                Some(o) => str_arg(o, "outcome")?,
            };
            let call_name = str_arg(call, "call")?;
            let value = opt_u64_arg(value, "value")?;
            let swapped = match swapped {
                Some(s) if !s.is_none() => Some(bool_arg(s, "swapped")?),
                _ => None,
            };
            let (call, ret) = match call_name.as_str() {
                "read" => (Call::Read, Ret::Read(value)),
                "write" => (Call::Write(value), Ret::Written),
                "cas" => {
                    let call = Call::Cas {
                        expected: opt_u64_arg(expected, "expected")?,
                        new: opt_u64_arg(new, "new")?,
                    };
                    let ret = match (swapped, outcome_name.as_str()) {
                        (Some(s), _) => Ret::Cas(s),
                        (None, "ok") => {
                            return Err(PyValueError::new_err(
                                "a completed compare-and-swap needs `swapped=True` or `swapped=False`",
                            ));
                        }
                        (None, _) => Ret::Cas(false),
                    };
                    (call, ret)
                }
                other => {
                    return Err(PyValueError::new_err(format!(
                        "`call` must be \"read\", \"write\" or \"cas\", got {other:?}"
                    )));
                }
            };
            if call_name != "cas"
                && (expected.is_some_and(|e| !e.is_none())
                    || new.is_some_and(|n| !n.is_none())
                    || swapped.is_some())
            {
                return Err(PyValueError::new_err(
                    "`expected`, `new` and `swapped` belong to a \"cas\" call",
                ));
            }
            let outcome = match outcome_name.as_str() {
                "ok" => Outcome::Ok(ret),
                "fail" => Outcome::Fail,
                "indeterminate" => Outcome::Indeterminate,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "`outcome` must be \"ok\", \"fail\" or \"indeterminate\", got {other:?}"
                    )));
                }
            };
            if call == Call::Read && outcome != Outcome::Ok(ret) && value.is_some() {
                return Err(PyValueError::new_err(
                    "a read that did not complete has no `value`",
                ));
            }
            let invoke = u64_arg(invoke, "invoke")?;
            let complete = if outcome == Outcome::Indeterminate && complete.is_none() {
                u64::MAX
            } else {
                u64_arg(complete, "complete")?
            };
            if complete < invoke {
                return Err(PyValueError::new_err(format!(
                    "`complete` ({complete}) is before `invoke` ({invoke})"
                )));
            }
            Ok(Self {
                inner: CoreOperation {
                    client: u64_arg(client, "client")?,
                    key: u64_arg(key, "key")?,
                    call,
                    invoke,
                    complete,
                    outcome,
                },
            })
        }

        /// The client that issued it.
        #[getter]
        fn client(&self) -> u64 {
            self.inner.client
        }

        /// The key.
        #[getter]
        fn key(&self) -> u64 {
            self.inner.key
        }

        /// `"read"`, `"write"` or `"cas"`.
        #[getter]
        fn call(&self) -> &'static str {
            match self.inner.call {
                Call::Read => "read",
                Call::Write(_) => "write",
                Call::Cas { .. } => "cas",
            }
        }

        /// A read's result (when it completed) or a write's value; `None` otherwise.
        #[getter]
        fn value(&self) -> Option<u64> {
            match (self.inner.call, self.inner.outcome) {
                (Call::Write(v), _) => v,
                (Call::Read, Outcome::Ok(Ret::Read(v))) => v,
                _ => None,
            }
        }

        /// A compare-and-swap's expected value.
        #[getter]
        fn expected(&self) -> Option<u64> {
            match self.inner.call {
                Call::Cas { expected, .. } => expected,
                _ => None,
            }
        }

        /// A compare-and-swap's new value.
        #[getter(new)]
        fn new_value(&self) -> Option<u64> {
            match self.inner.call {
                Call::Cas { new, .. } => new,
                _ => None,
            }
        }

        /// Whether a completed compare-and-swap swapped; `None` otherwise.
        #[getter]
        fn swapped(&self) -> Option<bool> {
            match self.inner.outcome {
                Outcome::Ok(Ret::Cas(s)) => Some(s),
                _ => None,
            }
        }

        /// When it was invoked.
        #[getter]
        fn invoke(&self) -> u64 {
            self.inner.invoke
        }

        /// When it completed (meaningless for an indeterminate operation).
        #[getter]
        fn complete(&self) -> u64 {
            self.inner.complete
        }

        /// `"ok"`, `"fail"` or `"indeterminate"`.
        #[getter]
        fn outcome(&self) -> &'static str {
            match self.inner.outcome {
                Outcome::Ok(_) => "ok",
                Outcome::Fail => "fail",
                Outcome::Indeterminate => "indeterminate",
            }
        }

        fn __str__(&self) -> String {
            self.inner.to_string()
        }
    }
);

/// The checker's answer. `kind` is `"linearizable"`, `"not_linearizable"`, `"malformed"`
/// or `"inconclusive"` (a search budget ran out: not a pass); `bool(verdict)` is true only
/// when linearizable. For a failure, `key` and `ops` give the smallest failing sub-history
/// found on one key, `stuck` the operation no linearization completes, and `html()` draws
/// it; `str(verdict)` prints it for a person.
#[pyclass(module = "rsm", frozen)]
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    inner: CoreVerdict,
}

value_methods!(Verdict, [kind, key, ops], {
    /// `"linearizable"`, `"not_linearizable"`, `"malformed"` or `"inconclusive"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner {
            CoreVerdict::Linearizable => "linearizable",
            CoreVerdict::NotLinearizable(_) => "not_linearizable",
            CoreVerdict::Malformed { .. } => "malformed",
            CoreVerdict::Inconclusive { .. } => "inconclusive",
        }
    }

    /// Whether every key's operations have a linearization.
    #[getter]
    fn linearizable(&self) -> bool {
        self.inner.is_linearizable()
    }

    /// The key the verdict is about, if any.
    #[getter]
    fn key(&self) -> Option<u64> {
        match &self.inner {
            CoreVerdict::NotLinearizable(f) => Some(f.key),
            CoreVerdict::Malformed { op } => Some(op.key),
            CoreVerdict::Inconclusive { key, .. } => Some(*key),
            CoreVerdict::Linearizable => None,
        }
    }

    /// The operations that admit no linearization (or the malformed operation).
    #[getter]
    fn ops(&self) -> Vec<Operation> {
        match &self.inner {
            CoreVerdict::NotLinearizable(f) => {
                f.ops.iter().map(|&inner| Operation { inner }).collect()
            }
            CoreVerdict::Malformed { op } => vec![Operation { inner: *op }],
            _ => Vec::new(),
        }
    }

    /// For `"inconclusive"`: the budget that ran out (`"steps"`, `"memory"` or `"time"`).
    #[getter]
    fn budget(&self) -> Option<&'static str> {
        match &self.inner {
            CoreVerdict::Inconclusive { budget, .. } => Some(match budget {
                Budget::Steps => "steps",
                Budget::Memory => "memory",
                Budget::Time => "time",
            }),
            _ => None,
        }
    }

    /// For `"not_linearizable"`: the operation no linearization completes.
    #[getter]
    fn stuck(&self) -> Option<Operation> {
        match &self.inner {
            CoreVerdict::NotLinearizable(f) => f.stuck.map(|inner| Operation { inner }),
            _ => None,
        }
    }

    /// For `"not_linearizable"`: the counterexample as one self-contained HTML page
    /// (client lanes, operation bars, the stuck completion marked); `None` otherwise.
    #[pyo3(signature = (title = "rsm counterexample"))]
    fn html(&self, title: &str) -> PyResult<Option<String>> {
        let CoreVerdict::NotLinearizable(f) = &self.inner else {
            return Ok(None);
        };
        let mut page = Vec::new();
        rsm_check::write_html(title, f, &mut page)
            .map_err(|e| PyValueError::new_err(format!("rendering the counterexample: {e}")))?;
        String::from_utf8(page)
            .map(Some)
            .map_err(|e| PyValueError::new_err(format!("rendering the counterexample: {e}")))
    }

    fn __bool__(&self) -> bool {
        self.inner.is_linearizable()
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }
});

/// Operations from any iterable of `Operation`.
pub(crate) fn history_arg(ops: &Bound<'_, PyAny>) -> PyResult<History> {
    let mut history = History::new();
    let iter = ops.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "check expects an iterable of Operation, not {}",
            type_name(ops)
        ))
    })?;
    for item in iter {
        let item = item?;
        let op = item.cast::<Operation>().map_err(|_| {
            PyTypeError::new_err(format!(
                "check expects Operation items, not {}",
                type_name(&item)
            ))
        })?;
        history.push(op.get().inner);
    }
    Ok(history)
}

/// Check a history of `Operation`s for linearizability (per key, under a register
/// model); returns a `Verdict`. `memory_bytes_max` bounds the search's memory and
/// `time_max` (seconds) its time: running out gives an `"inconclusive"` verdict, which is
/// not a pass. `shrink=False` skips shrinking a counterexample. The GIL is released while
/// the search runs.
#[pyfunction]
#[pyo3(signature = (history, *, memory_bytes_max = None, time_max = None, shrink = None))]
fn check(
    py: Python<'_>,
    history: &Bound<'_, PyAny>,
    memory_bytes_max: Option<&Bound<'_, PyAny>>,
    time_max: Option<&Bound<'_, PyAny>>,
    shrink: Option<&Bound<'_, PyAny>>,
) -> PyResult<Verdict> {
    let history = history_arg(history)?;
    let mut config = CheckConfig::default();
    if let Some(m) = memory_bytes_max.filter(|m| !m.is_none()) {
        config.memory_bytes_max = u64_arg(m, "memory_bytes_max")?;
    }
    if let Some(t) = time_max.filter(|t| !t.is_none()) {
        let secs: f64 = t.extract().map_err(|_| {
            PyTypeError::new_err(format!("`time_max` must be seconds, not {}", type_name(t)))
        })?;
        config.time_max = Some(Duration::try_from_secs_f64(secs).map_err(|_| {
            PyValueError::new_err(format!(
                "`time_max` must be a non-negative number, got {secs}"
            ))
        })?);
    }
    if let Some(s) = shrink.filter(|s| !s.is_none())
        && !bool_arg(s, "shrink")?
    {
        config.mode = CheckMode::Verdict;
    }
    let inner = py.detach(|| {
        std::panic::catch_unwind(|| rsm_check::check_with(&history, &config))
            .map_err(|p| crate::host::panic_message(&*p))
    });
    inner
        .map(|inner| Verdict { inner })
        .map_err(pyo3::panic::PanicException::new_err)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Operation>()?;
    m.add_class::<Verdict>()?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    Ok(())
}
