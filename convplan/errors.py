"""Diagnostics as data: a location, a message, hints; rendered gcc/rustc style.

Every problem with a plan, from a stray character to an impossible shape, becomes a
`Diagnostic`.  `PlanError` carries one or more of them and is the only exception type a
user of convplan ever sees for bad plan text.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

MAX_REPORTED = 20  # beyond this, "... and N more"
MAX_COLLECTED = 100  # beyond this, checking stops: a file of 10,000 typos is refused fast


class TooManyErrors(Exception):
    """Raised by a Collector when MAX_COLLECTED errors are recorded; the checker then stops."""


@dataclass(frozen=True, slots=True)
class Span:
    """1-based line and column of the first character, and of the character after the last."""

    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def of(meta_or_token) -> Span:
        """The span of a Lark token or tree node (anything with line, column, end_line, end_column)."""
        m = meta_or_token
        return Span(m.line, m.column, m.end_line, m.end_column)

    def to(self, other: Span) -> Span:
        """From the start of this span to the end of `other`."""
        return Span(self.line, self.col, other.end_line, other.end_col)


WHOLE_FILE = Span(0, 0, 0, 0)  # a problem with the file itself (it cannot be read): no line to point at


@dataclass(frozen=True)
class Edit:
    """Replace the text `span` covers with `text`; a span that ends where it starts inserts."""

    span: Span
    text: str

    def to_dict(self) -> dict:
        s = self.span
        return {"line": s.line, "column": s.col, "end_line": s.end_line, "end_column": s.end_col, "text": self.text}


@dataclass(frozen=True)
class Fix:
    """A hint that is a concrete change to the text: its title (the hint, or what the edit does) and the
    edits that carry it out (in the diagnostic's file).  Editors offer it as a quick fix."""

    hint: str
    edits: tuple[Edit, ...]

    def to_dict(self) -> dict:
        return {"hint": self.hint, "edits": [e.to_dict() for e in self.edits]}


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a plan: a code (E... error, W... warning; docs/errors.md), a message, where
    (`file`, `span`), `hints` (fixes), `notes` (other places that matter)."""

    code: str
    message: str
    span: Span
    file: str = "<plan>"
    hints: tuple[str, ...] = ()
    severity: str = "error"  # or "warning"
    notes: tuple[tuple, ...] = ()  # secondary locations: (text, span) or (text, span, file, source)
    source: str | None = field(default=None, compare=False, repr=False)  # the text of `file`, if not the main one
    fixes: tuple[Fix, ...] = ()  # the hints that are concrete edits, as edits

    @property
    def line(self) -> int:
        """The 1-based line of the span's start (0 for a problem with the whole file)."""
        return self.span.line

    @property
    def column(self) -> int:
        """The 1-based column of the span's start."""
        return self.span.col

    def to_dict(self) -> dict:
        """As `--json` prints it."""
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.span.line,
            "column": self.span.col,
            "end_line": self.span.end_line,
            "end_column": self.span.end_col,
            "message": self.message,
            "hints": list(self.hints),
            "fixes": [f.to_dict() for f in self.fixes],
        }


@dataclass
class PlanError(Exception):
    """A plan was refused.  `diagnostics` holds every problem found, in source order."""

    diagnostics: list[Diagnostic]
    source: str = ""
    extra: int = field(default=0)  # problems found but not kept (beyond MAX_REPORTED)
    stopped: bool = field(default=False)  # checking stopped at MAX_COLLECTED errors: there may be more

    def __post_init__(self):
        super().__init__(self.render())

    def __str__(self) -> str:
        return self.render()

    def render(self, color: bool = False) -> str:
        """The diagnostics as text; `color` adds ANSI colours (for a terminal)."""
        text = render_all(self.diagnostics, self.source, self.extra, color)
        if self.stopped:
            text += f"\n(checking stopped after {MAX_COLLECTED} errors)"
        return text


# ANSI styles of the parts of a diagnostic, as gcc and rustc colour them
STYLES = {"error": "1;31", "warning": "1;33", "note": "1;36", "hint": "1;32", "where": "1"}


def paint(text: str, style: str, color: bool = True) -> str:
    """`text` in the ANSI style named `style` (a key of STYLES), or as it is when `color` is False."""
    return f"\x1b[{STYLES[style]}m{text}\x1b[0m" if color else text


def render(diag: Diagnostic, source: str, color: bool = False) -> str:
    """`file:line:col: error[E...]: message`, the source line, a caret under the span, hints; `color`
    paints the severity and the carets (red for errors, yellow for warnings), notes and hints."""
    where = f"{diag.file}:{diag.span.line}:{diag.span.col}" if diag.span != WHOLE_FILE else diag.file
    severity = diag.severity if diag.severity in STYLES else "error"
    head = f"{paint(where + ':', 'where', color)} {paint(f'{diag.severity}[{diag.code}]:', severity, color)} " \
           f"{diag.message}"
    main = source
    source = diag.source if diag.source is not None else source
    out = [head, *_excerpt(source, diag.span, severity if color else None)]
    for note, span, *where in diag.notes:  # a note in another file (a block's caller) says which
        file, text = where if where else (diag.file, source)
        out.append(f"{paint('note:', 'note', color)} {note} ({file}:{span.line}:{span.col})")
        out.extend(_excerpt(main if text is None else text, span, "note" if color else None))
    out.extend(f"{paint('hint:', 'hint', color)} {h}" for h in diag.hints)
    return "\n".join(out)


