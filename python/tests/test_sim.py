"""The simulator and the linearizability checker from Python."""

from __future__ import annotations

from typing import Final

import pytest

import rsm
from gil import progress_during


def test_simulate_a_range_of_swarm_seeds_reports_no_violation() -> None:
    report = rsm.simulate("raft", range(0, 12))
    assert report.seeds == 12
    assert report.violations == []
    assert report.totals.ops_ok > 0
    assert report.totals.elections >= 12
    assert sum(report.totals.faults.values()) > 0, "swarm seeds inject faults"
    assert len(report.liveness_ticks) == 12
    assert report.liveness_percentile(100) == max(report.liveness_ticks)
    text = report.render(elapsed_secs=2.0)
    assert "seeds run:            12" in text
    assert "seeds/s:              6.0" in text
    assert "violations:           0" in text
    assert "Report(seeds=12" in repr(report)


def test_a_report_without_a_wall_time_says_so_and_prints_no_rates() -> None:
    report = rsm.simulate("raft", range(0, 2))
    for text in (report.render(), str(report)):
        assert "wall time:            not measured" in text
        assert "/s:" not in text, text
        assert "seeds run:            2" in text
        assert "simulated ticks:" in text


def test_seed_ranges_can_be_given_three_ways() -> None:
    a = rsm.simulate("raft", (5, 8))
    b = rsm.simulate("raft", range(5, 8))
    c = rsm.simulate("raft", [5, 6, 7])
    assert a.seeds == b.seeds == c.seeds == 3
    assert a.totals.events == b.totals.events == c.totals.events
    assert rsm.simulate(seeds=range(3, 3)).seeds == 0


def test_chosen_faults_and_a_calm_cluster() -> None:
    calm = rsm.simulate("raft", range(0, 4), faults="none", nodes=3)
    assert calm.totals.faults == {}
    assert calm.violations == []
    assert calm.totals.ops_fail + calm.totals.ops_indeterminate <= calm.totals.ops_ok
    lossy = rsm.simulate(
        "raft", range(0, 4), faults={"loss": 0.2, "crash": 0.3, "torn_writes": True}, nodes=5
    )
    assert lossy.totals.faults.get("message-loss", 0) > 0
    assert lossy.totals.faults.get("crash", 0) > 0
    assert "partition" not in lossy.totals.faults
    assert lossy.violations == []


def test_run_seed_is_deterministic_and_returns_a_checkable_history() -> None:
    r = rsm.run_seed(17)
    again = rsm.run_seed(17)
    assert r.digest == again.digest
    assert r.seed == 17 and r.nodes in (3, 4, 5, 7)
    assert r.violation is None
    assert r.liveness_ticks is not None
    assert r.history == again.history
    assert len(r.history) == r.stats.ops_ok + r.stats.ops_fail + r.stats.ops_indeterminate
    assert r.stats.ticks > 0 and r.stats.events > 0 and r.stats.checks > 0
    assert all(isinstance(op, rsm.Operation) for op in r.history)
    verdict = rsm.check(r.history)
    assert verdict.linearizable and bool(verdict) and verdict.kind == "linearizable"
    assert "no violation" in r.failure_report()
    assert r.trace == []
    traced = rsm.run_seed(17, keep_trace=True, fault_ticks=100)
    assert traced.trace and traced.trace[0].startswith("{")
    opted_in = rsm.run_seed(17, check_linearizability="allow_inconclusive")
    assert opted_in.digest == r.digest and opted_in.violation is None
    with pytest.raises(ValueError, match="\"allow_inconclusive\""):
        rsm.run_seed(17, check_linearizability="maybe")  # type: ignore[arg-type]


def test_protocol_options_reach_every_replica() -> None:
    # A snapshot every few entries and slow elections: the run changes and stays correct.
    plain = rsm.run_seed(2, faults="none")
    tuned = rsm.run_seed(
        2,
        faults="none",
        options={"snapshot_entries_threshold": 5, "election_ticks_min": 30,
                 "election_ticks_max": 45},
    )
    assert plain.violation is None and tuned.violation is None
    assert plain.digest != tuned.digest
    assert rsm.check(tuned.history).linearizable
    with pytest.raises(TypeError, match="Raft has no option `bogus`"):
        rsm.run_seed(1, options={"bogus": 1})
    with pytest.raises(ValueError, match="invalid Raft configuration"):
        rsm.simulate(seeds=range(1), options={"heartbeat_ticks": 50})


