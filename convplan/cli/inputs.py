"""What a command reads and writes: the files and globs named, `--set` sizes, byte sizes, and the
outputs it must never write over (a plan, an input)."""

from __future__ import annotations

import argparse
import glob
import keyword
import os
import sys
from pathlib import Path

from .. import _parse
from ..errors import WHOLE_FILE, Diagnostic, PlanError
from ..sizes import MAX_SIZE

MAX_SET = MAX_SIZE


STDIN = "<stdin>"  # the name `-` is shown by


class UsageError(Exception):
    """A command line that cannot run (exit status 2), or a run refused for a reason of its own (`code`)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.message, self.code = message, code


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
        if not value.isascii():  # int() reads any script's digits: '٣' is 3
            raise UsageError(f"--set {name}: {value[:40]!r} is not an integer (digits 0-9)")
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
    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"a memory budget is a number of bytes, not below zero: got {text!r}")
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
    from ..files import decode, read_bounded, read_source

    if isinstance(source, _NoMatch):
        raise PlanError([Diagnostic("E011", "no file matches this pattern", WHOLE_FILE, source)], "")
    if source == STDIN:
        return decode(read_bounded(sys.stdin.buffer, STDIN), STDIN), STDIN
    return read_source(source), str(source)


def _refuse_overwriting_a_plan(output: Path, plan, what_is_written: str = "generated Python",
                               suffix: str = "py") -> None:
    """What convplan writes never replaces what the user wrote: the plan, a file it imports, any .plan."""
    try:
        target = output.resolve()  # through symlinks
    except (OSError, RuntimeError):  # a symlink loop: writing there fails anyway, with its own message
        return
    imported = {src.path for src in plan._checked.library.values() if src.path}
    if plan.filename != STDIN and _same_file(target, Path(plan.filename)):
        what = "the plan itself"
    elif any(_same_file(target, path) for path in imported):
        what = "a file the plan imports"
    elif target.suffix.lower() == ".plan":
        what = "a .plan file"
    else:
        return
    suggestion = ("model" if plan.filename == STDIN else Path(plan.filename).stem) + "." + suffix
    raise UsageError(f"refusing to write {what_is_written} to {output}: it is {what}"
                     + (f" (write it to {suggestion}, for example)" if Path(suggestion).resolve() != target else ""))


GENERATED = b'"""Generated by convplan'  # how codegen's module starts (codegen.py's docstring)


def _refuse_overwriting_code(output: Path) -> None:
    """`codegen -o` replaces an existing file only where convplan wrote it (or it is empty): `-o train.py` over the
    user's own script replaced it without a word."""
    _refuse_overwriting_theirs(output, lambda head: head.startswith(GENERATED),
                               "refusing to write generated Python over {}: it exists and convplan did not write it")


def _refuse_overwriting_a_picture(output: Path) -> None:
    """`draw -o` replaces an existing file only where convplan drew it (draw.MARK) or it is empty: `-o diagram.png`
    over the user's own picture replaced it without a word."""
    from ..draw import ours

    _refuse_overwriting_theirs(output, ours, "refusing to draw over {}: it exists and convplan did not draw it, or "
                               "drew it before drawings were marked")


def _refuse_overwriting_theirs(output: Path, ours, refusal: str) -> None:
    """UsageError where `output` is a non-empty file whose first 4 KB `ours` does not recognise as convplan's."""
    try:
        if not output.is_file():  # nothing there, or /dev/null
            return
        with output.open("rb") as file:
            head = file.read(4096)
    except OSError:  # unreadable: writing there fails with its own message
        return
    if head.strip() and not ours(head):
        raise UsageError(refusal.format(output) + " (remove it first, or write to another file)")


def _same_file(target: Path, path: Path) -> bool:
    """Whether `target` (resolved) is the file at `path`: by name through symlinks, or a hard link to it."""
    try:
        return target == path.resolve() or target.exists() and os.path.samefile(target, path)
    except (OSError, RuntimeError):
        return False


def _output(name: str) -> Path | None:
    """-o's path; `-` is standard output, as `-` is standard input for the files (None: print)."""
    if not name:  # Path("") is ".", the current directory
        raise argparse.ArgumentTypeError("an empty file name")
    return None if name == "-" else Path(name)

