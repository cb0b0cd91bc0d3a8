"""`Plan`: a checked plan, the object the Python API and the CLI hand out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sympy

from . import nodes as n
from .check import Checked, Requirement, check
from .errors import Diagnostic, PlanError, did_you_mean
from .graph import Node, show_call
from .shapes import dim, holds, total
from .show import json_value, show_shape
from .sizesearch import smallest_sizes


class Plan:
    """A plan whose every shape is known symbolically.  Immutable; `bind` makes a new one.

    A plan from `convplan.analyse` may be partial: `complete` is False and the graph holds what could
    be computed around the errors (`errors`)."""

    def __init__(self, definition: n.PlanDef, checked: Checked, source: str, filename: str,
                 sizes: dict[str, int] | None = None):
        self.definition, self.source, self.filename = definition, source, filename
        self.sizes = dict(sizes or {})
        self._checked = checked

    # -- what was found ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The plan's name, as `plan NAME:` writes it."""
        return self.definition.name

    @property
    def graph(self):
        """The shape graph: `.nodes` (inputs, layers, merges, in plan order; each a `graph.Node`) and `.outputs`."""
        return self._checked.graph

    @property
    def layers(self) -> tuple[Node, ...]:
        """The layer nodes, in plan order: each with `.kind`, `.args` (torch's, resolved), `.shape`, `.params`."""
        return self.graph.layers

    @property
    def input_shape(self) -> tuple | None:
        """The first input's shape (None only for a partial plan that has no input)."""
        return self.graph.inputs[0].shape if self.graph.inputs else None

    @property
    def output_shape(self) -> tuple | None:
        """The first output's shape (None only for a partial plan that has no output)."""
        return self.graph.nodes[self.graph.outputs[0]].shape if self.graph.outputs else None

    @property
    def input_shapes(self) -> dict[str, tuple]:
        """Every input's shape, by name, in the order the module takes them."""
        return {node.name: node.shape for node in self.graph.inputs}

    @property
    def output_shapes(self) -> dict[str, tuple]:
        """Every output's shape, by node name, in the order the module returns them (a tensor returned twice,
        `output y, y`, is one entry: `graph.outputs` lists each place)."""
        return {self.graph.nodes[i].name: self.graph.nodes[i].shape for i in self.graph.outputs}

    @property
    def requires(self) -> tuple[Requirement, ...]:
        """What the plan requires of its sizes (`L >= 2`, `H % 16 == 0`): each with `.condition` (sympy),
        `.reason`, `.layer` and `.span`; `str()` prints it as Python."""
        return self._checked.requires

    @property
    def unknowns(self) -> dict[str, int]:
        """The `?` unknowns solved, by name (`{"padding": 1}` for an anonymous `padding=?`)."""
        return dict(self._checked.unknowns)

    @property
    def params(self) -> dict[str, sympy.Expr]:
        """The plan's parameters with their values (a symbol where none was given)."""
        return dict(self._checked.env)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Names of the free sizes: input dims and parameters without a value."""
        names = [p for p, v in self._checked.env.items() if v == dim(p)]
        return tuple(names + [s for s in self._checked.symbols if s not in self.sizes])

    @property
    def total_params(self) -> sympy.Expr:
        """The parameter count of the whole plan, a formula of its sizes (`plan.evaluate(...)` gives a number)."""
        return total(node.params for node in self.graph.nodes)  # layers and learnable tensors

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The warnings found (W300-W340), in source order."""
        return self._checked.warnings

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The errors found (empty for a plan from `parse`/`load`, which raise instead)."""
        return self._checked.errors

    @property
    def complete(self) -> bool:
        """Whether the plan checked without errors: every shape, requirement and count is known."""
        return not self._checked.errors

    def node(self, name: str) -> Node:
        """The graph node called `name` (as in `convplan check`'s table); KeyError, with the closest name, if
        there is none."""
        for node in self.graph.nodes:
            if node.name == name:
                return node
        raise KeyError(f"plan {self.name} has no node named {name!r}; {node_hint(self, name)}")

    # -- sizes -------------------------------------------------------------------------

    def bind(self, /, **sizes: int) -> Plan:
        """The same plan with some sizes fixed; PlanError if they break a requirement, or E400 for a size this
        plan has fixed already, given another value (binding the same value again is the plan as it is)."""
        self._check_sizes(sizes)
        self._check_bound(sizes)
        merged = {**self.sizes, **sizes}
        checked = check(self.definition, self.source, self.filename, merged, self._checked.library)
        return Plan(self.definition, checked, self.source,
                    self.filename, merged)

    def _check_sizes(self, sizes: dict) -> None:
        """TypeError/ValueError for values that are no sizes; PlanError for sizes this plan refuses: an input
        dim below 1 (E205) or a broken requirement (E401)."""
        from .sizes import check_sizes

        for name, value in check_sizes(sizes).items():
            if value < 1 and name not in self.params:  # before re-checking: every layer would fail on it
                diag = Diagnostic("E205", f"size {name} must be positive, got {value}", self.definition.name_span,
                                  self.filename)
                raise PlanError([diag], self.source)
        values = {dim(k): sympy.Integer(v) for k, v in sizes.items()}
        for req in self.requires:
            if _breaks(req.condition, values):
                shown = ", ".join(f"{k} = {sizes[k]}" for k in sorted(sizes) if dim(k) in req.condition.free_symbols)
                diag = Diagnostic("E401", f"{shown} breaks the requirement {req} ({req.reason})", req.span,
                                  self.filename)
                raise PlanError([diag], self.source)

    def _check_values(self, sizes: dict) -> None:
        """`_check_sizes`, and every name one of the plan's free symbols: a formula does not change with a
        parameter that already has its value (`classes=3` where the plan says classes=2), nor with a name
        the plan does not have (E400)."""
        self._check_sizes(sizes)
        self._check_names(sizes)

    def _check_bound(self, sizes: dict) -> None:
        """E400 for a size this plan has fixed (`bind`, `parse(text, L=20)`) given another value: the plan no
        longer has that size, as it has none for a name it lacks."""
        for name, value in sizes.items():
            if name in self.sizes and self.sizes[name] != value:
                raise PlanError([Diagnostic("E400", f"size {name} is bound to {self.sizes[name]} in plan {self.name}, "
                                            f"so it cannot be {value}", self.definition.name_span, self.filename,
                                            (f"bind {name}={value} on the plan before it was bound",))], self.source)

    def _check_names(self, sizes: dict) -> None:
        self._check_bound(sizes)
        free = set(self.symbols)
        for name, value in sizes.items():
            if name in free or self.sizes.get(name) == value or self.params.get(name) == value:
                continue
            if name in self.params:
                raise ValueError(f"{name} is {self.params[name]} in this plan's formulas, not {value}: "
                                 f"plan.bind({name}={value}) makes the plan with {name} = {value}")
            raise PlanError([Diagnostic("E400", f"there is no size or parameter named {name!r} in plan {self.name}",
                                        self.definition.name_span, self.filename)], self.source)

    def satisfied(self, values: dict[str, int] | None = None, /, **sizes: int) -> bool:
        """Whether these sizes meet every requirement: `plan.satisfied(N=1, L=20)`, with the keywords and the
        checks of `bind` (a dict is taken too: `plan.satisfied({"L": 20})`).  A requirement on a size not
        given counts as unmet."""
        from .sizes import check_sizes

        given = check_sizes({**(values or {}), **sizes})
        self._check_names(given)  # a name the plan lacks (a typo: `n=8` for N) is not a size left unmet
        subs = {dim(k): sympy.Integer(v) for k, v in given.items()}
        return all(holds(r.condition, subs) is True for r in self.requires)

    def smallest_sizes(self, start: int = 1, /, sizes: Mapping[str, int] | None = None,
                       **more: int) -> dict[str, int]:
        """The smallest sizes (each at least `start`) that meet every requirement, every free size named; sizes
        given stay as given (`plan.smallest_sizes(N=8)`: the smallest H and W with N = 8), checked as `bind`
        checks them.  A size called `start` (or `sizes`) is given in the mapping: `smallest_sizes(2,
        sizes={"start": 5})` (see `Plan.summary`).  PlanError E402 if none are found."""
        sizes, options = self._given("smallest_sizes", sizes, more, start=start)
        start = options["start"]
        if isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise ValueError(f"start must be a positive int, got {start!r}")
        self._check_values(sizes)  # as bind: a name the plan lacks is E400, not ignored
        fixed = {k: v for k, v in sizes.items() if k in self.symbols}
        found, why, req = smallest_sizes(self.requires, self.symbols, fixed, start)
        if found is not None:
            return found
        span, file = (req.span, req.file or self.filename) if req else (self.definition.name_span, self.filename)
        raise PlanError([Diagnostic("E402", f"no sizes meet every requirement: {why}", span, file)], self.source)

    # -- analyses ----------------------------------------------------------------------

    def evaluate(self, expr, /, **sizes: int) -> int:
        """Any formula of this plan (a shape dim, `total_params`, a cost) at these sizes, as an int; a shape
        (a tuple of formulas) as a tuple of ints.  PlanError for sizes the plan refuses (E205, E401), as `bind`."""
        from .shapes import value_at

        self._check_values(sizes)
        return _value(expr, sizes, value_at)

    def cost(self, convention: str = "macs"):
        """The forward pass's cost as formulas of the plan's symbols: `.total`, `.by_layer` (node name ->
        formula, in plan order), `.uncounted` (kinds the convention does not count).  Conventions: "macs"
        (multiply-accumulates with the weights), "flopcounter" (what torch's FlopCounterMode reports),
        "fvcore" (what fvcore's FlopCountAnalysis reports, `.skipped`: the operators it warns about) and
        "ptflops" (what ptflops' get_model_complexity_info reports); see
        convplan/cost.py."""
        from .cost import cost

        return cost(self.graph, convention, self._check_values)

    def compare_costs(self, conventions=None):
        """Every convention (or those named) side by side by layer kind: `.by_kind` (kind -> convention ->
        formula, None where not counted), `.totals`, `.difference(a, b)` (kind -> formula: they add up to the
        totals' difference).  See convplan/cost.py."""
        from .cost import compare

        return compare(self.graph, conventions, self._check_values)

    def receptive_field(self) -> dict:
        """Node name -> one `receptive.Field` (size, jump, start: formulas; `span(i)`: the first and last input
        position output position i reads, exact after transposed convolutions and upsampling too) per spatial
        dim of the input, or GLOBAL (reads the whole input) or None (not modelled); through branches as the
        union of every path; the module in eval mode.  See convplan/receptive.py."""
        from .receptive import receptive_field

        return receptive_field(self.graph)

    def memory(self, dtype: str = "float32"):
        """Bytes as formulas of the plan's symbols: `.parameters`, `.gradients`, `.optimizer[name]` ("sgd",
        "sgd_momentum", "adam", "adamw"), `.activations` (every tensor the eval-mode forward creates) and
        `.by_layer`; `.training(optimizer)` adds them up.  `.saved` (`.saved_by_layer`): what autograd keeps
        for backward in training mode, distinct storages, the input not requiring grad.  See convplan/memory.py."""
        from .memory import memory

        return memory(self.graph, dtype, self._check_values)

    def summary(self, convention: str = "macs", dtype: str = "float32", /, sizes: Mapping[str, int] | None = None,
                **more: int):
        """One table of the plan, nested as the built module's tree: each layer's, merge's and block's output
        shape, parameters, buffers, cost (`convention`), activation bytes (`dtype`) and receptive field, as
        formulas, or numbers at the sizes given (`plan.summary(N=1, H=224, W=224)`, or as a mapping,
        `sizes={"H": 224}`); `str()` prints it, `.to_dict()` is `convplan summary --json`'s, a notebook shows
        `_repr_html_`.  See convplan/summary.py.

        A plan may have a size called `convention` or `dtype`: give it in `sizes=` and the convention and dtype
        positionally (`plan.summary("macs", "float32", sizes={"dtype": 4})`); a keyword that could mean either
        is refused (TypeError), never guessed."""
        from .summary import summary

        sizes, options = self._given("summary", sizes, more, convention=convention, dtype=dtype)
        return summary(self.bind(**sizes) if sizes else self, options["convention"], options["dtype"])

    def _given(self, method: str, sizes, more: dict, **options) -> tuple[dict, dict]:
        """(the sizes, the method's own arguments) of a call such as `summary(convention=..., H=224)` or
        `summary(sizes={"H": 224})`.  A keyword named like one of the method's arguments is that argument,
        unless the plan has a size or parameter of that name: then TypeError, since it could mean either."""
        names = {*self.params, *self.symbols, *self.sizes}
        if sizes is None:
            sizes = {}
        elif not isinstance(sizes, Mapping):
            hint = (f"; plan {self.name} has a size called 'sizes': give it as sizes={{'sizes': {sizes!r}}}"
                    if "sizes" in names else "")
            raise TypeError(f"{method}(sizes=...) takes a mapping of size names to ints, got "
                            f"{type(sizes).__name__} {sizes!r:.40}{hint}")
        found = dict(sizes)
        for name, value in more.items():
            if name in options and name in names:
                shown = ", ".join(repr(v) for v in options.values())
                raise TypeError(f"{name}={value!r} could mean either: plan {self.name} has a size called {name!r}, "
                                f"and {name} is {method}'s own argument; give the size in sizes= and the argument "
                                f"positionally: plan.{method}({shown}, sizes={{{name!r}: {value!r}}})")
            if name in options:
                options[name] = value
            elif name in found:
                raise TypeError(f"size {name} is given twice: as {name}= and in sizes=")
            else:
                found[name] = value
        return found, options

    # -- torch -------------------------------------------------------------------------

    def build(self, /, **sizes: int):
        """A real torch.nn.Module with weights sized for these sizes."""
        from .build import build_module

        if not self.complete:  # a partial plan (convplan.analyse) lacks the statements that failed
            raise PlanError(list(self.errors), self.source)
        return build_module(self.bind(**sizes) if sizes else self)

    def verify(self, memory_budget: int | None = None, /, sizes: Mapping[str, int] | None = None, **more: int):
        """Run the built module and compare every layer's shape with the prediction.  A run whose estimated
        bytes (weights and the values alive at once) exceed `memory_budget` (default 1 GB) runs on torch's
        `meta` device (shapes only); `Report.runs` says which runs were concrete.  Sizes as keywords or as a
        mapping (`sizes=`: for a size called `memory_budget`, see `Plan.summary`)."""
        from .verify import verify

        sizes, options = self._given("verify", sizes, more, memory_budget=memory_budget)
        return verify(self, sizes, memory_budget=options["memory_budget"])

    def to_source(self, /, **sizes: int) -> str:
        """A standalone PyTorch module (`class <name>(nn.Module)`) whose constructor takes the
        sizes the weights depend on; `sizes` become its defaults (else the smallest valid ones)."""
        from .codegen import generate

        return generate(self, sizes)

    # -- output ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Everything `convplan check --json` prints: JSON-ready (numbers as ints, formulas as Python text)."""
        return {
            "plan": self.name,
            "file": self.filename,
            "params": {k: json_value(v) for k, v in self.params.items()},
            "symbols": list(self.symbols),
            "input": None if self.input_shape is None else json_value(self.input_shape),
            "output": None if self.output_shape is None else json_value(self.output_shape),
            "inputs": {k: json_value(v) for k, v in self.input_shapes.items()},
            "outputs": {k: json_value(v) for k, v in self.output_shapes.items()},
            "merges": [_merge_dict(node, self.graph) for node in self.graph.merges],
            "layers": [_layer_dict(node) for node in self.layers],
            "total_params": json_value(self.total_params),
            "requires": [{"condition": str(r), "reason": r.reason, "layer": r.layer, "line": r.span.line}
                         for r in self.requires],
            "unknowns": self.unknowns,
            "warnings": [w.to_dict() for w in self.warnings],
        }

    def draw(self, /, **sizes: int):
        """The graph as a `graphviz.Digraph` (blocks as clusters, edges labelled with shapes; numbers for
        `sizes`): `.source` is its DOT text, `.pipe(format="svg")` the picture.  Needs `convplan[draw]`."""
        from .draw import digraph

        return digraph(self.bind(**sizes) if sizes else self)

    def _repr_svg_(self) -> str | None:
        """The graph as SVG (None without Graphviz), for front-ends that show SVG but not HTML."""
        from .draw import svg_or_none

        return svg_or_none(self)

    def _repr_html_(self) -> str | None:
        """What a notebook shows: the summary table, then the drawing (folded) where Graphviz is installed.
        Jupyter prefers text/html to image/svg+xml when an object gives both, so the drawing goes inside the
        HTML rather than being hidden by it.  None for a partial plan: the notebook shows the SVG or the text."""
        if not self.complete:
            return None
        table = self.summary()._repr_html_()
        svg = self._repr_svg_()
        if svg is None:
            return table
        svg = svg[svg.find("<svg"):]  # the XML prologue and DOCTYPE do not belong inside HTML
        return f"{table}<details><summary>graph</summary>{svg}</details>"

    def __repr__(self) -> str:
        count = len(self.errors)
        partial = f" (partial: {count} error{'s' if count != 1 else ''})"
        if not self.graph.inputs or not self.graph.outputs:
            return f"<Plan {self.name}{partial}>"
        partial = "" if self.complete else partial
        return f"<Plan {self.name} {show_shape(self.input_shape)} -> {show_shape(self.output_shape)}{partial}>"


@dataclass(frozen=True)
class Result:
    """What `convplan.analyse` found: the plan as far as it could be checked (None when the text does not
    parse) and every diagnostic, errors and warnings, in source order."""

    plan: Plan | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing was refused (warnings allowed): then `plan` is complete."""
        return not self.errors

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The diagnostics of severity "error"."""
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The diagnostics of severity "warning"."""
        return tuple(d for d in self.diagnostics if d.severity == "warning")


def node_hint(plan: Plan, name: str) -> str:
    """What to write for `name`, which names no node: the closest name, else what the names look like."""
    names = [node.name for node in plan.graph.nodes]
    close = did_you_mean(name, names) if isinstance(name, str) else None  # plan.node(3): no name is close
    return close or f"the names are those of `convplan check`: {', '.join(names[:8])}"


def json_value_dict(args: dict) -> dict:
    return {k: json_value(v) for k, v in args.items()}


def _merge_dict(node: Node, graph) -> dict:
    return {"name": node.name, "op": node.op, "line": node.line, "inputs": [graph.nodes[i].name for i in node.inputs],
            "args": json_value_dict(node.args), "output": json_value(node.shape)}


def _layer_dict(node: Node) -> dict:
    return {
        "name": node.name,
        "kind": node.kind,
        "line": node.line,
        "call": show_call(node),
        "args": json_value_dict(node.args),
        "output": json_value(node.shape),
        "params": json_value(node.params),
    }


def _value(expr, sizes: dict, value_at):
    """`value_at` for a formula, elementwise for a shape; TypeError for what is no formula (text included:
    no string reaches sympy's parser)."""
    if isinstance(expr, (tuple, list)):
        return tuple(_value(e, sizes, value_at) for e in expr)
    if isinstance(expr, bool) or not isinstance(expr, (int, sympy.Basic)):
        raise TypeError(f"evaluate takes a formula of the plan (a sympy expression, an int or a shape), "
                        f"got {type(expr).__name__} {expr!r:.40}")
    return value_at(expr, sizes)


def _breaks(cond, values: dict) -> bool:
    """A requirement that the given sizes make false (or make divide by zero)."""
    try:
        return cond.xreplace(values) == sympy.false
    except ZeroDivisionError:
        return True
