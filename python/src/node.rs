//! `rsm.Host`: one node of any registered protocol, run by rsm-core's reference host
//! ([`rsm_core::Host`]), so Python code never writes a host loop.
//!
//! The design, in short:
//!
//! - The protocol is picked by name through the registry
//!   ([`rsm_consensus::registry::visit`]); the node behind the class is type-erased
//!   ([`Node`]) with messages as `bytes`.
//! - The user brings the state machine: a Python object the host calls back, in log order,
//!   for each committed command (`apply`), and for snapshots (`snapshot`, `restore`) and
//!   reads (`query`); see [`crate::machine`].
//! - Storage is in memory (a `Durable` image, read back with `Host.durable()`) or a Python
//!   object with `write(persist)` and `sync()`. The caller decides when writes become
//!   durable: `sync()` (calls the storage's `sync`) or `persisted(seq)` (the caller's disk
//!   synced on its own). Sends that follow a write wait for it, as the host rule says.
//! - Outbound messages are drained as `(destination, bytes)` pairs; inbound ones go in as
//!   bytes and are decoded before the replica sees them (a malformed one raises
//!   `ValueError` and changes nothing).
//! - Client requests return a ticket at once; each ticket ends with exactly one `Outcome`
//!   (`ok`, `definite` or `indefinite`), polled with `outcome(ticket)` or collected with
//!   `take_outcomes()`. Refusals are outcomes, never exceptions.
//! - Exceptions: `TypeError` / `ValueError` for bad arguments; `rsm.HostError` when the
//!   node stops on a fatal error (storage failure, a callback that raised, a replica that
//!   broke the contract), with the callback's exception as its `__cause__`; a Rust panic
//!   raises `PanicException` and poisons the object (`PoisonedError` afterwards), every
//!   pending ticket then ends indefinite.

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use rsm_consensus::registry::{self, Visitor};
use rsm_core::{
    Bytes, ClientError, CodecError, CompletionOf, Durable, HostConfig, Input, Membership, NodeId,
    PersistSeq, Replica, Reply, RequestId, Status, decode_body, encode_body,
};

use crate::args::{opt_u64_arg, option_error, options_arg, str_arg, type_name, u64_arg};
use crate::host::{PoisonedError, panic_message};
use crate::machine::{Failure, PyMachine, PyStorage, PyValue, StorageError, StorageKind};
use crate::values::value_methods;

create_exception!(
    rsm,
    HostError,
    PyRuntimeError,
    "The node stopped on a fatal error (storage failure, a state machine or storage \
     callback that raised, a replica that broke the contract); its cause is attached."
);

/// Messages one `receive_many` call accepts at most, so a runaway producer fails loudly.
const RECEIVE_BATCH_MAX: usize = 1 << 20;

type Fatal = rsm_core::HostError<StorageError>;
type NodeCompletion = CompletionOf<PyMachine>;

/// Why a node call failed.
enum NodeError {
    /// A message did not decode; nothing was fed.
    Malformed { from: NodeId, error: CodecError },
    /// The host stopped.
    Fatal(Fatal),
}

impl From<Fatal> for NodeError {
    fn from(e: Fatal) -> Self {
        NodeError::Fatal(e)
    }
}

/// A reference host of some protocol, with messages as bytes.
trait Node: Send + Sync {
    fn tick(&mut self) -> Result<(), Fatal>;
    /// Decode every message, then feed them in order.
    fn receive(&mut self, messages: &[(NodeId, Bytes)]) -> Result<(), NodeError>;
    fn propose(&mut self, ticket: RequestId, command: Bytes) -> Result<(), ClientError>;
    fn read(&mut self, ticket: RequestId, query: PyValue) -> Result<(), ClientError>;
    fn reconfigure(&mut self, ticket: RequestId, m: Membership) -> Result<(), ClientError>;
    fn transfer_leadership(&mut self, to: NodeId) -> Result<(), Fatal>;
    fn campaign(&mut self) -> Result<(), Fatal>;
    fn sync(&mut self) -> Result<(), Fatal>;
    fn persisted(&mut self, through: PersistSeq) -> Result<(), Fatal>;
    fn stop(&mut self);
    fn check(&mut self) -> Result<(), Fatal>;
    /// Append the released sends, encoded, to `out` as `(to, bytes)` tuples.
    fn drain_sends(&mut self, py: Python<'_>, out: &Bound<'_, PyList>) -> PyResult<()>;
    fn drain_completions(&mut self, out: &mut Vec<NodeCompletion>);
    fn status(&self) -> Status;
    fn applied_index(&self) -> u64;
    fn written(&self) -> u64;
    fn durable(&self) -> u64;
    fn held_sends(&self) -> usize;
    fn pending_requests(&self) -> usize;
    fn is_stopped(&self) -> bool;
    fn stats(&self) -> rsm_core::HostStats;
    fn machine(&self) -> &PyMachine;
    fn storage(&self) -> &PyStorage;
}

