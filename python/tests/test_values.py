"""Inputs, effects and values: frozen, comparable, hashable, readable, matchable."""

from __future__ import annotations

import pytest

import rsm


def test_inputs_have_constructor_like_repr_and_value_equality() -> None:
    assert repr(rsm.Tick()) == "Tick()"
    assert repr(rsm.Receive(2, b"\x01")) == "Receive(sender=2, msg=b'\\x01')"
    assert repr(rsm.Propose(7, b"cmd")) == "Propose(req=7, command=b'cmd')"
    assert repr(rsm.Persisted(3)) == "Persisted(through=3)"
    assert rsm.Propose(1, b"a") == rsm.Propose(1, b"a")
    assert rsm.Propose(1, b"a") != rsm.Propose(1, b"b")
    assert rsm.Tick() != rsm.Persisted(0)
    assert len({rsm.Tick(), rsm.Tick(), rsm.Read(1), rsm.Read(1), rsm.Applied(1)}) == 3
    assert rsm.Reconfigure(1, [1, 2]) == rsm.Reconfigure(1, rsm.Membership([2, 1]))


def test_values_are_frozen() -> None:
    p = rsm.Propose(1, b"a")
    with pytest.raises(AttributeError):
        p.req = 2  # type: ignore[misc]
    m = rsm.Membership([1, 2, 3])
    with pytest.raises(AttributeError):
        m.voters = [1]  # type: ignore[misc]


def test_match_statements_destructure_effects() -> None:
    effects: list[rsm.Effect] = rsm.Raft(1, [1], seed=1).step_many([rsm.Tick()] * 40)
    seen: list[tuple[object, ...]] = []
    for e in effects:
        match e:
            case rsm.Persist(seq, kind):
                seen.append(("persist", seq, kind))
            case rsm.RoleChanged(role, epoch, leader):
                seen.append(("role", role, epoch, leader))
            case _:
                seen.append(("other",))
    assert ("persist", 1, "hard_state") in seen
    assert any(s[0] == "role" and s[1] in ("pre_candidate", "candidate") for s in seen)


def test_membership_and_snapshot_meta() -> None:
    m = rsm.Membership([3, 1, 2], learners=[5])
    assert m.voters == [1, 2, 3]
    assert m.learners == [5]
    assert m.outgoing == []
    assert not m.is_joint
    assert 5 in m and 4 not in m
    assert hash(m) == hash(rsm.Membership([1, 2, 3], learners=[5]))
    meta = rsm.SnapshotMeta(10, 2, m)
    assert (meta.index, meta.epoch, meta.membership) == (10, 2, m)
    assert repr(meta).startswith("SnapshotMeta(index=10, epoch=2, membership=Membership(")
    snap = rsm.Snapshot(meta, b"state")
    assert snap.meta == meta and snap.data == b"state"
    with pytest.raises(ValueError, match="at least one voter"):
        rsm.Membership([])
    with pytest.raises(TypeError, match="iterable of node ids"):
        rsm.Membership(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`voters` lists node 2 twice"):
        rsm.Membership([3, 1, 2, 2])
    with pytest.raises(ValueError, match="`learners` lists node 5 twice"):
        rsm.Membership([1], learners=[5, 5])
    with pytest.raises(TypeError, match="`voters` must be an iterable of node ids \\(ints\\), not str"):
        rsm.Membership("12")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rsm.Membership([1, -2])
    with pytest.raises(ValueError, match="`to` must be between"):
        rsm.Send(-1, b"")
    with pytest.raises(TypeError, match="`msg` must be bytes"):
        rsm.Send(1, [1, 2])  # type: ignore[arg-type]


def test_status_reads_like_the_rust_status() -> None:
    s = rsm.Raft(4, rsm.Membership([4, 5, 6]), seed=1).status()
    assert (s.id, s.role, s.epoch, s.leader, s.commit, s.applied, s.last_index) == (
        4, "follower", 0, None, 0, 0, 0,
    )
    assert s.membership.voters == [4, 5, 6]
    assert "role='follower'" in repr(s)


def test_entries_carry_kind_payload_and_config_membership() -> None:
    c_effects = rsm.Raft(1, [1], seed=1).step_many([rsm.Tick()] * 40)
    assert not any(isinstance(e, rsm.Apply) for e in c_effects)
    raft = rsm.Raft(1, [1], seed=1)
    applied: list[rsm.Entry] = []
    queue = raft.step_many([rsm.Tick()] * 40)
    for _ in range(10):
        follow: list[rsm.Input] = []
        for e in queue:
            if isinstance(e, rsm.Persist):
                follow.append(rsm.Persisted(e.seq))
            elif isinstance(e, rsm.Apply):
                applied.extend(e.entries)
                follow.append(rsm.Applied(e.entries[-1].index))
        if not follow:
            break
        queue = raft.step_many(follow)
    assert applied, "a single node commits its no-op"
    noop = applied[0]
    assert noop.kind == "noop" and noop.payload == b"" and noop.membership is None
    assert noop.index == 1 and noop.epoch >= 1
    assert repr(noop) == f"Entry(index=1, epoch={noop.epoch}, kind='noop', payload=b'')"
