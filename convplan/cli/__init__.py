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
import gc
import sys

from .. import __version__
from ..errors import PlanError
from .commands import (
    cmd_check,
    cmd_codegen,
    cmd_cost,
    cmd_draw,
    cmd_explain,
    cmd_fmt,
    cmd_import,
    cmd_lsp,
    cmd_summary,
    cmd_verify,
)
from .inputs import UsageError, _bytes, _load, _output, _sizes, _sources
from .output import Output, use_color

# The choices of --convention and --dtype: cost.CONVENTIONS and memory.DTYPE_BYTES name them (a test checks these
# are theirs, sorted), written out so that a check does not import the cost and memory passes.
CONVENTIONS = ("flopcounter", "fvcore", "macs", "ptflops")
DTYPES = ("bfloat16", "float16", "float32", "float64", "float8")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C: one line, the exit status shells expect
        print("convplan: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:  # the process's own command line: the interpreter exits next
            _exiting()


def _exiting() -> None:
    """The interpreter's collections at exit walk every object the imports made (sympy's ~60,000, which
    live until then anyway): ~90 ms of a ~450 ms `convplan check` process (load 8).  Frozen, they are
    skipped; the memory goes back to the system with the process.  Only for the process's own run: a
    caller of main(argv) keeps its collector as it was."""
    gc.freeze()


def _main(argv: list[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(_negative_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse has printed its message
        return 0 if exc.code == 0 else 2
    if args.func in (cmd_lsp, cmd_import, cmd_fmt):  # a server, a model, texts: not commands over plans
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


# Options whose value may be written with a minus sign.  argparse takes `-1GB` for an option and says only
# "expected one argument"; given as `--memory-budget=-1GB` it reaches the option's own check, which says why.
_SIGNED_VALUES = ("--memory-budget",)


def _negative_values(argv: list[str]) -> list[str]:
    """`argv` with `--memory-budget -1GB` written `--memory-budget=-1GB` (see _SIGNED_VALUES)."""
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _SIGNED_VALUES and i + 1 < len(argv) and argv[i + 1][:1] == "-" and argv[i + 1][1:2].isdigit():
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        if arg == "--":  # what follows is positional, as argparse reads it
            out.extend(argv[i:])
            break
        out.append(arg)
        i += 1
    return out


def _warnings(plan, out: Output) -> None:
    for w in plan.warnings:
        out.diagnostics(PlanError([w], plan.source))


def _strict_failure(args, plan) -> str | None:
    if not args.strict or not plan.warnings:
        return None
    count = len(plan.warnings)
    return f"--strict: {count} warning{'s' * (count != 1)} in {plan.filename}"


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
    p.add_argument("--convention", choices=CONVENTIONS, default="macs",
                   help="what to count: macs (multiply-accumulates with the weights, the default), flopcounter "
                   "(what torch's FlopCounterMode reports), fvcore (what fvcore's FlopCountAnalysis reports) or "
                   "ptflops (what ptflops' get_model_complexity_info reports)")
    p.add_argument("--compare", action="store_true", help="every convention side by side, by layer kind")
    p = _command(sub, "summary", cmd_summary, "one table, nested as the built module: each layer's output, "
                 "params, cost, activation bytes and receptive field (numbers with --set)")
    p.add_argument("--convention", choices=CONVENTIONS, default="macs",
                   help="what the cost column counts (as `convplan cost --convention`; default macs)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="the activations' element type (default float32)")
    p = _command(sub, "draw", cmd_draw, "draw the plan's graph: blocks as clusters, every edge labelled with its "
                 "shape (numbers with --set)", json=False, several=False)
    p.add_argument("-o", "--output", type=_output, metavar="OUT.svg|png|dot",
                   help="write the picture here, its format from the suffix (default, or `-`: DOT text on stdout); "
                        "over an existing file only a drawing convplan made")
    p = _command(sub, "explain", cmd_explain,
                 "each layer's output sizes worked out step by step: torch's rule, the arguments, the numbers",
                 json=False)
    p.add_argument("--layer", metavar="NAME", action="append",
                   help="explain this node only (a name from `convplan check`); again for more, in that order")
    p = _command(sub, "codegen", cmd_codegen, "write the plan as a standalone PyTorch module (needs only torch)",
                 json=False, several=False)
    p.add_argument("-o", "--output", type=_output, metavar="OUT.py",
                   help="write the module here instead of stdout (`-`: stdout); over an existing file only one "
                        "convplan generated")
    text = ("lay .plan files out canonically, in place (4-space indents, one space after commas, keyword `=` "
            "without spaces, ` -> `, blank lines collapsed; comments kept)")
    p = sub.add_parser("fmt", help=text, description=text)
    p.add_argument("files", nargs="+", metavar="FILE", help=".plan files, quoted globs, or - (standard input to "
                   "standard output)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    p.add_argument("--diff", action="store_true", help="write nothing; print the changes as a unified diff")
    p.set_defaults(func=cmd_fmt)
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
                   else "fix a size or parameter to a whole number (repeatable); with several files, each "
                   "--set applies to every file, and a file without that name fails (E400)" if several
                   else "fix a size or parameter to a whole number (repeatable)")
    if json:
        p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too, for CI")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the diagnostics: on a terminal unless NO_COLOR is set (auto, the default)")
    p.set_defaults(func=func)
    return p


cmd_codegen.writes = True  # --strict refuses before anything is written


cmd_draw.binds = True  # the numbers on the edges are at --set's sizes


cmd_draw.writes = True  # --strict refuses before anything is written


cmd_check.binds = cmd_cost.binds = cmd_summary.binds = True  # they show the plan bound to --set's sizes


if __name__ == "__main__":
    sys.exit(main())

