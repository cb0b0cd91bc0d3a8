"""Stage 1's fallback for a module torch.fx cannot trace (an `if x.dim() != 4: raise`, a shape assert, a
branch on a size): its body read from one run instead, by forward hooks on its submodules.

A run shows what ran at the example input, not what would run at another: so torch.export is asked first
whether the forward is one graph at the example's shapes (it refuses a branch on a tensor's values), and the
body read from the run is replayed and must give the module's output exactly.  Values flow by identity: a
submodule's input must be the very tensor the module was given or another submodule returned; a tensor made
by the forward's own code (arithmetic fx could not see) is reported at the submodule that reads it."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import traceback

import torch
from torch import nn

from .ir import Body, Op, Problem
from .mapping import Unmapped, check_inferred, check_rebuilt, layer_spec, module_args

_FAILED = -1  # the op id of a tensor whose maker was reported: what reads it is not reported again


def read_by_hooks(qualname: str, cls: str, module: nn.Module, args: tuple, why: Problem) -> tuple[Body | None, list]:
    """(the body, the problems found reading it); (None, []) where the run cannot stand for the forward
    (torch.export finds a data-dependent branch, or the run fails): then fx's problem `why` stands alone."""
    if not all(isinstance(a, torch.Tensor) for a in args) or not _one_graph(module, args):
        return None, []
    args = tuple(a.clone() for a in args)  # in-place layers may write into them: the model's own stay as they are
    try:
        calls, result = _run(module, args)
    except Exception:  # noqa: BLE001 - it ran in the model's run: a failure here leaves fx's reason
        return None, []
    reader = _Reader(qualname, cls, why)
    other = _other_sizes(module, args, calls)
    if other is not None:
        reader.report("", f"its forward runs other submodules at another input size ({other}): a branch on a "
                      "size, which a plan cannot say", why.source)
        return None, reader.problems
    body = reader.body(module, args, calls, result)
    if body is not None and not reader.problems and not _replays(module, body, args, result):
        reader.report("", "its forward changes values between its submodules in code fx cannot trace (the "
                      "submodules alone do not give its output)")
    return (body if not reader.problems else None), reader.problems


def _one_graph(module: nn.Module, args: tuple) -> bool:
    """torch.export's verdict: the forward is one graph at these shapes (no branch on a tensor's values)."""
    flags = {m: m.training for m in module.modules()}
    logging.disable(logging.CRITICAL)  # its refusal logs the graph and warnings: the verdict is what matters
    try:
        module.eval()
        with contextlib.redirect_stderr(io.StringIO()):
            torch.export.export(module, args, strict=False)
        return True
    except Exception:  # noqa: BLE001 - any refusal: the run cannot stand for the forward
        return False
    finally:
        logging.disable(logging.NOTSET)
        for m, flag in flags.items():
            m.train(flag)


def _other_sizes(module: nn.Module, args: tuple, calls: list) -> str | None:
    """The shapes at which the forward calls other submodules than at the example (a branch on a size): the
    example's sizes other than channels and features grown by one, else the batch grown by one; None where
    the calls agree, or where no other size runs."""
    grown = [tuple(d + 1 if i >= 2 else d for i, d in enumerate(a.shape)) for a in args]
    batch = [(a.shape[0] + 1, *a.shape[1:]) if a.dim() else tuple(a.shape) for a in args]
    for shapes in (grown, batch):
        try:
            again, _ = _run(module, tuple(torch.randn(*s, dtype=a.dtype) if a.is_floating_point() else
                                          torch.zeros(s, dtype=a.dtype) for s, a in zip(shapes, args, strict=True)))
        except Exception:  # noqa: BLE001 - the model takes no other size here: nothing to compare
            continue
        if [c[0] for c in again] != [c[0] for c in calls]:
            return ", ".join(str(list(s)) for s in shapes)
        return None
    return None


def _children(module: nn.Module) -> dict:
    """id -> (path, submodule) of the submodules a plan can name: the direct ones, an nn.Sequential's children
    as `name.0`, `name.1`, ..."""
    out = {}
    for name, child in module.named_children():
        if type(child) is nn.Sequential:
            out.update({id(c): ((name, n), c) for n, c in child.named_children()})
        else:
            out[id(child)] = ((name,), child)
    return out


def _run(module: nn.Module, args: tuple):
    """The module's submodule calls in order, each (path, submodule, args, kwargs, output, the user's line
    that called it), and its output."""
    children = _children(module)
    calls = []

    def hook(m, a, kw, out):
        calls.append((*children[id(m)], a, kw, out, _caller()))

    flags = {m: m.training for m in module.modules()}
    hooks = [c.register_forward_hook(hook, with_kwargs=True) for _, c in children.values()]
    try:
        module.eval()
        with torch.no_grad():
            result = module(*args)
    finally:
        for h in hooks:
            h.remove()
        for m, flag in flags.items():
            m.train(flag)
    return calls, result