type RefHost<R> = rsm_core::Host<R, PyStorage, PyMachine>;

impl<R> Node for RefHost<R>
where
    R: Replica<Message: Send + Sync> + Send + Sync,
{
    fn tick(&mut self) -> Result<(), Fatal> {
        rsm_core::Host::tick(self)
    }

    fn receive(&mut self, messages: &[(NodeId, Bytes)]) -> Result<(), NodeError> {
        let mut decoded = Vec::with_capacity(messages.len());
        for (from, bytes) in messages {
            let msg = decode_body::<R::Message>(bytes)
                .map_err(|error| NodeError::Malformed { from: *from, error })?;
            decoded.push((*from, msg));
        }
        for (from, msg) in decoded {
            rsm_core::Host::receive(self, from, msg)?;
        }
        Ok(())
    }

    fn propose(&mut self, ticket: RequestId, command: Bytes) -> Result<(), ClientError> {
        self.propose_as(ticket, command).map(|_| ())
    }

    fn read(&mut self, ticket: RequestId, query: PyValue) -> Result<(), ClientError> {
        self.read_as(ticket, query).map(|_| ())
    }

    fn reconfigure(&mut self, ticket: RequestId, m: Membership) -> Result<(), ClientError> {
        self.reconfigure_as(ticket, m).map(|_| ())
    }

    fn transfer_leadership(&mut self, to: NodeId) -> Result<(), Fatal> {
        rsm_core::Host::transfer_leadership(self, to)
    }

    fn campaign(&mut self) -> Result<(), Fatal> {
        self.input(Input::Campaign)
    }

    fn sync(&mut self) -> Result<(), Fatal> {
        rsm_core::Host::sync(self)
    }

    fn persisted(&mut self, through: PersistSeq) -> Result<(), Fatal> {
        rsm_core::Host::persisted(self, through)
    }

    fn stop(&mut self) {
        rsm_core::Host::stop(self)
    }

    fn check(&mut self) -> Result<(), Fatal> {
        rsm_core::Host::check(self)
    }

    fn drain_sends(&mut self, py: Python<'_>, out: &Bound<'_, PyList>) -> PyResult<()> {
        let mut buf = Vec::new();
        for (to, msg) in rsm_core::Host::drain_sends(self) {
            buf.clear();
            encode_body(&msg, &mut buf).map_err(|e| PyValueError::new_err(e.to_string()))?;
            out.append((to.0, PyBytes::new(py, &buf)))?;
        }
        Ok(())
    }

    fn drain_completions(&mut self, out: &mut Vec<NodeCompletion>) {
        out.extend(rsm_core::Host::drain_completions(self));
    }

    fn status(&self) -> Status {
        rsm_core::Host::status(self)
    }

    fn applied_index(&self) -> u64 {
        rsm_core::Host::applied_index(self).0
    }

    fn written(&self) -> u64 {
        rsm_core::Host::written(self).0
    }

    fn durable(&self) -> u64 {
        rsm_core::Host::durable(self).0
    }

    fn held_sends(&self) -> usize {
        rsm_core::Host::held_sends(self)
    }

    fn pending_requests(&self) -> usize {
        rsm_core::Host::pending_requests(self)
    }

    fn is_stopped(&self) -> bool {
        rsm_core::Host::is_stopped(self)
    }

    fn stats(&self) -> rsm_core::HostStats {
        rsm_core::Host::stats(self)
    }

    fn machine(&self) -> &PyMachine {
        rsm_core::Host::machine(self)
    }

    fn storage(&self) -> &PyStorage {
        rsm_core::Host::storage(self)
    }
}

/// Builds a node for the protocol the registry visits.
struct Build {
    id: NodeId,
    membership: Membership,
    seed: u64,
    options: crate::args::Options,
    /// `Some` to restart from durable state.
    durable: Option<Durable>,
    host_config: HostConfig,
    parts: Option<(PyStorage, PyMachine)>,
    built: Option<PyResult<Box<dyn Node>>>,
}

impl Visitor for Build {
    fn visit<P: registry::Protocol>(&mut self) {
        let built = self.build::<P>();
        self.built = Some(built);
    }
}

