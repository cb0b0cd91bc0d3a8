"""`paused`: the cyclic garbage collector held off while a plan is parsed or checked, and what it made aged.

Both stages allocate tens of thousands of small objects that live until the check is done (syntax nodes,
spans, graph nodes, sympy expressions), and no cycle among them becomes garbage before then.  Each young
collection the allocations trigger walks them, and the older ones walk sympy's and convplan's own ~60,000
objects too: ~10 % of checking a 500-layer plan (benchmarks/README.md).  With named unknowns the dims
are sums that grow with the plan, every node keeps its own, and the full collections alone grew with the
square of the plan (0.4 s of 1.8 s at 1000 lines).

When a stage ends, what it made moves to the oldest generation uncollected (gc.freeze, then gc.unfreeze: both
only splice lists), instead of being walked by the young collection the next allocation would trigger: that
walk was ~1.1 M of SqueezeNet1_1's 18.8 M instructions of a first plan (18.83 -> 17.77 M; ResNet50 27.29 ->
25.77, MobileNetV2 35.38 -> 33.58, DenseNet121 61.24 -> 57.34, Conv500 98.71 -> 91.71), and in a loop of checks
every one of them (60 checks of shufflenet_v2: 135 young collections on 6437ca7, none now).  It is sound
because a check leaves no cyclic garbage of its own (tests/test_cyclic_garbage.py): what it made is freed by
reference counting when its plan is dropped, young or old.  Aged garbage would wait for a full collection,
which Python runs only when the objects that aged through its collections reach a quarter of the old ones
(and objects aged here are not counted): session 15 measured loops 20-60 % slower while checks still left
cycles.  Some of sympy's functions leave a few cycles of their own (closures that call themselves: Basic.replace,
solve, Max's argument collapse, the printer's term order; 20 to 70 objects a check, for plans that reach them),
so the objects aged here are counted, and past AGED_LIMIT a full collection runs where a stage ends: Python's
rule for objects that survived its collections (a quarter of the old ones, ~15,000 objects) would run one every
few checks, though a check's objects mostly die with their plan; this one every ~100 checks of shufflenet_v2
(~2,500 objects aged a check, ~20 ms a full collection).  Measured in loops against 6437ca7, CPU seconds
(median of 5, alternating): 60 checks of shufflenet_v2 0.766 against 0.820, 100 of resnet18 0.318 against
0.344, 200 of a small plan 0.267 against 0.293, 300 of shufflenet_v2 (three full collections) 3.81-3.96
against 3.95-4.04.  The cost: sympy's garbage is held until then, at most ~110,000 objects for the worst
example (same_length.plan, whose `?` sympy.solve solves: ~36 objects of garbage and ~105 aged a check).
"""

from __future__ import annotations

import contextlib
import functools
import gc

AGED_LIMIT = 250_000  # objects aged by `paused` between two full collections (see the module's docstring)
_aged = 0  # since the last one


def paused(fn):
    """`fn` with the collector off while it runs (left as it was found: a nested call does not turn it on),
    and what it made aged when it ends."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            _age()
            gc.enable()

    return run


def _age() -> None:
    """The young objects moved to the oldest generation; a full collection instead once AGED_LIMIT have been."""
    global _aged
    _aged += gc.get_count()[0]  # the young objects: made since the last collection, less those freed
    if _aged > AGED_LIMIT:
        _aged = 0
        gc.collect()
    else:
        gc.freeze()
        gc.unfreeze()


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
