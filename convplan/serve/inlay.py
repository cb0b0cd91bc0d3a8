"""Inlay hints: at the end of each line that makes a tensor, its shape (`[N, 64, H//2, W//2]`), and after
each `?`, the value the solver found.  A block's line runs once per call: it shows each distinct shape."""

from __future__ import annotations

from lsprotocol import types as lsp

from ..show import show_shape
from .document import Document

MAX_SHAPES = 3  # distinct shapes shown on a block's line; the tooltip lists every call


def shape_label(doc: Document, line: int) -> tuple[str, str] | None:
    """The label for `line` and its tooltip (which node made which shape), or None."""
    runs = [m for m in doc.made.get(line, ()) if m.span.line == line]
    if not runs:
        return None
    nodes = doc.plan.graph.nodes
    outermost = max(m.span.end_col - m.span.col for m in runs)  # `x = Conv(...)` over a call inside it
    shapes: dict[str, list[str]] = {}
    for m in runs:
        if m.span.end_col - m.span.col == outermost:
            shapes.setdefault(show_shape(nodes[m.result].shape), []).append(nodes[m.result].name)
    shown = list(shapes)[:MAX_SHAPES]
    label = " | ".join(shown) + (f" | +{len(shapes) - MAX_SHAPES} more" if len(shapes) > MAX_SHAPES else "")
    tooltip = "\n".join(f"{', '.join(names)}: {shape}" for shape, names in shapes.items())
    return label, tooltip


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