impl Build {
    fn build<P: registry::Protocol>(&mut self) -> PyResult<Box<dyn Node>> {
        let config = P::config(self.id, self.membership.clone(), self.seed, &self.options)
            .map_err(option_error)?;
        let (storage, machine) = self
            .parts
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("a node is built once"))?;
        let durable = self.durable.take().unwrap_or_default();
        let host =
            RefHost::<P::Replica>::restore(self.host_config, config, durable, storage, machine)
                .map_err(|e| {
                    PyValueError::new_err(format!("cannot start a {} node: {e}", P::NAME))
                })?;
        Ok(Box::new(host))
    }
}

/// How one request ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ending {
    Ok,
    Definite,
    Indefinite,
}

/// How a client request ended: `status` is `"ok"`, `"definite"` (it did not and will not
/// take effect) or `"indefinite"` (it may have taken effect, or may still).
///
/// For a command, `value` is what the state machine's `apply` returned; for a read, what
/// `query` returned (or, when `query` raised, the exception, with `reason` `"query_failed"`).
/// `index` is where the command committed or the read was served. A failure names its
/// `reason`: a refusal of the replica (`"not_leader"`, `"busy"`, ... as in `Reject.reason`),
/// `"superseded"`, `"not_running"`, `"timeout"`, `"shutdown"`, `"outcome_unknown"`,
/// `"state_machine_failed"` or `"query_failed"`; `leader` is the leader to retry at, when known.
#[pyclass(module = "rsm", frozen)]
pub(crate) struct Outcome {
    ticket: u64,
    status: Ending,
    value: Option<Py<PyAny>>,
    index: Option<u64>,
    reason: Option<&'static str>,
    leader: Option<u64>,
    detail: String,
}

value_methods!(Outcome, [ticket, status, value, index, reason], {
    /// The ticket the request was given.
    #[getter]
    fn ticket(&self) -> u64 {
        self.ticket
    }

    /// `"ok"`, `"definite"` or `"indefinite"`.
    #[getter]
    fn status(&self) -> &'static str {
        match self.status {
            Ending::Ok => "ok",
            Ending::Definite => "definite",
            Ending::Indefinite => "indefinite",
        }
    }

    /// True when the request took effect.
    #[getter]
    fn ok(&self) -> bool {
        self.status == Ending::Ok
    }

    /// True when the request certainly did not and will not take effect.
    #[getter]
    fn definite(&self) -> bool {
        self.status == Ending::Definite
    }

    /// The state machine's response or answer (`None` for a failure or a membership change).
    #[getter]
    fn value(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.value.as_ref().map(|v| v.clone_ref(py))
    }

    /// Where the command committed or the read was served, when known.
    #[getter]
    fn index(&self) -> Option<u64> {
        self.index
    }

    /// Why the request failed; `None` when it succeeded.
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.reason
    }

    /// The leader to retry at, when the failure names one.
    #[getter]
    fn leader(&self) -> Option<u64> {
        self.leader
    }

    /// The outcome explained for a person.
    #[getter]
    fn detail(&self) -> &str {
        &self.detail
    }
});

impl Outcome {
    fn failed(ticket: u64, error: &ClientError) -> Self {
        let (status, reason) = match error {
            ClientError::Rejected(reason) => (
                if reason.is_definite() {
                    Ending::Definite
                } else {
                    Ending::Indefinite
                },
                crate::effects::reject_reason_name(reason),
            ),
            ClientError::Superseded { .. } => (Ending::Definite, "superseded"),
            ClientError::NotRunning => (Ending::Definite, "not_running"),
            ClientError::Timeout => (Ending::Indefinite, "timeout"),
            ClientError::Shutdown => (Ending::Indefinite, "shutdown"),
            ClientError::OutcomeUnknown { .. } => (Ending::Indefinite, "outcome_unknown"),
        };
        let index = match error {
            ClientError::Superseded { index } | ClientError::OutcomeUnknown { index } => {
                Some(index.0)
            }
            _ => None,
        };
        Self {
            ticket,
            status,
            value: None,
            index,
            reason: Some(reason),
            leader: error.leader_hint().map(|n| n.0),
            detail: error.to_string(),
        }
    }

    fn succeeded(ticket: u64, index: u64, value: Option<Py<PyAny>>, detail: String) -> Self {
        Self {
            ticket,
            status: Ending::Ok,
            value,
            index: Some(index),
            reason: None,
            leader: None,
            detail,
        }
    }

