"""Symbolic tensor dimensions: every dim a sympy expression of integer symbols, kept in a canonical form.

- `canonical`: the symbols (`dim`, `unknown`) and the floor-division form a conv/pool chain stays in;
- `sums`: `e + c`, and the long sums of named unknowns grown term by term without copying them;
- `printing`: expressions printed as the Python a user would write;
- `conditions`: `>=`, divisibility and equality, decided where they can be;
- `periodic`: congruences from remainder conditions, and evaluation at concrete sizes.
"""

from .canonical import (  # noqa: F401
    FloorDiv,
    IntMod,
    ceildiv,
    dim,
    floordiv,
    is_int_const,
    mod,
    stand_in,
    to_expr,
    unknown,
)
from .conditions import (  # noqa: F401
    at_least,
    divides,
    equal,
    evaluate,
    even,
    greater,
    ops,
)
from .periodic import (  # noqa: F401
    combine_residues,
    decide_at_least,
    equal_condition,
    holds,
    pinned,
    residues,
    value_at,
)
from .printing import (  # noqa: F401
    pyrepr,
)
from .sums import (  # noqa: F401
    LONG_SUM,
    numbers_below,
    offset,
    total,
)
