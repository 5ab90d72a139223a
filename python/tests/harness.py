"""A minimal in-memory host for Raft replicas, following the host rule.

Each node keeps a ``Durable`` image (its "disk"), executes effects in order, holds every
``Send`` that follows a ``Persist`` until that write is durable, and records what its
state machine applied. Messages travel through per-node mailboxes as opaque bytes. The
disk syncs immediately, so a held send leaves as soon as the step that emitted it is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import rsm


@dataclass
class Node:
    """One replica with its disk, its inbox and what its state machine applied."""

    id: int
    members: list[int]
    seed: int
    raft: rsm.Raft
    durable: rsm.Durable = field(default_factory=rsm.Durable)
    inbox: list[rsm.Receive] = field(default_factory=list)
    applied: list[bytes] = field(default_factory=list)
    answers: list[rsm.Effect] = field(default_factory=list)
    up: bool = True


class Cluster:
    """``n`` replicas wired together in memory."""

    def __init__(self, n: int = 3, seed: int = 1, **options: Any) -> None:
        members = list(range(1, n + 1))
        self.options = options
        self.nodes = {
            i: Node(i, members, seed + i, rsm.Raft(i, members, seed=seed + i, **options))
            for i in members
        }
        self.cut: set[tuple[int, int]] = set()

    def execute(self, node: Node, effects: list[rsm.Effect]) -> None:
        """Run effects in order; feed the automaton's follow-up inputs back to it."""
        pending = list(effects)
        while pending:
            follow: list[rsm.Input] = []
            for e in pending:
                if isinstance(e, rsm.Send):
                    if (node.id, e.to) not in self.cut and self.nodes[e.to].up:
                        self.nodes[e.to].inbox.append(rsm.Receive(node.id, e.msg))
                elif isinstance(e, rsm.Persist):
                    node.durable.apply(e)
                    follow.append(rsm.Persisted(e.seq))
                elif isinstance(e, rsm.Apply):
                    for entry in e.entries:
                        if entry.kind == "command":
                            node.applied.append(entry.payload)
                    follow.append(rsm.Applied(e.entries[-1].index))
                elif isinstance(e, (rsm.Proposed, rsm.Reject, rsm.ReadReady)):
                    node.answers.append(e)
            pending = node.raft.step_many(follow) if follow else []

    def tick(self, rounds: int = 1) -> None:
        """Tick every live node, then deliver every message, ``rounds`` times."""
        for _ in range(rounds):
            for node in self.nodes.values():
                if node.up:
                    self.execute(node, node.raft.step(rsm.Tick()))
            self.deliver()

    def deliver(self) -> None:
        """Deliver messages until every inbox is empty."""
        while any(n.inbox for n in self.nodes.values() if n.up):
            for node in self.nodes.values():
                if node.up and node.inbox:
                    batch, node.inbox = node.inbox, []
                    self.execute(node, node.raft.step_many(batch))

    def leader(self) -> Optional[Node]:
        """The live node that believes it leads, if exactly one does."""
        leaders = [n for n in self.nodes.values() if n.up and n.raft.status().role == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def elect(self, rounds_max: int = 200) -> Node:
        """Tick until a leader emerges."""
        for _ in range(rounds_max):
            self.tick()
            leader = self.leader()
            if leader is not None:
                return leader
        raise AssertionError("no leader elected")

    def propose(self, node: Node, req: int, command: bytes) -> None:
        """Hand a command to ``node``."""
        self.execute(node, node.raft.step(rsm.Propose(req, command)))
        self.deliver()

    def crash(self, node: Node) -> None:
        """Lose everything volatile; the disk (``durable``) survives."""
        node.up = False
        node.inbox.clear()

    def restart(self, node: Node) -> None:
        """Rebuild the replica from its disk."""
        node.raft = rsm.Raft.restore(
            node.durable, node.id, node.members, seed=node.seed + 1000, **self.options
        )
        node.applied.clear()
        node.up = True