    fn from_completion(c: NodeCompletion) -> Self {
        let ticket = c.ticket.0;
        match c.result {
            Err(error) => Self::failed(ticket, &error),
            Ok(Reply::Applied {
                index,
                response: Some(response),
            }) => Self::succeeded(
                ticket,
                index.0,
                Some(response.0),
                format!("committed at index {index}"),
            ),
            Ok(Reply::Applied {
                index,
                response: None,
            }) => Self {
                ticket,
                status: Ending::Indefinite,
                value: None,
                index: Some(index.0),
                reason: Some("state_machine_failed"),
                leader: None,
                detail: format!("committed at index {index}, but the state machine's apply raised"),
            },
            Ok(Reply::Read {
                index,
                answer: Ok(answer),
            }) => Self::succeeded(
                ticket,
                index.0,
                Some(answer.0),
                format!("read served at index {index}"),
            ),
            Ok(Reply::Read {
                index,
                answer: Err(exception),
            }) => Self {
                ticket,
                // A read changes nothing, so a failed query certainly had no effect.
                status: Ending::Definite,
                value: Some(exception.0),
                index: Some(index.0),
                reason: Some("query_failed"),
                leader: None,
                detail: format!("the state machine's query raised at index {index}"),
            },
            Ok(Reply::Reconfigured { index }) => Self::succeeded(
                ticket,
                index.0,
                None,
                format!("membership change committed at index {index}"),
            ),
        }
    }
}

/// One node of a registered protocol, run by the reference host: the Python side only
/// moves bytes between nodes, ticks the clock, decides when writes are durable and asks.
///
/// `Host(protocol, id, members, *, machine, storage=None, durable=None, seed=0,
/// options=None, request_timeout_ticks=1000, pending_requests_max=4096,
/// held_sends_max=1048576)` (a limit given as `None` takes its default).
/// `protocol` is a registered name (`"raft"`); `members` an iterable of voter ids or a
/// `Membership`; `options` a dict of the protocol's options (as `Raft`'s keywords).
/// `machine` is the replicated state machine: `apply(index, command) -> response`,
/// `snapshot() -> bytes`, `restore(data)`, and `query(query) -> answer` for reads.
/// `storage` is `None` (in memory) or an object with `write(persist)` and `sync()`.
/// To restart a node, pass what it made durable as `durable` (a `Durable`) and an empty
/// machine: the machine is restored from the durable snapshot, if any, and the replica
/// replays the rest; storage in memory starts as that image. `ValueError` if the image is
/// inconsistent or the machine's `restore` raised (its exception is the cause).
#[pyclass(module = "rsm", name = "Host")]
pub(crate) struct PyHost {
    node: Option<Box<dyn Node>>,
    protocol: &'static str,
    id: u64,
    /// Why the node was discarded (a panic).
    poison: Option<String>,
    failure: Failure,
    /// The last ticket handed out (tickets grow, as the reference host requires).
    last_ticket: u64,
    /// Tickets handed out and not yet ended.
    pending: BTreeSet<u64>,
    /// Ended tickets whose outcome was not taken yet.
    done: HashMap<u64, Py<Outcome>>,
    /// The order tickets ended in; it may still name tickets taken one by one since
    /// (skipped when read, and compacted once they outnumber the rest).
    done_order: Vec<u64>,
    completions: Vec<NodeCompletion>,
}

/// The protocol's registered name, as a `&'static str`.
fn protocol_name(name: &str) -> PyResult<&'static str> {
    registry::NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| {
            PyValueError::new_err(
                registry::UnknownProtocol {
                    name: name.to_string(),
                }
                .to_string(),
            )
        })
}

/// Every argument of the constructor and of `restore`.
struct Args<'a, 'py> {
    protocol: &'a Bound<'py, PyAny>,
    id: &'a Bound<'py, PyAny>,
    members: &'a Bound<'py, PyAny>,
    machine: &'a Bound<'py, PyAny>,
    storage: Option<&'a Bound<'py, PyAny>>,
    seed: Option<&'a Bound<'py, PyAny>>,
    options: Option<&'a Bound<'py, PyAny>>,
    request_timeout_ticks: Option<&'a Bound<'py, PyAny>>,
    pending_requests_max: Option<&'a Bound<'py, PyAny>>,
    held_sends_max: Option<&'a Bound<'py, PyAny>>,
}

fn positive(value: Option<&Bound<'_, PyAny>>, name: &str, default: u64) -> PyResult<u64> {
    match opt_u64_arg(value, name)? {
        None => Ok(default),
        Some(0) => Err(PyValueError::new_err(format!(
            "`{name}` must be at least 1"
        ))),
        Some(v) => Ok(v),
    }
}

