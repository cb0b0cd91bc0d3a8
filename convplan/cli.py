"""The command line: `convplan check|verify|cost|summary|explain FILE... [--set NAME=INT ...] [--json] [--strict]`,
`convplan codegen FILE [-o OUT.py]`, `convplan import MODULE:FACTORY [-o OUT.plan]` (an nn.Module in, the one
command that runs user code), `convplan lsp` (the language server, convplan/serve/).

FILE may be several files, quoted globs (`'examples/*.plan'`) and `-` for standard input (shown as
`<stdin>`); each gets its own output, and the exit status is the worst: 0 ok, 1 a plan was refused (or
verification found a mismatch, or `--strict` found a warning), 2 usage error.  Diagnostics go to stderr,
coloured on a terminal (`--color`, `NO_COLOR`).  `check` must stay fast: it never imports torch.
"""

from __future__ import annotations

import argparse
import glob
import json
import keyword
import os
import sys
from pathlib import Path

from . import __version__, _parse
from .cost import CONVENTIONS
from .errors import WHOLE_FILE, Diagnostic, PlanError, did_you_mean, paint
from .graph import show_call
from .memory import DTYPE_BYTES
from .shapes import pyrepr, to_expr
from .show import json_value, show_shape, show_value
from .sizes import MAX_SIZE

MAX_SET = MAX_SIZE
STDIN = "<stdin>"  # the name `-` is shown by


class UsageError(Exception):
    """A command line that cannot run (exit status 2), or a run refused for a reason of its own (`code`)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.message, self.code = message, code


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
    if args.func in (cmd_lsp, cmd_import):  # a server, a model: not commands over plan files
        return args.func(args)
    out = Output(getattr(args, "json", False), use_color(args.color, sys.stderr))
    try:
        sizes = _sizes(args.set or [])
        sources = _sources(args.files)
    except UsageError as exc:
        out.usage_error(exc)
        out.finish()
        return 2
    try:
        worst = 0
        for source in sources:
            worst = max(worst, _run(args, sizes, source, out))
        out.finish()
    except BrokenPipeError:  # `convplan check ... | head`
        sys.stderr.close()
        return 0
    return worst


def _run(args, sizes: dict[str, int], source, out: Output) -> int:
    """One file: the command's exit status (its output and diagnostics written to `out`)."""
    try:
        plan = _load(source, sizes)
        if sizes and getattr(args.func, "binds", False):  # its output, and so its warnings, are at these sizes
            plan = plan.bind(**sizes)
        strict = _strict_failure(args, plan)
        if strict and getattr(args.func, "writes", False):  # codegen: nothing written for a plan that fails
            _warnings(plan, out)
            raise UsageError(strict, code=1)
        code = args.func(args, sizes, plan, out)
        _warnings(plan, out)
        if strict:
            out.fail(strict)
            return max(code, 1)
        return code
    except UsageError as exc:
        out.usage_error(exc, str(source))
        return exc.code
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        command = args.func.__name__.removeprefix("cmd_")
        out.usage_error(UsageError(f"`convplan {command}` runs the plan with torch, which is not installed: "
                                   "pip install 'convplan[torch]'"), str(source))
        return 2
    except PlanError as exc:
        out.add({"ok": False, "file": str(source), "diagnostics": [d.to_dict() for d in exc.diagnostics]})
        out.diagnostics(exc)
        return 1


def _warnings(plan, out: Output) -> None:
    for w in plan.warnings:
        out.diagnostics(PlanError([w], plan.source))


