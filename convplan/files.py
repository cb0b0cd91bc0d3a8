"""Reading plan files: the one place a path becomes text (or a located PlanError)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from .errors import WHOLE_FILE, Span, fail
from .parser import MAX_SOURCE_CHARS

# The most bytes MAX_SOURCE_CHARS characters take in UTF-8 (with a BOM): a longer file is refused from its
# size, and standard input is read no further, so a huge file or an endless stream never fills the memory.
MAX_SOURCE_BYTES = 4 * MAX_SOURCE_CHARS + 3


def read_source(path: Path) -> str:
    """The text of a plan file; PlanError for files that are missing, unreadable, not regular files (a FIFO
    would block forever) or not UTF-8."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "is not a regular file (a FIFO, device or socket)")
        _bounded(info.st_size, str(path))
        with path.open("rb") as f:
            data = read_bounded(f, str(path))
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on some Pythons
        raise fail("E011", reason(exc), WHOLE_FILE, str(path), "") from None
    return decode(data, str(path))


def read_bounded(stream, name: str) -> bytes:
    """A binary stream's bytes (a file's, standard input's), read no further than the size limit (E002)."""
    data = stream.read(MAX_SOURCE_BYTES + 1)
    _bounded(len(data), name)
    return data


def _bounded(size: int, name: str) -> None:
    if size > MAX_SOURCE_BYTES:
        raise fail("E002", f"the file is too large ({size:,} bytes; the limit is {MAX_SOURCE_CHARS:,} characters)",
                   Span(1, 1, 1, 2), name, "")


def decode(data: bytes, name: str) -> str:
    """Plan text from bytes (a file's, standard input's); E012 for what is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail("E012", f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                   Span(line, 1, line, 2), name, "") from None


def replace_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8, newlines as given) over the file at `path`, through symlinks, all at once: into a new
    file beside it, renamed over it at the end, so that a failed write (a full disk, no permission) leaves the
    old text whole (OSError).  The file keeps its mode; a hard link to it keeps the old text."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def reason(exc: Exception) -> str:
    """An OSError as the end of a message: "no space left on device", "is a directory"."""
    text = getattr(exc, "strerror", None) or "cannot be read"
    return text if text.startswith("is ") else text[0].lower() + text[1:]
