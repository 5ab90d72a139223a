//! Argument checking at the boundary: Python values become Rust numbers or clear
//! `TypeError` / `ValueError` messages, never a panic or a silent wrap-around.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

/// A non-negative integer that fits in `u64`. Booleans are refused: `True` as a node id
/// or a tick count is almost certainly a mistake.
pub(crate) fn u64_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be an int, not {}",
            type_name(value)
        )));
    }
    value.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "`{name}` must be between 0 and 2**64 - 1, got {value}"
        ))
    })
}

/// `None` or a `u64`.
pub(crate) fn opt_u64_arg(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u64>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => u64_arg(v, name).map(Some),
    }
}

/// A `bool` (and only a `bool`).
pub(crate) fn bool_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    if !value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a bool, not {}",
            type_name(value)
        )));
    }
    value.extract::<bool>()
}

/// A probability: a float (or int) in `[0, 1]`.
pub(crate) fn probability_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>()
        || !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>())
    {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a float, not {}",
            type_name(value)
        )));
    }
    let p: f64 = value.extract()?;
    if !(0.0..=1.0).contains(&p) {
        return Err(PyValueError::new_err(format!(
            "`{name}` must be a probability in [0, 1], got {p}"
        )));
    }
    Ok(p)
}

/// A `str`.
pub(crate) fn str_arg(value: &Bound<'_, PyAny>, name: &str) -> PyResult<String> {
    if !value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a str, not {}",
            type_name(value)
        )));
    }
    value.extract()
}

/// The Python type name of `value`, for messages.
pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "an unknown type".to_string(), |n| n.to_string())
}

pub(crate) use rsm_consensus::registry::{OptionError, OptionValue};

/// Keyword options in the order given.
pub(crate) type Options = Vec<(String, OptionValue)>;

/// Collect `**options` (or an `options=` dict) into plain data.
pub(crate) fn options_arg(options: Option<&Bound<'_, PyDict>>) -> PyResult<Options> {
    let mut out = Options::new();
    let Some(options) = options else {
        return Ok(out);
    };
    for (k, v) in options.iter() {
        let name = str_arg(&k, "option name")?;
        let value = if v.is_instance_of::<PyBool>() {
            OptionValue::Bool(bool_arg(&v, &name)?)
        } else {
            OptionValue::Int(u64_arg(&v, &name)?)
        };
        out.push((name, value));
    }
    Ok(out)
}

/// The Python exception for options that do not configure a protocol: `TypeError` for
/// an unknown option or a value of the wrong kind, `ValueError` for a value refused.
pub(crate) fn option_error(e: OptionError) -> PyErr {
    match e {
        OptionError::Unknown { .. } | OptionError::Type { .. } => {
            PyTypeError::new_err(e.to_string())
        }
        OptionError::Value(_) => PyValueError::new_err(e.to_string()),
    }
}
