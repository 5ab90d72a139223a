"""Type stubs for the native extension ``rsm._rsm`` (re-exported by ``rsm``)."""

from typing import (
    Any,
    Iterable,
    Literal,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    TypedDict,
    Union,
    final,
)

from typing_extensions import Unpack

from rsm import Effect as _Effect
from rsm import Input as _Input

__version__: str
__all__ = [
    "Applied",
    "Apply",
    "Campaign",
    "Durable",
    "Entry",
    "HardState",
    "Host",
    "HostError",
    "InstallSnapshot",
    "Membership",
    "Operation",
    "Outcome",
    "PanicException",
    "Paxos",
    "Persist",
    "Persisted",
    "PoisonedError",
    "Propose",
    "Proposed",
    "Raft",
    "Read",
    "ReadReady",
    "Receive",
    "Reconfigure",
    "Reject",
    "Report",
    "RoleChanged",
    "RunResult",
    "RunStats",
    "Send",
    "Snapshot",
    "SnapshotMeta",
    "Status",
    "TakeSnapshot",
    "Tick",
    "TransferLeadership",
    "Verdict",
    "Violation",
    "Vsr",
    "__version__",
    "check",
    "protocols",
    "run_seed",
    "simulate",
]

_Role = Literal[
    "follower", "pre_candidate", "candidate", "leader", "learner", "recovering", "removed"
]
_EntryKind = Literal["command", "noop", "config"]
_PersistKind = Literal["append", "accept", "truncate", "hard_state", "snapshot", "compact"]
_RejectReason = Literal[
    "not_leader",
    "transfer_in_progress",
    "too_large",
    "busy",
    "removed",
    "config_change_in_progress",
    "invalid_config",
    "not_voter",
    "unsupported",
    "leadership_lost",
]
_CallKind = Literal["read", "write", "cas"]
_OutcomeKind = Literal["ok", "fail", "indeterminate"]
_VerdictKind = Literal["linearizable", "not_linearizable", "malformed", "inconclusive"]
_BudgetKind = Literal["steps", "memory", "time"]

class PanicException(BaseException):
    """A Rust panic crossed into Python. A replica that panicked is poisoned."""

class PoisonedError(RuntimeError):
    """The replica panicked earlier and was discarded; rebuild it with ``restore``."""

# Values ---------------------------------------------------------------------------------

