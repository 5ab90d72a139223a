"""A 3-node Raft cluster in pure Python: asyncio over TCP on loopback.

Each node is an asyncio TCP server on 127.0.0.1 (an ephemeral port) that owns an
``rsm.Raft`` automaton, ticks it from a timer task and executes the effects it returns.
Messages are the automaton's opaque bytes, carried in length-prefixed frames::

    [length: u32 big-endian][sender id: u64 big-endian][message bytes]

Durable state lives in memory (an ``rsm.Durable`` per node), which keeps the host rule:
every ``Persist`` is applied to the node's durable image before any later ``Send`` of the
same batch leaves, and the automaton hears ``Persisted(seq)`` afterwards.

Run it with ``python python/examples/raft_cluster.py``: it elects a leader, replicates a
few commands, and prints the leader and what every node applied.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import Optional

import rsm

TICK_SECONDS = 0.01
"""One logical tick: elections take 10 to 20 ticks, heartbeats every 2."""

FRAME_HEADER = struct.Struct(">IQ")
FRAME_BYTES_MAX = 16 << 20
"""Frames larger than this are refused: a confused or hostile peer cannot make us allocate."""

OUTBOX_FRAMES_MAX = 1024
"""Frames queued for one peer at most; beyond it new frames are dropped."""


@dataclass
class Node:
    """One replica with its network endpoints, its durable image and its state machine."""

    id: int
    members: list[int]
    raft: rsm.Raft
    durable: rsm.Durable = field(default_factory=rsm.Durable)
    applied: list[bytes] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)
    outboxes: dict[int, asyncio.Queue[bytes]] = field(default_factory=dict)
    senders: list[asyncio.Task[None]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: Optional[asyncio.Server] = None
    proposals: dict[int, asyncio.Future[int]] = field(default_factory=dict)
    waiting_apply: dict[int, tuple[int, asyncio.Future[int]]] = field(default_factory=dict)

    async def start(self) -> int:
        """Listen on an ephemeral loopback port; returns the port."""
        self.server = await asyncio.start_server(self.serve_peer, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read frames from one peer connection and feed them to the automaton."""
        try:
            while True:
                header = await reader.readexactly(FRAME_HEADER.size)
                length, sender = FRAME_HEADER.unpack(header)
                if length > FRAME_BYTES_MAX:
                    break
                msg = await reader.readexactly(length)
                try:
                    effects = self.raft.step(rsm.Receive(sender, msg))
                except ValueError:
                    continue  # a malformed frame is dropped; the replica is unchanged
                self.execute(effects)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def send(self, to: int, msg: bytes) -> None:
        """Queue one frame for peer ``to``. Never blocks: when a peer's queue is full the
        frame is dropped, which Raft tolerates like any lost message."""
        queue = self.outboxes.get(to)
        if queue is None:
            queue = self.outboxes[to] = asyncio.Queue(OUTBOX_FRAMES_MAX)
            self.senders.append(asyncio.create_task(self.drain(to, queue)))
        if not queue.full():
            queue.put_nowait(FRAME_HEADER.pack(len(msg), self.id) + msg)

    async def drain(self, to: int, queue: asyncio.Queue[bytes]) -> None:
        """Write queued frames to peer ``to``, (re)connecting as needed."""
        writer: Optional[asyncio.StreamWriter] = None
        while True:
            frame = await queue.get()
            try:
                if writer is None or writer.is_closing():
                    _, writer = await asyncio.open_connection("127.0.0.1", self.ports[to])
                    self.writers.append(writer)
                writer.write(frame)
                await writer.drain()
            except OSError:
                writer = None  # the peer is down: Raft retries on its own schedule

    def execute(self, effects: list[rsm.Effect]) -> None:
        """Execute effects in order, then feed back what the automaton must hear.

        Synchronous on purpose: no other task can step the automaton or touch the durable
        image between two effects of one batch, so persists are applied in emission order.
        """
        while effects:
            follow: list[rsm.Input] = []
            persisted = 0
            for e in effects:
                if isinstance(e, rsm.Persist):
                    # In-memory "disk": durable as soon as applied, so the sends that
                    # follow may leave; the automaton hears about it below.
                    self.durable.apply(e)
                    persisted = e.seq
                elif isinstance(e, rsm.Send):
                    self.send(e.to, e.msg)
                elif isinstance(e, rsm.Apply):
                    self.apply(e.entries)
                    follow.append(rsm.Applied(e.entries[-1].index))
                elif isinstance(e, rsm.Proposed):
                    fut = self.proposals.pop(e.req, None)
                    if fut is not None and not fut.done():
                        self.waiting_apply[e.index] = (e.epoch, fut)
                elif isinstance(e, rsm.Reject):
                    fut = self.proposals.pop(e.req, None)
                    if fut is not None and not fut.done():
                        fut.set_exception(RuntimeError(f"rejected: {e.detail}"))
            if persisted:
                follow.insert(0, rsm.Persisted(persisted))
            effects = self.raft.step_many(follow) if follow else []

    def apply(self, entries: list[rsm.Entry]) -> None:
        """The state machine: remember every command, in order; answer waiting clients."""
        for entry in entries:
            if entry.kind == "command":
                self.applied.append(entry.payload)
            waiting = self.waiting_apply.pop(entry.index, None)
            if waiting is not None:
                epoch, fut = waiting
                if epoch == entry.epoch:
                    fut.set_result(entry.index)
                else:
                    fut.set_exception(RuntimeError("superseded by another leader"))

    async def propose(self, req: int, command: bytes) -> int:
        """Replicate ``command``; returns its log index once this node applied it."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.proposals[req] = fut
        self.execute(self.raft.step(rsm.Propose(req, command)))
        return await fut

    async def tick_forever(self) -> None:
        """Drive the automaton's clock."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.execute(self.raft.step(rsm.Tick()))

    async def stop(self) -> None:
        """Stop the senders, close every connection and the listener."""
        for t in self.senders:
            t.cancel()
        await asyncio.gather(*self.senders, return_exceptions=True)
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class ClusterResult:
    """What a run achieved."""

    leader: int
    commands: list[bytes]
    applied: dict[int, list[bytes]]


