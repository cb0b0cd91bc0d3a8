"""The command line: `convplan check|verify FILE [--set NAME=INT ...] [--json]`, `convplan codegen FILE [-o OUT.py]`.

Exit codes: 0 ok, 1 the plan was refused (or verification found a mismatch), 2 usage error.
`check` must stay fast: it never imports torch.
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
from pathlib import Path

from . import __version__, load
from .cost import CONVENTIONS
from .errors import PlanError, did_you_mean
from .graph import show_call
from .shapes import pyrepr, to_expr
from .show import json_value, show_shape
from .sizes import MAX_SIZE

MAX_SET = MAX_SIZE


class UsageError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C: one line, the exit status shells expect
        print("convplan: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return 0 if exc.code == 0 else 2
    try:
        sizes = _sizes(args.set or [])
        return args.func(args, sizes)
    except UsageError as exc:
        if getattr(args, "json", False):  # a tool reading stdout gets JSON whatever went wrong
            print(json.dumps({"ok": False, "usage_error": str(exc)}, indent=2))
        print(f"convplan: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        command = args.func.__name__.removeprefix("cmd_")
        print(f"convplan: error: `convplan {command}` runs the plan with torch, which is not installed: "
              "pip install 'convplan[torch]'", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `convplan check ... | head`
        sys.stderr.close()
        return 0
    except PlanError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "diagnostics": [d.to_dict() for d in exc.diagnostics]}, indent=2))
        print(exc.render(), file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convplan", description="Plan neural networks with every shape known.")
    parser.add_argument("--version", action="version", version=f"convplan {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _command(sub, "check", cmd_check, "print every layer's shape, the requirements and unknowns")
    p = _command(sub, "verify", cmd_verify, "build the module with torch and compare every shape")
    p.add_argument("--memory-budget", metavar="BYTES", type=_bytes, default=None,
                   help="runs estimated above this (weights and live values; e.g. 4GB, 500MB) check shapes on "
                   "torch's meta device instead of allocating (default 1GB)")
    p = _command(sub, "cost", cmd_cost, "the forward pass's cost per layer, as formulas (or numbers with --set)")
    p.add_argument("--convention", choices=sorted(CONVENTIONS), default="macs",
                   help="what to count: macs (multiply-accumulates with the weights, the default), flopcounter "
                   "(what torch's FlopCounterMode reports), fvcore (what fvcore's FlopCountAnalysis reports) or "
                   "ptflops (what ptflops' get_model_complexity_info reports)")
    p.add_argument("--compare", action="store_true", help="every convention side by side, by layer kind")
    p = _command(sub, "explain", cmd_explain,
                 "each layer's output sizes worked out step by step: torch's rule, the arguments, the numbers",
                 json=False)
    p.add_argument("--layer", metavar="NAME", help="explain this node only (a name from `convplan check`)")
    text = "write the plan as a standalone PyTorch module (needs only torch)"
    p = sub.add_parser("codegen", help=text, description=text)
    p.add_argument("file", type=Path, help="a .plan file")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.py", help="write the module here instead of stdout")
    p.add_argument("--set", action="append", metavar="NAME=INT", help="a size's default in the class (repeatable)")
    p.set_defaults(func=cmd_codegen)
    return parser


def _command(sub, name: str, func, text: str, json: bool = True) -> argparse.ArgumentParser:
    """A subcommand over one plan file, with --set (and --json)."""
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument("file", type=Path, help="a .plan file")
    p.add_argument("--set", action="append", metavar="NAME=INT", help="fix a size or parameter (repeatable)")
    if json:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=func)
    return p


def _sizes(pairs: list[str]) -> dict[str, int]:
    sizes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"--set expects NAME=INT, got {pair!r}")
        if keyword.iskeyword(name):
            raise UsageError(f"--set {name}: a Python keyword names no size or parameter of a plan")
        if value.lstrip("+-").isdigit() and len(value) > 15:  # before int(): it refuses 4,300+ digits
            raise UsageError(f"--set {name}: sizes must be between 1 and {MAX_SET}, got a {len(value)}-digit number")
        try:
            number = int(value, 10)
        except ValueError:
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise UsageError(f"--set {name}: {shown!r} is not an integer") from None
        if not 1 <= number <= MAX_SET:
            raise UsageError(f"--set {name}: sizes must be between 1 and {MAX_SET}, got {number}")
        if name in sizes and sizes[name] != number:
            raise UsageError(f"--set {name} is given twice ({sizes[name]} and {number})")
        sizes[name] = number
    return sizes


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
          "GIB": 2**30, "TIB": 2**40}


def _bytes(text: str) -> int:
    """`4GB`, `500MB`, `2GiB`, `1000000`: a number of bytes (argparse reports a ValueError as a usage error)."""
    digits = text.strip().rstrip("BbIiKkMmGgTt ")
    unit = text.strip()[len(digits):].strip().upper()
    if not digits.isdigit() or unit not in _UNITS or len(digits) > 15:
        raise argparse.ArgumentTypeError(f"expected a number of bytes such as 4GB or 500MB, got {text!r}")
    return int(digits) * _UNITS[unit]


def _load(path, sizes: dict[str, int]):
    """The plan, checked with its sizes free if it can be (so --set values are checked against the
    requirements, E401), else with them fixed: an `if H > 7:` needs H to decide the structure."""
    try:
        return load(path)
    except PlanError:
        if not sizes:
            raise
    return load(path, **sizes)


def cmd_check(args, sizes) -> int:
    plan = _load(args.file, sizes)
    if sizes:
        plan = plan.bind(**sizes)
    if args.json:
        print(json.dumps({"ok": True, **plan.to_dict()}, indent=2))
    else:
        print(render_table(plan))
    for w in plan.warnings:
        print(PlanError([w], plan.source).render(), file=sys.stderr)
    return 0


def cmd_verify(args, sizes) -> int:
    plan = _load(args.file, sizes)
    report = plan.verify(memory_budget=args.memory_budget, **sizes)
    if args.json:
        print(json.dumps({"ok": report.ok, "plan": plan.name, "runs": [r.__dict__ for r in report.runs]}, indent=2))
    else:
        print(f"{plan.name}: {'verified' if report.ok else 'MISMATCH: this is a bug in convplan'}")
        print(report)
    return 0 if report.ok else 1


def cmd_codegen(args, sizes) -> int:
    plan = _load(args.file, sizes)
    if args.output is not None:
        _refuse_overwriting_a_plan(args.output, plan)
    source = plan.to_source(**sizes)
    if args.output is None:
        print(source, end="")
        return 0
    try:
        args.output.write_text(source, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {(exc.strerror or 'error').lower()}") from None
    return 0


def _refuse_overwriting_a_plan(output: Path, plan) -> None:
    """The generated module never replaces what the user wrote: the plan, a file it imports, any .plan."""
    try:
        target = output.resolve()  # through symlinks
    except (OSError, RuntimeError):  # a symlink loop: writing there fails anyway, with its own message
        return
    imported = {src.path for src in plan._checked.library.values() if src.path}
    if target == Path(plan.filename).resolve():
        what = "the plan itself"
    elif target in imported:
        what = "a file the plan imports"
    elif target.suffix.lower() == ".plan":
        what = "a .plan file"
    else:
        return
    suggestion = Path(plan.filename).with_suffix(".py").name
    raise UsageError(f"refusing to write generated Python to {output}: it is {what}"
                     + (f" (write it to {suggestion}, for example)" if Path(suggestion).resolve() != target else ""))


def cmd_explain(args, sizes) -> int:
    from .explain import explain

    plan = _load(args.file, sizes)
    try:
        print(explain(plan, sizes, args.layer))
    except KeyError:
        names = [node.name for node in plan.graph.nodes]
        hint = did_you_mean(args.layer, names) or f"the names are those of `convplan check`: {', '.join(names[:8])}"
        raise UsageError(f"--layer {args.layer}: plan {plan.name} has no node of that name; {hint}") from None
    return 0


def cmd_cost(args, sizes) -> int:
    plan = _load(args.file, sizes)
    if sizes:
        plan = plan.bind(**sizes)
    if args.compare:
        found = _compare(plan)
        if args.json:
            print(json.dumps({"ok": True, "plan": plan.name, **found}, indent=2))
        else:
            print(_compare_table(plan, found))
        return 0
    cost = plan.cost(args.convention)
    if args.json:
        print(json.dumps({"ok": True, "plan": plan.name, "convention": cost.convention, "total": _number(cost.total),
                          "by_layer": {k: _number(v) for k, v in cost.by_layer.items()},
                          "uncounted": list(cost.uncounted), "skipped": cost.skipped}, indent=2))
        return 0
    nodes = {node.name: node for node in plan.graph.nodes}
    rows = [("line", "name", "layer", cost.convention)]
    rows += [(str(nodes[name].line), name, nodes[name].kind, _shown(value)) for name, value in cost.by_layer.items()]
    lines = [f"plan {plan.name}  ({plan.filename}): {cost.convention}, {CONVENTIONS[cost.convention].counts}",
             *_columns(rows), f"total: {_shown(cost.total)}"]
    if cost.uncounted:
        lines.append(f"not counted: {', '.join(cost.uncounted)}")
    if cost.skipped:
        lines.append("skipped with a warning by the tool: "
                     + ", ".join(f"{kind} ({', '.join(ops)})" for kind, ops in cost.skipped.items()))
    print("\n".join(lines))
    return 0


BASE = "macs"  # --compare attributes each other convention's difference from this one to layer kinds


def _compare(plan) -> dict:
    """Per layer kind, what each convention counts (None: not counted), the totals, and each convention's
    difference from "macs" by kind: those differences add up to the totals' difference, with nothing left over."""
    comparison = plan.compare_costs()
    names = sorted(comparison.costs)
    rows = [{"kind": kind, **{name: None if row[name] is None else _number(row[name]) for name in names}}
            for kind, row in comparison.by_kind.items()]
    differences = {f"{name} - {BASE}": {kind: _number(d) for kind, d in comparison.difference(name, BASE).items()}
                   for name in names if name != BASE}
    return {"by_kind": rows, "totals": {name: _number(t) for name, t in comparison.totals.items()},
            "differences": differences}


def _compare_table(plan, found: dict) -> str:
    names = sorted(CONVENTIONS)
    table = [("kind", *names)] + [(r["kind"], *("not counted" if r[c] is None else _shown(r[c]) for c in names))
                                  for r in found["by_kind"]]
    table.append(("total", *(_shown(found["totals"][c]) for c in names)))
    lines = [f"plan {plan.name}  ({plan.filename}): cost by layer kind", *_columns(table, numbered=False)]
    for pair, by_kind in found["differences"].items():
        parts = ", ".join(f"{kind} {_signed(d)}" for kind, d in by_kind.items()) or "none"
        lines.append(f"{pair}: {parts}")
    return "\n".join(lines)


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
    shown = (k if pyrepr(v) == k else f"{k}={pyrepr(v)}" for k, v in plan.params.items())  # a free one is its symbol
    return "(" + ", ".join(shown) + ")"


if __name__ == "__main__":
    sys.exit(main())
