"""A 3-node Raft cluster in pure Python: asyncio over TCP on loopback.

Each node is an asyncio TCP server on 127.0.0.1 (an ephemeral port) that owns an
``rsm.Host``: the reference host runs the replica (the host rule, the follow-up inputs,
client outcomes), and this file only moves bytes, ticks the clock from a timer task and
says when writes are durable. Messages are the replica's opaque bytes, carried in
length-prefixed frames::

    [length: u32 big-endian][sender id: u64 big-endian][message bytes]

Storage is in memory, so a write is durable once ``sync()`` returns; each node syncs
after every input, then sends what the host released.

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


class Commands:
    """The state machine: every command applied, in order."""

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def apply(self, index: int, command: bytes) -> int:
        self.applied.append(command)
        return index

    def snapshot(self) -> bytes:
        return b"".join(len(c).to_bytes(4, "big") + c for c in self.applied)

    def restore(self, data: bytes) -> None:
        self.applied, at = [], 0
        while at < len(data):
            n = int.from_bytes(data[at:at + 4], "big")
            self.applied.append(data[at + 4:at + 4 + n])
            at += 4 + n


@dataclass
class Node:
    """One node: its host and state machine, its network endpoints, its waiting clients."""

    id: int
    host: rsm.Host
    machine: Commands
    ports: dict[int, int] = field(default_factory=dict)
    outboxes: dict[int, asyncio.Queue[bytes]] = field(default_factory=dict)
    senders: list[asyncio.Task[None]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: Optional[asyncio.Server] = None
    waiting: dict[int, asyncio.Future[int]] = field(default_factory=dict)

    @property
    def applied(self) -> list[bytes]:
        return self.machine.applied

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
                    self.host.receive(sender, msg)
                except ValueError:
                    continue  # a malformed frame is dropped; the replica is unchanged
                self.flush()
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

    def flush(self) -> None:
        """Make the writes durable, send what the host released, answer ended requests."""
        self.host.sync()
        for to, msg in self.host.drain_sends():
            self.send(to, msg)
        for outcome in self.host.take_outcomes():
            fut = self.waiting.pop(outcome.ticket, None)
            if fut is None or fut.done():
                continue
            if outcome.ok and outcome.index is not None:
                fut.set_result(outcome.index)
            else:
                fut.set_exception(RuntimeError(f"{outcome.status}: {outcome.detail}"))

    async def propose(self, command: bytes) -> int:
        """Replicate ``command``; returns its log index once this node applied it."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting[self.host.propose(command)] = fut
        self.flush()
        return await fut

    async def tick_forever(self) -> None:
        """Drive the automaton's clock."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.host.tick()
            self.flush()

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
        leaders = [n for n in nodes if n.host.role == "leader"]
        if len(leaders) == 1 and all(n.host.leader == leaders[0].id for n in nodes):
            return leaders[0]
        await asyncio.sleep(TICK_SECONDS)


async def run_cluster(commands: list[bytes], seed: int = 1) -> ClusterResult:
    """Start three nodes, elect a leader, replicate ``commands``, wait for every node."""
    members = [1, 2, 3]
    nodes = []
    for i in members:
        machine = Commands()
        nodes.append(Node(i, rsm.Host("raft", i, members, machine=machine, seed=seed * 10 + i),
                          machine))
    ports = {n.id: await n.start() for n in nodes}
    for n in nodes:
        n.ports = ports
    tickers = [asyncio.create_task(n.tick_forever()) for n in nodes]
    try:
        leader = await wait_for_leader(nodes)
        for cmd in commands:
            await leader.propose(cmd)
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