@final
class Membership:
    """Who belongs to the cluster: voters, learners and (during a joint change) the
    outgoing voters."""

    __match_args__ = ("voters", "learners", "outgoing")
    def __new__(
        cls,
        voters: Iterable[int],
        learners: Optional[Iterable[int]] = None,
        outgoing: Optional[Iterable[int]] = None,
    ) -> Membership: ...
    @property
    def voters(self) -> list[int]: ...
    @property
    def learners(self) -> list[int]: ...
    @property
    def outgoing(self) -> list[int]: ...
    @property
    def is_joint(self) -> bool: ...
    def __contains__(self, id: int, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Entry:
    """One log entry."""

    __match_args__ = ("index", "epoch", "kind", "payload")
    @property
    def index(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def kind(self) -> _EntryKind: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def membership(self) -> Optional[Membership]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SnapshotMeta:
    """The log prefix a snapshot replaces."""

    __match_args__ = ("index", "epoch", "membership")
    def __new__(cls, index: int, epoch: int, membership: Membership) -> SnapshotMeta: ...
    @property
    def index(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def membership(self) -> Membership: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class HardState:
    """The durable epoch, vote and commit hint."""

    __match_args__ = ("epoch", "vote", "commit")
    @property
    def epoch(self) -> int: ...
    @property
    def vote(self) -> Optional[int]: ...
    @property
    def commit(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Status:
    """A replica's externally visible state."""

    __match_args__ = (
        "id", "role", "epoch", "leader", "commit", "applied", "last_index", "membership"
    )
    @property
    def id(self) -> int: ...
    @property
    def role(self) -> _Role: ...
    @property
    def epoch(self) -> int: ...
    @property
    def leader(self) -> Optional[int]: ...
    @property
    def commit(self) -> int: ...
    @property
    def applied(self) -> int: ...
    @property
    def last_index(self) -> int: ...
    @property
    def membership(self) -> Membership: ...
    def __eq__(self, other: object, /) -> bool: ...

# Inputs ---------------------------------------------------------------------------------

@final
class Tick:
    """One logical clock tick."""

    __match_args__ = ()
    def __new__(cls) -> Tick: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Receive:
    """A message (the bytes of a peer's ``Send.msg``) from replica ``sender``."""

    __match_args__ = ("sender", "msg")
    def __new__(cls, sender: int, msg: bytes) -> Receive: ...
    @property
    def sender(self) -> int: ...
    @property
    def msg(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Propose:
    """A client command to replicate."""

    __match_args__ = ("req", "command")
    def __new__(cls, req: int, command: bytes) -> Propose: ...
    @property
    def req(self) -> int: ...
    @property
    def command(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Read:
    """A linearizable read barrier."""

    __match_args__ = ("req",)
    def __new__(cls, req: int) -> Read: ...
    @property
    def req(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Persisted:
    """Every ``Persist`` numbered ``<= through`` is durable."""

    __match_args__ = ("through",)
    def __new__(cls, through: int) -> Persisted: ...
    @property
    def through(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Applied:
    """The state machine applied every entry through ``through``."""

    __match_args__ = ("through",)
    def __new__(cls, through: int) -> Applied: ...
    @property
    def through(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Snapshot:
    """The snapshot a ``TakeSnapshot`` effect asked for."""

    __match_args__ = ("meta", "data")
    def __new__(cls, meta: SnapshotMeta, data: bytes) -> Snapshot: ...
    @property
    def meta(self) -> SnapshotMeta: ...
    @property
    def data(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Reconfigure:
    """Change the membership."""

    __match_args__ = ("req", "membership")
    def __new__(cls, req: int, membership: Union[Membership, Iterable[int]]) -> Reconfigure: ...
    @property
    def req(self) -> int: ...
    @property
    def membership(self) -> Membership: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class TransferLeadership:
    """Hand leadership to replica ``to``; a refusal comes back as ``Reject`` for ``req``."""

    __match_args__ = ("to", "req")
    def __new__(cls, to: int, req: Optional[int] = None) -> TransferLeadership: ...
    @property
    def to(self) -> int: ...
    @property
    def req(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Campaign:
    """Start an election now, as if the election timeout had fired."""

    __match_args__ = ()
    def __new__(cls) -> Campaign: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# `Input`, anything `step` accepts, is defined once, in the package.

# Effects --------------------------------------------------------------------------------

@final
class Send:
    """Send ``msg`` (opaque bytes) to replica ``to``."""

    __match_args__ = ("to", "msg")
    def __new__(cls, to: int, msg: bytes) -> Send: ...
    @property
    def to(self) -> int: ...
    @property
    def msg(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Persist:
    """Make one write durable, then report ``Persisted(through=seq)``."""

    __match_args__ = ("seq", "kind")
    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> _PersistKind: ...
    @property
    def data(self) -> bytes: ...
    @property
    def entries(self) -> list[Entry]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Apply:
    """Apply these committed entries, in order."""

    __match_args__ = ("entries",)
    @property
    def entries(self) -> list[Entry]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Proposed:
    """A proposal was appended at ``index`` in ``epoch``."""

    __match_args__ = ("req", "index", "epoch")
    @property
    def req(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ReadReady:
    """A read may be served after applying through ``index``."""

    __match_args__ = ("req", "index")
    @property
    def req(self) -> int: ...
    @property
    def index(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Reject:
    """A request was refused."""

    __match_args__ = ("req", "reason", "definite", "leader")
    @property
    def req(self) -> int: ...
    @property
    def reason(self) -> _RejectReason: ...
    @property
    def definite(self) -> bool: ...
    @property
    def leader(self) -> Optional[int]: ...
    @property
    def detail(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class TakeSnapshot:
    """Take a snapshot of the state machine at ``through``."""

    __match_args__ = ("through",)
    @property
    def through(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class InstallSnapshot:
    """Replace the state machine's state with this snapshot."""

    __match_args__ = ("meta", "data")
    @property
    def meta(self) -> SnapshotMeta: ...
    @property
    def data(self) -> bytes: ...
    @property
    def membership(self) -> Membership: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RoleChanged:
    """The replica's role, epoch or known leader changed."""

    __match_args__ = ("role", "epoch", "leader")
    @property
    def role(self) -> _Role: ...
    @property
    def epoch(self) -> int: ...
    @property
    def leader(self) -> Optional[int]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# `Effect`, anything `step` returns, is defined once, in the package.

# Durable state ----------------------------------------------------------------------------

@final
class Durable:
    """A replica's durable image; apply every ``Persist`` to it in order."""

    __match_args__ = ("hard_state", "snapshot_index", "last_index")
    def __new__(cls) -> Durable: ...
    def apply(self, write: Union[Persist, bytes]) -> None: ...
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes) -> Durable: ...
    @property
    def hard_state(self) -> HardState: ...
    @property
    def entries(self) -> list[Entry]: ...
    @property
    def snapshot(self) -> Optional[Tuple[SnapshotMeta, bytes]]: ...
    @property
    def snapshot_index(self) -> int: ...
    @property
    def last_index(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...

# Protocols ------------------------------------------------------------------------------

class _RaftOptions(TypedDict, total=False):
    """The keyword options of `Raft` (named after the Rust `RaftConfig`'s fields)."""

    election_ticks_min: int
    election_ticks_max: int
    heartbeat_ticks: int
    pre_vote: bool
    check_quorum: bool
    vote_stickiness: bool
    lease_reads: bool
    lease_drift_ticks: int
    priority: int
    proposal_bytes_max: int
    uncommitted_bytes_max: int
    batch_entries_max: int
    batch_bytes_max: int
    msg_bytes_max: int
    msg_entries_max: int
    inflight_msgs_max: int
    inflight_bytes_max: int
    apply_batch_entries_max: int
    apply_lag_entries_max: int
    snapshot_entries_threshold: int
    snapshot_chunk_bytes: int
    snapshot_bytes_max: int
    reads_pending_max: int

@final
class Raft:
    """A Raft replica: a deterministic automaton with no I/O of its own.

    ``members`` lists each node id once and, for a new replica, includes ``id``
    (``ValueError`` otherwise); a ``str`` or non-int item raises ``TypeError``.
    """

    def __new__(
        cls,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        seed: Optional[int] = None,
        **options: Unpack[_RaftOptions],
    ) -> Raft: ...
    @staticmethod
    def restore(
        durable: Durable,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        seed: Optional[int] = None,
        **options: Unpack[_RaftOptions],
    ) -> Raft: ...
    def step(self, input: _Input) -> list[_Effect]: ...
    def step_many(self, inputs: Iterable[_Input]) -> list[_Effect]: ...
    def status(self) -> Status: ...
    @property
    def id(self) -> int: ...
    def _panic_for_test(self, message: str) -> None: ...

class _PaxosOptions(TypedDict, total=False):
    """The keyword options of `Paxos` (named after the Rust `PaxosConfig`'s fields)."""

    election_ticks_min: int
    election_ticks_max: int
    heartbeat_ticks: int
    lease_reads: bool
    lease_drift_ticks: int
    proposal_bytes_max: int
    uncommitted_bytes_max: int
    batch_entries_max: int
    batch_bytes_max: int
    msg_bytes_max: int
    msg_entries_max: int
    inflight_msgs_max: int
    inflight_bytes_max: int
    apply_batch_entries_max: int
    apply_lag_entries_max: int
    snapshot_entries_threshold: int
    snapshot_chunk_bytes: int
    snapshot_bytes_max: int
    reads_pending_max: int

@final
class Paxos:
    """A Multi-Paxos replica (proposer, acceptor and learner): a deterministic automaton
    with no I/O of its own."""

    def __new__(
        cls,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        seed: Optional[int] = None,
        **options: Unpack[_PaxosOptions],
    ) -> Paxos: ...
    @staticmethod
    def restore(
        durable: Durable,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        seed: Optional[int] = None,
        **options: Unpack[_PaxosOptions],
    ) -> Paxos: ...
    def step(self, input: _Input) -> list[_Effect]: ...
    def step_many(self, inputs: Iterable[_Input]) -> list[_Effect]: ...
    def status(self) -> Status: ...
    @property
    def id(self) -> int: ...
    def _panic_for_test(self, message: str) -> None: ...

class _VsrOptions(_PaxosOptions, total=False):
    """The keyword options of `Vsr` (named after the Rust `VsrConfig`'s fields, the same
    limits and timeouts as `Paxos`'s)."""

@final
class Vsr:
    """A Viewstamped Replication (Revisited) replica: a deterministic automaton with no
    I/O of its own. The primary of view `v` is voter number `v mod n` of the sorted
    voters."""

    def __new__(
        cls,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        seed: Optional[int] = None,
        **options: Unpack[_VsrOptions],
    ) -> Vsr: ...
    @staticmethod
    def restore(
        durable: Durable,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        seed: Optional[int] = None,
        **options: Unpack[_VsrOptions],
    ) -> Vsr: ...
    def step(self, input: _Input) -> list[_Effect]: ...
    def step_many(self, inputs: Iterable[_Input]) -> list[_Effect]: ...
    def status(self) -> Status: ...
    @property
    def id(self) -> int: ...
    def _panic_for_test(self, message: str) -> None: ...

# The reference host ---------------------------------------------------------------------

class HostError(RuntimeError):
    """The node stopped on a fatal error (storage failure, a state machine or storage
    callback that raised, a replica that broke the contract); its cause is attached."""

class _StateMachine(Protocol):
    """What ``Host`` asks of the replicated state machine."""

    def apply(self, index: int, command: bytes, /) -> Any: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes, /) -> Any: ...

class _Storage(Protocol):
    """What ``Host`` asks of a storage object."""

    def write(self, persist: Persist, /) -> Any: ...
    def sync(self) -> Any: ...

_OutcomeStatus = Literal["ok", "definite", "indefinite"]

@final
class Outcome:
    """How a client request ended: ``"ok"``, ``"definite"`` (it did not and will not take
    effect) or ``"indefinite"`` (it may have taken effect)."""

    __match_args__ = ("ticket", "status", "value", "index", "reason")
    @property
    def ticket(self) -> int: ...
    @property
    def status(self) -> _OutcomeStatus: ...
    @property
    def ok(self) -> bool: ...
    @property
    def definite(self) -> bool: ...
    @property
    def value(self) -> Any: ...
    @property
    def index(self) -> Optional[int]: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def leader(self) -> Optional[int]: ...
    @property
    def detail(self) -> str: ...

@final
class Host:
    """One node of a registered protocol, run by the reference host.

    ``members`` lists each node id once and, unless ``durable`` is given, includes ``id``.
    """

    def __new__(
        cls,
        protocol: str,
        id: int,
        members: Union[Membership, Iterable[int]],
        *,
        machine: _StateMachine,
        storage: Optional[_Storage] = None,
        durable: Optional[Durable] = None,
        seed: Optional[int] = None,
        options: Optional[Mapping[str, Union[int, bool]]] = None,
        request_timeout_ticks: Optional[int] = None,
        pending_requests_max: Optional[int] = None,
        held_sends_max: Optional[int] = None,
    ) -> Host: ...
    def tick(self) -> None: ...
    def receive(self, sender: int, msg: bytes) -> None: ...
    def receive_many(self, messages: Iterable[Tuple[int, bytes]]) -> None: ...
    def propose(self, command: bytes) -> int: ...
    def read(self, query: Any = None) -> int: ...
    def reconfigure(self, members: Union[Membership, Iterable[int]]) -> int: ...
    def transfer_leadership(self, to: int) -> None: ...
    def campaign(self) -> None: ...
    def sync(self) -> None: ...
    def persisted(self, seq: int) -> None: ...
    def drain_sends(self) -> list[Tuple[int, bytes]]: ...
    def outcome(self, ticket: int) -> Optional[Outcome]: ...
    def take_outcomes(self) -> list[Outcome]: ...
    def stop(self) -> None: ...
    def status(self) -> Status: ...
    def durable(self) -> Durable: ...
    def stats(self) -> dict[str, int]: ...
    @property
    def protocol(self) -> str: ...
    @property
    def id(self) -> int: ...
    @property
    def role(self) -> _Role: ...
    @property
    def leader(self) -> Optional[int]: ...
    @property
    def applied_index(self) -> int: ...
    @property
    def written_seq(self) -> int: ...
    @property
    def durable_seq(self) -> int: ...
    @property
    def needs_sync(self) -> bool: ...
    @property
    def held_sends(self) -> int: ...
    @property
    def pending_requests(self) -> int: ...
    @property
    def stopped(self) -> bool: ...
    @property
    def machine(self) -> Any: ...
    def _panic_for_test(self, message: str) -> None: ...

def protocols() -> list[str]:
    """The protocol names ``Host`` accepts."""

# Checker --------------------------------------------------------------------------------

@final
class Operation:
    """One client operation on a key-value register, with its interval."""

    __match_args__ = (
        "client", "key", "call", "value", "expected", "new", "swapped", "invoke",
        "complete", "outcome",
    )
    def __new__(
        cls,
        client: int,
        key: int,
        call: _CallKind,
        invoke: int,
        complete: Optional[int],
        *,
        value: Optional[int] = None,
        expected: Optional[int] = None,
        new: Optional[int] = None,
        swapped: Optional[bool] = None,
        outcome: Optional[_OutcomeKind] = None,
    ) -> Operation: ...
    @property
    def client(self) -> int: ...
    @property
    def key(self) -> int: ...
    @property
    def call(self) -> _CallKind: ...
    @property
    def value(self) -> Optional[int]: ...
    @property
    def expected(self) -> Optional[int]: ...
    @property
    def new(self) -> Optional[int]: ...
    @property
    def swapped(self) -> Optional[bool]: ...
    @property
    def invoke(self) -> int: ...
    @property
    def complete(self) -> int: ...
    @property
    def outcome(self) -> _OutcomeKind: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Verdict:
    """The checker's answer; true only when linearizable."""

    __match_args__ = ("kind", "key", "ops")
    @property
    def kind(self) -> _VerdictKind: ...
    @property
    def linearizable(self) -> bool: ...
    @property
    def key(self) -> Optional[int]: ...
    @property
    def ops(self) -> list[Operation]: ...
    @property
    def budget(self) -> Optional[_BudgetKind]:
        """For an inconclusive verdict: the budget that ran out."""
    @property
    def stuck(self) -> Optional[Operation]:
        """For a failure: the operation no linearization completes."""
    def html(self, title: str = "rsm counterexample") -> Optional[str]:
        """For a failure: the counterexample as one self-contained HTML page."""
    def __bool__(self) -> bool: ...

def check(
    history: Iterable[Operation],
    *,
    memory_bytes_max: Optional[int] = None,
    time_max: Optional[float] = None,
    shrink: Optional[bool] = None,
) -> Verdict:
    """Check a history for linearizability (per key, register model).

    Running out of memory or time gives an "inconclusive" verdict, which is not a pass.
    """

# Simulator ------------------------------------------------------------------------------

_FaultSetting = Union[float, int, bool, str]
_Faults = Union[Literal["swarm", "none"], Mapping[str, _FaultSetting]]
_Seeds = Union[range, Tuple[int, int], Iterable[int]]

@final
class Violation:
    """A violated invariant."""

    __match_args__ = ("invariant", "node", "detail")
    @property
    def invariant(self) -> str: ...
    @property
    def node(self) -> Optional[int]: ...
    @property
    def detail(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class RunStats:
    """What one run did, or the sums over many runs."""

    __match_args__ = (
        "ticks", "events", "elections", "ops_ok", "ops_fail", "ops_indeterminate"
    )
    @property
    def ticks(self) -> int: ...
    @property
    def events(self) -> int: ...
    @property
    def faults(self) -> dict[str, int]: ...
    @property
    def elections(self) -> int: ...
    @property
    def ops_ok(self) -> int: ...
    @property
    def ops_fail(self) -> int: ...
    @property
    def ops_indeterminate(self) -> int: ...
    @property
    def checks(self) -> int: ...

@final
class Report:
    """Figures aggregated over many seeds."""

    __match_args__ = ("seeds", "totals", "violations")
    @property
    def seeds(self) -> int: ...
    @property
    def totals(self) -> RunStats: ...
    @property
    def violations(self) -> list[Tuple[int, str, str]]: ...
    @property
    def liveness_ticks(self) -> list[int]: ...
    def liveness_percentile(self, p: int) -> Optional[int]: ...
    def render(self, elapsed_secs: float = 0.0) -> str:
        """The report as text; without ``elapsed_secs`` it says the wall time was not
        measured and leaves out the per-second rates."""
        ...

@final
class RunResult:
    """Everything one seed produced."""

    __match_args__ = ("seed", "nodes", "digest", "violation")
    @property
    def seed(self) -> int: ...
    @property
    def nodes(self) -> int: ...
    @property
    def clients(self) -> int: ...
    @property
    def digest(self) -> int: ...
    @property
    def stats(self) -> RunStats: ...
    @property
    def liveness_ticks(self) -> Optional[int]: ...
    @property
    def violation(self) -> Optional[Violation]: ...
    @property
    def tail(self) -> list[str]: ...
    @property
    def history(self) -> list[Operation]: ...
    @property
    def trace(self) -> list[str]: ...
    def failure_report(self) -> str: ...

def simulate(
    protocol: Literal["raft", "paxos", "vsr"] = "raft",
    seeds: Optional[_Seeds] = None,
    *,
    faults: Optional[_Faults] = None,
    nodes: Optional[int] = None,
    fault_ticks: Optional[int] = None,
    liveness_ticks_max: Optional[int] = None,
    ops_per_client: Optional[int] = None,
    check_linearizability: Optional[Union[bool, Literal["allow_inconclusive"]]] = None,
    options: Optional[Mapping[str, Union[int, bool]]] = None,
) -> Report:
    """Run the simulator over many seeds (GIL released) and aggregate a report."""

def run_seed(
    seed: int,
    protocol: Literal["raft", "paxos", "vsr"] = "raft",
    *,
    faults: Optional[_Faults] = None,
    nodes: Optional[int] = None,
    fault_ticks: Optional[int] = None,
    liveness_ticks_max: Optional[int] = None,
    ops_per_client: Optional[int] = None,
    check_linearizability: Optional[Union[bool, Literal["allow_inconclusive"]]] = None,
    keep_trace: Optional[bool] = None,
    options: Optional[Mapping[str, Union[int, bool]]] = None,
) -> RunResult:
    """Run one seed (GIL released); its figures, violation and history."""
