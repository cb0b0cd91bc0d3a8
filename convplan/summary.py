"""`convplan summary` and `Plan.summary`: one table per plan, as the built module's tree, with every budget.

A row per input, layer, function (merge or tensor operation) and learnable tensor, and a row per block call
and numbered container above the rows inside it (nested as `docs/language.md`, "The module tree", describes
the module; a function sits where the plan wrote it, though a container only indexes modules): its output
shape, parameters, buffers (the state that is not trained: BatchNorm's running statistics), cost under one
convention, the bytes of the tensors it creates in an eval-mode forward (none for a view), and the receptive
field of its output.  A call with several outputs (LSTM's `out, (h, c)`, `chunk`) is one row with every
output's shape, nested as torch's tuple.  A block's or container's row adds up the rows inside it; its
output and field are those of the tensor it gives (a container's: what its last statement made).

Every number comes from the other analyses (`Plan.cost`, `Plan.memory`, `Plan.receptive_field`, the
`params` pass), as formulas of the plan's symbols, or numbers where the sizes are set.  torchinfo counts
as "non-trainable" the parameters that do not require grad; every parameter of a built plan requires
grad, so that column would always read 0: the buffers are the state that is not trained.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import sympy

from .graph import Graph, Module, Node
from .layers import GLOBAL
from .memory import buffers as memory_buffers
from .shapes import pyrepr, to_expr
from .show import json_value, show_shape

COLUMNS = ("layer", "output", "params", "buffers", "{convention}", "activations", "receptive field")
NOT_COUNTED = "-"  # a kind the convention does not count: never a silent 0
WHOLE = "all"  # a receptive field that reads the whole input along every dim
UNMODELLED = "?"


@dataclass(frozen=True)
class Row:
    """One line of the table: a node (input, layer, merge) or a submodule holding others."""

    name: str  # the attribute name in its parent module (a node's name for an input or a merge)
    path: str  # the dotted submodule path (`layer1.0.conv1`); "" for inputs and merges
    kind: str  # the layer kind, the block's name, "Sequential", "input" or the merge
    depth: int
    node: str  # the graph node whose tensor is this row's output
    output: tuple  # its shape; a call with several outputs: their shapes, nested as torch's tuple
    params: sympy.Expr
    buffers: sympy.Expr
    cost: sympy.Expr | None  # None: nothing in it is counted by the convention
    activations: sympy.Expr  # bytes of the tensors it creates in an eval-mode forward
    field: tuple  # per spatial dim: receptive.Field, GLOBAL or None


@dataclass(frozen=True)
class Summary:
    """The table; `str()` prints it, `_repr_html_` shows it in a notebook, `to_dict()` is `--json`'s."""

    plan: str
    file: str
    sizes: dict
    convention: str
    dtype: str
    rows: tuple[Row, ...]
    uncounted: tuple[str, ...]
    cost: sympy.Expr | None = None  # the convention's total (ptflops rounds its sum); None: the rows' sum

    @property
    def totals(self) -> dict:
        """The whole plan's params, buffers, cost (under the convention) and activations (bytes)."""
        tops = [r for r in self.rows if r.depth == 0]
        counted = [r.cost for r in tops if r.cost is not None]
        return {"params": _sum(r.params for r in tops), "buffers": _sum(r.buffers for r in tops),
                "cost": _sum(counted) if self.cost is None else self.cost,
                "activations": _sum(r.activations for r in tops)}

    def to_dict(self) -> dict:
        rows = [{"name": r.name, "path": r.path, "kind": r.kind, "depth": r.depth, "node": r.node,
                 "output": json_value(tuple(r.output)), "params": json_value(r.params),
                 "buffers": json_value(r.buffers), self.convention: None if r.cost is None else json_value(r.cost),
                 "activations": json_value(r.activations), "receptive_field": [_field_json(f) for f in r.field]}
                for r in self.rows]
        return {"plan": self.plan, "file": self.file, "sizes": dict(self.sizes), "convention": self.convention,
                "dtype": self.dtype, "rows": rows,
                "totals": {self.convention if k == "cost" else k: json_value(v) for k, v in self.totals.items()},
                "uncounted": list(self.uncounted)}

    def cells(self) -> list[tuple[str, ...]]:
        """The table's text cells: a header, a row per Row (the layer column not yet indented), the totals."""
        head = tuple(c.format(convention=self.convention) for c in COLUMNS)
        body = [(f"{r.name} {r.kind}" if r.name != r.kind else r.name, show_output(r.output), count(r.params),
                 count(r.buffers), "" if r.kind == "input" else NOT_COUNTED if r.cost is None else scaled(r.cost),
                 bytes_(r.activations),
                 show_field(r.field)) for r in self.rows]
        t = self.totals
        return [head, *body, ("total", "", count(t["params"]), count(t["buffers"]), _short(scaled(t["cost"])),
                              _short(bytes_(t["activations"])), "")]

    def __str__(self) -> str:
        cells = self.cells()
        cells[1:-1] = [("  " * r.depth + c[0], *c[1:]) for r, c in zip(self.rows, cells[1:-1], strict=True)]
        widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
        lines = [self._title()]
        for k, c in enumerate(cells):
            if k == len(cells) - 1:
                lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
            lines.append("  ".join(v.ljust(w) if i < 2 or i == 6 else v.rjust(w)
                                   for i, (v, w) in enumerate(zip(c, widths, strict=True))).rstrip())
        return "\n".join(lines + self._notes())

    def _title(self) -> str:
        at = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        return f"plan {self.plan}{f' at {at}' if at else ''}  ({self.file})"

    def _notes(self) -> list[str]:
        t = self.totals
        notes = [f"params: {exact(t['params'])}, buffers: {count(t['buffers'])}",
                 f"{self.convention}: {exact(t['cost'])}",
                 f"activations: {exact(t['activations'], 'bytes')} (the tensors an eval-mode forward creates, "
                 f"{self.dtype})"]
        if self.uncounted:
            notes.append(f"{NOT_COUNTED}: not counted by {self.convention}: {', '.join(self.uncounted)}")
        if any(f is None for r in self.rows for f in r.field):
            notes.append(f"{UNMODELLED}: a receptive field not modelled (see convplan/receptive.py)")
        return notes

    def _repr_html_(self) -> str:
        cells = self.cells()
        style = "text-align:{};padding:1px 8px;font-family:monospace;white-space:nowrap"

        def row(values, tag="td", depth=0):
            tds = [f'<{tag} style="{style.format("left" if i < 2 or i == 6 else "right")}'
                   + (f';padding-left:{8 + 16 * depth}px' if i == 0 and depth else "") + f'">{html.escape(v)}</{tag}>'
                   for i, v in enumerate(values)]
            return "<tr>" + "".join(tds) + "</tr>"

        body = [row(c, depth=r.depth) for r, c in zip(self.rows, cells[1:-1], strict=True)]
        notes = "".join(f"<p style='margin:2px 0'>{html.escape(n)}</p>" for n in self._notes())
        return (f"<div><b>{html.escape(self._title())}</b><table><thead>{row(cells[0], 'th')}</thead>"
                f"<tbody>{''.join(body)}</tbody><tfoot>{row(cells[-1], 'th')}</tfoot></table>{notes}</div>")


