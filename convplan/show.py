"""Printers for shapes and argument values as a plan writes them.  A leaf module (only
shapes/ below it), so the rules, the graph and the hints can all print the same way."""

from __future__ import annotations

import sympy

from .shapes import pyrepr


def show_shape(shape) -> str:
    """`[N, 32, L//2]`."""
    return "[" + ", ".join(pyrepr(d) for d in shape) + "]"


def show_value(v) -> str:
    """A resolved argument value as the user would write it."""
    if isinstance(v, tuple):
        inner = ", ".join(show_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, sympy.Basic):
        return pyrepr(v)
    return repr(v)


def json_value(v):
    """A value for JSON: numbers as numbers, booleans as booleans, None as null, tuples as lists and a
    formula as its text (`L//2`)."""
    if isinstance(v, tuple):
        return [json_value(x) for x in v]
    if isinstance(v, sympy.Basic):
        return int(v) if v.is_Integer else pyrepr(v)
    return v
