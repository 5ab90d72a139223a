"""Checked by ``mypy --strict`` (see the Makefile's ``python`` target) and run by
pytest through ``test_typing_check_runs``: everyday use of the stubs must type-check."""

from __future__ import annotations

from typing import Optional

import rsm
from harness import Log


def elect_single_node(seed: int) -> rsm.Status:
    host = rsm.Host("raft", 1, [1], machine=Log(), seed=seed,
                    options={"election_ticks_min": 5, "election_ticks_max": 9,
                             "heartbeat_ticks": 1, "pre_vote": False})
    while host.role != "leader":
        host.tick()
        host.sync()
    ticket: int = host.propose(b"one")
    for _ in range(3):
        host.sync()
        host.tick()
    outcome: Optional[rsm.Outcome] = host.outcome(ticket)
    assert outcome is not None and outcome.ok and outcome.value == 1
    sends: list[tuple[int, bytes]] = host.drain_sends()
    assert sends == []
    durable: rsm.Durable = host.durable()
    restored = rsm.Raft.restore(durable, 1, rsm.Membership([1]), seed=seed, pre_vote=False)
    effects: list[rsm.Effect] = restored.step(rsm.Tick())
    assert all(not isinstance(e, rsm.Apply) for e in effects)
    leader: Optional[int] = host.leader
    assert leader == 1 and restored.status().last_index == durable.last_index
    return host.status()


def simulate_and_check() -> bool:
    report: rsm.Report = rsm.simulate("raft", (0, 2), faults={"loss": 0.1}, nodes=3)
    result: rsm.RunResult = rsm.run_seed(0, faults="none")
    history: list[rsm.Operation] = result.history
    hand = [rsm.Operation(1, 0, "write", 0, 1, value=1), rsm.Operation(2, 0, "read", 2, 3, value=1)]
    # The simulator's history and a hand-written one are checked apart: merged, the hand
    # write would race with whatever the run's clients did on the same key.
    verdict: rsm.Verdict = rsm.check(history)
    hand_verdict: rsm.Verdict = rsm.check(hand)
    return report.violations == [] and verdict.linearizable and hand_verdict.linearizable


def main() -> None:
    assert elect_single_node(3).role == "leader"
    assert simulate_and_check()
