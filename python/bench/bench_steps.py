"""Steps per second from Python, single versus batched, against the native loop; and
simulator seeds per second from Python against Rust.

    make python   # builds the module into .venv (release)
    .venv/bin/python python/bench/bench_steps.py [--rounds N] [--batch B] [--seeds S]

The replication loop is the one in ``python/examples/native_baseline.rs``, step for step:
three replicas, the leader gets ``B`` proposals of 16 bytes per round, every input a
replica's effects cause (messages as bytes, ``Persisted``, ``Applied``) is queued and
stepped until the cluster is quiet. Both sides print the number of steps, which must
agree. The native figures come from running that example in the same invocation.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import rsm

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = bytes([7]) * 16


class Cluster:
    """Three replicas and a queue of pending inputs per replica."""

    def __init__(self, batched: bool) -> None:
        self.nodes = [rsm.Raft(i, [1, 2, 3], seed=i) for i in (1, 2, 3)]
        self.queues: list[list[rsm.Input]] = [[], [], []]
        self.batched = batched
        self.steps = 0
        self.in_calls = 0.0  # seconds spent inside step / step_many

    def run_node(self, i: int) -> None:
        inputs, self.queues[i] = self.queues[i], []
        node = self.nodes[i]
        t = time.perf_counter()
        effects: list[rsm.Effect]
        if self.batched:
            effects = node.step_many(inputs)
        else:
            effects = []
            for x in inputs:
                effects += node.step(x)
        self.in_calls += time.perf_counter() - t
        self.steps += len(inputs)
        me = i + 1
        queues, own = self.queues, self.queues[i]
        for e in effects:
            if isinstance(e, rsm.Send):
                queues[e.to - 1].append(rsm.Receive(me, e.msg))
            elif isinstance(e, rsm.Persist):
                own.append(rsm.Persisted(e.seq))
            elif isinstance(e, rsm.Apply):
                own.append(rsm.Applied(e.entries[-1].index))

    def settle(self) -> None:
        while any(self.queues):
            for i in range(3):
                self.run_node(i)

    def elect(self) -> int:
        while True:
            for q in self.queues:
                q.append(rsm.Tick())
            self.settle()
            for i, n in enumerate(self.nodes):
                if n.status().role == "leader":
                    return i

    def replicate(self, leader: int, rounds: int, batch: int) -> None:
        req = 0
        for _ in range(rounds):
            for _ in range(batch):
                req += 1
                self.queues[leader].append(rsm.Propose(req, PAYLOAD))
            self.settle()


def python_steps(batched: bool, rounds: int, batch: int) -> tuple[int, float, float]:
    """Steps, steps/s of the whole Python loop, steps/s counting time inside the calls."""
    c = Cluster(batched)
    leader = c.elect()
    steps0, in_calls0 = c.steps, c.in_calls
    start = time.perf_counter()
    c.replicate(leader, rounds, batch)
    wall = time.perf_counter() - start
    steps = c.steps - steps0
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
    assert steps == steps_b, "single and batched runs must step the same inputs"
    py_seeds = python_seeds(a.seeds)
    nat = {} if a.no_native else native(a.rounds, a.batch, a.seeds)
    if nat:
        assert int(nat["steps"]) == steps, f"native loop stepped {nat['steps']}, Python {steps}"

    print(f"replication loop: {a.rounds} rounds of {a.batch} proposals, {steps} steps")
    print("| driver | steps/s (whole loop) | steps/s (inside step calls) |")
    print("|---|---|---|")
    print(f"| Python, `step` one input at a time | {single_loop:,.0f} | {single_calls:,.0f} |")
    print(f"| Python, `step_many` per node and turn | {batched_loop:,.0f} | {batched_calls:,.0f} |")
    if nat:
        print(f"| Rust, messages as bytes | {nat['steps_per_sec_bytes']:,.0f} | - |")
        print(f"| Rust, messages as values | {nat['steps_per_sec_values']:,.0f} | - |")
        ratio = nat["steps_per_sec_bytes"] / batched_calls
        print(f"cost of a batched step from Python / native step with bytes: {ratio:.2f}x")
    print()
    print(f"simulator, {a.seeds} swarm seeds (raft, linearizability checked):")
    print(f"| driver | seeds/s |\n|---|---|\n| Python `rsm.simulate` | {py_seeds:.1f} |")
    if nat:
        print(f"| Rust `sim::run` | {nat['seeds_per_sec']:.1f} |")


if __name__ == "__main__":
    main()
