"""An in-memory network of ``rsm.Host`` nodes for tests.

The reference host runs each node (host rule, follow-up inputs, client outcomes); this
file only moves bytes between nodes, ticks clocks, decides when disks sync, and breaks
things on purpose: it drops messages with a seeded probability, cuts links, and crashes
nodes, which lose every write their disk had not synced.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Optional

import rsm


class Log:
    """The replicated state machine: the commands applied, in order."""

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def apply(self, index: int, command: bytes) -> int:
        self.applied.append(command)
        return len(self.applied)

    def snapshot(self) -> bytes:
        return b"".join(len(c).to_bytes(4, "big") + c for c in self.applied)

    def restore(self, data: bytes) -> None:
        applied, at = [], 0
        while at < len(data):
            n = int.from_bytes(data[at:at + 4], "big")
            applied.append(data[at + 4:at + 4 + n])
            at += 4 + n
        self.applied = applied

    def query(self, query: Any) -> int:
        return len(self.applied)


class Disk:
    """Storage that keeps writes in a buffer until ``sync``; a crash loses the buffer."""

    def __init__(self, image: Optional[rsm.Durable] = None) -> None:
        self.image = image if image is not None else rsm.Durable()
        self.buffer: list[rsm.Persist] = []

    def write(self, persist: rsm.Persist) -> None:
        self.buffer.append(persist)

    def sync(self) -> None:
        for persist in self.buffer:
            self.image.apply(persist)
        self.buffer.clear()


def lead_alone(host: rsm.Host) -> None:
    """Tick and sync a one-node host until it leads."""
    for _ in range(100):
        host.tick()
        host.sync()
        if host.role == "leader":
            return
    raise AssertionError("a single node did not elect itself")


@dataclass
class Node:
    """One node: its host, state machine and disk, and the messages waiting for it."""

    id: int
    host: rsm.Host
    machine: Log
    disk: Disk
    inbox: list[tuple[int, bytes]] = field(default_factory=list)
    up: bool = True

    @property
    def applied(self) -> list[bytes]:
        return self.machine.applied


class Cluster:
    """``n`` nodes of ``protocol`` wired together in memory. ``loss`` is the chance that a
    message is dropped; ``rng_seed`` fixes which ones."""

    def __init__(self, n: int = 3, seed: int = 1, loss: float = 0.0, rng_seed: int = 0,
                 protocol: str = "raft", **options: Any) -> None:
        self.protocol = protocol
        self.members = list(range(1, n + 1))
        self.seed = seed
        self.options = options
        self.loss = loss
        self.rng = random.Random(rng_seed)
        self.cut: set[tuple[int, int]] = set()
        self.restarts = 0
        self.calls: list[Call] = []
        self.nodes = {i: self.start(i, None) for i in self.members}

    def start(self, i: int, image: Optional[rsm.Durable]) -> Node:
        machine, disk = Log(), Disk(image)
        seed = self.seed + i + 1000 * self.restarts
        host = rsm.Host(self.protocol, i, self.members, machine=machine, storage=disk, durable=image,
                        seed=seed, options=self.options)
        return Node(i, host, machine, disk)

    def flush(self, node: Node) -> None:
        """Sync the node's disk, then put what it may send on the wire."""
        node.host.sync()
        for to, msg in node.host.drain_sends():
            peer = self.nodes[to]
            if (node.id, to) in self.cut or not peer.up or self.rng.random() < self.loss:
                continue
            peer.inbox.append((node.id, msg))

    def tick(self, rounds: int = 1) -> None:
        """Tick every live node, then deliver every message, ``rounds`` times."""
        for _ in range(rounds):
            for node in self.live():
                node.host.tick()
                self.flush(node)
            self.deliver()

    def deliver(self) -> None:
        """Deliver messages until every live inbox is empty."""
        while any(n.inbox for n in self.live()):
            for node in self.live():
                if node.inbox:
                    batch, node.inbox = node.inbox, []
                    node.host.receive_many(batch)
                    self.flush(node)

    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.up]

    def leader(self) -> Optional[Node]:
        """The live node that believes it leads, if exactly one does."""
        leaders = [n for n in self.live() if n.host.role == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def elect(self, rounds_max: int = 200) -> Node:
        """Tick until a leader emerges."""
        for _ in range(rounds_max):
            self.tick()
            leader = self.leader()
            if leader is not None:
                return leader
        raise AssertionError("no leader elected")

    def propose(self, node: Node, command: bytes) -> Call:
        """Hand a command to ``node``; the call, to look at its outcome later."""
        call = Call(node.host, node.host.propose(command), command)
        self.calls.append(call)
        self.flush(node)
        self.deliver()
        return call

    def crash(self, node: Node) -> None:
        """Lose everything volatile, including unsynced writes; the disk's image survives.
        The node's pending requests end indefinite."""
        node.host.stop()
        node.up = False
        node.inbox.clear()
        node.disk.buffer.clear()

    def restart(self, node: Node) -> None:
        """Rebuild the node from its disk's image (a new host, state machine and disk)."""
        self.restarts += 1
        fresh = self.start(node.id, node.disk.image)
        node.host, node.machine, node.disk, node.up = fresh.host, fresh.machine, fresh.disk, True


@dataclass
class Call:
    """One client request: the host it went to, its ticket and command, and its outcome
    once ended."""

    host: rsm.Host
    ticket: int
    command: bytes
    result: Optional[rsm.Outcome] = None

    def poll(self) -> Optional[rsm.Outcome]:
        if self.result is None:
            self.result = self.host.outcome(self.ticket)
        return self.result
