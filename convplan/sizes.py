"""Sizes given to convplan from outside a plan (`--set`, `parse(text, L=20)`, `plan.bind(H=224)`):
one validation, the same for the command line and the API."""

from __future__ import annotations

import keyword

MAX_SIZE = 10**12  # no tensor dim is larger; bigger numbers only make formulas and torch fail late


def check_sizes(sizes: dict) -> dict[str, int]:
    """`sizes` as names -> ints; TypeError for a value that is not an int (bool, float, str, None),
    ValueError for a name no plan can have or a value beyond +-MAX_SIZE.  Whether a size may be 0 or
    negative is the plan's to say (a parameter may, an input dim may not)."""
    for name, value in sizes.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{name!r} cannot name a size or parameter (it is not a plain identifier)")
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"size {name} must be an int, got {type(value).__name__} {value!r:.40}")
        if abs(value) > MAX_SIZE:
            digits = int(abs(value).bit_length() * 0.30103) + 1  # str() refuses 4,300+ digits
            raise ValueError(f"size {name} must be at most {MAX_SIZE:,}, got a number of about {digits} digits")
    return dict(sizes)
