"""Inlay hints: at the end of each line that makes a tensor, its shape (`[N, 64, H//2, W//2]`), and after
each `?`, the value the solver found.  A block's line runs once per call: it shows each distinct shape.
A call with several outputs shows each with its name (`out: [N, L, 512], h: [4, N, 256], c: [4, N, 256]`);
a learnable tensor (`Parameter`) its own shape, though the chain goes on from the tensor before it."""

from __future__ import annotations

from lsprotocol import types as lsp

from ..graph import Node
from ..scope import Made
from ..show import show_shape
from .document import Document

MAX_SHAPES = 3  # distinct shapes shown on a block's line; the tooltip lists every call


def outputs(doc: Document, made: Made) -> list[tuple[str | None, Node]]:
    """The tensors one run of a statement gives, each with the name the statement gives it where it names
    several: its value; every output of a call with several (`out, (h, c) = LSTM(...)`), in torch's order;
    the learnable tensors it declares (`pos = Parameter(...)`: the chain goes on from the tensor before it)."""
    nodes = doc.plan.graph.nodes
    result = nodes[made.result]
    if not made.start <= made.result < made.end:  # a bare name, or a statement that declares a Parameter
        declared = [n for n in nodes[made.start: made.end] if n.op == "param"]
        return [(None, n) for n in declared] if declared else [(None, result)]
    if not result.unpack:
        return [(None, result)]
    leaves = [nodes[i] for i in _leaves(result.unpack)]
    names = _target_names(doc, made)
    if len(names) != len(leaves):  # a statement whose names are not all on its first line
        names = [n.name for n in leaves]
    return list(zip(names, leaves, strict=True))


def _leaves(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_leaves(item) if isinstance(item, tuple) else (item,))]


def _target_names(doc: Document, made: Made) -> list[str]:
    """The tensor names a statement defines on its first line, left to right (`out`, `h`, `c`)."""
    index = doc.symbols
    found = [s for s in (index.symbols if index else ()) if s.kind == "tensor" and s.span.line == made.span.line
             and made.span.col <= s.span.col < made.span.end_col]
    return [s.name for s in sorted(found, key=lambda s: s.span.col)]


def label(doc: Document, made: Made) -> str:
    """`[N, 64, H//2, W//2]`; `out: [N, L, 512], h: [4, N, 256], c: [4, N, 256]` for several outputs."""
    return ", ".join(show_shape(n.shape) if name is None else f"{name}: {show_shape(n.shape)}"
                     for name, n in outputs(doc, made))


def shape_label(doc: Document, line: int) -> tuple[str, str] | None:
    """The label for `line` and its tooltip (which node made which shape), or None."""
    runs = [m for m in doc.made.get(line, ()) if m.span.line == line]
    if not runs:
        return None
    outermost = max(m.span.end_col - m.span.col for m in runs)  # `x = Conv(...)` over a call inside it
    shapes: dict[str, list[str]] = {}
    for m in runs:
        if m.span.end_col - m.span.col == outermost:
            shapes.setdefault(label(doc, m), []).append(outputs(doc, m)[0][1].name)
    shown = list(shapes)[:MAX_SHAPES]
    text = " | ".join(shown) + (f" | +{len(shapes) - MAX_SHAPES} more" if len(shapes) > MAX_SHAPES else "")
    tooltip = "\n".join(f"{', '.join(names)}: {shape}" for shape, names in shapes.items())
    return text, tooltip


def unknown_values(doc: Document) -> list[tuple]:
    """(span, text) for each `?` of this file whose value was found: `= 1` (values per call, joined)."""
    solved = doc.plan.unknowns if doc.plan is not None else {}
    found: dict = {}
    for m in doc.trace:
        if m.sym is not None and m.sym.name[1:] in solved:
            values = found.setdefault(m.span, [])
            if solved[m.sym.name[1:]] not in values:
                values.append(solved[m.sym.name[1:]])
    return [(span, " | ".join(f"{v}" for v in values)) for span, values in found.items()]


def hints(doc: Document, first: int, last: int) -> list[lsp.InlayHint]:
    """The hints on lines `first` to `last` (1-based)."""
    out = []
    for line in sorted(doc.made):
        if first <= line <= last and (found := shape_label(doc, line)):
            label, tooltip = found
            out.append(lsp.InlayHint(position=doc.lines.end_of(line), label=label, kind=lsp.InlayHintKind.Type,
                                     padding_left=True, tooltip=tooltip))
    for span, value in unknown_values(doc):
        if first <= span.line <= last:
            out.append(lsp.InlayHint(position=doc.lines.position(span.end_line, span.end_col), label=f"= {value}",
                                     kind=lsp.InlayHintKind.Parameter, padding_left=True))
    return sorted(out, key=lambda h: (h.position.line, h.position.character))