/// A bound that counts things in memory (a `usize`).
fn positive_count(value: Option<&Bound<'_, PyAny>>, name: &str, default: usize) -> PyResult<usize> {
    let v = positive(value, name, u64::try_from(default).unwrap_or(u64::MAX))?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

impl PyHost {
    fn build(args: Args<'_, '_>, durable: Option<Durable>) -> PyResult<Self> {
        let py = args.protocol.py();
        let protocol = protocol_name(&str_arg(args.protocol, "protocol")?)?;
        let id = u64_arg(args.id, "id")?;
        let membership = crate::values::Membership::from_arg(args.members)?;
        if durable.is_none() {
            crate::values::check_member(NodeId(id), &membership)?;
        }
        let seed = opt_u64_arg(args.seed, "seed")?.unwrap_or(0);
        let options = match args.options {
            None => Vec::new(),
            Some(o) if o.is_none() => Vec::new(),
            Some(o) => {
                let dict = o.cast::<PyDict>().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "`options` must be a dict, not {}",
                        type_name(o)
                    ))
                })?;
                options_arg(Some(dict))?
            }
        };
        let defaults = HostConfig::default();
        let host_config = HostConfig {
            request_timeout_ticks: positive(
                args.request_timeout_ticks,
                "request_timeout_ticks",
                defaults.request_timeout_ticks,
            )?,
            pending_requests_max: positive_count(
                args.pending_requests_max,
                "pending_requests_max",
                defaults.pending_requests_max,
            )?,
            held_sends_max: positive_count(
                args.held_sends_max,
                "held_sends_max",
                defaults.held_sends_max,
            )?,
            ..defaults
        };
        let failure = Failure::default();
        let machine = PyMachine::new(args.machine, failure.clone())?;
        let storage = match args.storage {
            Some(s) if !s.is_none() => PyStorage::python(s, failure.clone())?,
            _ => PyStorage::memory(durable.clone().unwrap_or_default(), failure.clone()),
        };
        let mut build = Build {
            id: NodeId(id),
            membership,
            seed,
            options,
            durable,
            host_config,
            parts: Some((storage, machine)),
            built: None,
        };
        registry::visit(protocol, &mut build).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let node = build
            .built
            .unwrap_or_else(|| Err(PyRuntimeError::new_err("no protocol was visited")));
        let node = match node {
            Ok(node) => node,
            Err(error) => {
                // The state machine's restore may have raised: that is the cause.
                if let Some(cause) = failure.take() {
                    error.set_cause(py, Some(cause));
                }
                return Err(error);
            }
        };
        Ok(Self {
            node: Some(node),
            protocol,
            id,
            poison: None,
            failure,
            last_ticket: 0,
            pending: BTreeSet::new(),
            done: HashMap::new(),
            done_order: Vec::new(),
            completions: Vec::new(),
        })
    }

    fn node(&self) -> PyResult<&dyn Node> {
        match &self.node {
            Some(n) => Ok(n.as_ref()),
            None => Err(self.poisoned()),
        }
    }

    fn poisoned(&self) -> PyErr {
        PoisonedError::new_err(format!(
            "this {} node panicked ({}) and was discarded; restart it with Host(..., durable=...)",
            self.protocol,
            self.poison.as_deref().unwrap_or("unknown panic")
        ))
    }

    /// Run `f` on the node: a panic poisons the object; a callback's exception stops the
    /// node and becomes the cause of the `HostError` raised; outcomes are collected.
    fn call<T>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn Node) -> Result<T, NodeError>,
    ) -> PyResult<T> {
        let Some(node) = self.node.as_mut() else {
            return Err(self.poisoned());
        };
        let stopped_before = node.is_stopped();
        let result = match catch_unwind(AssertUnwindSafe(|| f(node.as_mut()))) {
            Ok(result) => result,
            Err(payload) => {
                let message = panic_message(&*payload);
                self.node = None;
                self.completions.clear();
                // Nothing more will be answered: every pending ticket's outcome is unknown.
                for ticket in std::mem::take(&mut self.pending) {
                    let outcome = Outcome::failed(ticket, &ClientError::Shutdown);
                    self.finish(py, outcome)?;
                }
                self.poison = Some(message.clone());
                return Err(PanicException::new_err(format!(
                    "{} node panicked and is now poisoned: {message}",
                    self.protocol
                )));
            }
        };
        let failure = self.failure.take();
        if failure.is_some() {
            // A failed apply may have left the state machine half-changed: acknowledge
            // nothing more.
            node.stop();
        }
        let result = match result {
            // A request call reports only client errors: learn whether it stopped the node.
            // (On a node stopped before, requests end "not_running" and raise nothing.)
            Ok(value) => match node.check() {
                Err(rsm_core::HostError::Stopped) if stopped_before => Ok(value),
                checked => checked.map(|()| value).map_err(NodeError::Fatal),
            },
            Err(error) => Err(error),
        };
        self.collect(py)?;
        match (result, failure) {
            (Ok(value), None) => Ok(value),
            (Err(NodeError::Malformed { from, error }), None) => Err(PyValueError::new_err(
                format!("malformed message from node {}: {error}", from.0),
            )),
            (Err(NodeError::Fatal(rsm_core::HostError::Stopped)), None) => Err(HostError::new_err(
                format!("this {} node has stopped", self.protocol),
            )),
            (result, cause) => {
                let text = match result {
                    Err(NodeError::Fatal(fatal))
                        if !matches!(fatal, rsm_core::HostError::Stopped) =>
                    {
                        fatal.to_string()
                    }
                    _ => "a state machine callback raised".to_string(),
                };
                let error =
                    HostError::new_err(format!("the {} node stopped: {text}", self.protocol));
                error.set_cause(py, cause);
                Err(error)
            }
        }
    }

    /// A client request: a fresh ticket, its admission, and (if refused at once) its outcome.
    fn request(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn Node, RequestId) -> Result<(), ClientError>,
    ) -> PyResult<u64> {
        let ticket = self.last_ticket + 1;
        let admitted = self.call(py, |node| Ok(f(node, RequestId(ticket))))?;
        self.last_ticket = ticket;
        match admitted {
            Ok(()) => {
                // It may have ended already, within the call.
                if !self.done.contains_key(&ticket) {
                    self.pending.insert(ticket);
                }
            }
            Err(error) => self.finish(py, Outcome::failed(ticket, &error))?,
        }
        Ok(ticket)
    }

    fn collect(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(node) = self.node.as_mut() {
            node.drain_completions(&mut self.completions);
        }
        let completions = std::mem::take(&mut self.completions);
        for c in completions {
            self.pending.remove(&c.ticket.0);
            self.finish(py, Outcome::from_completion(c))?;
        }
        Ok(())
    }

    fn finish(&mut self, py: Python<'_>, outcome: Outcome) -> PyResult<()> {
        let ticket = outcome.ticket;
        self.done.insert(ticket, Py::new(py, outcome)?);
        self.done_order.push(ticket);
        Ok(())
    }

    fn memory_image(&self) -> PyResult<&Durable> {
        match &self.node()?.storage().kind {
            StorageKind::Memory(m) => Ok(&m.durable),
            StorageKind::Python { .. } => Err(PyValueError::new_err(
                "this node's storage is a Python object; its durable state is that object's",
            )),
        }
    }
}