def summary(plan, convention: str = "macs", dtype: str = "float32") -> Summary:
    """The summary of a (bound or symbolic) plan."""
    graph = plan.graph
    cost = plan.cost(convention)
    memory = plan.memory(dtype)
    fields = plan.receptive_field()
    values = {node.id: _values(graph, node, cost.by_layer, memory.by_layer, fields) for node in graph.nodes}
    rows = []
    for item, depth, inside in _walk(graph):
        if isinstance(item, Node):
            rows.append(_node_row(item, depth, values[item.id], inside))
        else:
            rows.append(_module_row(graph, item, depth, inside, values))
    return Summary(plan.name, plan.filename, dict(plan.sizes), convention, dtype, tuple(rows), cost.uncounted,
                   cost.total)


def _values(graph: Graph, node: Node, costs: dict, memory: dict, fields: dict) -> tuple:
    """(output, params, buffers, cost or None, memory, field) of one node.  A call with several outputs gives
    them all, nested as torch's tuple, and adds up their bytes (its "item" nodes have no row of their own)."""
    made = [node, *(graph.nodes[i] for i in _leaves(node.unpack)[1:])]
    return (output(graph, node), to_expr(node.params), buffers(node), costs.get(node.name),
            _sum([memory.get(n.name, sympy.Integer(0)) for n in made]),
            () if node.op == "param" else fields[node.name])  # a weight reads no input position: no field


