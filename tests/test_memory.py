"""Memory formulas against the built module: parameter and gradient bytes equal the module's, and the
activation bytes equal the distinct storages an eval-mode forward creates, at several sizes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import convplan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
SMALL = {"vgg11", "alexnet"}  # ~130 M weights: measured at their smallest sizes only


def _sizes(plan) -> list[dict]:
    base = plan.smallest_sizes()
    found = []
    for step in (0, 3, 16):
        for batch in (1, 3):
            sizes = {k: batch if k == "N" else v + step if k in ("H", "W", "L") else v for k, v in base.items()}
            if plan.satisfied(sizes) and sizes not in found:
                found.append(sizes)
    return found or [base]


def _created_bytes(bound, dtype) -> int:
    """Bytes of the distinct storages the forward pass makes (not the inputs')."""
    module = bound.build().to(dtype).eval()
    inputs = [torch.randn(*(int(d) for d in s), dtype=dtype) for s in bound.input_shapes.values()]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        values = module.run(*inputs)
    given = {t.untyped_storage().data_ptr() for t in inputs}
    storages = {}
    for value in values.values():
        storage = value.untyped_storage()
        if storage.data_ptr() not in given:
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_memory_equals_the_built_module(path):
    plan = convplan.load(path)
    memory = plan.memory("float32")
    for sizes in _sizes(plan)[: 1 if path.stem in SMALL else None]:
        bound = plan.bind(**sizes)
        module = bound.build()
        weights = sum(p.numel() * p.element_size() for p in module.parameters())
        assert memory.at(memory.parameters, **sizes) == weights
        assert memory.at(memory.gradients, **sizes) == weights
        assert memory.at(memory.optimizer["adam"], **sizes) == 2 * weights
        assert memory.at(memory.activations, **sizes) == _created_bytes(bound, torch.float32), sizes


def test_in_place_layers_and_views_take_nothing():
    text = ("plan P:\n    input [N, 4, L]\n    Conv1d(8, 3)\n    ReLU(inplace=True)\n    Dropout(0.1)\n"
            "    Flatten()\n    Linear(5)\n    ReLU()\n")
    plan = convplan.parse(text)
    memory = plan.memory("float16")
    assert [name for name, b in memory.by_layer.items() if b == 0] == ["relu1", "dropout1", "flatten1"]
    bound = plan.bind(N=2, L=9)
    created = 2 * (2 * 8 * 7 + 2 * 5 * 2)  # float16: the conv's output and the two Linear/ReLU outputs
    assert memory.at(memory.activations, N=2, L=9) == _created_bytes(bound, torch.float16) == created


def test_training_total_and_errors():
    plan = convplan.load(ROOT / "examples" / "cnn1d.plan")
    memory = plan.memory()
    p = memory.at(memory.parameters, L=20)
    assert memory.at(memory.training("sgd_momentum"), N=1, L=20) == 3 * p + memory.at(memory.activations, N=1, L=20)
    with pytest.raises(ValueError, match="dtypes are"):
        plan.memory("int3")
    with pytest.raises(ValueError, match="depends on L, N"):
        memory.at(memory.activations)
    assert plan.evaluate(plan.total_params, L=20) == 770


def test_readme_budget_examples_are_the_real_output(monkeypatch):
    import doctest

    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False)
    assert result.attempted >= 7 and result.failed == 0
