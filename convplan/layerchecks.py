"""The checks of a layer call that reason about what its writer meant: an input of a rank the kind does not
take (E301, with the family member that takes it), a call copied in torch's argument order (W320, or E112 where
surely so), a batch dim read as channels (W330), a Flatten left out before a Linear (W340)."""

from __future__ import annotations

import sympy

from . import nodes as n
from .errors import Collector, Edit, Fix
from .fixes import change_rank
from .graph import Node
from .hints import source_text, torch_order_fix, torch_order_hint
from .layers import FLATTEN, FLOAT, OPT_FLOAT, POINTWISE, LayerSpec, member
from .scope import Skip, State
from .shapes import equal, pyrepr
from .show import show_shape

BATCH_NAMES = ("N", "B", "batch", "batch_size")  # a first dim so named is a batch, not a channel


def torch_order(st: State, spec: LayerSpec, call: n.Call, args: dict) -> tuple:
    """A call copied in torch's order, which a plan reads shifted by one.  Surely wrong, E112: a whole
    number given by position for the float argument in the place torch's order has the inferred one (eps),
    equal to the input's channels: `BatchNorm2d(32)` on 32 channels (eps=32.0).  Perhaps meant, W320:
    `Conv1d(1, 32, 3)` on a 1-channel input (out_channels=1, kernel_size=32, stride=3 is a valid layer),
    and a whole-number eps that is not the channel count.  Returns the hint, for an error the shifted
    reading causes, and its fix (or None, None)."""
    positional = [a for a in call.args if a.name is None]
    required = spec.required_count
    if not (required and len(positional) > required) \
            and not (spec.float_where_inferred and spec.inferred_at < len(positional)):
        return None, None  # neither reading can be (per-kind facts): most calls, at once
    first = args[spec.arg_names[0]] if spec.args else None
    inferred = args[spec.inferred]
    code = "W320"
    if required and len(positional) > required and isinstance(first, sympy.Basic) \
            and equal(first, inferred) is True:
        why = f"the first value equals the input's {spec.inferred}, as in torch's order"
    elif whole := _whole_floats(spec, positional, args):
        value = args[whole]
        if isinstance(inferred, sympy.Basic) and equal(sympy.Integer(int(value)), inferred) is True:
            code, why = "E112", f"{int(value)} is the input's {spec.inferred}, torch's argument in that place"
        else:
            why = f"a whole number as {whole} looks like torch's {spec.inferred}"
    else:
        return None, None
    texts = [source_text(a.span, st.frame.source) or "..." for a in positional]
    shifted = ", ".join(f"{name}={text}" for name, text in zip(spec.arg_names, texts, strict=False))
    hint = torch_order_hint(spec, call, st.frame.source, least=1)
    fix = torch_order_fix(spec, call, st.frame.source, least=1)
    report = st.diag.error if code.startswith("E") else st.diag.warn
    report(code, f"{spec.name}({', '.join(texts)}) reads as {shifted}: {why}", call.span, hints=[hint], fixes=[fix])
    return hint, fix


def batch_as_weight(diag: Collector, spec: LayerSpec, call: n.Call, shape, inferred) -> None:
    """W330: `input [N, 28, 28]` then `Conv2d(16, 3)` is valid torch, read as one unbatched image with N
    channels: the weights would depend on the batch size.  A dim named like a batch was meant as one."""
    if not isinstance(inferred, sympy.Basic) or inferred.is_Integer:  # most layers: channels written out
        return
    batch = sorted(s.name for s in inferred.free_symbols if s.name in BATCH_NAMES)
    if not batch:
        return
    fix = f"give the input a channel dim: [{batch[0]}, 1, {', '.join(pyrepr(d) for d in shape[1:])}]" \
        if spec.nd and len(shape) == spec.nd + 1 else None
    diag.warn("W330", f"{spec.name} reads its {spec.inferred} from {', '.join(batch)}, a dim named like "
                   f"a batch: the input {show_shape(shape)} is taken as unbatched", call.name_span,
                   hints=[fix, "if that dim really is the channels, rename it (C)"])


