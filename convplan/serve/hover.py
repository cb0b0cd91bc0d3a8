"""Hover: what is under the cursor, from the document's analysis.

On a statement: the torch call it resolves to, its output shape (every output's, named, for a call with
several; a learnable tensor's own), parameters and MACs, the requirements
its layers add and why, and the shape at the example sizes (workspace settings or a `# sizes: H=224`
comment).  A block's call sums its layers; a line inside a block lists each call.  On a name: the tensor's
shape, a size's requirements, a parameter's value; on a `?`: its solved value.  On a statement that
made nothing (an unknown layer): its error and the help (did you mean, torch's name).
"""

from __future__ import annotations

import sympy

from ..graph import Node, show_call
from ..merges import MERGES
from ..shapes import pyrepr, to_expr
from ..show import show_shape
from .document import Document
from .inlay import label, outputs, unknown_values
from .positions import contains
from .symbols import TENSORS, Symbol

MAX_CALLS = 8  # calls of a block's line listed


def hover(doc: Document, line: int, col: int) -> str | None:
    """Markdown for the position (1-based line and column), or None."""
    if doc.plan is None:
        return None
    for span, value in unknown_values(doc):
        if contains(span, line, col):
            return f"`{doc.lines.line(line)[span.col - 1: span.end_col - 1]}` = **{value}** (solved)"
    named = _name(doc, line, col)
    if named:
        return named
    runs = [m for m in doc.trace if m.sym is None and contains(m.span, line, col)]
    if not runs:
        return _error(doc, line, col)
    width = min((m.span.end_line, m.span.end_col - m.span.col) for m in runs)  # the innermost statement
    runs = [m for m in runs if (m.span.end_line, m.span.end_col - m.span.col) == width]
    if len(runs) == 1:
        return statement(doc, runs[0])
    return _calls(doc, runs)


def _error(doc: Document, line: int, col: int) -> str | None:
    """A statement that made nothing because of an error (an unknown layer: E100): the error and its help
    (`did you mean Conv2d?`, what torch's name is and what to write)."""
    for d in doc.result.errors:
        if d.file == doc.filename and contains(d.span, line, col):
            return "\n\n".join([f"**error[{d.code}]** {d.message}", *(f"hint: {h}" for h in d.hints)])
    return None


def _calls(doc: Document, runs) -> str:
    """A line that ran once per call of its block: each distinct (call, shape), with the nodes it made."""
    nodes = doc.plan.graph.nodes
    groups: dict[tuple, list[str]] = {}
    for m in runs:
        node = nodes[m.result]
        calls = [n for n in nodes[m.start: m.end] if n.op != "item"]  # a call with several outputs is one
        single = len(calls) == 1 and calls[0] is node and node.op != "input"
        if m.end == m.start:  # a block's `input` pattern: it binds the caller's tensor and makes no node
            what = "input"
        else:
            what = f"`{show_call(node, doc.plan.graph)}`" if single else f"{m.end - m.start} nodes"
        groups.setdefault((what, label(doc, m)), []).append(node.name)
    lines = [f"this line runs {len(runs)} times (once per call of its block):", ""]
    for (what, shape), names in list(groups.items())[:MAX_CALLS]:
        lines.append(f"- {what} → `{shape}` ({', '.join(f'`{n}`' for n in names[:3])}"
                     f"{f' and {len(names) - 3} more' if len(names) > 3 else ''})")
    if len(groups) > MAX_CALLS:
        lines.append(f"- ... and {len(groups) - MAX_CALLS} more")
    names = {n.name for m in runs for n in nodes[m.start: m.end]}
    lines += [f"\n**requires** `{r}`: {r.reason} (`{r.layer}`)" for r in doc.plan.requires if r.layer in names]
    return "\n".join(lines)