#[pymethods]
impl PyHost {
    #[new]
    #[pyo3(signature = (protocol, id, members, *, machine, storage = None, durable = None,
        seed = None, options = None, request_timeout_ticks = None,
        pending_requests_max = None, held_sends_max = None))]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        protocol: &Bound<'py, PyAny>,
        id: &Bound<'py, PyAny>,
        members: &Bound<'py, PyAny>,
        machine: &Bound<'py, PyAny>,
        storage: Option<&Bound<'py, PyAny>>,
        durable: Option<PyRef<'py, crate::durable::Durable>>,
        seed: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyAny>>,
        request_timeout_ticks: Option<&Bound<'py, PyAny>>,
        pending_requests_max: Option<&Bound<'py, PyAny>>,
        held_sends_max: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        let args = Args {
            protocol,
            id,
            members,
            machine,
            storage,
            seed,
            options,
            request_timeout_ticks,
            pending_requests_max,
            held_sends_max,
        };
        Self::build(args, durable.map(|d| d.inner.clone()))
    }

    /// One tick of the node's clock: overdue requests end `"timeout"` (indefinite), then
    /// the replica ticks.
    fn tick(&mut self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |n| Ok(n.tick()?))
    }

    /// Hand the node a message `msg` (bytes drained from node `sender`). Raises
    /// `ValueError`, and changes nothing, if it does not decode.
    fn receive(
        &mut self,
        py: Python<'_>,
        sender: &Bound<'_, PyAny>,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let from = NodeId(u64_arg(sender, "sender")?);
        let msg = crate::inputs::bytes_arg(msg, "msg")?;
        self.call(py, |n| n.receive(&[(from, msg)]))
    }

    /// Hand the node many `(sender, msg)` pairs, in order. Every message is decoded first:
    /// if one does not decode, `ValueError` is raised and none is fed.
    fn receive_many(&mut self, py: Python<'_>, messages: &Bound<'_, PyAny>) -> PyResult<()> {
        let iter = messages.try_iter().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "receive_many expects an iterable of (sender, msg) pairs, not {}",
                type_name(messages)
            ))
        })?;
        let mut batch = Vec::with_capacity(messages.len().unwrap_or(0));
        for item in iter {
            if batch.len() == RECEIVE_BATCH_MAX {
                return Err(PyValueError::new_err(format!(
                    "a batch holds at most {RECEIVE_BATCH_MAX} messages"
                )));
            }
            let item = item?;
            let (sender, msg): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
                item.extract().map_err(|_| {
                    pyo3::exceptions::PyTypeError::new_err(format!(
                        "receive_many expects (sender, msg) pairs, got {}",
                        type_name(&item)
                    ))
                })?;
            batch.push((
                NodeId(u64_arg(&sender, "sender")?),
                crate::inputs::bytes_arg(&msg, "msg")?,
            ));
        }
        self.call(py, |n| n.receive(&batch))
    }

    /// Propose a command (bytes); returns its ticket. The outcome's `value` is what the
    /// state machine's `apply` returned for it.
    fn propose(&mut self, py: Python<'_>, command: &Bound<'_, PyAny>) -> PyResult<u64> {
        let command = crate::inputs::bytes_arg(command, "command")?;
        self.request(py, |n, t| n.propose(t, command))
    }

    /// Ask a linearizable read; returns its ticket. Once safe, the state machine's
    /// `query(query)` answers it (the outcome's `value`).
    #[pyo3(signature = (query = None))]
    fn read(&mut self, py: Python<'_>, query: Option<Py<PyAny>>) -> PyResult<u64> {
        self.node()?.machine().check_queryable(py)?;
        let query = PyValue(query.unwrap_or_else(|| py.None()));
        self.request(py, |n, t| n.read(t, query))
    }

    /// Ask for a membership change to `members` (voter ids or a `Membership`); returns
    /// its ticket.
    fn reconfigure(&mut self, py: Python<'_>, members: &Bound<'_, PyAny>) -> PyResult<u64> {
        let membership = crate::values::Membership::from_arg(members)?;
        self.request(py, |n, t| n.reconfigure(t, membership))
    }

    /// Ask the node, if it leads, to hand leadership to node `to`. A refusal is not
    /// reported; watch `role` and `leader`.
    fn transfer_leadership(&mut self, py: Python<'_>, to: &Bound<'_, PyAny>) -> PyResult<()> {
        let to = NodeId(u64_arg(to, "to")?);
        // The reference host numbers the transfer as a request of its own: later tickets
        // must stay above it.
        self.last_ticket += 1;
        self.call(py, |n| Ok(n.transfer_leadership(to)?))
    }

    /// Start an election now, without waiting for the election timeout.
    fn campaign(&mut self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |n| Ok(n.campaign()?))
    }

    /// Make every write so far durable (the storage's `sync`), then release the sends
    /// that waited for it and tell the replica. Does nothing when nothing waits.
    fn sync(&mut self, py: Python<'_>) -> PyResult<()> {
        self.call(py, |n| Ok(n.sync()?))
    }

    /// Every write numbered up to `seq` is durable by the caller's own means: release
    /// the sends that waited for them and tell the replica.
    fn persisted(&mut self, py: Python<'_>, seq: &Bound<'_, PyAny>) -> PyResult<()> {
        let through = PersistSeq(u64_arg(seq, "seq")?);
        let written = self.node()?.written();
        if through.0 > written {
            return Err(PyValueError::new_err(format!(
                "`seq` {} is beyond the last write, {written}",
                through.0
            )));
        }
        self.call(py, |n| Ok(n.persisted(through)?))
    }

    /// Take the messages released so far, in order, as `(destination, bytes)` pairs. Hand
    /// each to its destination's `receive(sender=this node's id, msg)`.
    fn drain_sends<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        match self.node.as_mut() {
            Some(node) => node.drain_sends(py, &list)?,
            None => return Err(self.poisoned()),
        }
        Ok(list)
    }

    /// The outcome of `ticket` once it ended (taken: asking again raises), `None` while
    /// it is pending. Raises `ValueError` for a ticket never handed out or already taken.
    fn outcome(&mut self, ticket: &Bound<'_, PyAny>) -> PyResult<Option<Py<Outcome>>> {
        let ticket = u64_arg(ticket, "ticket")?;
        if let Some(outcome) = self.done.remove(&ticket) {
            if self.done_order.len() > 2 * self.done.len() + 64 {
                let done = &self.done;
                self.done_order.retain(|t| done.contains_key(t));
            }
            return Ok(Some(outcome));
        }
        if self.pending.contains(&ticket) {
            return Ok(None);
        }
        Err(PyValueError::new_err(format!(
            "ticket {ticket} is not pending and has no outcome to take"
        )))
    }

    /// Every outcome not taken yet, in the order the requests ended.
    fn take_outcomes(&mut self) -> Vec<Py<Outcome>> {
        let order = std::mem::take(&mut self.done_order);
        order
            .into_iter()
            .filter_map(|t| self.done.remove(&t))
            .collect()
    }

    /// Stop the node: pending requests end `"shutdown"` (indefinite), waiting sends are
    /// dropped, and later requests end `"not_running"`. Call `sync()` first to flush.
    fn stop(&mut self, py: Python<'_>) -> PyResult<()> {
        if let Some(node) = self.node.as_mut() {
            node.stop();
        }
        self.collect(py)
    }

    /// The replica's status.
    fn status(&self) -> PyResult<crate::values::Status> {
        Ok(crate::values::Status {
            inner: self.node()?.status(),
        })
    }

    /// A copy of the in-memory storage's image (everything written, synced or not), to
    /// restart from. Raises `ValueError` when the storage is a Python object.
    fn durable(&self) -> PyResult<crate::durable::Durable> {
        Ok(crate::durable::Durable {
            inner: self.memory_image()?.clone(),
        })
    }

    /// Counters: `syncs`, `writes`, `sends`, `held_sends_dropped`, `steps` (inputs fed to
    /// the replica, follow-ups included), `snapshots_taken`, `snapshots_installed`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.node()?.stats();
        let d = PyDict::new(py);
        d.set_item("syncs", s.syncs)?;
        d.set_item("writes", s.writes)?;
        d.set_item("sends", s.sends)?;
        d.set_item("held_sends_dropped", s.held_sends_dropped)?;
        d.set_item("steps", s.steps)?;
        d.set_item("snapshots_taken", s.snapshots_taken)?;
        d.set_item("snapshots_installed", s.snapshots_installed)?;
        Ok(d)
    }

    /// The registered protocol name.
    #[getter]
    fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// This node's id.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// The replica's role (as in `Status.role`).
    #[getter]
    fn role(&self) -> PyResult<&'static str> {
        Ok(crate::values::role_name(self.node()?.status().role))
    }

    /// The leader the replica believes in, if any.
    #[getter]
    fn leader(&self) -> PyResult<Option<u64>> {
        Ok(self.node()?.status().leader.map(|n| n.0))
    }

    /// The highest index the state machine has applied (or restored).
    #[getter]
    fn applied_index(&self) -> PyResult<u64> {
        Ok(self.node()?.applied_index())
    }

    /// The number of the last write handed to storage.
    #[getter]
    fn written_seq(&self) -> PyResult<u64> {
        Ok(self.node()?.written())
    }

    /// The number of the last write known durable.
    #[getter]
    fn durable_seq(&self) -> PyResult<u64> {
        Ok(self.node()?.durable())
    }

    /// True when writes wait for `sync()` (or `persisted`).
    #[getter]
    fn needs_sync(&self) -> PyResult<bool> {
        let n = self.node()?;
        Ok(n.written() > n.durable())
    }

    /// Sends held until a write becomes durable.
    #[getter]
    fn held_sends(&self) -> PyResult<usize> {
        Ok(self.node()?.held_sends())
    }

    /// Requests accepted and not yet ended.
    #[getter]
    fn pending_requests(&self) -> PyResult<usize> {
        Ok(self.node()?.pending_requests())
    }

    /// True once the node stopped (by `stop()` or a fatal error) or was poisoned.
    #[getter]
    fn stopped(&self) -> bool {
        self.node.as_ref().is_none_or(|n| n.is_stopped())
    }

    /// The state machine object.
    #[getter]
    fn machine(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.node()?.machine().object().clone_ref(py))
    }

    /// Panic inside the node's guard, as a protocol bug would: for tests of how panics
    /// cross into Python (the node is poisoned afterwards).
    fn _panic_for_test(&mut self, py: Python<'_>, message: String) -> PyResult<()> {
        self.call(py, |_| -> Result<(), NodeError> { panic!("{message}") })
    }

    fn __repr__(&self) -> String {
        match self.node() {
            Ok(n) => {
                let s = n.status();
                format!(
                    "Host(protocol={:?}, id={}, role='{}', epoch={}, commit={}, applied={})",
                    self.protocol,
                    self.id,
                    crate::values::role_name(s.role),
                    s.epoch.0,
                    s.commit.0,
                    n.applied_index()
                )
            }
            Err(_) => format!(
                "Host(protocol={:?}, id={}, <poisoned>)",
                self.protocol, self.id
            ),
        }
    }
}

/// The protocol names `Host` accepts.
#[pyfunction]
fn protocols() -> Vec<&'static str> {
    registry::NAMES.to_vec()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("HostError", py.get_type::<HostError>())?;
    m.add_class::<PyHost>()?;
    m.add_class::<Outcome>()?;
    m.add_function(wrap_pyfunction!(protocols, m)?)?;
    Ok(())
}