def output(graph: Graph, node: Node) -> tuple:
    """The shape of the tensor a node gives; for a call with several outputs, their shapes nested as torch
    returns them (`([N, L, 512], ([4, N, 256], [4, N, 256]))` for LSTM's `out, (h, c)`)."""
    if not node.unpack:
        return node.shape
    nest = lambda ids: tuple(nest(i) if isinstance(i, tuple) else graph.nodes[i].shape for i in ids)  # noqa: E731
    return nest(node.unpack)


def _leaves(unpack: tuple) -> list[int]:
    return [x for item in unpack for x in (_leaves(item) if isinstance(item, tuple) else (item,))]


def buffers(node: Node) -> sympy.Expr:
    """Elements of the buffers a layer's module holds (memory.buffers: BatchNorm's statistics and count)."""
    return sympy.Add(*memory_buffers(node))


def _node_row(node: Node, depth: int, v: tuple, inner: Module | None) -> Row:
    """A layer (or a learnable tensor) is named as in its parent module; a function by its node name less
    the node-name prefix of the innermost block call or container it is in."""
    if node.op in ("layer", "param"):
        name = node.module_path[-1]
    else:
        name = node.name.removeprefix(inner.prefix) if inner is not None else node.name
    kind = node.kind if node.op == "layer" else node.op
    return Row(name, ".".join(node.module_path) if node.op == "layer" else "", kind, depth, node.name, *v)


def _module_row(graph: Graph, module: Module, depth: int, inside: tuple, values: dict) -> Row:
    """A submodule: the sums of the rows directly and deeper inside it; the output and field of the tensor it
    gives (`_walk`)."""
    inside, gives = inside
    out = graph.nodes[gives]
    made = [values[i] for i in inside]
    counted = [v[3] for v in made if v[3] is not None]
    return Row(module.path[-1], ".".join(module.path), module.name or "Sequential", depth, out.name,
               values[out.id][0], _sum(v[1] for v in made), _sum(v[2] for v in made),
               _sum(counted) if counted else None, _sum(v[4] for v in made), values[out.id][5])


def _walk(graph: Graph):
    """(a node or a Module, its depth, and for a Module the ids of the nodes made inside it and of the tensor
    it gives, for a node the innermost Module it is in, or None) in the order of the module tree: each
    submodule before its rows.

    A node is inside the block calls and numbered containers its `scope` names (layers, functions and
    learnable tensors alike: a container indexes no function, but the plan wrote it there).  The "item"
    nodes of a call with several outputs are rows of that call."""
    modules = [m for m in graph.tree if isinstance(m, Module)]
    keyed = {m.prefix.removesuffix("_"): m for m in modules}
    around = {n.id: [keyed[key] for key, _ in n.scope if key in keyed] for n in graph.nodes}
    inside: dict[tuple, list[int]] = {m.path: [] for m in modules}
    for node in graph.nodes:
        if node.op != "item":
            for m in around[node.id]:
                inside[m.path].append(node.id)
    events = [((m.start, 0, len(m.path)), m) for m in modules]
    events += [((n.id, 1, 0), n) for n in graph.nodes if n.op != "item"]
    for _, item in sorted(events, key=lambda e: e[0]):
        if isinstance(item, Module):
            depth = sum(1 for m in modules if m.path != item.path and item.path[:len(m.path)] == m.path)
            yield item, depth, (inside[item.path], _gives(item, inside, around))
        else:
            found = around[item.id]
            yield item, len(found), max(found, key=lambda m: len(m.path), default=None)


