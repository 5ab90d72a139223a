"""rsm.Raft from Python: elections, replication, batching, rejections, malformed input,
panics and restart from durable state."""

from __future__ import annotations

import pytest

import rsm
from gil import progress_during
from harness import Cluster, Log, lead_alone


def test_single_node_elects_itself_after_its_vote_is_durable() -> None:
    raft = rsm.Raft(1, [1], seed=7)
    assert raft.status().role == "follower"
    persisted_first = None
    for _ in range(100):
        for e in raft.step(rsm.Tick()):
            if isinstance(e, rsm.Persist):
                assert raft.status().role != "leader", "leads before its vote is durable"
                persisted_first = e.seq
                raft.step(rsm.Persisted(e.seq))
        if raft.status().role == "leader":
            break
    assert persisted_first is not None
    status = raft.status()
    assert status.role == "leader"
    assert status.leader == 1
    assert status.epoch >= 1
    assert raft.id == 1


def test_three_nodes_elect_one_leader_and_replicate_in_order() -> None:
    c = Cluster(3, seed=11)
    leader = c.elect()
    commands = [f"set x {i}".encode() for i in range(10)]
    calls = [c.propose(leader, cmd) for cmd in commands]
    c.tick(5)
    outcomes = [call.poll() for call in calls]
    assert [o is not None and o.ok for o in outcomes] == [True] * 10
    for node in c.nodes.values():
        assert node.applied == commands
        assert node.host.leader == leader.id
    epochs = {n.host.status().epoch for n in c.nodes.values()}
    assert len(epochs) == 1


def test_messages_are_opaque_bytes_that_round_trip() -> None:
    c = Cluster(3, seed=5)
    leader = c.elect()
    leader.host.propose(b"payload")
    leader.host.sync()
    sends = leader.host.drain_sends()
    assert sends, "a leader replicates a proposal"
    assert all(isinstance(msg, bytes) and msg for _, msg in sends)
    # Equal values, equal hashes.
    to, msg = sends[0]
    assert rsm.Send(to, msg) == rsm.Send(to, msg)
    assert hash(rsm.Send(to, msg)) == hash(rsm.Send(to, msg))
    # The message decodes at the peer, and at a replica stepped by hand.
    c.nodes[to].host.receive(leader.id, msg)
    rsm.Raft(to, c.members).step(rsm.Receive(leader.id, msg))


def test_proposal_to_a_follower_is_a_definite_reject_effect_not_an_exception() -> None:
    raft = rsm.Raft(2, [1, 2, 3], seed=3)
    effects = raft.step(rsm.Propose(42, b"cmd"))
    rejects = [e for e in effects if isinstance(e, rsm.Reject)]
    assert len(rejects) == 1
    r = rejects[0]
    assert r.req == 42
    assert r.reason == "not_leader"
    assert r.definite is True
    assert "leader" in r.detail
    # Through the host, the same refusal is the ticket's outcome, with the leader to retry.
    c = Cluster(3, seed=3)
    leader = c.elect()
    follower = next(n for n in c.nodes.values() if n is not leader)
    outcome = c.propose(follower, b"cmd").poll()
    assert outcome is not None and outcome.definite
    assert outcome.reason == "not_leader" and outcome.leader == leader.id


def test_step_many_is_equivalent_to_single_steps() -> None:
    inputs: list[rsm.Input] = [rsm.Tick() for _ in range(40)]
    inputs.append(rsm.Persisted(1))
    one = rsm.Raft(1, [1, 2, 3], seed=9)
    many = rsm.Raft(1, [1, 2, 3], seed=9)
    singly = [e for i in inputs for e in one.step(i)]
    batched = many.step_many(inputs)
    assert singly == batched
    assert any(isinstance(e, rsm.Send) for e in batched), "the node campaigned"
    assert one.status() == many.status()
    assert many.step_many([]) == []
    assert many.step_many(iter([rsm.Tick()])) == one.step(rsm.Tick())


def test_same_seed_same_inputs_same_effects() -> None:
    def run() -> list[rsm.Effect]:
        raft = rsm.Raft(2, [1, 2, 3], seed=1234, election_ticks_min=5, election_ticks_max=9,
                        heartbeat_ticks=1)
        return raft.step_many([rsm.Tick()] * 30)

    assert run() == run()


