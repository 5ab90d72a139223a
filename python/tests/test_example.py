"""The asyncio example runs as a test: three nodes over TCP on loopback elect a leader
and every node applies the same commands."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "raft_cluster.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("raft_cluster", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["raft_cluster"] = module
    spec.loader.exec_module(module)
    return module


def test_asyncio_tcp_cluster_elects_a_leader_and_replicates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load_example()
    result = asyncio.run(example.main(timeout_seconds=60.0))
    assert result.leader in (1, 2, 3)
    assert len(result.commands) == 5
    assert sorted(result.applied) == [1, 2, 3]
    for applied in result.applied.values():
        assert applied == result.commands
    out = capsys.readouterr().out
    assert f"leader: node {result.leader}" in out
    assert out.count("applied: ['set k0 v0'") == 3
