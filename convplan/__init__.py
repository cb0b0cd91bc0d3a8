"""convplan: plan neural networks as text, with every tensor shape known before anything runs.

    >>> import convplan
    >>> plan = convplan.load("examples/cnn1d.plan")
    >>> plan.output_shape
    (N, 2)
"""

from __future__ import annotations

import gc as _gc

_collecting = _gc.isenabled()
_gc.disable()  # from the first import on: where no .pth imported them, nogc's contextlib and functools and
from . import nogc as _nogc  # noqa: E402  pathlib's urllib and ipaddress are the first objects a collection would walk

with _nogc.held(aged=True, was_on=_collecting):  # importing sympy makes ~60,000 objects the collector tracks,
    # kept for the process: collecting while they are made, or after while they are young, only walks them
    # again and again
    import os as _os
    from pathlib import Path as _Path

    from .errors import Diagnostic, PlanError, Span
    from .plan import Plan, Result

__all__ = ["Diagnostic", "Plan", "PlanError", "Result", "Span", "analyse", "analyse_file", "from_module", "load",
           "parse"]
__version__ = "0.1.0"


def __dir__() -> list[str]:
    """The public API only: not the modules and names the package imports for itself (Path, annotations)."""
    return sorted([*__all__, "__version__"])


def parse(text: str, /, filename: str = "<plan>", **sizes: int) -> Plan:
    """Parse and check plan text; PlanError (with located diagnostics) if it is refused."""
    return _parse(text, filename, sizes)


def analyse(text: str, /, filename: str = "<plan>", **sizes: int) -> Result:
    """Parse and check plan text without raising for what it says: `Result.plan` holds every shape that
    could be computed (None if the text does not parse), `Result.diagnostics` every error and warning."""
    return _analyse(text, filename, sizes)


def analyse_file(path: str | _os.PathLike, /, **sizes: int) -> Result:
    """`analyse` for a .plan file."""
    from .files import read_source

    path = _path(path)
    try:
        text = read_source(path)
    except PlanError as exc:
        return Result(None, tuple(exc.diagnostics))
    return _analyse(text, str(path), sizes)


def _analyse(text: str, filename: str, sizes: dict[str, int]) -> Result:
    from .check import analyse as analyse_definition

    _check_call(text, filename, sizes)
    try:
        definition, blocks = _front(text, filename)
    except PlanError as exc:
        return Result(None, tuple(exc.diagnostics))
    checked = analyse_definition(definition, text, filename, sizes, blocks)
    return Result(Plan(definition, checked, text, filename, sizes), checked.diagnostics)


def _parse(text: str, filename: str, sizes: dict[str, int]) -> Plan:
    from .check import check

    _check_call(text, filename, sizes)
    definition, blocks = _front(text, filename)
    return Plan(definition, check(definition, text, filename, sizes, blocks), text, filename, sizes)


def _check_call(text, filename, sizes) -> None:
    """TypeError/ValueError for arguments no plan text could explain (an API misuse, not a plan error)."""
    from .sizes import check_sizes

    if not isinstance(text, str):
        raise TypeError(f"plan text must be a str, got {type(text).__name__}")
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a str, got {type(filename).__name__}")
    check_sizes(sizes)


def _front(text: str, filename: str, module=None, read=None):
    """The plan's definition and the blocks it can call; PlanError for text that does not parse.  `module`:
    the text already parsed, `read`: the texts of imported files not read from disk (for the language
    server, which keeps the syntax tree and has the editor's unsaved buffers)."""
    from .errors import fail
    from .imports import library
    from .parser import parse_module

    module = parse_module(text, filename) if module is None else module
    if len(module.plans) != 1:
        where = module.plans[1].span if len(module.plans) > 1 else Span(1, 1, 1, 2)
        what = "more than one plan" if module.plans else "no plan"
        hint = ("a file of blocks only is for importing: `from \"this.plan\" import ...`" if module.blocks
                or module.functions
                else "start the file with `plan NAME:` and an indented body")
        raise fail("E010", f"a .plan file holds exactly one plan; this one has {what}", where, filename, text,
                   hints=[hint])
    blocks = library(module, filename, text, None if filename.startswith("<") else _Path(filename), read)
    return module.plans[0], blocks


def from_module(module, example_input, /, name: str | None = None) -> str:
    """An existing torch.nn.Module as plan text (docs/import.md): torch.fx traces it at `example_input` (a
    tensor, or a tuple of them), layers keep their torch names and non-default arguments, repeated classes
    become blocks with parameters, so the state_dict keys stay the model's.  `convplan.importer.ImportFailure`
    lists what cannot be planned, each with its place in the model.  Imports torch (on first use only)."""
    from .importer import from_module as run

    return run(module, example_input, name)


def load(path: str | _os.PathLike, /, **sizes: int) -> Plan:
    """Read and check a .plan file."""
    from .files import read_source

    path = _path(path)
    return _parse(read_source(path), str(path), sizes)  # not parse(): a size may be called `filename`


def _path(path) -> _Path:
    """A path argument as a Path; TypeError for what is none (`load(3)`), before pathlib says it obscurely."""
    if not isinstance(path, (str, _os.PathLike)):
        raise TypeError(f"a plan file's path must be a str or os.PathLike, got {type(path).__name__} {path!r:.40}")
    return _Path(path)