def test_malformed_message_raises_value_error_and_changes_nothing() -> None:
    raft = rsm.Raft(2, [1, 2, 3], seed=21)
    raft.step_many([rsm.Tick()] * 3)
    before = raft.status()
    with pytest.raises(ValueError, match="malformed message from node 9"):
        raft.step(rsm.Receive(9, b"\xff\x00garbage"))
    # A bad input in the middle of a batch: nothing of the batch is stepped.
    with pytest.raises(ValueError):
        raft.step_many([rsm.Tick(), rsm.Receive(1, b""), rsm.Tick()])
    assert raft.status() == before
    # The replica still works.
    assert raft.step_many([rsm.Tick()] * 30)


def test_wrong_argument_types_and_values_raise_clear_errors() -> None:
    raft = rsm.Raft(1, [1, 2, 3])
    with pytest.raises(TypeError, match="expected an rsm input"):
        raft.step("tick")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iterable of inputs"):
        raft.step_many(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected an rsm input"):
        raft.step_many([rsm.Tick(), None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="`id` must be an int"):
        rsm.Raft("1", [1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`id` must be an int"):
        rsm.Raft(True, [1])
    with pytest.raises(ValueError, match="between 0 and 2\\*\\*64 - 1"):
        rsm.Raft(-1, [1])
    with pytest.raises(ValueError, match="at least one voter"):
        rsm.Raft(1, [])
    with pytest.raises(TypeError, match="Raft has no option `election_ticks`"):
        rsm.Raft(1, [1], election_ticks=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="must be a bool"):
        rsm.Raft(1, [1], pre_vote=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        rsm.Raft(1, [1], heartbeat_ticks=True)
    with pytest.raises(ValueError, match="heartbeat_ticks < election_ticks_min"):
        rsm.Raft(1, [1], election_ticks_min=30, election_ticks_max=20)
    with pytest.raises(ValueError, match="must be positive"):
        rsm.Raft(1, [1], msg_entries_max=0)
    with pytest.raises(TypeError, match="`msg` must be bytes"):
        rsm.Receive(1, "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`req` must be an int"):
        rsm.Propose(1.5, b"x")  # type: ignore[arg-type]


def test_members_are_checked_and_named_in_errors() -> None:
    with pytest.raises(
        TypeError,
        match="`members` must be a Membership or an iterable of node ids \\(ints\\), not str",
    ):
        rsm.Raft(1, "abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`members` must hold node ids \\(ints\\), but item 1 is str 'x'"):
        rsm.Raft(1, [1, "x"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="item 0 is bool True"):
        rsm.Raft(1, [True])
    with pytest.raises(ValueError, match="`members` lists node 2 twice"):
        rsm.Raft(1, [1, 2, 2])
    with pytest.raises(ValueError, match="`id` 4 is not one of `members` \\[1, 2, 3\\]"):
        rsm.Raft(4, [1, 2, 3])
    # Every protocol class checks the same way.
    with pytest.raises(ValueError, match="`id` 4 is not one of `members`"):
        rsm.Paxos(4, [1, 2, 3])
    with pytest.raises(ValueError, match="`members` lists node 3 twice"):
        rsm.Paxos(1, [1, 3, 3])
    # A learner of its own membership is a member.
    learner = rsm.Raft(4, rsm.Membership([1, 2, 3], learners=[4]))
    assert learner.status().role == "learner"
    assert rsm.Raft(2, (3, 2, 1)).status().role == "follower"


def test_a_restored_replica_may_be_outside_the_membership_it_is_given() -> None:
    # Restoring reads the membership from the durable image as well; only a new replica
    # must be in the one it is given.
    node = rsm.Raft.restore(rsm.Durable(), 4, [1, 2, 3])
    assert node.id == 4


def test_a_panic_surfaces_as_an_exception_and_poisons_the_replica() -> None:
    raft = rsm.Raft(1, [1], seed=3)
    raft.step(rsm.Tick())
    with pytest.raises(rsm.PanicException, match="poisoned: invariant broken"):
        raft._panic_for_test("invariant broken")
    for call in (lambda: raft.step(rsm.Tick()), lambda: raft.step_many([rsm.Tick()]),
                 raft.status):
        with pytest.raises(rsm.PoisonedError, match="invariant broken"):
            call()
    assert "poisoned" in repr(raft)
    # The interpreter is fine and a new replica works.
    assert rsm.Raft(1, [1]).status().role == "follower"


def test_restart_from_durable_state_keeps_the_log_and_the_vote() -> None:
    c = Cluster(3, seed=8)
    leader = c.elect()
    for req in range(1, 6):
        c.propose(leader, b"cmd%d" % req)
    c.tick(3)
    follower = next(n for n in c.nodes.values() if n is not leader)
    durable = follower.disk.image
    assert durable.last_index >= 6
    assert durable.hard_state.epoch == leader.host.status().epoch
    # Whole-image round trip through bytes.
    assert rsm.Durable.from_bytes(durable.to_bytes()) == durable

    c.crash(follower)
    for req in range(6, 9):
        c.propose(leader, b"cmd%d" % req)
    c.restart(follower)
    restored = follower.host.status()
    assert restored.last_index == durable.last_index
    assert restored.epoch == durable.hard_state.epoch
    c.tick(10)
    assert follower.host.status().commit == leader.host.status().commit
    # The restored node re-applies the committed log from the start.
    assert follower.applied == [b"cmd%d" % i for i in range(1, 9)]


class Recorder:
    """Storage that keeps every write as the bytes a Python host would store, and the
    image those writes build."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes]] = []
        self.live = rsm.Durable()

    def write(self, persist: rsm.Persist) -> None:
        self.records.append((persist.kind, persist.data))
        self.live.apply(persist)

    def sync(self) -> None:
        pass


def elected_alone(seed: int) -> tuple[rsm.Host, Recorder]:
    """A one-node host that elected itself, with the storage that recorded its writes."""
    disk = Recorder()
    host = rsm.Host("raft", 1, [1], machine=Log(), storage=disk, seed=seed)
    lead_alone(host)
    return host, disk


def test_durable_replays_persist_records_stored_as_bytes() -> None:
    host, disk = elected_alone(seed=2)
    for command in (b"a", b"b"):
        host.propose(command)
        host.sync()
    kinds = {kind for kind, _ in disk.records}
    assert {"hard_state", "append"} <= kinds
    replayed = rsm.Durable()
    for _, record in disk.records:
        replayed.apply(record)
    assert replayed == disk.live
    assert [e.payload for e in replayed.entries if e.kind == "command"] == [b"a", b"b"]
    restored = rsm.Raft.restore(replayed, 1, [1], seed=5)
    assert restored.status().last_index == disk.live.last_index
    assert restored.status().epoch == host.status().epoch


def test_restore_refuses_an_inconsistent_image() -> None:
    # Keep a replica's appends but drop its hard state: the log's last term is then above
    # the durable term, which a correct replica never writes.
    _, disk = elected_alone(seed=2)
    appends = [data for kind, data in disk.records if kind == "append"]
    assert appends
    image = rsm.Durable()
    for data in appends:
        image.apply(data)
    with pytest.raises(ValueError, match="cannot restore Raft"):
        rsm.Raft.restore(image, 1, [1])


def test_a_read_is_answered_after_the_writes_before_it() -> None:
    c = Cluster(3, seed=17)
    leader = c.elect()
    c.propose(leader, b"w")
    c.tick(3)
    ticket = leader.host.read("count")
    c.flush(leader)
    c.tick(3)
    outcome = leader.host.outcome(ticket)
    assert outcome is not None and outcome.ok, outcome
    assert outcome.value == 1 and outcome.index is not None and outcome.index >= 1


def test_membership_change_commits_a_config_entry() -> None:
    c = Cluster(3, seed=4)
    leader = c.elect()
    c.propose(leader, b"x")
    c.tick(3)
    target = rsm.Membership([1, 2, 3], learners=[])
    ticket = leader.host.reconfigure(rsm.Membership([1, 2]))
    c.flush(leader)
    c.tick(20)
    outcome = leader.host.outcome(ticket)
    assert outcome is not None and outcome.ok and outcome.index is not None
    status = leader.host.status()
    assert status.membership == rsm.Membership([1, 2])
    assert status.membership != target
    assert 3 not in status.membership and 1 in status.membership


def test_step_many_releases_the_gil() -> None:
    raft = rsm.Raft(1, [1, 2, 3], seed=1, election_ticks_min=10**9, election_ticks_max=10**9 + 1)
    batch = [rsm.Tick()] * 1_000_000
    assert progress_during(lambda: raft.step_many(batch)) > 0
    # Single steps keep the GIL: releasing it would cost more than the step.
    assert progress_during(lambda: [raft.step(rsm.Tick()) for _ in range(10_000)]) == 0
    assert raft.status().role == "follower"
