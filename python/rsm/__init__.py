"""rsm: replicated state machines from Python.

Run replicated nodes (``rsm.Host``), drive rsm's deterministic consensus automata step by
step (``rsm.Raft``, ``rsm.Paxos``, ``rsm.Vsr``), its fault-injecting simulator
(``rsm.simulate``, ``rsm.run_seed``) and its linearizability checker (``rsm.check``) without
writing Rust.

``rsm.Host(protocol, id, members, machine=...)`` is one node run by the reference host: it
keeps the host rule, feeds the replica its follow-up inputs and ends every client request
with one ``Outcome`` (``ok``, ``definite`` or ``indefinite``). Python brings the state
machine (``apply``, ``snapshot``, ``restore``, ``query``), moves the bytes of
``drain_sends()`` to the peers' ``receive``, ticks the clock, and says when writes are
durable (``sync()`` or ``persisted(seq)``). Storage is in memory or a Python object with
``write(persist)`` and ``sync()``. Prefer it to writing a host loop over ``rsm.Raft``.

An automaton never touches a socket, a file or a clock. Feed it inputs (``Tick``,
``Receive``, ``Propose``, ``Read``, ``Persisted``, ``Applied``, ...) with ``step`` or
``step_many`` and execute the effects it returns (``Send``, ``Persist``, ``Apply``,
``Proposed``, ``ReadReady``, ``Reject``, ...) in order. Messages are opaque ``bytes``:
ship a ``Send``'s ``msg`` over any network and hand it to the peer as
``Receive(sender, msg)``. The one host rule: a ``Send`` that follows a ``Persist``
leaves only after that write is durable, reported with ``Persisted(through=seq)``.

Keep what a replica made durable in a ``Durable`` (apply each ``Persist`` to it) and
rebuild the replica after a restart with ``Raft.restore(durable, id, members, ...)``.

A Rust panic inside a replica raises ``PanicException`` and poisons that replica: every
later call raises ``PoisonedError`` until it is rebuilt with ``restore``.
"""

from typing import Union

# Every class and function of the native module, as its ``__all__`` (and its stub) lists them.
from rsm._rsm import *  # noqa: F403
from rsm._rsm import __all__ as _native

Input = Union[
    Tick,
    Receive,
    Propose,
    Read,
    Persisted,
    Applied,
    Snapshot,
    Reconfigure,
    TransferLeadership,
    Campaign,
]
"""Anything ``step`` accepts."""

Effect = Union[
    Send, Persist, Apply, Proposed, ReadReady, Reject, TakeSnapshot, InstallSnapshot, RoleChanged
]
"""Anything ``step`` returns."""

__all__ = ["Effect", "Input", *_native]
