//! rsm-python: the Python module `rsm`.
//!
//! It lets Python code drive rsm's deterministic automata, its simulator and its
//! linearizability checker without writing Rust. The module never opens a socket, reads
//! a clock or spawns a thread: a Python host owns the world, exactly as a Rust host would,
//! and messages cross the boundary as opaque `bytes` (encoded with
//! [`rsm_core::encode_body`]) so Python can ship them over any network.
//!
//! Read first: `node` (`rsm.Host`: one node of any registered protocol run by
//! [`rsm_core::Host`], the reference host, with the user's state machine and storage as
//! Python objects, see `machine`), then `host` (one generic wrapper that turns any
//! [`rsm_core::Replica`] into a Python class stepped by hand, with panic poisoning and
//! GIL-free batches), `inputs` and `effects` (the vocabulary as small frozen Python
//! classes), and `simulate` (the simulator and checker entry points). A protocol in the
//! registry is reachable through `rsm.Host` and `rsm.simulate` with no change here; a class
//! that steps it by hand takes a [`host::Protocol`] impl and one `protocol_class!` line, as
//! `raft` shows.
//!
//! The module is built by maturin (`python/pyproject.toml`); its behaviour is tested from
//! Python by the pytest suite in `python/tests`.

mod args;
mod check;
mod durable;
mod effects;
mod host;
mod inputs;
mod machine;
mod node;
mod paxos;
mod raft;
mod simulate;
mod values;
mod vsr;

use pyo3::prelude::*;

/// Register every class and function of `rsm`. The Python package `rsm` re-exports them.
#[pymodule]
fn _rsm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "PanicException",
        py.get_type::<pyo3::panic::PanicException>(),
    )?;
    m.add("PoisonedError", py.get_type::<host::PoisonedError>())?;

    values::register(m)?;
    inputs::register(m)?;
    effects::register(m)?;
    durable::register(m)?;
    raft::register(m)?;
    paxos::register(m)?;
    vsr::register(m)?;
    node::register(m)?;
    check::register(m)?;
    simulate::register(m)?;
    Ok(())
}
