"""Import chains: bounded, never a RecursionError (from the hardening review)."""

from __future__ import annotations

from pathlib import Path

import pytest

import convplan
from convplan import imports
from convplan.errors import PlanError


def chain(tmp_path, n: int) -> Path:
    """main.plan imports f0.plan, which imports f1.plan, ... f{n-1}.plan."""
    for i in range(n):
        line = f'import "f{i + 1}.plan"\n' if i < n - 1 else ""
        (tmp_path / f"f{i}.plan").write_text(f"{line}block B{i}():\n    input [N, C]\n    ReLU()\n")
    (tmp_path / "main.plan").write_text('import "f0.plan"\nplan M:\n    input [N, 3]\n    B0()\n')
    return tmp_path / "main.plan"


def test_a_long_import_chain_is_refused_not_a_recursion_error(tmp_path):
    main = chain(tmp_path, 400)  # each level is a few Python frames: 400 was a RecursionError
    with pytest.raises(PlanError) as info:
        convplan.load(main)
    (d,) = info.value.diagnostics
    assert d.code == "E023" and d.message.startswith(f"imports nested more than {imports.MAX_DEPTH} deep: main.plan")


def test_a_chain_within_the_limits_is_loaded(tmp_path):
    assert convplan.load(chain(tmp_path, imports.MAX_DEPTH)).output_shape[1] == 3


def test_files_are_counted_as_they_start(tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "MAX_FILES", 10)  # a chain finishes no file until its deepest one
    with pytest.raises(PlanError) as info:
        convplan.load(chain(tmp_path, 12))
    assert info.value.diagnostics[0].message == "more than 10 imported files"
