//! Plain values shared by inputs, effects and durable state: membership, log entries,
//! snapshot metadata, hard state and a replica's status. Each is a frozen Python class
//! with equality, a `__repr__` that reads like its constructor, and `__match_args__` so
//! it works in `match` statements.

use std::collections::BTreeSet;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyString};
use rsm_core::{EntryKind, NodeId, Role};

use crate::args::u64_arg;

/// Generates `__repr__` (from the named attributes, in order) and `__match_args__` for a
/// value class, plus any further methods given in the braces.
macro_rules! value_methods {
    ($name:ident, [$($field:ident),* $(,)?] $(, { $($extra:tt)* })?) => {
        #[pymethods]
        impl $name {
            #[classattr]
            fn __match_args__(py: Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>> {
                let fields: &[&str] = &[$(stringify!($field)),*];
                Ok(pyo3::types::PyTuple::new(py, fields)?.unbind())
            }

            fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
                let fields: &[&str] = &[$(stringify!($field)),*];
                $crate::values::repr_of(slf.as_any(), stringify!($name), fields)
            }

            $($($extra)*)?
        }
    };
}
pub(crate) use value_methods;

/// `Name(a=repr(a), b=repr(b))` from the object's attributes.
pub(crate) fn repr_of(obj: &Bound<'_, PyAny>, name: &str, fields: &[&str]) -> PyResult<String> {
    let mut s = String::with_capacity(16 * (fields.len() + 1));
    s.push_str(name);
    s.push('(');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(f);
        s.push('=');
        s.push_str(&obj.getattr(*f)?.repr()?.to_cow()?);
    }
    s.push(')');
    Ok(s)
}

/// Node ids from an iterable of ints, sorted. A `str` or `bytes` (iterable, but never
/// meant as ids), an item that is not an int, and an id listed twice are refused with a
/// message naming the argument `name` and what it should hold.
pub(crate) fn node_set(value: &Bound<'_, PyAny>, name: &str) -> PyResult<BTreeSet<NodeId>> {
    let expected = || {
        PyTypeError::new_err(format!(
            "`{name}` must be an iterable of node ids (ints), not {}",
            crate::args::type_name(value)
        ))
    };
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
        return Err(expected());
    }
    let mut out = BTreeSet::new();
    for (k, item) in value.try_iter().map_err(|_| expected())?.enumerate() {
        let item = item?;
        if item.is_instance_of::<PyBool>() || !item.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "`{name}` must hold node ids (ints), but item {k} is {} {}",
                crate::args::type_name(&item),
                item.repr()?
            )));
        }
        let id = u64_arg(&item, name)?;
        if !out.insert(NodeId(id)) {
            return Err(PyValueError::new_err(format!(
                "`{name}` lists node {id} twice"
            )));
        }
    }
    Ok(out)
}

/// Refuse to build a new replica `id` that its own `membership` does not list: it would
/// start out removed, which is never what a caller means.
pub(crate) fn check_member(id: NodeId, membership: &rsm_core::Membership) -> PyResult<()> {
    if membership.contains(id) {
        return Ok(());
    }
    let members: Vec<u64> = membership.members().map(|n| n.0).collect();
    Err(PyValueError::new_err(format!(
        "`id` {} is not one of `members` {members:?}: a replica must be a voter or a \
         learner of its own membership",
        id.0
    )))
}

fn ids(set: &BTreeSet<NodeId>) -> Vec<u64> {
    set.iter().map(|n| n.0).collect()
}

/// Who belongs to the cluster: voters, learners, and while a joint change is in progress
/// the outgoing voters.
#[pyclass(module = "rsm", frozen, eq, hash, from_py_object)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Membership {
    pub(crate) inner: rsm_core::Membership,
}

value_methods!(Membership, [voters, learners, outgoing], {
    #[new]
    #[pyo3(signature = (voters, learners = None, outgoing = None))]
    fn new(
        voters: &Bound<'_, PyAny>,
        learners: Option<&Bound<'_, PyAny>>,
        outgoing: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let voters = node_set(voters, "voters")?;
        if voters.is_empty() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a membership needs at least one voter",
            ));
        }
        let mut inner = rsm_core::Membership {
            voters,
            ..Default::default()
        };
        if let Some(l) = learners {
            inner.learners = node_set(l, "learners")?;
        }
        if let Some(o) = outgoing {
            inner.outgoing = node_set(o, "outgoing")?;
        }
        Ok(Self { inner })
    }

    /// Voters of the (incoming) configuration, ascending.
    #[getter]
    fn voters(&self) -> Vec<u64> {
        ids(&self.inner.voters)
    }

    /// Non-voting members, ascending.
    #[getter]
    fn learners(&self) -> Vec<u64> {
        ids(&self.inner.learners)
    }

    /// Voters of the outgoing configuration during a joint change; empty otherwise.
    #[getter]
    fn outgoing(&self) -> Vec<u64> {
        ids(&self.inner.outgoing)
    }

    /// Whether a joint change is in progress.
    #[getter]
    fn is_joint(&self) -> bool {
        self.inner.is_joint()
    }

    /// Whether `id` belongs to the configuration in any role.
    fn __contains__(&self, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.contains(NodeId(u64_arg(id, "id")?)))
    }
});

