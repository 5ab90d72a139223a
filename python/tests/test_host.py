"""rsm.Host: a node run by the reference host. Python brings the state machine and the
network; the host keeps the host rule and ends every client call with one outcome."""

from __future__ import annotations

import random
from typing import Any, Optional

import pytest

import rsm
from harness import Call, Cluster, Disk, Log, lead_alone


def single(**kwargs: Any) -> rsm.Host:
    """A one-node Raft host with its state machine in memory."""
    return rsm.Host("raft", 1, [1], machine=Log(), seed=7, **kwargs)


def settle(host: rsm.Host, rounds: int = 3) -> None:
    """Sync and tick a one-node host a few times: a commit may need a second write."""
    for _ in range(rounds):
        host.sync()
        host.tick()


@pytest.mark.parametrize("protocol, options", [
    ("raft", {"snapshot_entries_threshold": 16}),
    ("paxos", {}),
    ("vsr", {}),
])
@pytest.mark.parametrize("rng_seed", [1, 2, 3])
def test_every_call_ends_truthfully_under_loss_and_crashes(
    protocol: str, options: dict[str, int], rng_seed: int
) -> None:
    """Clients propose to random nodes while messages are lost and nodes crash and restart
    (losing unsynced writes). Every call ends; an ok call's command is in the final log
    exactly once, at the position `apply` returned; a definite failure's command is not in
    it at all; every node applies the same log."""
    rng = random.Random(rng_seed)
    c = Cluster(3, seed=rng_seed, loss=0.15, rng_seed=rng_seed, protocol=protocol, **options)
    c.elect()
    down: Optional[int] = None
    for step in range(120):
        node = c.nodes[rng.choice(c.members)]
        if node.up:
            c.propose(node, b"cmd-%d-%d" % (rng_seed, step))
        c.tick()
        if step % 30 == 10:
            # A leader crashes with a proposal in flight: that call's outcome is unknown.
            leader = c.leader()
            if leader is not None and down is None:
                command = b"cmd-%d-%d-last" % (rng_seed, step)
                c.calls.append(Call(leader.host, leader.host.propose(command), command))
                c.crash(leader)
                down = leader.id
        elif step % 30 == 25 and down is not None:
            c.restart(c.nodes[down])
            down = None
    if down is not None:
        c.restart(c.nodes[down])
    c.loss = 0.0
    for _ in range(400):
        c.tick()
        logs = [n.applied for n in c.nodes.values()]
        if all(call.poll() is not None for call in c.calls) and all(
            log == logs[0] for log in logs
        ):
            break
    final = c.nodes[1].applied
    for node in c.nodes.values():
        assert node.applied == final, f"node {node.id} applied another log"
    assert len(set(final)) == len(final), "a command was applied twice"
    kinds = {"ok": 0, "definite": 0, "indefinite": 0}
    for call in c.calls:
        outcome = call.poll()
        assert outcome is not None, f"ticket {call.ticket} never ended"
        kinds[outcome.status] += 1
        if outcome.ok:
            assert isinstance(outcome.value, int)
            assert final[outcome.value - 1] == call.command
        elif outcome.definite:
            assert call.command not in final, outcome
        else:
            assert outcome.reason in ("shutdown", "timeout", "outcome_unknown",
                                      "leadership_lost"), outcome
    assert kinds["ok"] > 0 and kinds["definite"] > 0 and kinds["indefinite"] > 0, kinds


def test_sends_wait_until_the_write_they_follow_is_durable() -> None:
    host = rsm.Host("raft", 1, [1, 2, 3], machine=Log(), seed=3,
                    options={"election_ticks_min": 5, "election_ticks_max": 6,
                             "heartbeat_ticks": 1, "pre_vote": False})
    for _ in range(10):
        host.tick()
        if host.needs_sync:
            break
    # The vote request follows the write of the new term: it waits for the sync.
    assert host.role == "candidate" and host.written_seq > host.durable_seq
    assert host.drain_sends() == [] and host.held_sends == 2
    host.persisted(host.written_seq)
    sends = host.drain_sends()
    assert sorted(to for to, _ in sends) == [2, 3]
    assert all(isinstance(msg, bytes) and msg for _, msg in sends)
    assert not host.needs_sync and host.held_sends == 0
    with pytest.raises(ValueError, match="beyond the last write"):
        host.persisted(host.written_seq + 1)


