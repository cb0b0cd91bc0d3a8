"""pyrepr's fast term order for `x + c` is exactly sympy's (which sorts monomials, ~0.2 ms per Add)."""

from __future__ import annotations

import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from convplan.shapes import dim, floordiv, mod, pyrepr, unknown
from convplan.shapes.printing import _printer

L, H = dim("L"), dim("H")
ATOMS = [L, H, unknown("_p"), floordiv(L + 1, 2), floordiv(H, 3), mod(L, 4), floordiv(L - 1, 2), floordiv(L, 7) + 0]
NUMBERS = st.one_of(st.integers(-10**30, 10**30).map(sympy.Integer),
                    st.fractions(max_denominator=9).map(lambda f: sympy.Rational(f.numerator, f.denominator)))


@settings(max_examples=400, deadline=None)
@given(atom=st.sampled_from(ATOMS), coeff=NUMBERS, const=NUMBERS, extra=st.sampled_from([None, *ATOMS]))
def test_fast_order_is_sympys(atom, coeff, const, extra):
    e = coeff * atom + const + (0 if extra is None else extra)
    if not e.is_Add:
        return
    assert _printer._ordered_terms(e, None) == list(e.as_ordered_terms())


def test_the_cases_people_read():
    assert pyrepr(1 - L) == "1 - L"
    assert pyrepr(L - 1) == "L - 1"
    assert pyrepr(2 - 3 * L) == "2 - 3*L"
    assert pyrepr(floordiv(L + 1, 2) + 1) == "(L + 1)//2 + 1"
    assert pyrepr(-floordiv(L, 2) - 1) == "-(L//2) - 1"
    assert pyrepr(1 - floordiv(L, 2)) == "1 - L//2"
    assert pyrepr(32 * floordiv(L, 2) + 2) == "32*(L//2) + 2"
