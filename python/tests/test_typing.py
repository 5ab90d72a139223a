"""The module ships type information: stubs, the py.typed marker, and docstrings."""

from __future__ import annotations

import inspect
from pathlib import Path

import rsm
import typing_check


def test_typing_check_runs() -> None:
    typing_check.main()


def test_package_ships_stubs_and_py_typed_marker() -> None:
    package = Path(rsm.__file__).parent
    assert (package / "py.typed").exists()
    stub = (package / "_rsm.pyi").read_text()
    for name in rsm.__all__:
        if name not in ("Input", "Effect", "__version__"):
            assert f"class {name}" in stub or f"def {name}(" in stub, name


def test_every_class_and_public_method_has_a_docstring() -> None:
    missing = []
    for name in rsm.__all__:
        if name in ("Input", "Effect"):
            continue  # type aliases, documented in the package docstring
        obj = getattr(rsm, name)
        if not inspect.isclass(obj) and not callable(obj):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("__"):
                    continue
                if not (getattr(member, "__doc__", None) or "").strip():
                    missing.append(f"{name}.{attr}")
    assert missing == []
