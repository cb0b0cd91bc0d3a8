"""A plan's `repeat` as a loop in generated code: the constructor calls of its iterations, folded into
one call that a `for` in `__init__` makes `count` times, where the iterations are alike (each argument
the same in every iteration, or one value in the first and another in the rest: `stride=2 if i == 0
else 1`).  The container keeps build()'s numbering, so the state_dict keys do not change.
"""

from __future__ import annotations

from .pysource import Brackets, Pre, Writer, flat


def fold_iterations(docs: list, count: int, var: str | None):
    """The docs one iteration makes, with `var` the loop's index, or None where the iterations differ
    otherwise (or there is only one); `var` None: only where every iteration makes the same."""
    if count < 2 or not docs or len(docs) % count:
        return None
    period = len(docs) // count
    rows = [docs[k * period:(k + 1) * period] for k in range(count)]
    out = []
    for column in zip(*rows, strict=True):
        doc = _fold(list(column), var)
        if doc is None:
            return None
        out.append(doc)
    return out


def _fold(docs: list, var: str | None):
    first = docs[0]
    if all(flat(d) == flat(first) for d in docs):
        return first
    if isinstance(first, Brackets):
        if not all(isinstance(d, Brackets) and d.head == first.head and len(d.items) == len(first.items)
                   and (d.open, d.close, d.bare) == (first.open, first.close, first.bare) for d in docs):
            return None
        items = []
        for column in zip(*(d.items for d in docs), strict=True):
            item = _fold(list(column), var)
            if item is None:
                return None
            items.append(item)
        return Brackets(first.head, tuple(items), first.open, first.close, first.bare)
    if isinstance(first, Pre):
        if not all(isinstance(d, Pre) and d.text == first.text for d in docs):
            return None
        value = _fold([d.value for d in docs], var)
        return None if value is None else Pre(first.text, value)
    texts = [flat(d) for d in docs]
    if var is None or any(t != texts[1] for t in texts[2:]) or any(t.startswith("*") for t in texts):
        return None
    return f"{_guard(texts[0])} if {var} == 0 else {_guard(texts[1])}"


def _guard(text: str) -> str:
    """A conditional expression's operand: wrapped where it is a conditional or a lambda itself."""
    return f"({text})" if " if " in text or text.startswith("lambda") else text


def list_name(path: tuple) -> str:
    """The list a loop fills, named after its container: `layer2`, or where that is numbered (the second
    of `features`), the nearest named one with the numbers after it, `features_1` (not `_1`)."""
    named = max((k for k, p in enumerate(path) if not p.isdigit()), default=None)
    if named == len(path) - 1:
        return path[-1]
    if named is None:
        return "_".join(("stage", *path))
    return "_".join(path[named:])


def write_loop(w: Writer, name: str, var: str, count: str, docs: list) -> None:
    """`name = []`, then `for var in range(count): name.append(doc)` for each doc of one iteration."""
    w.line(f"{name} = []")
    w.line(f"for {var} in range({count}):")
    w.depth += 1
    for doc in docs:
        w.code("", Brackets(f"{name}.append", (doc,)))
    w.depth -= 1


def loop_items(name: str, var: str, count: str, docs: list) -> list:
    """The same as __init__ items of a block's class (codeclasses.render_init)."""
    return [("code", f"{name} = ", "[]"),
            ("for", var, count, [("code", "", Brackets(f"{name}.append", (doc,))) for doc in docs])]


def drop_defaults(doc, defaults: dict, default_text):
    """`doc` without the keyword arguments of a block's class that equal the class's defaults (`defaults`:
    class name -> {argument: default}); `default_text` writes a default as the docs write values."""
    if isinstance(doc, Brackets):
        keep = defaults.get(doc.head.lstrip("*"), {})
        items = tuple(drop_defaults(i, defaults, default_text) for i in doc.items
                      if not (isinstance(i, Pre) and i.text[:-1] in keep
                              and flat(i.value) == default_text(keep[i.text[:-1]])))
        return Brackets(doc.head, items, doc.open, doc.close, doc.bare)
    if isinstance(doc, Pre):
        return Pre(doc.text, drop_defaults(doc.value, defaults, default_text))
    return doc