def statement(doc: Document, made, brief: bool = False) -> str:
    """One run of a statement: the nodes it made (`made.start` to `made.end`) and its value."""
    nodes = doc.plan.graph.nodes
    made_nodes = nodes[made.start: made.end]
    result = nodes[made.result]
    gives = outputs(doc, made)
    calls = [n for n in made_nodes if n.op != "item"]  # a call with several outputs is one call
    out = []
    if len(calls) == 1 and (calls[0] is result or calls[0] is gives[0][1]):
        out.append(_call(doc, calls[0]))
    elif made_nodes:
        kinds = sorted({n.kind or n.op for n in made_nodes})
        block = _callee(doc, made.span)
        out.append((f"block {block}: " if block else "")
                   + f"`{made_nodes[0].name}` .. `{result.name}`: {len(made_nodes)} nodes ({', '.join(kinds)})")
    else:
        out.append(f"`{result.name}`")
    if len(gives) == 1:
        out.append(f"**output** `{show_shape(gives[0][1].shape)}`")
    else:
        out.append("**outputs** " + ", ".join(f"`{name or n.name}` `{show_shape(n.shape)}`" for name, n in gives))
    if brief:
        return "\n\n".join(out)
    params = sympy.Add(*(n.params for n in made_nodes))
    macs = [doc.macs[n.name] for n in made_nodes if n.name in doc.macs]
    counts = f"**parameters** `{pyrepr(params)}`" if any(n.op != "input" for n in made_nodes) else ""
    if macs:
        counts += f" · **MACs** `{pyrepr(sympy.Add(*macs))}`"
    if counts:
        out.append(counts)
    names = {n.name for n in made_nodes}
    out.extend(f"**requires** `{r}`: {r.reason} (`{r.layer}`)" for r in doc.plan.requires if r.layer in names)
    at = _at_sizes(doc, *(n.shape for _, n in gives))
    if at:
        out.append(at)
    return "\n\n".join(out)


def _callee(doc: Document, span) -> str | None:
    """`DoubleConv(width)` for a statement at `span` that calls a block (its signature), else None."""
    uses = doc.symbols.uses if doc.symbols else ()
    for use in uses:
        if use.call and use.name in doc.blocks and use.span.line == span.line and span.col <= use.span.col:
            params = ", ".join(p.name for p in doc.blocks[use.name].definition.params)
            return f"`{use.name}({params})`"
    return None


def _call(doc: Document, node: Node) -> str:
    if node.op == "input":
        return f"input `{node.name}`"
    call = show_call(node, doc.plan.graph)
    where = (f"{node.spec.module}.{node.kind}" if node.op == "layer" else f"merge `{node.op}`" if node.op in MERGES
             else "torch.nn.Parameter" if node.op == "param" else f"tensor operation `{node.kind or node.op}`")
    if node.op in MERGES and MERGES[node.op].along:
        where += f" (joins along `{MERGES[node.op].along}`)"
    return f"`{node.name}` = `{call}`  ({where})"


def _at_sizes(doc: Document, *shapes) -> str | None:
    """`**at L=64** `[N, 32, 32]``: the shapes (a call's several outputs: each) at the example sizes."""
    sizes = doc.sizes()
    if not sizes:
        return None
    free = {s for shape in shapes for d in shape for s in to_expr(d).free_symbols}
    mapping = {s: sympy.Integer(sizes[s.name]) for s in free if s.name in sizes}
    if not mapping:
        return None
    shown = ", ".join(f"{s.name}={mapping[s]}" for s in sorted(mapping, key=lambda s: s.name))
    return f"**at {shown}** " + ", ".join(f"`{show_shape(tuple(to_expr(d).xreplace(mapping) for d in shape))}`"
                                          for shape in shapes)


def _name(doc: Document, line: int, col: int) -> str | None:
    """Hover over a name: a tensor's shape, a size's requirements, a parameter's value, a block's signature."""
    index = doc.symbols
    item = index.at(line, col) if index else None
    target = index.target(item) if item else None
    if target is None:
        return None
    if target.kind in TENSORS and not isinstance(item, Symbol):  # on its definition: the statement's hover
        made = [m for m in doc.made.get(target.span.line, ()) if m.sym is None]
        if made:
            return f"tensor `{target.name}` (line {target.span.line})\n\n" + statement(doc, made[-1], brief=True)
    if target.kind == "size" and target.scope == doc.plan.name:
        reqs = [r for r in doc.plan.requires if any(s.name == target.name for s in r.condition.free_symbols)]
        text = f"size `{target.name}` of the input"
        return text + "".join(f"\n\n**requires** `{r}`: {r.reason} (`{r.layer}`)" for r in reqs)
    if target.kind == "param" and target.scope == doc.plan.name:
        return f"parameter `{target.name}` = `{pyrepr(doc.plan.params[target.name])}`"
    if target.kind in ("block", "import") and isinstance(item, Symbol):
        return _block(doc, target.name)
    return None


def _block(doc: Document, name: str) -> str | None:
    src = doc.blocks.get(name)
    if src is None:
        return None
    d = src.definition
    params = ", ".join(p.name for p in d.params)
    return f"block `{d.name}({params})` ({src.file}:{d.name_span.line})"
