"""One function per subcommand (`cmd_<name>`): each takes the parsed arguments (and, for the per-file
commands, the sizes, the plan and the output) and returns the exit status."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import PlanError, paint
from .inputs import (
    STDIN,
    UsageError,
    _read,
    _refuse_overwriting_a_picture,
    _refuse_overwriting_a_plan,
    _refuse_overwriting_code,
    _sources,
)
from .output import Output, _columns, _number, _shown, _signed, render_table, use_color


def cmd_check(args, sizes, plan, out: Output) -> int:
    if args.json:
        out.add({"ok": True, **plan.to_dict()})
    else:
        out.text(render_table(plan))
    return 0


def cmd_verify(args, sizes, plan, out: Output) -> int:
    report = plan.verify(args.memory_budget, sizes=sizes)  # a size may be called memory_budget
    if args.json:
        out.add({"ok": report.ok, "plan": plan.name, "file": plan.filename, "runs": [r.__dict__ for r in report.runs]})
    else:
        out.text(f"{plan.name}: {'verified' if report.ok else 'MISMATCH: this is a bug in convplan'}\n{report}")
    return 0 if report.ok else 1


def cmd_codegen(args, sizes, plan, out: Output) -> int:
    if args.output is not None:
        _refuse_overwriting_a_plan(args.output, plan)
        _refuse_overwriting_code(args.output)
    source = plan.to_source(**sizes)
    if args.output is None:
        print(source, end="")
        return 0
    try:
        args.output.write_text(source, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {(exc.strerror or 'error').lower()}") from None
    return 0


def cmd_lsp(args) -> int:
    from ..serve import main as serve

    return serve()


def cmd_fmt(args) -> int:
    """Each file laid out canonically: rewritten in place (as black and ruff format do), or with --check
    and --diff only reported.  Status 1 if a file does not parse (its errors shown, the file untouched), or
    with --check if one would change."""
    import difflib

    from ..files import CutShort, reason, replace_text
    from ..formatter import FormatError, format_text

    try:
        sources = _sources(args.files)
    except UsageError as exc:
        print(f"convplan fmt: {exc}", file=sys.stderr)
        return 2
    status, changed, refused = 0, 0, 0
    for source in sources:
        try:
            text, name = _read(source)
            new = format_text(text, name)
        except PlanError as exc:
            print(exc.render(), file=sys.stderr)
            status, refused = 1, refused + 1
            continue
        except FormatError as exc:
            print(PlanError(exc.diagnostics, text).render() if exc.diagnostics else f"{name}: {exc}", file=sys.stderr)
            status, refused = 1, refused + 1
            continue
        if source == STDIN and not (args.check or args.diff):
            sys.stdout.write(new)
            changed += new != text
        elif new != text:
            changed += 1
            if args.diff:
                sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True), name, name))
            if args.check:
                print(f"would reformat {name}", file=sys.stderr)
                status = max(status, 1)
            elif not args.diff:
                try:
                    bom = "\ufeff" if Path(name).read_bytes().startswith(b"\xef\xbb\xbf") else ""
                    replace_text(Path(name), bom + new)
                except OSError as exc:
                    kept = f"; it may be cut short: its formatted text is in {exc.kept}" if isinstance(exc, CutShort) \
                        else "; it is left as it was"
                    print(f"convplan fmt: cannot write {name}: {reason(exc)}{kept}", file=sys.stderr)
                    status, changed, refused = 1, changed - 1, refused + 1
                    continue
                print(f"reformatted {name}", file=sys.stderr)
    what = "would be reformatted" if args.check or args.diff else "reformatted"
    print(f"{changed} file{'s' * (changed != 1)} {what}, {len(sources) - changed - refused} unchanged"
          + (f", {refused} not formatted (errors above)" if refused else ""), file=sys.stderr)
    return status


def cmd_import(args) -> int:
    """Not over plan files: the model is the input.  Errors are one message each, exit 1 (the model) or 2."""
    color = use_color(args.color, sys.stderr)
    try:
        from ..importer.command import CommandError, run
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        print(f"{paint('convplan: error:', 'error', color)} `convplan import` traces the model with torch, which "
              "is not installed: pip install 'convplan[torch]'", file=sys.stderr)
        return 2
    try:
        text = run(args.target, args.input, args.arg, args.output, args.force, args.name)
    except CommandError as exc:
        print(f"{paint('convplan: error:', 'error', color)} {exc.message}", file=sys.stderr)
        return exc.code
    except ValueError as exc:  # a --name that is no identifier
        print(f"{paint('convplan: error:', 'error', color)} {exc}", file=sys.stderr)
        return 2
    if args.output in (None, "-"):
        print(text, end="")
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_explain(args, sizes, plan, out: Output) -> int:
    from ..explain import NoSuchNode, explain
    from ..plan import node_hint

    layers = tuple(args.layer or ())  # each --layer given, in order (the whole plan without one)
    try:
        out.text(explain(plan, sizes, layers))
    except NoSuchNode as exc:  # only the name's lookup: any other KeyError is a bug, not the user's --layer
        layer = exc.args[0]
        raise UsageError(f"--layer {layer}: plan {plan.name} has no node of that name; {node_hint(plan, layer)}") \
            from None
    return 0


def cmd_cost(args, sizes, plan, out: Output) -> int:
    if args.compare:
        found = _compare(plan)
        if args.json:
            out.add({"ok": True, "plan": plan.name, "file": plan.filename, **found})
        else:
            out.text(_compare_table(plan, found))
        return 0
    cost = plan.cost(args.convention)
    if args.json:
        out.add({"ok": True, "plan": plan.name, "file": plan.filename, "convention": cost.convention,
                 "total": _number(cost.total), "by_layer": {k: _number(v) for k, v in cost.by_layer.items()},
                 "uncounted": list(cost.uncounted), "reasons": cost.reasons, "skipped": cost.skipped})
        return 0
    nodes = {node.name: node for node in plan.graph.nodes}
    rows = [("line", "name", "layer", cost.convention)]
    rows += [(str(nodes[name].line), name, nodes[name].kind, _shown(value)) for name, value in cost.by_layer.items()]
    from ..cost import CONVENTIONS  # here: a check does not import the cost pass

    lines = [f"plan {plan.name}  ({plan.filename}): {cost.convention}, {CONVENTIONS[cost.convention].counts}",
             *_columns(rows), f"total: {_shown(cost.total)}"]
    if cost.uncounted:
        lines.append(f"not counted: {', '.join(cost.uncounted)}")
        lines += [f"  {kind}: {reason}" for kind, reason in cost.reasons.items()]
    if cost.skipped:
        lines.append("skipped with a warning by the tool: "
                     + ", ".join(f"{kind} ({', '.join(ops)})" for kind, ops in cost.skipped.items()))
    out.text("\n".join(lines))
    return 0


def cmd_summary(args, sizes, plan, out: Output) -> int:
    table = plan.summary(args.convention, args.dtype)  # positional: a size may be called dtype
    if args.json:
        out.add({"ok": True, **table.to_dict()})
    else:
        out.text(str(table))
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
    from ..cost import CONVENTIONS

    names = sorted(CONVENTIONS)
    table = [("kind", *names)] + [(r["kind"], *("not counted" if r[c] is None else _shown(r[c]) for c in names))
                                  for r in found["by_kind"]]
    table.append(("total", *(_shown(found["totals"][c]) for c in names)))
    lines = [f"plan {plan.name}  ({plan.filename}): cost by layer kind", *_columns(table, numbered=False)]
    for pair, by_kind in found["differences"].items():
        parts = ", ".join(f"{kind} {_signed(d)}" for kind, d in by_kind.items()) or "none"
        lines.append(f"{pair}: {parts}")
    return "\n".join(lines)


def cmd_draw(args, sizes, plan, out: Output) -> int:
    return _draw(plan, args.output)


def _draw(plan, output: Path | None) -> int:
    """The picture to `output` (its format from the suffix), or the DOT text to stdout."""
    from ..draw import DrawError, format_of, render

    try:
        if output is None:
            sys.stdout.write(render(plan, "dot").decode("utf-8"))
            return 0
        _refuse_overwriting_a_plan(output, plan, "a drawing", "svg")
        _refuse_overwriting_a_picture(output)
        picture = render(plan, format_of(output))
    except DrawError as exc:
        raise UsageError(f"-o {output}: {exc}" if output is not None else str(exc)) from None
    try:
        output.write_bytes(picture)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {(exc.strerror or 'error').lower()}") from None
    return 0

