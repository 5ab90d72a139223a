"""rsm.Paxos from Python: a replica stepped by hand leads only once its promise is
durable, decides what it is asked, refuses bad options, and restarts from durable state."""

from __future__ import annotations

import pytest

import rsm


def settle(paxos: rsm.Paxos, durable: rsm.Durable, effects: list[rsm.Effect]) -> list[rsm.Effect]:
    """Make every write in ``effects`` durable, and those its reports cause; returns all."""
    done: list[rsm.Effect] = []
    while effects:
        e = effects.pop(0)
        done.append(e)
        if isinstance(e, rsm.Persist):
            durable.apply(e)
            effects.extend(paxos.step(rsm.Persisted(e.seq)))
    return done


def lead_alone(paxos: rsm.Paxos, durable: rsm.Durable) -> None:
    """Tick a one-voter replica until it leads, making every write durable as it goes."""
    for _ in range(100):
        effects = paxos.step(rsm.Tick())
        if any(isinstance(e, rsm.Persist) for e in effects):
            assert paxos.status().role != "leader", "leads before its promise is durable"
        settle(paxos, durable, effects)
        if paxos.status().role == "leader":
            return
    raise AssertionError("a lone voter leads")


def test_single_node_leads_after_its_promise_is_durable_and_decides_a_proposal() -> None:
    paxos = rsm.Paxos(1, [1], seed=7)
    assert paxos.status().role == "follower"
    durable = rsm.Durable()
    lead_alone(paxos, durable)
    status = paxos.status()
    assert status.leader == 1
    # Ballot epochs read as round * 1000 + node.
    assert status.epoch % 1000 == 1
    effects = settle(paxos, durable, paxos.step(rsm.Propose(1, b"hello")))
    proposed = [e for e in effects if isinstance(e, rsm.Proposed)]
    assert [p.epoch for p in proposed] == [status.epoch]
    applied = [entry.payload for e in effects if isinstance(e, rsm.Apply) for entry in e.entries]
    assert applied == [b"hello"]


def test_restart_keeps_the_promised_ballot() -> None:
    paxos = rsm.Paxos(1, [1], seed=3)
    durable = rsm.Durable()
    lead_alone(paxos, durable)
    again = rsm.Paxos.restore(durable, 1, [1], seed=3)
    assert again.status().epoch == paxos.status().epoch
    assert again.status().role == "follower"


def test_unknown_and_inconsistent_options_are_refused() -> None:
    with pytest.raises(TypeError):
        rsm.Paxos(1, [1], pre_vote=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="invalid Paxos configuration"):
        rsm.Paxos(1, [1], election_ticks_min=30, election_ticks_max=20)
