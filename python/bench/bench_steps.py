"""Inputs per second through ``rsm.Host`` from Python, per message versus batched, against
the same loop through the reference host natively; and simulator seeds per second from
Python against Rust.

    make python   # builds the module into .venv (release)
    .venv/bin/python python/bench/bench_steps.py [--rounds N] [--batch B] [--seeds S]

The replication loop is the one in ``python/examples/native_baseline.rs``, call for call:
three nodes, each an ``rsm.Host`` with storage in memory and a state machine that counts
commands; the leader gets ``B`` proposals of 16 bytes per round, then every node in turn
receives the messages queued for it, syncs, and queues what the host released, until no
message waits and no write is unsynced. The figure is inputs the hosts fed their replicas
(messages, proposals and the follow-ups ``Persisted`` and ``Applied``) per second; both
sides print that count, which must agree. The native figures come from running that
example in the same invocation.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import rsm

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = bytes([7]) * 16


class Counter:
    """The state machine: counts the commands applied."""

    def __init__(self) -> None:
        self.count = 0

    def apply(self, index: int, command: bytes) -> int:
        self.count += 1
        return self.count

    def snapshot(self) -> bytes:
        return self.count.to_bytes(8, "big")

    def restore(self, data: bytes) -> None:
        self.count = int.from_bytes(data, "big")


class Cluster:
    """Three hosts and a queue of inbound ``(sender, bytes)`` per host."""

    def __init__(self, batched: bool) -> None:
        self.hosts = [rsm.Host("raft", i, [1, 2, 3], machine=Counter(), seed=i) for i in (1, 2, 3)]
        self.queues: list[list[tuple[int, bytes]]] = [[], [], []]
        self.batched = batched
        self.in_calls = 0.0  # seconds spent inside the host's calls
        self.ok = 0

    def steps(self) -> int:
        return sum(h.stats()["steps"] for h in self.hosts)

    def run_node(self, i: int) -> None:
        inbox, self.queues[i] = self.queues[i], []
        host = self.hosts[i]
        t = time.perf_counter()
        if self.batched:
            if inbox:
                host.receive_many(inbox)
        else:
            for sender, msg in inbox:
                host.receive(sender, msg)
        host.sync()
        sends = host.drain_sends()
        ended = host.take_outcomes()
        self.in_calls += time.perf_counter() - t
        me, queues = i + 1, self.queues
        for to, msg in sends:
            queues[to - 1].append((me, msg))
        self.ok += sum(1 for o in ended if o.ok)

    def busy(self) -> bool:
        return any(self.queues) or any(h.needs_sync for h in self.hosts)

    def settle(self) -> None:
        while self.busy():
            for i in range(3):
                self.run_node(i)

    def elect(self) -> int:
        while True:
            for i, h in enumerate(self.hosts):
                h.tick()
                self.run_node(i)
            self.settle()
            for i, h in enumerate(self.hosts):
                if h.role == "leader":
                    return i

    def replicate(self, leader: int, rounds: int, batch: int) -> None:
        host = self.hosts[leader]
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(batch):
                host.propose(PAYLOAD)
            self.in_calls += time.perf_counter() - t
            self.run_node(leader)
            self.settle()


def python_steps(batched: bool, rounds: int, batch: int) -> tuple[int, float, float]:
    """Inputs fed, inputs/s of the whole Python loop, inputs/s counting time inside the
    host's calls."""
    c = Cluster(batched)
    leader = c.elect()
    steps0, in_calls0 = c.steps(), c.in_calls
    c.ok = 0
    start = time.perf_counter()
    c.replicate(leader, rounds, batch)
    wall = time.perf_counter() - start
    assert c.ok == rounds * batch, f"{c.ok} of {rounds * batch} proposals ended ok"
    steps = c.steps() - steps0
    return steps, steps / wall, steps / (c.in_calls - in_calls0)


def python_seeds(seeds: int) -> float:
    start = time.perf_counter()
    report = rsm.simulate("raft", range(seeds))
    assert report.violations == [], report.violations
    return seeds / (time.perf_counter() - start)


def native(rounds: int, batch: int, seeds: int) -> dict[str, float]:
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "rsm-python", "--example",
         "native_baseline", "--", str(rounds), str(batch), str(seeds)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--no-native", action="store_true", help="skip the Rust baseline")
    a = p.parse_args()

    steps, single_loop, single_calls = python_steps(False, a.rounds, a.batch)
    steps_b, batched_loop, batched_calls = python_steps(True, a.rounds, a.batch)
    assert steps == steps_b, "per-message and batched runs must feed the same inputs"
    py_seeds = python_seeds(a.seeds)
    nat = {} if a.no_native else native(a.rounds, a.batch, a.seeds)
    if nat:
        assert int(nat["steps"]) == steps, f"native hosts fed {nat['steps']}, Python {steps}"

    print(f"replication loop: {a.rounds} rounds of {a.batch} proposals, {steps} inputs fed")
    print("| driver | inputs/s (whole loop) | inputs/s (inside the host's calls) |")
    print("|---|---|---|")
    print(f"| Python `rsm.Host`, `receive` per message | {single_loop:,.0f} | {single_calls:,.0f} |")
    print(f"| Python `rsm.Host`, `receive_many` per node and turn | {batched_loop:,.0f} | "
          f"{batched_calls:,.0f} |")
    if nat:
        print(f"| Rust `rsm_core::Host`, messages as bytes | {nat['steps_per_sec_bytes']:,.0f} | - |")
        print(f"| Rust `rsm_core::Host`, messages as values | {nat['steps_per_sec_values']:,.0f} | - |")
        ratio = nat["steps_per_sec_bytes"] / batched_calls
        print(f"native inputs/s with bytes / Python batched inputs/s inside the calls: {ratio:.2f}x")
        ratio = nat["steps_per_sec_bytes"] / batched_loop
        print(f"native inputs/s with bytes / Python batched inputs/s, whole loop: {ratio:.2f}x")
    print()
    print(f"simulator, {a.seeds} swarm seeds (raft, linearizability checked):")
    print(f"| driver | seeds/s |\n|---|---|\n| Python `rsm.simulate` | {py_seeds:.1f} |")
    if nat:
        print(f"| Rust `sim::run` | {nat['seeds_per_sec']:.1f} |")


if __name__ == "__main__":
    main()