def flatten_missing(st: State, spec: LayerSpec, call: n.Call, prev: Node) -> None:
    """W340: `MaxPool2d(2)` then `Linear(10)` is valid torch, a Linear over the last spatial dim alone
    ([N, C, H, W] -> [N, C, H, 10]); a Flatten() was nearly always left out.  The input is traced back
    through pointwise layers (ReLU, BatchNorm) to the conv/pool/pad layer that made its spatial dims."""
    source = prev
    while source.op == "layer" and source.spec.window == POINTWISE and source.inputs:
        source = st.nodes[source.inputs[0]]
    made_by = source.spec if source.op == "layer" else None
    if made_by is None or not made_by.nd or len(prev.shape) < made_by.nd + 1:
        return
    shape = prev.shape
    flat = (shape[0], sympy.Mul(*shape[1:])) if len(shape) == made_by.nd + 2 else (sympy.Mul(*shape),)
    st.diag.warn("W340", f"{spec.name} acts on the last dim alone ({pyrepr(shape[-1])}, a spatial dim of "
                   f"{source.name}'s output {show_shape(shape)}): the other dims pass through unmixed",
                   call.name_span,
                   hints=[f"insert {FLATTEN.name}() before {spec.name}: it turns {show_shape(shape)} into "
                          f"{show_shape(flat)}",
                          f"if {spec.name} is meant for that dim alone, ignore this"])


def check_rank(diag: Collector, spec: LayerSpec, shape, call: n.Call) -> None:
    r = len(shape)
    if r in spec.ranks if spec.ranks else r >= spec.min_rank:
        return
    if spec.ranks:
        names = {spec.nd + 1: "unbatched", spec.nd + 2: "batched"} if spec.nd else {}
        want = " or ".join(f"{k}-D" + (f" ({names[k]})" if k in names and len(spec.ranks) > 1 else "")
                           for k in spec.ranks)
    else:
        want = f"at least a {spec.min_rank}-D"
    hint = _rank_hint(spec, shape)
    other = _rank_member(spec, r)
    fix = None
    if hint and other:  # the kind renamed, its per-dim tuples given the new kind's length
        tuples = change_rank(call, spec.arg_names, spec.nd, other.nd)
        fix = None if tuples is None else Fix(hint, (Edit(call.name_span, other.name), *tuples))
    diag.error("E301", f"{spec.name} expects a {want} input, got {r}-D {show_shape(shape)}",
                    call.name_span, hints=[hint], fixes=[fix])
    raise Skip


def _rank_hint(spec: LayerSpec, shape) -> str | None:
    r = len(shape)
    if spec.nd and r == spec.nd + 1 and spec.ranks == (spec.nd + 2,) and str(shape[0]) not in BATCH_NAMES:
        # BatchNorm2d on [C, H, W]: BatchNorm1d would take it, reading C as the batch; the batch dim is missing
        return (f"{spec.name} takes batched input only: give the input a batch dim, "
                f"[N, {', '.join(pyrepr(d) for d in shape)}]")
    other = _rank_member(spec, r)
    return f"for a {r}-D input use {other.name}" if other else None


def _rank_member(spec: LayerSpec, r: int) -> LayerSpec | None:
    """The kind of `spec`'s family that takes an `r`-D input, if it is another one."""
    other = member(spec.family, r - 2) if spec.family else None
    return other if other is not None and other is not spec else None


def _whole_floats(spec: LayerSpec, positional: list, args: dict) -> str | None:
    """The name of the float argument (eps) given by position where torch's order has the inferred argument,
    as a whole number: `BatchNorm2d(64)`, `GroupNorm(8, 64)`.  Nobody means eps=64.0; torch's
    num_features came first."""
    at = spec.inferred_at
    if at >= min(len(spec.args), len(positional)):
        return None
    a, arg = spec.args[at], positional[at]
    written_float = isinstance(arg.value, n.Float) or (isinstance(arg.value, n.Neg)
                                                       and isinstance(arg.value.operand, n.Float))
    value = args[a.name]
    if a.kind in (FLOAT, OPT_FLOAT) and not written_float and isinstance(value, float) and value.is_integer():
        return a.name
    return None
