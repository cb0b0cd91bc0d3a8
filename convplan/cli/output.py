"""What a command shows: the stream and its colours, and the tables of parameters and costs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import PlanError, paint
from ..graph import show_call
from ..shapes import pyrepr, to_expr
from ..show import json_value, show_shape, show_value
from .inputs import UsageError


class Output:
    """Where a run writes: text to stdout as it goes, or with --json one JSON document at the end (an
    object for one file, `{"ok": ..., "files": [...]}` for several); diagnostics to stderr."""

    def __init__(self, as_json: bool, color: bool):
        self.as_json, self.color = as_json, color
        self.objects: list[dict] = []  # with --json: one per file
        self.texts = 0  # without: outputs printed so far

    def text(self, text: str) -> None:
        if not self.as_json:
            if self.texts:  # files after the first: a blank line between their outputs
                print()
            print(text)
            self.texts += 1

    def add(self, obj: dict) -> None:
        self.objects.append(obj)

    def fail(self, message: str) -> None:
        """A run that did its work but fails (--strict): said on stderr, and in its JSON object."""
        if self.as_json and self.objects:
            self.objects[-1].update(ok=False, failed=message)
        print(f"{paint('convplan: error:', 'error', self.color)} {message}", file=sys.stderr)

    def diagnostics(self, exc: PlanError) -> None:
        print(exc.render(color=self.color), file=sys.stderr)

    def usage_error(self, exc: UsageError, file: str | None = None) -> None:
        self.add({"ok": False, **({"file": file} if file else {}), "usage_error": exc.message})
        print(f"{paint('convplan: error:', 'error', self.color)} {exc.message}", file=sys.stderr)

    def finish(self) -> None:
        if not self.as_json or not self.objects:
            return
        import json  # here: a check without --json does not import it

        if len(self.objects) == 1:
            print(json.dumps(self.objects[0], indent=2))
        else:
            print(json.dumps({"ok": all(o.get("ok") for o in self.objects), "files": self.objects}, indent=2))


def use_color(choice: str, stream) -> bool:
    """--color=always|never, or auto: on a terminal, unless NO_COLOR is set (no-color.org) or TERM=dumb."""
    if choice != "auto":
        return choice == "always"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _signed(value) -> str:
    shown = _shown(value)
    return shown if shown.startswith("-") else "+" + shown


def _columns(rows, numbered: bool = True) -> list[str]:
    """Rows as aligned columns; the first (line numbers) aligned right when `numbered`."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(f"{c:>{w}}" if i == 0 and numbered else f"{c:<{w}}"
                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]


def _number(value):
    """An int for JSON where the value is a number, else the formula as text."""
    return json_value(to_expr(value))


def _shown(value) -> str:
    """`1,814,073,344` for a number, the formula otherwise (`value` a formula, or already `_number`'s)."""
    if not isinstance(value, (int, str)):
        value = _number(value)
    return f"{value:,}" if isinstance(value, int) else value


def render_table(plan) -> str:
    rows = [("line", "name", "layer", "output", "params")]
    for node in plan.graph.nodes:
        call = "input" if node.op == "input" else show_call(node, plan.graph)
        where = f"{Path(node.file).name}:{node.line}" if node.file else str(node.line)  # a block from another file
        rows.append((where, node.name, call, show_shape(node.shape),
                     "" if node.op == "input" else pyrepr(node.params)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"plan {plan.name}" + _param_text(plan) + f"  ({plan.filename})"]
    for r in rows:
        lines.append(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:<{widths[3]}}  {r[4]}"
                     .rstrip())
    lines.append(f"total params: {pyrepr(plan.total_params)}")
    outputs = [plan.graph.nodes[i] for i in plan.graph.outputs]
    if len(outputs) == 1:
        lines.append(f"output: {show_shape(plan.output_shape)}")
    else:
        lines.append("outputs: " + ", ".join(f"{o.name} {show_shape(o.shape)}" for o in outputs))
    if plan.requires:
        lines.append("requires:")
        lines.extend(f"  {r}    # {r.layer}, {f'{r.file}:' if r.file else 'line '}{r.span.line}" for r in plan.requires)
    if plan.unknowns:
        lines.append("solved: " + ", ".join(f"?{k} = {v}" for k, v in plan.unknowns.items()))
    return "\n".join(lines)


def _param_text(plan) -> str:
    if not plan.params:
        return ""
    shown = (k if show_value(v) == k else f"{k}={show_value(v)}" for k, v in plan.params.items())  # free: its symbol
    return "(" + ", ".join(shown) + ")"