def test_outcomes_are_polled_or_taken_in_the_order_requests_ended() -> None:
    host = single(request_timeout_ticks=50)
    early = host.propose(b"too early")
    refused = host.outcome(early)
    assert refused is not None and refused.definite and refused.reason == "not_leader"
    with pytest.raises(ValueError, match="not pending"):
        host.outcome(early)  # taken already
    lead_alone(host)
    a = host.propose(b"a")
    assert host.outcome(a) is None  # pending until its write is durable
    b = host.propose(b"b")
    r = host.read("count")
    host.sync()
    done = host.take_outcomes()
    assert [o.ticket for o in done] == [a, b, r]
    assert [o.status for o in done] == ["ok", "ok", "ok"]
    assert [o.value for o in done] == [1, 2, 2]
    assert done[0].index is not None and done[1].index == done[0].index + 1
    assert host.take_outcomes() == []
    with pytest.raises(ValueError, match="ticket 99 is not pending"):
        host.outcome(99)
    assert host.machine.applied == [b"a", b"b"]
    assert host.stats()["steps"] > 0 and host.applied_index == done[1].index


def test_a_query_that_raises_fails_only_that_read() -> None:
    class Picky(Log):
        def query(self, query: Any) -> int:
            if query == "bad":
                raise KeyError(query)
            return len(self.applied)

    host = rsm.Host("raft", 1, [1], machine=Picky(), seed=7)
    lead_alone(host)
    bad, good = host.read("bad"), host.read("good")
    host.sync()
    first, second = host.take_outcomes()
    assert (first.ticket, first.status, first.reason) == (bad, "definite", "query_failed")
    assert isinstance(first.value, KeyError)
    assert (second.ticket, second.ok) == (good, True)
    assert not host.stopped


def test_a_raising_apply_stops_the_node_and_claims_nothing() -> None:
    class Broken(Log):
        def apply(self, index: int, command: bytes) -> int:
            if command == b"boom":
                raise RuntimeError("cannot apply")
            return super().apply(index, command)

    host = rsm.Host("raft", 1, [1], machine=Broken(), seed=7)
    lead_alone(host)
    boom, after = host.propose(b"boom"), host.propose(b"after")
    with pytest.raises(rsm.HostError, match="callback raised") as raised:
        settle(host)
    assert isinstance(raised.value.__cause__, RuntimeError)
    outcomes = {o.ticket: o for o in host.take_outcomes()}
    assert outcomes[boom].status == "indefinite"
    assert outcomes[boom].reason == "state_machine_failed"
    assert outcomes[after].status == "indefinite"
    assert host.stopped and host.machine.applied == []
    with pytest.raises(rsm.HostError, match="has stopped"):
        host.tick()
    late = host.outcome(host.propose(b"late"))
    assert late is not None and late.definite and late.reason == "not_running"


def test_a_raising_storage_stops_the_node_before_anything_is_acknowledged() -> None:
    class Full(Disk):
        def sync(self) -> None:
            raise OSError("disk full")

    host = rsm.Host("raft", 1, [1], machine=Log(), storage=Full(), seed=7)
    for _ in range(30):
        host.tick()
    with pytest.raises(rsm.HostError, match="sync") as raised:
        host.sync()
    assert isinstance(raised.value.__cause__, OSError)
    assert host.role != "leader" and host.drain_sends() == []


def test_a_node_restarts_from_its_in_memory_image() -> None:
    host = single()
    lead_alone(host)
    tickets = [host.propose(b"x%d" % i) for i in range(5)]
    host.sync()
    assert all(o.ok for o in host.take_outcomes())
    image = host.durable()
    assert image.last_index >= 5
    host.stop()
    again = rsm.Host("raft", 1, [1], machine=Log(), durable=image, seed=8)
    lead_alone(again)
    settle(again)
    assert again.machine.applied == [b"x%d" % i for i in range(5)]
    assert len(tickets) == 5
    with pytest.raises(ValueError, match="storage is a Python object"):
        rsm.Host("raft", 2, [2], machine=Log(), storage=Disk()).durable()


def test_a_snapshot_is_taken_from_and_restored_into_the_python_machine() -> None:
    host = single(options={"snapshot_entries_threshold": 4})
    lead_alone(host)
    for i in range(10):
        host.propose(b"s%d" % i)
        host.sync()
    assert host.stats()["snapshots_taken"] >= 1
    image = host.durable()
    assert image.snapshot is not None
    again = rsm.Host("raft", 1, [1], machine=Log(), durable=image, seed=9)
    # Restored from the snapshot: a prefix of what was applied, before any replay.
    restored = again.machine.applied
    assert restored and host.machine.applied[: len(restored)] == restored
    lead_alone(again)
    settle(again)
    assert again.machine.applied == [b"s%d" % i for i in range(10)]

    class NoRestore(Log):
        def restore(self, data: bytes) -> None:
            raise ValueError("unreadable snapshot")

    with pytest.raises(ValueError, match="cannot start") as raised:
        rsm.Host("raft", 1, [1], machine=NoRestore(), durable=image)
    assert isinstance(raised.value.__cause__, ValueError)