def _strict_failure(args, plan) -> str | None:
    if not args.strict or not plan.warnings:
        return None
    count = len(plan.warnings)
    return f"--strict: {count} warning{'s' * (count != 1)} in {plan.filename}"


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
    p = _command(sub, "summary", cmd_summary, "one table, nested as the built module: each layer's output, "
                 "params, cost, activation bytes and receptive field (numbers with --set)")
    p.add_argument("--convention", choices=sorted(CONVENTIONS), default="macs",
                   help="what the cost column counts (as `convplan cost --convention`; default macs)")
    p.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="float32",
                   help="the activations' element type (default float32)")
    p = _command(sub, "draw", cmd_draw, "draw the plan's graph: blocks as clusters, every edge labelled with its "
                 "shape (numbers with --set)", json=False, several=False)
    p.add_argument("-o", "--output", type=_output, metavar="OUT.svg|png|dot",
                   help="write the picture here, its format from the suffix (default, or `-`: DOT text on stdout)")
    p = _command(sub, "explain", cmd_explain,
                 "each layer's output sizes worked out step by step: torch's rule, the arguments, the numbers",
                 json=False)
    p.add_argument("--layer", metavar="NAME", help="explain this node only (a name from `convplan check`)")
    p = _command(sub, "codegen", cmd_codegen, "write the plan as a standalone PyTorch module (needs only torch)",
                 json=False, several=False)
    p.add_argument("-o", "--output", type=_output, metavar="OUT.py",
                   help="write the module here instead of stdout (`-`: stdout)")
    text = ("turn an existing torch.nn.Module into a plan (docs/import.md).  This is the one convplan command "
            "that runs your code: it imports the module, calls the factory and runs the model once on a random "
            "example input")
    p = sub.add_parser("import", help=text, description=text)
    p.add_argument("target", metavar="MODULE:FACTORY", help="module.path:factory_or_class, as in "
                   "torchvision.models:resnet18 (the current directory is searched first)")
    p.add_argument("--input", action="append", metavar="SIZES", default=[],
                   help="the example input's shape, as 1,3,224,224 (the default); once per input of the model. "
                   "It only checks: the plan's sizes are symbols")
    p.add_argument("--arg", action="append", metavar="NAME=VALUE", default=[],
                   help="a keyword argument of the factory (a Python literal, else text; repeatable)")
    p.add_argument("-o", "--output", metavar="OUT.plan", help="write the plan here (default, or `-`: stdout); "
                   "an existing file only with --force")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    p.add_argument("--name", help="the plan's name (default: the model's class)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour the errors")
    p.set_defaults(func=cmd_import)
    text = "run the language server for .plan files on stdin/stdout (for editors; needs pygls)"
    p = sub.add_parser("lsp", help=text, description=text)
    p.add_argument("--stdio", action="store_true", help="accepted for editors that pass it: stdio is the transport")
    p.set_defaults(func=cmd_lsp)
    return parser


def _command(sub, name: str, func, text: str, json: bool = True, several: bool = True) -> argparse.ArgumentParser:
    """A subcommand over plan files, with --set, --strict, --color (and --json)."""
    p = sub.add_parser(name, help=text, description=text)
    if several:
        p.add_argument("files", nargs="+", metavar="FILE",
                       help=".plan files, quoted globs ('examples/*.plan'), or - for standard input")
    else:
        p.add_argument("files", nargs=1, metavar="FILE", help="a .plan file, or - for standard input")
    p.add_argument("--set", action="append", metavar="NAME=INT",
                   help="a size's default in the class (repeatable)" if func is cmd_codegen
                   else "fix a size or parameter (repeatable)")
    if json:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too, for CI")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the diagnostics: on a terminal unless NO_COLOR is set (auto, the default)")
    p.set_defaults(func=func)
    return p


def _sources(names: list[str]) -> list:
    """The files to run on, in the order given: a name as it is if it exists (or has no glob characters,
    so that a missing file gets its E011), a glob's matches sorted, STDIN for `-`."""
    out: list = []
    for name in names:
        if name == "-":
            if STDIN in out:
                raise UsageError("- (standard input) is given twice")
            out.append(STDIN)
        elif glob.has_magic(name) and not os.path.lexists(name):
            matches = sorted(glob.glob(name, recursive=True))
            out.extend(Path(m) for m in matches) if matches else out.append(_NoMatch(name))
        elif not name:  # Path("") is ".", the current directory: say what was given
            raise UsageError("an empty file name")
        else:
            out.append(Path(name))
    return out


class _NoMatch(str):
    """A glob that matched no file: reported as that file's E011."""


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


def _load(source, sizes: dict[str, int]):
    """The plan, checked with its sizes free if it can be (so --set values are checked against the
    requirements, E401), else with them fixed: an `if H > 7:` needs H to decide the structure."""
    text, filename = _read(source)
    try:
        return _parse(text, filename, {})
    except PlanError:
        if not sizes:
            raise
    return _parse(text, filename, sizes)


def _read(source) -> tuple[str, str]:
    """(text, the name diagnostics show) of a file, of standard input, or E011 for a glob that matched nothing."""
    from .files import decode, read_source

    if isinstance(source, _NoMatch):
        raise PlanError([Diagnostic("E011", "no file matches this pattern", WHOLE_FILE, source)], "")
    if source == STDIN:
        return decode(sys.stdin.buffer.read(), STDIN), STDIN
    return read_source(source), str(source)