def _gives(module: Module, inside: dict, around: dict) -> int:
    """The id of the tensor a submodule gives: a block's output; what a numbered container's last statement
    made (the output of a block it ends with, however deep); its input where it holds nothing."""
    if module.kind == "block":
        return module.output
    if not inside[module.path]:
        return module.start - 1
    last = inside[module.path][-1]
    chain = [m.path for m in around[last]]  # the submodules the last node is in, outermost first
    k = chain.index(module.path)
    return _gives(around[last][k + 1], inside, around) if k + 1 < len(chain) else last


def _sum(values) -> sympy.Expr:
    return sympy.Add(*values) if values else sympy.Integer(0)


# -- printing -------------------------------------------------------------------------------


def count(value) -> str:
    """`11,689,512` for a number, the formula otherwise."""
    value = to_expr(value)
    return f"{int(value):,}" if value.is_Integer else pyrepr(value)


def exact(value, unit: str = "") -> str:
    """`1,814,073,344 (1.81 G)` for a number (`23,689,120 bytes (23.7 MB)` with unit "bytes"), the formula
    otherwise."""
    value = to_expr(value)
    text = count(value) + (f" {unit}" if unit else "")
    if value.is_Integer and abs(int(value)) >= 1000:
        text += f" ({scaled(value, 'B' if unit == 'bytes' else '')})"
    return text


def _short(text: str) -> str:
    """A total too long for its column is written under the table."""
    return text if len(text) <= 24 else "(below)"


def scaled(value, unit: str = "") -> str:
    """`1.81 G`: three significant digits with a K/M/G/T unit (powers of 1000), exact below 1000; a formula as
    it is."""
    value = to_expr(value)
    if not value.is_Integer:
        return pyrepr(value)
    number = int(value)
    for power, prefix in ((12, "T"), (9, "G"), (6, "M"), (3, "K")):
        if abs(number) >= 10**power:
            return f"{number / 10**power:.3g} {prefix}{unit}"
    return f"{number:,}{' ' + unit if unit else ''}"


def bytes_(value) -> str:
    """`3.21 MB`, `512 B`: bytes in powers of 1000 (as torchinfo shows them); a formula as it is."""
    return scaled(value, "B")


def show_output(output: tuple) -> str:
    """`[N, 32, L//2]`; several outputs as torch nests them: `[N, T, 512], ([4, N, 256], [4, N, 256])`."""
    if output and all(isinstance(x, tuple) for x in output):
        return ", ".join(_nested(x) for x in output)
    return show_shape(output)


def _nested(output: tuple) -> str:
    return f"({show_output(output)})" if output and all(isinstance(x, tuple) for x in output) else show_shape(output)


def show_field(field: tuple) -> str:
    """`435x435` (the size per spatial dim; `<=215` where it varies with the position, after a transposed
    convolution or an upsampling), `all` where every dim reads the whole input, `?` where not modelled."""
    if not field:
        return ""
    if all(f == GLOBAL for f in field):
        return WHOLE
    return "x".join(WHOLE if f == GLOBAL else UNMODELLED if f is None else _size(f) for f in field)


def _size(f) -> str:
    """After a fractional window the span varies with the position: at most the real window's size."""
    return pyrepr(f.size) if f.first is None else f"<={pyrepr(f.size)}"


def _field_json(f):
    if f is None:
        return None
    if f == GLOBAL:
        return "global"
    found = {"size": json_value(to_expr(f.size)), "jump": json_value(to_expr(f.jump)),
             "start": json_value(to_expr(f.start))}
    if f.first is not None:  # the exact span of output position i
        found |= {"first": pyrepr(f.first), "last": pyrepr(f.last)}
    return found
