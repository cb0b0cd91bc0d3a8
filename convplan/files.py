"""Reading plan files: the one place a path becomes text (or a located PlanError)."""

from __future__ import annotations

from pathlib import Path

from .errors import Span, fail


def read_source(path: Path) -> str:
    """The text of a plan file; PlanError for files that are missing, unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = "is a directory" if path.is_dir() else (exc.strerror or "cannot be read").lower()
        raise fail("E011", f"{path} {reason}", Span(1, 1, 1, 1), str(path), "") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail("E012", f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                   Span(line, 1, line, 2), str(path), "") from None