def cmd_check(args, sizes, plan, out: Output) -> int:
    if args.json:
        out.add({"ok": True, **plan.to_dict()})
    else:
        out.text(render_table(plan))
    return 0


def cmd_verify(args, sizes, plan, out: Output) -> int:
    report = plan.verify(memory_budget=args.memory_budget, **sizes)
    if args.json:
        out.add({"ok": report.ok, "plan": plan.name, "file": plan.filename, "runs": [r.__dict__ for r in report.runs]})
    else:
        out.text(f"{plan.name}: {'verified' if report.ok else 'MISMATCH: this is a bug in convplan'}\n{report}")
    return 0 if report.ok else 1


def cmd_codegen(args, sizes, plan, out: Output) -> int:
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


cmd_codegen.writes = True  # --strict refuses before anything is written


def _refuse_overwriting_a_plan(output: Path, plan, what_is_written: str = "generated Python",
                               suffix: str = "py") -> None:
    """What convplan writes never replaces what the user wrote: the plan, a file it imports, any .plan."""
    try:
        target = output.resolve()  # through symlinks
    except (OSError, RuntimeError):  # a symlink loop: writing there fails anyway, with its own message
        return
    imported = {src.path for src in plan._checked.library.values() if src.path}
    own = plan.filename != STDIN and target == Path(plan.filename).resolve()
    if own:
        what = "the plan itself"
    elif target in imported:
        what = "a file the plan imports"
    elif target.suffix.lower() == ".plan":
        what = "a .plan file"
    else:
        return
    suggestion = ("model" if plan.filename == STDIN else Path(plan.filename).stem) + "." + suffix
    raise UsageError(f"refusing to write {what_is_written} to {output}: it is {what}"
                     + (f" (write it to {suggestion}, for example)" if Path(suggestion).resolve() != target else ""))


def _output(name: str) -> Path | None:
    """-o's path; `-` is standard output, as `-` is standard input for the files (None: print)."""
    if not name:  # Path("") is ".", the current directory
        raise argparse.ArgumentTypeError("an empty file name")
    return None if name == "-" else Path(name)


def cmd_lsp(args) -> int:
    from .serve import main as serve

    return serve()


def cmd_import(args) -> int:
    """Not over plan files: the model is the input.  Errors are one message each, exit 1 (the model) or 2."""
    color = use_color(args.color, sys.stderr)
    try:
        from .importer.command import CommandError, run
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
    from .explain import explain

    try:
        out.text(explain(plan, sizes, args.layer))
    except KeyError:
        names = [node.name for node in plan.graph.nodes]
        hint = did_you_mean(args.layer, names) or f"the names are those of `convplan check`: {', '.join(names[:8])}"
        raise UsageError(f"--layer {args.layer}: plan {plan.name} has no node of that name; {hint}") from None
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
                 "uncounted": list(cost.uncounted), "skipped": cost.skipped})
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
    out.text("\n".join(lines))
    return 0


def cmd_summary(args, sizes, plan, out: Output) -> int:
    table = plan.summary(convention=args.convention, dtype=args.dtype)
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


def cmd_draw(args, sizes, plan, out: Output) -> int:
    return _draw(plan, args.output)


cmd_draw.binds = True  # the numbers on the edges are at --set's sizes
cmd_draw.writes = True  # --strict refuses before anything is written


def _draw(plan, output: Path | None) -> int:
    """The picture to `output` (its format from the suffix), or the DOT text to stdout."""
    from .draw import DrawError, format_of, render

    try:
        if output is None:
            sys.stdout.write(render(plan, "dot").decode("utf-8"))
            return 0
        _refuse_overwriting_a_plan(output, plan, "a drawing", "svg")
        picture = render(plan, format_of(output))
    except DrawError as exc:
        raise UsageError(f"-o {output}: {exc}" if output is not None else str(exc)) from None
    try:
        output.write_bytes(picture)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {(exc.strerror or 'error').lower()}") from None
    return 0


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


cmd_check.binds = cmd_cost.binds = cmd_summary.binds = True  # they show the plan bound to --set's sizes


if __name__ == "__main__":
    sys.exit(main())
