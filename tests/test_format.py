"""`convplan fmt` and the language server's formatting: the canonical layout never changes what a plan
says (the same syntax tree, every comment kept), is idempotent, and undoes any re-spacing of a plan."""

from __future__ import annotations

import io
import os
import re
import stat
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convplan import cli
from convplan.errors import PlanError
from convplan.formatter import FormatError, comments, format_text, tree
from convplan.parser import parse_module

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted((ROOT / "examples").rglob("*.plan")) + sorted((ROOT / "tests").rglob("*.plan"))


def _parses(path: Path) -> bool:
    try:
        parse_module(path.read_text(encoding="utf-8"), str(path))
    except PlanError:
        return False
    return True


PARSED = [p for p in PLANS if _parses(p)]
EXAMPLES = [p for p in PARSED if "examples" in p.parts]


def test_there_are_plans_to_format():
    assert len(PARSED) >= 60 and len(EXAMPLES) >= 12


@pytest.mark.parametrize("path", PARSED, ids=lambda p: str(p.relative_to(ROOT)))
def test_formatting_keeps_the_tree_and_the_comments_and_is_idempotent(path):
    text = path.read_text(encoding="utf-8")
    formatted = format_text(text, str(path))
    assert tree(parse_module(formatted, str(path))) == tree(parse_module(text, str(path)))
    assert comments(formatted) == comments(text) and len(comments(text)) == text.count("#") - _hashes_in_strings(text)
    assert format_text(formatted, str(path)) == formatted


def _hashes_in_strings(text: str) -> int:
    return sum(s.count("#") for s in re.findall(r"'[^'\n]*'|\"[^\"\n]*\"", text))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_are_in_the_canonical_layout(path):
    text = path.read_text(encoding="utf-8")
    assert format_text(text, str(path)) == text


def test_the_layout():
    messy = ("\n\n# top\nplan  P(classes = 10,width=64):\n  input [N ,3,H,W]   # the input\n"
             "  x=Conv2d(width,kernel_size = 3 , padding=1)->[N,width,H,W]\n\n\n\n  # merge\n  y = add:\n"
             "      branch a:\n          ReLU()\n        # odd\n      branch b:\n          Conv2d(width, 1,\n"
             "                 bias = False)\n  Flatten()\t\n  Linear(classes)  \n\n\n")
    assert format_text(messy) == (
        "# top\nplan  P(classes=10, width=64):\n    input [N, 3, H, W]   # the input\n"
        "    x = Conv2d(width, kernel_size=3, padding=1) -> [N, width, H, W]\n\n    # merge\n    y = add:\n"
        "        branch a:\n            ReLU()\n        # odd\n        branch b:\n            Conv2d(width, 1,\n"
        "                   bias=False)\n    Flatten()\n    Linear(classes)\n")


def test_a_tuple_a_string_and_line_endings_are_kept():
    text = "plan P:\r\n  input [N, 3, L]\r\n  Conv1d(4, (3,), padding_mode='zeros' ,bias=True)  # a, b = c\r\n"
    assert format_text(text) == ("plan P:\r\n    input [N, 3, L]\r\n"
                                 "    Conv1d(4, (3,), padding_mode='zeros', bias=True)  # a, b = c\r\n")


def test_text_that_does_not_parse_is_refused():
    with pytest.raises(FormatError) as info:
        format_text("plan P:\n    input [N, 3 L]\n")
    assert info.value.diagnostics[0].code == "E001"


# -- any re-spacing of an example formats back to it ------------------------------------------------

PROTECTED = re.compile(r"""('[^'\n]*'|"[^"\n]*"|#.*$)""")


def respace(text: str, data) -> str:
    """`text` (canonical) with its spacing changed where the layout decides it: the indentation unit, the
    spaces around commas, keyword `=`, `->`, trailing spaces, blank lines doubled."""
    unit = data.draw(st.sampled_from([" ", "  ", "   ", "        ", "\t"]), label="indent unit")
    pad = st.sampled_from(["", " ", "  "])
    out, depth, shift = [], 0, 0
    for line in text.split("\n"):
        body = line.lstrip(" ")
        lead = len(line) - len(body)
        if depth > 0:  # a continued line keeps its place relative to its statement
            new_lead = " " * max(0, lead + shift)
        else:
            new_lead = unit * (lead // 4)
            shift = len(new_lead.expandtabs(8)) - lead  # a tab is 8 columns to the parser
        pieces = PROTECTED.split(body)
        for i in range(0, len(pieces), 2):  # the code between strings and comments
            code = pieces[i]
            code = re.sub(r" ?, ?", lambda m: data.draw(pad) + "," + data.draw(pad), code)
            code = re.sub(r" ?(?<![=!<>])=(?!=) ?", lambda m: data.draw(pad) + "=" + data.draw(pad), code)
            code = re.sub(r" ?-> ?", lambda m: data.draw(pad) + "->" + data.draw(pad), code)
            depth += code.count("(") + code.count("[") - code.count(")") - code.count("]")
            pieces[i] = code
        new = (new_lead + "".join(pieces)).rstrip(" ") + data.draw(pad) if body else data.draw(pad)
        out.append(new)
        if not body and data.draw(st.booleans()):
            out.append(data.draw(pad))
    return "\n".join(out)


@settings(max_examples=60, deadline=None)
@given(path=st.sampled_from(EXAMPLES), data=st.data())
def test_any_respacing_formats_back_to_the_canonical_text(path, data):
    text = path.read_text(encoding="utf-8")
    messy = respace(text, data)
    assert tree(parse_module(messy, str(path))) == tree(parse_module(text, str(path)))  # the same plan
    assert format_text(messy, str(path)) == text


# -- the command -------------------------------------------------------------------------------------


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["fmt", *argv])
    return code, out.getvalue(), err.getvalue()


