"""`convplan draw`: the shape graph as a Graphviz picture.

One box per node (input, layer, merge), each block call a cluster (nested as the calls are),
each edge labelled with the shape that flows along it: formulas, or numbers for the sizes the
plan was bound to.  A merge is a distinct shape, so residuals and concatenated branches show
where they meet; each output ends in a small node that names it.

The `graphviz` package (the `draw` extra) writes the DOT text; turning it into SVG or PNG
needs Graphviz's `dot` program, which `-o graph.dot` does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .graph import Graph, Node, show_call
from .ops import FUNCTIONS
from .show import show_shape

FORMATS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}
INSTALL = "apt-get install graphviz (Debian, Ubuntu), brew install graphviz (macOS), or see graphviz.org"

FONT = "Helvetica"
STYLE = {  # node attributes by what the node is
    "input": {"shape": "ellipse", "style": "filled", "fillcolor": "#e8f0fe"},
    "layer": {"shape": "box", "style": "rounded,filled", "fillcolor": "#ffffff"},
    "merge": {"shape": "hexagon", "style": "filled", "fillcolor": "#fde9c8"},
    "output": {"shape": "plaintext", "fontcolor": "#555555"},
}


class DrawError(Exception):
    """What stops a picture: a format we do not write, or Graphviz missing.  The CLI prints it as
    a usage error; the message says how to fix it."""


@dataclass
class _Cluster:
    """A block call: its own nodes and the calls inside it, in plan order."""

    prefix: str
    label: str
    nodes: list[Node] = field(default_factory=list)
    children: dict[str, _Cluster] = field(default_factory=dict)


def digraph(plan):
    """The plan's graph as a `graphviz.Digraph` (it shows itself in a notebook, too)."""
    graphviz = _graphviz()
    dot = graphviz.Digraph(name=plan.name, graph_attr={"rankdir": "TB", "fontname": FONT, "labelloc": "t",
                                                      "label": graphviz.nohtml(_title(plan))},
                           node_attr={"fontname": FONT, "fontsize": "11"},
                           edge_attr={"fontname": FONT, "fontsize": "10"})
    _emit(dot, _clusters(plan.graph), plan, graphviz)
    for node in plan.graph.nodes:
        for source in node.inputs:
            dot.edge(_id(source), _id(node.id), label=graphviz.nohtml(_edge_label(plan.graph.nodes[source])))
    for k, out in enumerate(plan.graph.outputs):
        node = plan.graph.nodes[out]
        dot.node(f"out{k}", graphviz.nohtml(f"output {node.name}"), **STYLE["output"])
        dot.edge(_id(out), f"out{k}", label=graphviz.nohtml(_edge_label(node)))
    return dot


def render(plan, fmt: str) -> bytes:
    """The picture as bytes: "dot" (text, needs no Graphviz program), "svg" or "png"."""
    dot = digraph(plan)
    if fmt == "dot":
        return dot.source.encode("utf-8")
    graphviz = _graphviz()
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DrawError(f"drawing {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH: {INSTALL}; "
                        "or write the DOT text with -o graph.dot") from None
    except graphviz.CalledProcessError as exc:  # dot itself failed: say what it said, not where Python was
        said = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise DrawError(f"Graphviz's `dot` failed: {said[-1] if said else exc}") from None


def format_of(output: Path) -> str:
    """The format `-o` asks for, by its suffix."""
    fmt = FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise DrawError(f"cannot tell the format from {output.suffix or 'a name without a suffix'}; "
                        f"use one of {', '.join(sorted(FORMATS))}")
    return fmt


def svg_or_none(plan) -> str | None:
    """The SVG for a notebook, or None (the notebook then shows the text repr) without Graphviz."""
    try:
        return render(plan, "svg").decode("utf-8")
    except DrawError:
        return None


# -- the parts -------------------------------------------------------------------------


def _graphviz():
    try:
        import graphviz
    except ModuleNotFoundError:
        raise DrawError("drawing needs the graphviz Python package: pip install 'convplan[draw]' "
                        f"(and Graphviz's programs for SVG or PNG: {INSTALL})") from None
    return graphviz


def _clusters(graph: Graph) -> _Cluster:
    """The block calls as a tree, each holding the nodes made directly inside it."""
    root = _Cluster("", "")
    for node in graph.nodes:
        here, parent = root, ""
        for prefix, block in node.scope:
            local = prefix.removeprefix(parent + "_") if parent else prefix
            here = here.children.setdefault(prefix, _Cluster(prefix, f"{local}: {block}"))
            parent = prefix
        here.nodes.append(node)
    return root


def _emit(dot, cluster: _Cluster, plan, graphviz) -> None:
    for node in cluster.nodes:
        kind = "merge" if node.op in FUNCTIONS else "input" if node.op in ("input", "param", "item") else "layer"
        dot.node(_id(node.id), graphviz.nohtml(_node_label(node, plan)), tooltip=graphviz.nohtml(_where(node, plan)),
                 **STYLE[kind])
    for child in cluster.children.values():
        # Graphviz draws a subgraph as a box only when its name starts with "cluster".
        with dot.subgraph(name=f"cluster_{child.prefix}") as sub:
            sub.attr(label=graphviz.nohtml(child.label), style="rounded,dashed", color="#888888", fontsize="11")
            _emit(sub, child, plan, graphviz)


def _node_label(node: Node, plan) -> str:
    """`conv1` and its call, `Conv2d(16, 96, 1, bias=False)`; the edges show a merge's operands."""
    if node.op == "input":
        return f"input {node.name}"
    call = show_call(node).removesuffix("()") if node.op in FUNCTIONS else show_call(node)  # `add`, `cat(dim=1)`
    return f"{local_name(node)}\\n{call}"  # DOT's line break


def local_name(node: Node) -> str:
    """The name inside its block call's cluster: `conv1` for `layer1_basicblock1_conv1`."""
    return node.name.removeprefix(node.scope[-1][0] + "_") if node.scope else node.name


def _edge_label(node: Node) -> str:
    return f" {show_shape(node.shape)} "  # spaces keep the label off the line


def _where(node: Node, plan) -> str:
    return f"{node.name}  {node.file or plan.filename}:{node.line}"


def _title(plan) -> str:
    lines = [f"plan {plan.name}  ({Path(plan.filename).name})"]
    if plan.sizes:
        lines.append(", ".join(f"{k} = {v}" for k, v in plan.sizes.items()))
    if plan.requires:
        lines.append("requires: " + ", ".join(str(r) for r in plan.requires))
    return "\\n".join(lines)  # DOT's line break


def _id(node_id: int) -> str:
    return f"n{node_id}"
