"""Checked by ``mypy --strict`` (see the Makefile's ``python`` target) and run by
pytest through ``test_typing_check_runs``: everyday use of the stubs must type-check."""

from __future__ import annotations

from typing import Optional

import rsm


def elect_single_node(seed: int) -> rsm.Status:
    raft = rsm.Raft(1, [1], seed=seed, election_ticks_min=5, election_ticks_max=9,
                    heartbeat_ticks=1, pre_vote=False)
    durable = rsm.Durable()
    effects: list[rsm.Effect] = raft.step_many([rsm.Tick()] * 20)
    while effects:
        follow: list[rsm.Input] = []
        for e in effects:
            match e:
                case rsm.Persist():
                    durable.apply(e)
                    follow.append(rsm.Persisted(e.seq))
                case rsm.Apply(entries):
                    follow.append(rsm.Applied(entries[-1].index))
                case rsm.Send(to, msg):
                    assert isinstance(msg, bytes) and to != 1
                case _:
                    pass
        effects = raft.step_many(follow) if follow else []
    restored = rsm.Raft.restore(durable, 1, rsm.Membership([1]), seed=seed)
    leader: Optional[int] = raft.status().leader
    assert leader == 1 and restored.status().last_index == durable.last_index
    return raft.status()


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
