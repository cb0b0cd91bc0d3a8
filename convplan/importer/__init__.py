"""`convplan.from_module`: an existing torch.nn.Module as plan text.  The stages are the files:

    trace.py      run the model once, trace each user-class module with torch.fx, shapes on fake tensors
    hooks.py      a module fx cannot trace: read from a run by forward hooks, judged by torch.export
    mapping.py    torch modules and functions -> the registry's layer kinds (non-default arguments) and merges
    fold.py       instances of one class -> one block, with parameters where they differ
    structure.py  a body -> statements: chains, residual/cat/mul blocks, `if` flags, numbered containers
    write.py      statements -> plan text: block headers, input patterns, repeats

What cannot be mapped is an `ImportFailure` listing every problem with its place in the model.  This
package imports torch; `convplan check` never imports it (convplan/__init__.py loads it on first use)."""

from __future__ import annotations

import sympy

from .ir import ImportFailure, Problem

__all__ = ["ImportFailure", "Problem", "from_module"]


def from_module(module, example_input, name: str | None = None) -> str:
    """Plan text for `module`, traced at `example_input` (a tensor, or a tuple of tensors for several inputs).
    The example only checks: the plan's sizes are symbols (N, H, W, ...) except where a layer's weights fix
    them (a Linear after a Flatten of an unpooled map).  ImportFailure, with every problem located, where
    something of the model has no counterpart in a plan."""
    import torch

    from .fold import fold
    from .trace import class_key, trace_model
    from .write import write

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_module takes a torch.nn.Module, got {type(module).__name__}")
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise TypeError("example_input must be a tensor or a tuple of tensors")
    if any(t.dim() == 0 or 0 in t.shape for t in inputs):  # a plan's input has dims, each at least 1 (E204, E205)
        raise ValueError("example_input must have at least one dim and no dim of size 0, got "
                         + ", ".join(str(list(t.shape)) for t in inputs))
    plan_name = _plan_name(name or class_key(module))
    _not_one_weighted_layer(module)
    bodies = trace_model(module, tuple(inputs))
    folded = fold(bodies, plan_name)
    text = write(folded, plan_name)
    fixed = _fixed_dims(text, folded.root)
    if fixed:
        text = write(folded, plan_name, fixed)
    _check(text, folded.root, module)
    return text


def _not_one_weighted_layer(module) -> None:
    """A bare layer with state (`nn.Linear(3, 4)`) as the model: fx traces into its forward, which gave three
    problems about `self.weight` and `torch.conv2d()`; its keys (`weight`) name no layer a plan can write."""
    from .mapping import layer_spec

    spec = layer_spec(module)
    keys = list(module.state_dict())
    if spec is not None and keys:
        shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
        raise ImportFailure([Problem("", spec.name, f"the model is one {spec.name} layer, whose keys ({shown}) name "
                                     f"no layer: put it in a module (self.layer = nn.{spec.name}(...)), and they "
                                     f"become layer.{keys[0]}, ...")])


def _plan_name(name: str) -> str:
    """`name` if a plan may have it (an identifier the generated code can use: scope.check_name), else ValueError."""
    from ..errors import WHOLE_FILE, Collector
    from ..scope import check_name

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a plan's name must be an identifier, got {name!r}")
    diag = Collector("", "<name>")
    if not check_name(diag, name, WHOLE_FILE, "a plan's name"):
        raise ValueError(f"{diag.diags[0].message}; choose another name")
    return name


def _fixed_dims(text: str, root) -> dict:
    """(input index, dim) -> size, for the plan input's dims a layer's arguments depend on (and those an
    equality requires to agree with them): with them free the weights' shapes would be formulas."""
    from .. import parse

    try:
        plan = parse(text, "<import>")
    except Exception:  # reported by _check, with the text
        return {}
    free = {str(s) for node in plan.layers for v in node.args.values() for s in _symbols(v)}
    ties = [{str(s) for s in r.condition.free_symbols} for r in plan.requires if isinstance(r.condition, sympy.Eq)]
    grown = True
    while grown:  # a dim a requirement ties to a fixed one is fixed too (a decoder's memory features = d_model)
        grown = False
        for tie in ties:
            if tie & free and not tie <= free:
                free |= tie
                grown = True
    out = {}
    for k, node in enumerate(plan.graph.inputs):
        for i, d in enumerate(node.shape):
            if isinstance(d, sympy.Symbol) and str(d) in free:
                out[(k, i)] = root.inputs[k].shape[i]
    return out


def _symbols(value):
    if isinstance(value, tuple):
        return {s for v in value for s in _symbols(v)}
    return value.free_symbols if isinstance(value, sympy.Basic) else set()


def _check(text: str, root, module) -> None:
    """The plan must check, and at the example's sizes give the shapes torch gave."""
    from .. import PlanError, parse

    try:
        plan = parse(text, "<import>")
    except PlanError as exc:
        raise ImportFailure([Problem("", type(module).__name__, "the written plan does not check (a bug of the "
                                     "importer):\n" + exc.render(color=False) + "\n" + text)]) from None
    sizes = {}
    for k, node in enumerate(plan.graph.inputs):
        for d, size in zip(node.shape, root.inputs[k].shape, strict=True):
            if isinstance(d, sympy.Symbol):
                sizes[str(d)] = size
    got = [tuple(int(plan.evaluate(d, **sizes)) for d in plan.graph.nodes[o].shape) for o in plan.graph.outputs]
    want = [next(op.shape for op in root.ops if op.id == o) for o in root.outputs]
    if got != want:
        raise ImportFailure([Problem("", type(module).__name__, f"the written plan gives {got} at the example "
                                     f"input where the model gives {want} (a bug of the importer)")])