impl Membership {
    /// A membership from `members`: a `Membership` as is, or an iterable of voter ids.
    pub(crate) fn from_arg(members: &Bound<'_, PyAny>) -> PyResult<rsm_core::Membership> {
        if let Ok(m) = members.cast::<Membership>() {
            return Ok(m.get().inner.clone());
        }
        if members.is_instance_of::<PyString>() || members.try_iter().is_err() {
            return Err(PyTypeError::new_err(format!(
                "`members` must be a Membership or an iterable of node ids (ints), not {}",
                crate::args::type_name(members)
            )));
        }
        let voters = node_set(members, "members")?;
        if voters.is_empty() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "`members` needs at least one voter",
            ));
        }
        Ok(rsm_core::Membership::new(voters))
    }
}

/// One log entry: its index, the epoch that created it, its kind (`"command"`, `"noop"`
/// or `"config"`) and its payload.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Entry {
    pub(crate) inner: rsm_core::Entry,
}

value_methods!(Entry, [index, epoch, kind, payload], {
    /// Position in the log (1-based).
    #[getter]
    fn index(&self) -> u64 {
        self.inner.index.0
    }

    /// The epoch (Raft term) in which a leader created the entry.
    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.epoch.0
    }

    /// `"command"`, `"noop"` or `"config"`.
    #[getter]
    fn kind(&self) -> &'static str {
        entry_kind_name(self.inner.kind)
    }

    /// The command bytes, the encoded membership, or empty for a no-op.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.payload)
    }

    /// The membership a `"config"` entry carries; `None` for other kinds.
    #[getter]
    fn membership(&self) -> Option<Membership> {
        self.inner.membership().map(|inner| Membership { inner })
    }
});

pub(crate) fn entry_kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Command => "command",
        EntryKind::Noop => "noop",
        EntryKind::Config => "config",
    }
}

/// Describes the log prefix a snapshot replaces: its last index and epoch and the
/// membership in force there.
#[pyclass(module = "rsm", frozen, eq, from_py_object)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotMeta {
    pub(crate) inner: rsm_core::SnapshotMeta,
}

value_methods!(SnapshotMeta, [index, epoch, membership], {
    #[new]
    fn new(
        index: &Bound<'_, PyAny>,
        epoch: &Bound<'_, PyAny>,
        membership: Membership,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: rsm_core::SnapshotMeta {
                index: rsm_core::LogIndex(u64_arg(index, "index")?),
                epoch: rsm_core::Epoch(u64_arg(epoch, "epoch")?),
                membership: membership.inner,
            },
        })
    }

    /// The last log index the snapshot includes.
    #[getter]
    fn index(&self) -> u64 {
        self.inner.index.0
    }

    /// The epoch of the entry at `index`.
    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.epoch.0
    }

    /// The membership in force at `index`.
    #[getter]
    fn membership(&self) -> Membership {
        Membership {
            inner: self.inner.membership.clone(),
        }
    }
});

/// The small durable state besides the log: the highest epoch seen, the vote cast in
/// it, and a commit hint.
#[pyclass(module = "rsm", frozen, eq, hash)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HardState {
    pub(crate) inner: rsm_core::HardState,
}

value_methods!(HardState, [epoch, vote, commit], {
    /// The highest epoch (Raft term) this replica has seen or promised.
    #[getter]
    fn epoch(&self) -> u64 {
        self.inner.epoch.0
    }

    /// Whom this replica voted for in `epoch`, if anyone.
    #[getter]
    fn vote(&self) -> Option<u64> {
        self.inner.vote.map(|n| n.0)
    }

    /// A commit index known when this was written (a hint, never needed for safety).
    #[getter]
    fn commit(&self) -> u64 {
        self.inner.commit.0
    }
});

/// A replica's externally visible state.
#[pyclass(module = "rsm", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) inner: rsm_core::Status,
}

value_methods!(
    Status,
    [
        id, role, epoch, leader, commit, applied, last_index, membership
    ],
    {
        /// The replica's id.
        #[getter]
        fn id(&self) -> u64 {
            self.inner.id.0
        }

        /// `"follower"`, `"pre_candidate"`, `"candidate"`, `"leader"`, `"learner"`,
        /// `"recovering"` or `"removed"`.
        #[getter]
        fn role(&self) -> &'static str {
            role_name(self.inner.role)
        }

        /// The current epoch (Raft term).
        #[getter]
        fn epoch(&self) -> u64 {
            self.inner.epoch.0
        }

        /// The leader this replica believes in, if any.
        #[getter]
        fn leader(&self) -> Option<u64> {
            self.inner.leader.map(|n| n.0)
        }

        /// The highest index known to be committed.
        #[getter]
        fn commit(&self) -> u64 {
            self.inner.commit.0
        }

        /// The highest index emitted in an `Apply` effect (or restored from a snapshot).
        #[getter]
        fn applied(&self) -> u64 {
            self.inner.applied.0
        }

        /// The last index in the replica's log.
        #[getter]
        fn last_index(&self) -> u64 {
            self.inner.last_index.0
        }

        /// The membership the replica acts on.
        #[getter]
        fn membership(&self) -> Membership {
            Membership {
                inner: self.inner.membership.clone(),
            }
        }
    }
);

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
        Role::Learner => "learner",
        Role::Recovering => "recovering",
        Role::Removed => "removed",
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Membership>()?;
    m.add_class::<Entry>()?;
    m.add_class::<SnapshotMeta>()?;
    m.add_class::<HardState>()?;
    m.add_class::<Status>()?;
    Ok(())
}
