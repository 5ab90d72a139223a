"""rsm.Vsr from Python: a lone replica becomes primary only once its promise of the view
is durable, commits what it is asked, never leads again the view it restarted in, and
refuses bad options."""

from __future__ import annotations

import pytest

import rsm


def make_durable(vsr: rsm.Vsr, durable: rsm.Durable, out: list[rsm.Effect]) -> list[rsm.Effect]:
    """Report each write in ``out`` durable as it appears (as a host syncing after every
    write would), with what the reports cause; returns every effect in order."""
    k = 0
    while k < len(out):
        e = out[k]
        if isinstance(e, rsm.Persist):
            durable.apply(e)
            out += vsr.step(rsm.Persisted(e.seq))
        k += 1
    return out


def become_primary(vsr: rsm.Vsr, durable: rsm.Durable) -> int:
    """Tick until the lone voter is primary; returns the ticks it took."""
    for ticks in range(1, 100):
        out = vsr.step(rsm.Tick())
        if any(isinstance(e, rsm.Persist) for e in out):
            assert vsr.status().role != "leader", "primary before its promise is durable"
        make_durable(vsr, durable, out)
        if vsr.status().role == "leader":
            return ticks
    raise AssertionError("a lone voter becomes primary")


def test_a_lone_replica_starts_a_view_and_commits_a_request() -> None:
    vsr = rsm.Vsr(1, [1], seed=7, election_ticks_min=5, election_ticks_max=6)
    assert vsr.status().role == "follower"
    durable = rsm.Durable()
    assert become_primary(vsr, durable) >= 5, "not before the view-change timeout"
    status = vsr.status()
    assert (status.leader, status.epoch) == (1, 1)
    effects = make_durable(vsr, durable, vsr.step(rsm.Propose(1, b"hello")))
    epochs = {e.epoch for e in effects if isinstance(e, rsm.Proposed)}
    committed = [x.payload for e in effects if isinstance(e, rsm.Apply) for x in e.entries]
    assert (epochs, committed) == ({1}, [b"hello"])


def test_a_restarted_replica_keeps_its_view_and_starts_a_higher_one() -> None:
    first = rsm.Vsr(1, [1], seed=3)
    disk = rsm.Durable()
    become_primary(first, disk)
    view = first.status().epoch
    second = rsm.Vsr.restore(disk, 1, [1], seed=3)
    assert (second.status().epoch, second.status().role) == (view, "follower")
    become_primary(second, disk)
    assert second.status().epoch > view


def test_unknown_and_inconsistent_options_are_refused() -> None:
    with pytest.raises(TypeError):
        rsm.Vsr(1, [1], pre_vote=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="invalid VSR configuration"):
        rsm.Vsr(1, [1], election_ticks_min=30, election_ticks_max=20)