def render_all(diags: list[Diagnostic], source: str, extra: int = 0, color: bool = False) -> str:
    text = "\n".join(render(d, source, color) for d in diags)
    if extra:
        text += f"\n... and {extra} more"
    return text


def source_lines(text: str) -> list[str]:
    """The lines of a plan as the parser counts them: split at newlines only.  (str.splitlines also
    splits at form feeds, U+2028 and others, which would put a caret under the wrong line.)"""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _excerpt(source: str, span: Span, style: str | None = None) -> list[str]:
    lines = source_lines(source)
    if not 1 <= span.line <= len(lines):
        return []
    text = lines[span.line - 1].expandtabs(1)  # one column per character, as Lark counts
    if len(text) > 200:  # keep huge lines readable: show a window around the caret
        start = max(0, span.col - 80)
        text, shift = text[start : start + 160], start
    else:
        shift = 0
    width = span.end_col - span.col if span.end_line == span.line else len(text) - span.col + 1 + shift
    width = max(1, min(width, len(text) - (span.col - 1 - shift) if text else 1))
    gutter = f"{span.line:>4} | "
    pad = " " * (len(gutter) - 2) + "| "
    carets = "^" * width
    return [gutter + text, pad + " " * (span.col - 1 - shift) + (paint(carets, style) if style else carets)]


def suggest(word: str, choices, cutoff: float = 0.6) -> str | None:
    """The closest choice to `word` (case-insensitive first: Conv2D -> Conv2d), or None."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[close[0]] if close else None


def did_you_mean(word: str, choices) -> str | None:
    """The hint `did you mean Conv2d?` for a misspelt name, or None."""
    best = suggest(word, choices)
    return f"did you mean {best}?" if best and best != word else None


def rename_fix(word: str, choices, span: Span) -> Fix | None:
    """`did_you_mean` as an edit: the closest choice written over `span` (where `word` is)."""
    best = suggest(word, choices)
    return Fix(f"did you mean {best}?", (Edit(span, best),)) if best and best != word else None


class Collector:
    """Gathers diagnostics for one source; `as_error` turns them into one PlanError."""

    def __init__(self, source: str, file: str):
        self.source, self.file = source, file
        self.diags: list[Diagnostic] = _Diagnostics()

    def error(self, code: str, message: str, span: Span, hints=(), notes=(), fixes=()) -> Diagnostic:
        d = Diagnostic(code, message, span, self.file, tuple(h for h in hints if h), "error", tuple(notes),
                       fixes=tuple(f for f in fixes if f))
        self.diags.append(d)
        return d

    def warn(self, code: str, message: str, span: Span, hints=(), fixes=()) -> Diagnostic:
        d = Diagnostic(code, message, span, self.file, tuple(h for h in hints if h), "warning",
                       fixes=tuple(f for f in fixes if f))
        self.diags.append(d)
        return d

    def add_hint(self, hint: str | None, fix: Fix | None = None) -> None:
        """Append a hint (and the fix that carries it out) to the diagnostic recorded last (a caller that
        knows more than the reporter)."""
        if hint and self.diags:
            last = self.diags[-1]
            self.diags[-1] = replace(last, hints=(*last.hints, hint), fixes=(*last.fixes, *([fix] if fix else [])))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diags if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diags if d.severity == "warning"]

    def as_error(self) -> PlanError | None:
        """The errors as one PlanError, or None.  Made, not raised: raised here, its traceback would hold the
        frame of the caller that keeps it (check.Checked.error), a cycle left for the collector."""
        errs = sorted(self.errors, key=lambda d: (d.span.line, d.span.col))
        if not errs:
            return None
        return PlanError(errs[:MAX_REPORTED], self.source, max(0, len(errs) - MAX_REPORTED),
                         stopped=len(errs) >= MAX_COLLECTED)


class _Diagnostics(list):
    """The collected diagnostics; recording error number MAX_COLLECTED raises TooManyErrors."""

    def __init__(self):
        super().__init__()
        self.error_count = 0

    def append(self, d: Diagnostic) -> None:
        super().append(d)
        if d.severity == "error":
            self.error_count += 1
            if self.error_count >= MAX_COLLECTED:
                raise TooManyErrors


def fail(code: str, message: str, span: Span, file: str, source: str, hints=()) -> PlanError:
    """A PlanError holding one diagnostic (for problems that stop a stage at once)."""
    return PlanError([Diagnostic(code, message, span, file, tuple(h for h in hints if h))], source)
