"""Reading plan files: the one place a path becomes text (or a located PlanError)."""

from __future__ import annotations

import stat
from pathlib import Path

from .errors import WHOLE_FILE, Span, fail


def read_source(path: Path) -> str:
    """The text of a plan file; PlanError for files that are missing, unreadable, not regular files (a FIFO
    would block forever) or not UTF-8."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "is not a regular file (a FIFO, device or socket)")
        data = path.read_bytes()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on some Pythons
        raise fail("E011", _reason(exc), WHOLE_FILE, str(path), "") from None
    return decode(data, str(path))


def decode(data: bytes, name: str) -> str:
    """Plan text from bytes (a file's, standard input's); E012 for what is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail("E012", f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                   Span(line, 1, line, 2), name, "") from None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or "cannot be read"
    return text if text.startswith("is ") else text[0].lower() + text[1:]