async def wait_for_leader(nodes: list[Node]) -> Node:
    """Poll until exactly one node leads and every node knows it."""
    while True:
        leaders = [n for n in nodes if n.raft.status().role == "leader"]
        if len(leaders) == 1 and all(n.raft.status().leader == leaders[0].id for n in nodes):
            return leaders[0]
        await asyncio.sleep(TICK_SECONDS)


async def run_cluster(commands: list[bytes], seed: int = 1) -> ClusterResult:
    """Start three nodes, elect a leader, replicate ``commands``, wait for every node."""
    members = [1, 2, 3]
    nodes = [
        Node(i, members, rsm.Raft(i, members, seed=seed * 10 + i)) for i in members
    ]
    ports = {n.id: await n.start() for n in nodes}
    for n in nodes:
        n.ports = ports
    tickers = [asyncio.create_task(n.tick_forever()) for n in nodes]
    try:
        leader = await wait_for_leader(nodes)
        for req, cmd in enumerate(commands, start=1):
            await leader.propose(req, cmd)
        while any(len(n.applied) < len(commands) for n in nodes):
            await asyncio.sleep(TICK_SECONDS)
        return ClusterResult(leader.id, commands, {n.id: list(n.applied) for n in nodes})
    finally:
        for t in tickers:
            t.cancel()
        await asyncio.gather(*tickers, return_exceptions=True)
        for n in nodes:
            await n.stop()


async def main(timeout_seconds: float = 30.0) -> ClusterResult:
    """Run the demo and print what happened."""
    commands = [f"set k{i} v{i}".encode() for i in range(5)]
    result = await asyncio.wait_for(run_cluster(commands), timeout_seconds)
    print(f"leader: node {result.leader}")
    for node_id, applied in sorted(result.applied.items()):
        print(f"node {node_id} applied: {[c.decode() for c in applied]}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
