"""Hints as edits: the text changes that carry out a hint, made from the syntax tree's spans where the
hint is made.  `Diagnostic.fixes` holds them; an editor offers each as a quick fix, the CLI prints only
the hint.  Every edit is in the file of the diagnostic it belongs to.
"""

from __future__ import annotations

from . import nodes as n
from .errors import Edit, Fix, Span, source_lines


def replace(hint: str, span: Span, text: str) -> Fix:
    """The hint "did you mean Conv2d?" as the edit writing `text` over `span`."""
    return Fix(hint, (Edit(span, text),))


def name_span(arg: n.Arg) -> Span:
    """Where the name of a keyword argument is written (`kernal_size` in `kernal_size=3`)."""
    s = arg.span
    return Span(s.line, s.col, s.line, s.col + len(arg.name or ""))


def insert_line(span: Span, source: str, text: str) -> Edit:
    """A new line `text` above the statement at `span`, indented as its line is."""
    lines = source_lines(source)
    line = lines[span.line - 1] if 1 <= span.line <= len(lines) else ""
    indent = line[: len(line) - len(line.lstrip(" "))]
    return Edit(Span(span.line, 1, span.line, 1), f"{indent}{text}\n")


def remove_arg(call: n.Call, arg: n.Arg) -> Edit:
    """`arg` deleted with the comma that separates it from its neighbour."""
    i = next(k for k, a in enumerate(call.args) if a is arg)
    if i + 1 < len(call.args):  # up to the next argument
        after = call.args[i + 1].span
        return Edit(Span(arg.span.line, arg.span.col, after.line, after.col), "")
    if i > 0:  # from the end of the previous one
        before = call.args[i - 1].span
        return Edit(Span(before.end_line, before.end_col, arg.span.end_line, arg.span.end_col), "")
    return Edit(arg.span, "")


def set_arg(call: n.Call, positional_names, name: str, text: str) -> Edit:
    """Argument `name` given the value `text`: its value rewritten where it is written (by keyword or by
    position; `positional_names` is the callee's order), else `, name=text` added at the end."""
    for a in call.args:
        if a.name == name:
            return Edit(a.value.span, text)
    positional = [a for a in call.args if a.name is None]
    names = list(positional_names)
    if name in names and names.index(name) < len(positional):
        return Edit(positional[names.index(name)].value.span, text)
    if call.args:
        end = call.args[-1].span
        return Edit(Span(end.end_line, end.end_col, end.end_line, end.end_col), f", {name}={text}")
    s = call.span  # `ReLU()`: before the closing parenthesis
    return Edit(Span(s.end_line, s.end_col - 1, s.end_line, s.end_col - 1), f"{name}={text}")


def rewrite_args(call: n.Call, texts: list[str]) -> Edit:
    """Every argument of `call` replaced by `texts` (torch's order rewritten as a plan's)."""
    first, last = call.args[0].span, call.args[-1].span
    return Edit(Span(first.line, first.col, last.end_line, last.end_col), ", ".join(texts))


NEUTRAL = {"kernel_size": 1, "stride": 1, "dilation": 1, "padding": 0, "output_padding": 0}  # a dim left as is


def change_rank(call: n.Call, arg_names, old_nd: int, new_nd: int) -> tuple[Edit, ...] | None:
    """The per-dim tuples of `call` (`kernel_size=(1, 2)`) rewritten for a kind of `new_nd` spatial dims
    instead of `old_nd`: an added leading dim gets the value that leaves it as it is (kernel 1, padding 0),
    so the written dims keep their meaning; a dropped leading dim must hold that value.  None when some
    tuple cannot be so rewritten (another argument, another length): then the kind alone is no fix."""
    positional = [a for a in call.args if a.name is None]
    edits = []
    for arg in call.args:
        if not isinstance(arg.value, n.Tuple):
            continue
        k = next((i for i, p in enumerate(positional) if p is arg), None)
        name = arg.name if arg.name is not None else arg_names[k] if k < len(arg_names) else None
        items = arg.value.items
        if name not in NEUTRAL or len(items) != old_nd:
            return None
        first = items[0].span
        if new_nd > old_nd:
            edits.append(Edit(Span(first.line, first.col, first.line, first.col), f"{NEUTRAL[name]}, " *
                              (new_nd - old_nd)))
            continue
        dropped, kept = items[: old_nd - new_nd], items[old_nd - new_nd:]
        if not all(isinstance(x, n.Num) and x.value == NEUTRAL[name] for x in dropped):
            return None
        whole, start, end = arg.value.span, kept[0].span, kept[-1].span
        if len(kept) == 1:  # `(1, 3)` -> `3`
            edits += [Edit(Span(whole.line, whole.col, start.line, start.col), ""),
                      Edit(Span(end.end_line, end.end_col, whole.end_line, whole.end_col), "")]
        else:
            edits.append(Edit(Span(first.line, first.col, start.line, start.col), ""))
    return tuple(edits)


def apply(text: str, edits) -> str:
    """`text` with `edits` made (spans as the parser counts them: 1-based lines and columns in characters);
    the edits must not overlap."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)

    def offset(line: int, col: int) -> int:
        return min(starts[line - 1] + col - 1, len(text)) if line <= len(starts) - 1 else len(text)

    for e in sorted(edits, key=lambda e: (e.span.line, e.span.col), reverse=True):
        text = text[: offset(e.span.line, e.span.col)] + e.text + text[offset(e.span.end_line, e.span.end_col):]
    return text