def test_fmt_rewrites_in_place_and_check_and_diff_write_nothing(tmp_path):
    messy = tmp_path / "messy.plan"
    messy.write_bytes(b"\xef\xbb\xbfplan P:\n  input [N,3, L]\n  Conv1d(8,kernel_size = 3)  # keep me\n")
    clean = tmp_path / "clean.plan"
    clean.write_text("plan Q:\n    input [N, 3, L]\n", encoding="utf-8")
    before = messy.read_bytes()
    code, out, err = run("--check", str(messy), str(clean))
    assert code == 1 and f"would reformat {messy}" in err and messy.read_bytes() == before
    code, out, err = run("--diff", str(messy))
    assert code == 0 and "-  Conv1d(8,kernel_size = 3)  # keep me" in out
    assert "+    Conv1d(8, kernel_size=3)  # keep me" in out and messy.read_bytes() == before
    code, out, err = run(str(messy), str(clean))
    assert code == 0 and f"reformatted {messy}" in err and "1 file reformatted, 1 unchanged" in err
    assert messy.read_bytes() == (b"\xef\xbb\xbfplan P:\n    input [N, 3, L]\n"
                                  b"    Conv1d(8, kernel_size=3)  # keep me\n")  # the byte-order mark kept
    assert run("--check", str(messy), str(clean))[0] == 0


def test_fmt_leaves_a_file_that_does_not_parse_alone(tmp_path):
    bad = tmp_path / "bad.plan"
    bad.write_text("plan P:\n  input [N, 3 L]\n", encoding="utf-8")
    code, out, err = run(str(bad))
    assert code == 1 and "error[E001]" in err and "Traceback" not in err
    assert bad.read_text(encoding="utf-8") == "plan P:\n  input [N, 3 L]\n"


MESSY = "plan P:\n  input [N, 3, L]\n  Conv1d(8,kernel_size = 3)  # keep me\n"


def test_fmt_that_cannot_write_says_so_and_leaves_the_file_whole(tmp_path, monkeypatch):
    """A failed write (a full disk, a read-only file) left a PermissionError traceback, or half a file: fmt
    truncated the file, then wrote.  Now the text goes to a file beside it, renamed over it at the end."""
    import os

    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    code, out, err = run(str(messy))
    assert code == 1 and f"convplan fmt: cannot write {messy}: no space left on device" in err
    assert "Traceback" not in err and "0 files reformatted, 0 unchanged, 1 not formatted" in err
    assert messy.read_text(encoding="utf-8") == MESSY and os.listdir(tmp_path) == ["messy.plan"]


def test_fmt_of_an_immutable_file_is_a_message(tmp_path):
    """A real refusal of the operating system (root may write a read-only file, not an immutable one)."""
    import subprocess

    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")
    try:
        if subprocess.run(["chattr", "+i", str(messy)], capture_output=True).returncode:
            pytest.skip("chattr +i is not allowed here")
    except OSError:
        pytest.skip("no chattr")
    try:
        code, out, err = run(str(messy))
        assert code == 1 and f"convplan fmt: cannot write {messy}:" in err and "Traceback" not in err
        assert messy.read_text(encoding="utf-8") == MESSY
    finally:
        subprocess.run(["chattr", "-i", str(messy)])


def test_fmt_keeps_the_mode_and_writes_through_a_symlink(tmp_path):
    import os
    import stat

    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")
    messy.chmod(0o640)
    link = tmp_path / "link.plan"
    link.symlink_to(messy.name)
    code, out, err = run(str(link))
    assert code == 0 and link.is_symlink() and messy.read_text(encoding="utf-8").startswith("plan P:\n    input")
    assert stat.S_IMODE(messy.stat().st_mode) == 0o640 and sorted(os.listdir(tmp_path)) == ["link.plan", "messy.plan"]


FORMATTED = "plan P:\n    input [N, 3, L]\n    Conv1d(8, kernel_size=3)  # keep me\n"


def _linked(tmp_path):
    """messy.plan and a hard link to it, other.plan."""
    messy, other = tmp_path / "messy.plan", tmp_path / "other.plan"
    messy.write_text(MESSY, encoding="utf-8")
    os.link(messy, other)
    return messy, other


