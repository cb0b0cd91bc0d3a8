"""`convplan explain`: each layer's output sizes worked out step by step, as a person checks them by hand:
torch's rule in its own argument names, the plan's values put in, and (with sizes set) the numbers.

    conv1 = Conv1d(1, 32, 3, stride=2, padding=2)      line 4: [N, 1, L] -> [N, 32, L//2 + 2]
      dim 2: (x + 2*padding - dilation*(kernel_size - 1) - 1)//stride + 1   (torch's rule, x = L)
           = (10 + 4 - 2 - 1)//2 + 1 = 11//2 + 1 = 5 + 1 = 6

The rules come from the registry (`LayerSpec.size_rule`); a dim no rule explains shows its formula.
"""

from __future__ import annotations

import re

import sympy

from .graph import Node, show_call
from .layers import ntuple
from .shapes import pyrepr, to_expr
from .show import show_shape

PER_DIM = ("kernel_size", "stride", "padding", "dilation", "output_padding")
OUTPUT_ARGS = ("out_channels", "out_features")  # arguments that are an output dim as they are


class NoSuchNode(KeyError):
    """`layer` names no node of the plan (a KeyError, so that callers catching one still do)."""


def explain(plan, sizes: dict[str, int] | None = None, layers: tuple[str, ...] = ()) -> str:
    """The worked explanation of every node (or of each of `layers`, in the order given), then the
    requirements and solved unknowns; NoSuchNode for the first of `layers` that names none."""
    sizes = dict(sizes or {})
    bound = plan.bind(**sizes) if sizes else plan
    symbolic = {node.name: node for node in plan.graph.nodes}
    at = f" at {', '.join(f'{k}={v}' for k, v in sizes.items())}" if sizes else ""
    lines = [f"plan {plan.name}  ({plan.filename}){at}"]
    by_name = {node.name: node for node in bound.graph.nodes}
    for layer in layers:
        if layer not in by_name:
            raise NoSuchNode(layer)
    for node in [by_name[layer] for layer in layers] if layers else bound.graph.nodes:
        lines += _node(bound, node, symbolic[node.name], symbolic)
    if not layers:
        lines += _requirements(plan)
    return "\n".join(lines)


def _node(bound, node: Node, sym: Node, symbolic: dict) -> list[str]:
    where = f"{node.file + ':' if node.file else 'line '}{node.line}"
    if node.op == "input":
        shown = show_shape(sym.shape) + (f" = {show_shape(node.shape)}" if node.shape != sym.shape else "")
        return [f"{node.name}: input {shown}    {where}"]
    call = show_call(node, bound.graph)
    if not node.inputs:  # a learnable tensor (`Parameter(...)`): made from nothing, no rule to show
        return [f"{node.name} = {call}    {where}: {show_shape(node.shape)}"]
    source = bound.graph.nodes[node.inputs[0]]
    out = [f"{node.name} = {call}    {where}: {show_shape(source.shape)} -> {show_shape(node.shape)}"]
    if node.op != "layer":
        return out
    before = symbolic[source.name].shape
    spatial = len(node.shape) - node.spec.nd if node.spec.size_rule else len(node.shape)
    for i, (x, y) in enumerate(zip(source.shape, node.shape, strict=False)):
        if x == y and i < spatial:  # unchanged, and no rule to show why
            continue
        out += ["  " + line for line in _dim(node, i, x, before[i] if i < len(before) else None, sym.shape[i])]
    return out


def _dim(node: Node, i: int, x, x_formula, formula) -> list[str]:
    """How dim i of the layer's output comes about."""
    spec = node.spec
    nd = spec.nd
    rule, a = spec.size_rule, node.args
    j = i - (len(node.shape) - nd)
    if rule is None or not nd or j < 0 or isinstance(a.get("padding"), str) or a.get("ceil_mode"):
        value = "" if to_expr(node.shape[i]) == to_expr(formula) else f" = {pyrepr(node.shape[i])}"
        named = next((f"{arg} = " for arg in OUTPUT_ARGS if arg in a and to_expr(a[arg]) == to_expr(node.shape[i])
                      and i == len(node.shape) - nd - 1), "")
        return [f"dim {i}: {named}{pyrepr(formula)}{value}"]
    v = {name: _at(a[name], nd, j) for name in PER_DIM if name in a}
    if v.get("stride") is None:  # pools: the stride defaults to the kernel
        v["stride"] = v["kernel_size"]
    named = re.sub(r"\bx\b", _paren(pyrepr(x_formula)) if x_formula is not None else "x", rule.text)
    terms = rule.terms(to_expr(x), v)
    divisor = rule.divisor(v) if rule.divisor else None
    numbers = _sum(terms)
    lines = [f"dim {i}: {named}    (torch's rule)"]
    written = f"({numbers})//{pyrepr(to_expr(divisor))} + 1" if divisor is not None else f"{numbers} + 1"
    total = to_expr(sum(terms, sympy.Integer(0)))
    if total.is_Integer and (divisor is None or to_expr(divisor).is_Integer):
        if divisor is None:
            lines.append(f"     = {written} = {total} + 1 = {total + 1}")
        else:
            q = int(total) // int(divisor)
            lines.append(f"     = {written} = {total}//{divisor} + 1 = {q} + 1 = {q + 1}")
    else:
        lines.append(f"     = {written} = {pyrepr(node.shape[i])}")
    return lines


def _at(value, nd: int, j: int):
    values = ntuple(value, nd)
    return values[0] if len(values) == 1 else values[j]


def _sum(terms) -> str:
    """`10 + 4 - 2 - 1`: the terms as a sum, each written once, signs folded."""
    parts = []
    for k, t in enumerate(terms):
        t = to_expr(t)
        negative = t.is_Number and t < 0 or (t.could_extract_minus_sign() and not t.is_Number)
        text = pyrepr(-t if negative else t)
        text = _paren(text) if (k or negative) and not t.is_Atom and (-t if negative else t).is_Add else text
        parts.append(("- " if negative else "+ ") + text if k else ("-" if negative else "") + text)
    return " ".join(parts)


def _paren(text: str) -> str:
    return text if re.fullmatch(r"[\w.]+", text) else f"({text})"


def _requirements(plan) -> list[str]:
    lines = []
    if plan.requires:
        lines.append("requires:")
        lines += [f"  {r}    because {r.reason} ({r.layer}, line {r.span.line})" for r in plan.requires]
    if plan.unknowns:
        lines.append("solved: " + ", ".join(f"?{k} = {v}" for k, v in plan.unknowns.items())
                     + "  (the values that make the `->` assertions and merges hold)")
    return lines