def test_simulator_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown protocol `zab`; registered: raft, paxos, vsr"):
        rsm.simulate("zab", range(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`seeds` must be"):
        rsm.simulate("raft", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ends before it starts"):
        rsm.simulate("raft", (5, 1))
    with pytest.raises(ValueError, match="`faults` must be"):
        rsm.simulate("raft", range(1), faults="chaos")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown fault setting `meteor`"):
        rsm.simulate("raft", range(1), faults={"meteor": 0.1})
    with pytest.raises(ValueError, match="probability in \\[0, 1\\]"):
        rsm.simulate("raft", range(1), faults={"loss": 1.5})
    with pytest.raises(ValueError, match="`nodes` must be between 1 and 15"):
        rsm.simulate("raft", range(1), nodes=0)
    with pytest.raises(TypeError, match="`keep_trace` must be a bool"):
        rsm.run_seed(1, keep_trace="yes")  # type: ignore[arg-type]


def test_simulate_releases_the_gil() -> None:
    assert progress_during(lambda: rsm.simulate("raft", range(0, 20))) > 0
    assert progress_during(lambda: rsm.run_seed(3)) > 0
    # Long enough that the checker is still searching when the spinner wakes up.
    history = [
        rsm.Operation(i % 4, i % 8, "write", 2 * i, 2 * i + 3, value=i) for i in range(100_000)
    ]
    assert progress_during(lambda: rsm.check(history)) > 0


W: Final = "write"
R: Final = "read"
F: Final = "fail"
I: Final = "indeterminate"


def test_check_a_hand_built_linearizable_history() -> None:
    ops = [
        rsm.Operation(1, 0, W, 0, 10, value=1),
        rsm.Operation(2, 0, R, 5, 15, value=1),
        rsm.Operation(3, 0, "cas", 12, 20, expected=1, new=2, swapped=True),
        rsm.Operation(1, 0, R, 21, 25, value=2),
        # A failed write never happened; an indeterminate one may happen any time later.
        rsm.Operation(2, 0, W, 16, 18, value=9, outcome=F),
        rsm.Operation(4, 1, W, 0, None, value=7, outcome=I),
        rsm.Operation(5, 1, R, 30, 31, value=7),
    ]
    verdict = rsm.check(ops)
    assert verdict.linearizable, str(verdict)
    assert verdict.key is None and verdict.ops == []
    assert str(verdict) == "linearizable"


def test_check_finds_a_stale_read_and_shrinks_it() -> None:
    ops = [
        rsm.Operation(1, 3, W, 0, 10, value=1),
        rsm.Operation(1, 3, W, 11, 20, value=2),
        rsm.Operation(2, 3, R, 21, 30, value=1),  # stale: 2 was written before it began
        rsm.Operation(3, 4, R, 0, 1, value=None),
    ]
    verdict = rsm.check(iter(ops))
    assert not verdict
    assert verdict.kind == "not_linearizable"
    assert verdict.key == 3
    assert ops[2] in verdict.ops
    assert all(op.key == 3 for op in verdict.ops)
    assert "not linearizable: key 3" in str(verdict)
    assert verdict.stuck == ops[2]
    page = verdict.html("stale read")
    assert page is not None and page.startswith("<!doctype html>")
    assert "<title>stale read</title>" in page and "read = 1" in page
    assert rsm.check(ops, shrink=False).kind == "not_linearizable"


def test_an_exhausted_check_is_inconclusive_not_a_pass() -> None:
    ops = [rsm.Operation(c, 0, W, 0, 100, value=c) for c in range(20)]
    verdict = rsm.check(ops, memory_bytes_max=0)
    assert verdict.kind == "inconclusive" and verdict.budget == "memory"
    assert not verdict and not verdict.linearizable
    assert verdict.key == 0 and verdict.html() is None
    assert str(verdict).startswith("inconclusive (not checked): the memory budget ran out")
    assert rsm.check(ops).linearizable
    with pytest.raises(ValueError, match="`time_max` must be a non-negative number"):
        rsm.check(ops, time_max=-1.0)


def test_operations_validate_their_fields() -> None:
    op = rsm.Operation(1, 2, "cas", 3, 4, expected=None, new=5, swapped=False)
    assert (op.client, op.key, op.call, op.invoke, op.complete) == (1, 2, "cas", 3, 4)
    assert (op.expected, op.new, op.swapped, op.outcome, op.value) == (None, 5, False, "ok", None)
    assert op == rsm.Operation(1, 2, "cas", 3, 4, new=5, swapped=False)
    assert "cas nil -> 5 refused" in str(op)
    with pytest.raises(ValueError, match="`call` must be"):
        rsm.Operation(1, 0, "delete", 0, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`outcome` must be"):
        rsm.Operation(1, 0, W, 0, 1, value=1, outcome="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs `swapped=True` or `swapped=False`"):
        rsm.Operation(1, 0, "cas", 0, 1, expected=1, new=2)
    with pytest.raises(ValueError, match="belong to a \"cas\" call"):
        rsm.Operation(1, 0, W, 0, 1, value=1, swapped=True)
    with pytest.raises(ValueError, match="before `invoke`"):
        rsm.Operation(1, 0, W, 10, 1, value=1)
    with pytest.raises(ValueError, match="did not complete has no `value`"):
        rsm.Operation(1, 0, R, 0, 1, value=3, outcome=F)
    with pytest.raises(TypeError, match="`complete` must be an int"):
        rsm.Operation(1, 0, W, 0, None, value=1)
    with pytest.raises(TypeError, match="iterable of Operation"):
        rsm.check(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Operation items"):
        rsm.check([rsm.Tick()])  # type: ignore[list-item]


def test_a_wiped_disk_is_survived_through_the_safe_procedure() -> None:
    wiped = rsm.simulate("raft", range(0, 6), faults={"wipe": 0.5}, nodes=3)
    assert wiped.totals.faults.get("wipe", 0) > 0
    assert wiped.violations == []
    with pytest.raises(ValueError, match="wipe"):
        rsm.simulate("raft", range(0, 1), faults={"wipe": 1.5})
