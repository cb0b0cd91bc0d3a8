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
        text, start = exc.object, exc.start  # after a BOM, which utf-8-sig took off first
        line = text[:start].count(b"\n") + 1
        col = len(text[text.rfind(b"\n", 0, start) + 1: start].decode("utf-8")) + 1  # as an editor counts
        offset = start + len(data) - len(text)
        raise fail("E012", f"the file is not UTF-8 text (byte 0x{text[start]:02x} at offset {offset})",
                   Span(line, col, line, col + 1), name, "") from None


def replace_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8, newlines as given) over the file at `path`, through symlinks (the link stays a link), so
    that a failed write leaves the old text whole (OSError) and the file stays the same file to everyone else.

    The new text first goes, complete and flushed to disk, into a file beside it.  That file is renamed over the
    old one where it can be the old one in all but its text: one name (no other hard link), the same owner, group
    and mode, no extended attributes (ACLs, security labels).  Otherwise it is written through into the file
    itself, which keeps all of that, as black and gofmt write; a failed write-through puts the old text back, and
    were even that to fail, CutShort says where the whole new text is."""
    target = path.resolve()
    info = target.stat()
    data = text.encode("utf-8")
    temp, beside = _safe_copy(target, data)
    try:
        if beside and _can_stand_in(temp, target, info):
            os.replace(temp, target)
            _sync_dir(target.parent)
            return
        _write_through(target, data, temp)
    except CutShort:
        raise  # its copy is the one whole new text: kept
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.unlink(temp)


class CutShort(OSError):
    """Writing through failed midway, and so did putting the old text back: the file may be cut short, and the
    whole new text is in `kept`."""

    def __init__(self, exc: OSError, kept: str):
        super().__init__(exc.errno, exc.strerror)
        self.kept = kept


def _safe_copy(target: Path, data: bytes) -> tuple[str, bool]:
    """A new file holding `data`, flushed to disk: beside `target` (True), or, in a directory this process may not
    write, in the temporary directory (False: it cannot be renamed over the file, only guard the write-through)."""
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        beside = True
    except PermissionError:
        fd, temp = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".tmp")
        beside = False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return temp, beside


def _can_stand_in(temp: str, target: Path, info: os.stat_result) -> bool:
    """Whether the new file can replace `target` unnoticed: made the same in owner, group and mode, where this
    process may (another user's file stays theirs: it is written through instead)."""
    if info.st_nlink != 1 or _has_xattrs(target):
        return False
    own = os.stat(temp)
    if (own.st_uid, own.st_gid) != (info.st_uid, info.st_gid):
        try:
            os.chown(temp, info.st_uid, info.st_gid)
        except PermissionError:
            return False
    os.chmod(temp, stat.S_IMODE(info.st_mode))  # after chown, which clears the set-id bits
    return True


def _has_xattrs(target: Path) -> bool:
    try:
        return bool(os.listxattr(target))
    except (AttributeError, OSError):  # no such call here, or a file system without them
        return False


def _write_through(target: Path, data: bytes, temp: str) -> None:
    """`data` over the file's own bytes (its inode: every hard link, owner, mode and attribute kept); on a failure
    the old bytes back."""
    fd = os.open(target, os.O_RDWR)
    try:
        old = target.read_bytes()
        try:
            _put(fd, data)
        except OSError as exc:
            try:
                _put(fd, old)
            except OSError:
                raise CutShort(exc, temp) from None
            raise
    finally:
        os.close(fd)


def _put(fd: int, data: bytes) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], done)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _sync_dir(folder: Path) -> None:
    """The rename made durable (a crash after it keeps the new name's new text)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def reason(exc: Exception) -> str:
    """An OSError as the end of a message: "no space left on device", "is a directory"."""
    text = getattr(exc, "strerror", None) or "cannot be read"
    return text if text.startswith("is ") else text[0].lower() + text[1:]
