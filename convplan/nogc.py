"""`paused`: the cyclic garbage collector held off while a plan is parsed or checked.

Both stages allocate tens of thousands of small objects that live until the check is done (syntax nodes,
spans, graph nodes, sympy expressions), and no cycle among them becomes garbage before then.  Each young
collection the allocations trigger walks them, and the older ones walk sympy's and convplan's own ~60,000
objects too: ~10 % of checking a 500-layer plan (benchmarks/README.md).  With named unknowns the dims
are sums that grow with the plan, every node keeps its own, and the full collections alone grew with the
square of the plan (0.4 s of 1.8 s at 1000 lines).  The collector runs again after, as it would have.
"""

from __future__ import annotations

import contextlib
import functools
import gc


def paused(fn):
    """`fn` with the collector off while it runs (left as it was found: a nested call does not turn it on)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return run


@contextlib.contextmanager
def held(aged: bool = False, was_on: bool | None = None):
    """The collector off inside the `with` (left as it was found), as `paused` holds it for a function.

    `aged`: on leaving, every object moves to the oldest generation uncollected (gc.freeze, then
    gc.unfreeze: both only splice lists; a caller's young objects too, aged as collections would have aged
    them).  For the package's import, whose ~60,000 objects (sympy's) live as
    long as the process: left young, the first collection after would walk them all (~20 ms), and the
    next ones again as they age; old, only a full collection walks them (rare: Python runs one when the
    objects that aged since the last one reach a quarter of the old ones).

    `was_on`: the collector's state before the caller turned it off itself (the package, before importing
    this module); None: its state now."""
    if not (gc.isenabled() if was_on is None else was_on):
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if aged:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