class _Reader:
    def __init__(self, qualname: str, cls: str, why: Problem):
        self.qualname, self.cls, self.why = qualname, cls, why
        self.problems: list[Problem] = []

    def report(self, node: str, message: str, source: str = "") -> None:
        self.problems.append(Problem(self.qualname, self.cls, f"{message} (torch.fx cannot trace this forward, so "
                                     "it was read from a run)", node, source or self.why.source))

    def body(self, module: nn.Module, args: tuple, calls: list, result) -> Body | None:
        ops: list[Op] = []
        made: dict[int, int] = {}  # id(tensor) -> the op that made it last (an in-place layer makes it again)
        alive = [*args]  # every tensor seen stays referenced: ids are not reused
        names = _input_names(module, len(args))
        for k, a in enumerate(args):
            ops.append(Op(len(ops), "input", "", (), tuple(a.shape), name=names[k]))
            made[id(a)] = ops[-1].id
        for path, child, a, kw, out, source in calls:
            target = ".".join(path)
            alive += [*a, out]
            if any(made.get(id(t)) == _FAILED for t in a):
                made[id(out)] = _FAILED  # reported where its input was made
                continue
            try:
                op = self._op(len(ops), path, child, a, kw, out, made)
            except Unmapped as exc:
                self.report(target, f"self.{target}: {exc}", source)
                made[id(out)] = _FAILED
                continue
            ops.append(op)
            made[id(out)] = op.id
        outs = result if isinstance(result, tuple) else (result,)
        if any(isinstance(t, torch.Tensor) and made.get(id(t)) == _FAILED for t in outs):
            return None
        if not all(isinstance(t, torch.Tensor) and id(t) in made for t in outs):
            self.report("output", "its output is computed by its forward's own code, not returned by a submodule")
            return None
        del alive
        return Body(self.qualname, self.cls, ops, tuple(made[id(t)] for t in outs), tuple(names))

    def _op(self, k: int, path: tuple, child: nn.Module, args: tuple, kwargs: dict, out, made: dict) -> Op:
        target = ".".join(path)
        if kwargs:
            raise Unmapped(f"is called with keyword arguments ({', '.join(kwargs)})")
        if not isinstance(out, torch.Tensor) or not all(isinstance(a, torch.Tensor) for a in args):
            raise Unmapped("takes or returns something other than tensors, which a run read by hooks cannot follow")
        if not all(id(a) in made for a in args):
            raise Unmapped("reads a tensor its module's forward computes itself (not an input, not a submodule's "
                           "output)")
        inputs = tuple(made[id(a)] for a in args)
        spec = layer_spec(child)
        if spec is not None:
            values = module_args(child, spec)
            check_inferred(child, spec, values, [tuple(a.shape) for a in args], target)
            check_rebuilt(child, spec, values)
            return Op(k, "layer", spec.name, inputs, tuple(out.shape), path=path, args=values, name=path[-1])
        if type(child).__module__.startswith("torch."):
            raise Unmapped(f"is a {type(child).__name__}, which is not a layer kind convplan knows "
                           "(the list: docs/layers.md)")
        from .trace import class_key  # trace imports this module

        instance = ".".join(filter(None, [self.qualname, *path]))
        return Op(k, "block", class_key(child), inputs, tuple(out.shape), path=path, instance=instance,
                  name=path[-1])


def _replays(module: nn.Module, body: Body, args: tuple, result) -> bool:
    """The body's ops, run on the example, give the module's output exactly."""
    values = {op.id: a.clone() for op, a in zip(body.inputs, args, strict=True)}
    flags = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            for op in body.ops:
                if op.what != "input":
                    values[op.id] = module.get_submodule(".".join(op.path))(*(values[i] for i in op.inputs))
    finally:
        for m, flag in flags.items():
            m.train(flag)
    outs = result if isinstance(result, tuple) else (result,)
    return all(torch.equal(values[i], t) for i, t in zip(body.outputs, outs, strict=True))


def _caller() -> str:
    """`file.py:42` of the innermost frame outside torch and convplan: the user's line that called a submodule."""
    from .trace import _OWN_DIR, _TORCH_DIR

    frames = [f for f in traceback.extract_stack() if not f.filename.startswith((_TORCH_DIR, _OWN_DIR))]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _input_names(module: nn.Module, count: int) -> list[str]:
    params = list(inspect.signature(type(module).forward).parameters.values())[1:]
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:count]
    return names + [f"x{k}" for k in range(len(names), count)]