def test_fmt_writes_a_hard_linked_file_through_and_keeps_its_links(tmp_path):
    """A rename over a file with two names split them (the other name kept the old text): the text is written
    through into the one file instead, after it is whole beside it."""
    messy, other = _linked(tmp_path)
    inode = messy.stat().st_ino
    link = tmp_path / "link.plan"
    link.symlink_to(other.name)
    code, out, err = run(str(link))
    assert code == 0 and f"reformatted {link}" in err and link.is_symlink()
    assert messy.read_text(encoding="utf-8") == other.read_text(encoding="utf-8") == FORMATTED
    assert messy.stat().st_ino == other.stat().st_ino == inode and messy.stat().st_nlink == 2
    assert sorted(os.listdir(tmp_path)) == ["link.plan", "messy.plan", "other.plan"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_fmt_keeps_the_owner_the_group_and_the_set_id_bits(tmp_path):
    """The file that replaces the old one was the formatting user's: it is given the old one's owner and group
    (then its mode, since chown clears set-id bits)."""
    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")
    os.chown(messy, 1234, 5678)
    messy.chmod(0o6640)
    assert run(str(messy))[0] == 0 and messy.read_text(encoding="utf-8") == FORMATTED
    info = messy.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 5678, 0o6640)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_fmt_writes_through_a_file_it_may_not_give_its_owner(tmp_path, monkeypatch):
    """Another user's file in a directory this user may write: a new file could not be given to them, so the text
    is written through and the file stays theirs (chown refused here as it is to a user who is not root)."""
    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")
    os.chown(messy, 1234, 5678)
    inode = messy.stat().st_ino

    def refused(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refused)
    assert run(str(messy))[0] == 0 and messy.read_text(encoding="utf-8") == FORMATTED
    info = messy.stat()
    assert (info.st_ino, info.st_uid, info.st_gid) == (inode, 1234, 5678) and os.listdir(tmp_path) == ["messy.plan"]


def test_fmt_keeps_extended_attributes(tmp_path):
    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")
    try:
        os.setxattr(messy, "user.convplan", b"kept")
    except (AttributeError, OSError):
        pytest.skip("no user extended attributes here")
    assert run(str(messy))[0] == 0 and messy.read_text(encoding="utf-8") == FORMATTED
    assert os.getxattr(messy, "user.convplan") == b"kept"


def _failing_fsync(monkeypatch, after: int):
    """os.fsync that works `after` times (the new text's copy beside the file is the first), then runs out of space
    once, or for good (after < 0: from the second call on)."""
    real, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == after + 1 or after < 0 and len(calls) > 1:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_failed_write_through_puts_the_old_text_back(tmp_path, monkeypatch):
    messy, other = _linked(tmp_path)
    _failing_fsync(monkeypatch, 1)
    code, out, err = run(str(messy))
    assert code == 1 and f"cannot write {messy}: no space left on device; it is left as it was" in err
    assert other.read_text(encoding="utf-8") == MESSY and sorted(os.listdir(tmp_path)) == ["messy.plan", "other.plan"]


def test_a_write_through_that_cannot_put_the_old_text_back_says_where_the_new_one_is(tmp_path, monkeypatch):
    messy, other = _linked(tmp_path)
    _failing_fsync(monkeypatch, -1)
    code, out, err = run(str(messy))
    kept = [p for p in tmp_path.iterdir() if p.name not in ("messy.plan", "other.plan")]
    assert code == 1 and len(kept) == 1 and kept[0].read_text(encoding="utf-8") == FORMATTED
    assert f"cannot write {messy}: no space left on device; it may be cut short: its formatted text is in {kept[0]}" \
        in err and "Traceback" not in err


def test_fmt_in_a_directory_it_may_not_write_writes_the_file_through(tmp_path, monkeypatch):
    """A writable file in a directory this user may not write (no file can be made beside it): its new text is
    kept in the temporary directory while it is written through."""
    import tempfile

    messy = tmp_path / "messy.plan"
    messy.write_text(MESSY, encoding="utf-8")
    inode, real, made = messy.stat().st_ino, tempfile.mkstemp, []

    def mkstemp_pair(*args, dir=None, **kwargs):
        if dir is not None:
            raise PermissionError(13, "Permission denied")
        fd, name = real(*args, **kwargs)
        made.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_pair)
    assert run(str(messy))[0] == 0 and messy.read_text(encoding="utf-8") == FORMATTED
    assert messy.stat().st_ino == inode and len(made) == 1 and not os.path.exists(made[0])


def test_fmt_does_not_import_torch():
    from test_no_torch import assert_no_torch

    result = assert_no_torch("import convplan.cli\nrc = convplan.cli.main(['fmt', '--check', 'examples/cnn1d.plan'])\n"
                             "assert rc == 0, rc")
    assert "0 files would be reformatted, 1 unchanged" in result.stderr