def test_a_panic_poisons_the_node_and_ends_its_pending_calls_indefinite() -> None:
    host = single()
    lead_alone(host)
    ticket = host.propose(b"in flight")
    with pytest.raises(rsm.PanicException, match="poisoned: broken invariant"):
        host._panic_for_test("broken invariant")
    outcome = host.outcome(ticket)
    assert outcome is not None and outcome.status == "indefinite"
    assert outcome.reason == "shutdown"
    for call in (host.tick, host.sync, host.status, lambda: host.propose(b"x")):
        with pytest.raises(rsm.PoisonedError, match="broken invariant"):
            call()
    assert host.stopped and "poisoned" in repr(host)


def test_outcomes_taken_one_by_one_leave_the_rest_in_order() -> None:
    host = single()
    lead_alone(host)
    tickets = [host.propose(b"%d" % i) for i in range(200)]
    settle(host)
    for ticket in tickets[:150]:
        outcome = host.outcome(ticket)
        assert outcome is not None and outcome.ok
    assert [o.ticket for o in host.take_outcomes()] == tickets[150:]


def test_membership_changes_and_leadership_transfer_through_the_host() -> None:
    c = Cluster(3, seed=4)
    leader = c.elect()
    call = Call(leader.host, leader.host.reconfigure([1, 2, 3]), b"")
    c.tick(10)
    outcome = call.poll()
    assert outcome is not None and outcome.ok, outcome
    target = next(i for i in c.nodes if i != leader.id)
    leader.host.transfer_leadership(target)
    c.flush(leader)
    c.tick(30)
    assert c.leader() is c.nodes[target]
    after = c.propose(c.nodes[target], b"after transfer")
    c.tick(3)
    polled = after.poll()
    assert polled is not None and polled.ok


def test_bad_arguments_raise_typed_errors_and_change_nothing() -> None:
    with pytest.raises(ValueError, match="unknown protocol `zab`; registered: raft, paxos, vsr"):
        rsm.Host("zab", 1, [1], machine=Log())
    assert rsm.protocols() == ["raft", "paxos", "vsr"]
    with pytest.raises(TypeError, match="must have a method `apply`"):
        rsm.Host("raft", 1, [1], machine=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must have a method `write`"):
        rsm.Host("raft", 1, [1], machine=Log(), storage=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`options` must be a dict"):
        rsm.Host("raft", 1, [1], machine=Log(), options=[1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Raft has no option `nope`"):
        rsm.Host("raft", 1, [1], machine=Log(), options={"nope": 1})
    with pytest.raises(ValueError, match="at least 1"):
        rsm.Host("raft", 1, [1], machine=Log(), request_timeout_ticks=0)
    with pytest.raises(TypeError, match="`id` must be an int"):
        rsm.Host("raft", "1", [1], machine=Log())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`id` 4 is not one of `members` \\[1, 2, 3\\]"):
        rsm.Host("raft", 4, [1, 2, 3], machine=Log())
    with pytest.raises(ValueError, match="`members` lists node 1 twice"):
        rsm.Host("raft", 1, [1, 1], machine=Log())
    with pytest.raises(TypeError, match="`members` must be a Membership or an iterable"):
        rsm.Host("raft", 1, "1", machine=Log())  # type: ignore[arg-type]

    class WriteOnly:
        def apply(self, index: int, command: bytes) -> None: ...
        def snapshot(self) -> bytes:
            return b""
        def restore(self, data: bytes) -> None: ...

    host = rsm.Host("raft", 1, [1, 2, 3], machine=WriteOnly())
    with pytest.raises(TypeError, match="must have a method `query`"):
        host.read()
    before = host.status()
    with pytest.raises(ValueError, match="malformed message from node 9"):
        host.receive(9, b"\xff\x00garbage")
    with pytest.raises(ValueError, match="malformed message from node 2"):
        host.receive_many([(2, b"\xff\x00")])
    with pytest.raises(TypeError, match="pairs"):
        host.receive_many([3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="`command` must be bytes"):
        host.propose("text")  # type: ignore[arg-type]
    assert host.status() == before and host.take_outcomes() == []
