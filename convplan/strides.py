"""Strides as formulas of a plan's symbols: the arithmetic torch's views and kernels do on them (torch 2.13, CPU).
A leaf (sympy only), so that the registries can declare their ops' strides with it (ops.py) and layouts.py can
follow them along a graph."""

from __future__ import annotations

import sympy


def contiguous(shape) -> tuple:
    strides, step = [], sympy.Integer(1)
    for d in reversed(tuple(shape)):
        strides.append(step)
        step = step * d
    return tuple(reversed(strides))


def permuted(before: tuple, dims) -> tuple:
    return tuple(before[int(d) % len(before)] for d in dims)


def transposed(before: tuple, dim0, dim1) -> tuple:
    d0, d1 = int(dim0) % len(before), int(dim1) % len(before)
    out = list(before)
    out[d0], out[d1] = out[d1], out[d0]
    return tuple(out)


def selected(before: tuple, dim) -> tuple:
    d = int(dim) % len(before)
    return before[:d] + before[d + 1:]


MAX_WAYS = 64  # ways through torch's code (computeStride, TensorIterator's order) strides are followed for;
# past it they are not (None)


def viewed(shape: tuple, before: tuple, out: tuple) -> tuple | None:
    """The strides `view` gives a tensor of `shape` and strides `before` viewed as `out`, at every size: torch's
    computeStride run on formulas.  A condition the formulas leave open (a size that may be 1, two products that
    may be equal) is followed both ways, and a stride that differs between the ways is a Piecewise of the
    conditions; a way in which the view would fail is dropped (the walker has checked that it is a view).

    computeStride reads the stride of a dim of size 1 only where it is the last dim (the innermost chunk's base):
    strides that differ only there (an elementwise output's, strides.iterated) are read as `generic` gives them,
    and a last one that is a Piecewise is followed piece by piece.  None (not followed) for other Piecewise strides
    (a view of a view: the ways multiply), or past MAX_WAYS ways."""
    if any(isinstance(s, sympy.Piecewise) for s in before[:-1]):
        before = (*generic(shape[:-1], before[:-1]), before[-1])
        if any(isinstance(s, sympy.Piecewise) for s in before[:-1]):
            return None
    if before and isinstance(before[-1], sympy.Piecewise):
        return _by_pieces(shape, before, out)
    # no way the view holds (None): not a view the walker let through, so not followed rather than guessed
    return _every_way(lambda way: _compute_stride(tuple(shape), tuple(before), tuple(out), way), len(out))


def _every_way(run, count: int) -> tuple | None:
    """The `count` strides `run(way)` gives, followed through every way of deciding what the formulas leave open
    (`_Way`), merged into one formula each (a Piecewise where the ways differ); None where no way gives strides,
    or past MAX_WAYS ways."""
    ways, todo, known = [], [()], {}
    while todo:
        if len(ways) + len(todo) > MAX_WAYS:
            return None
        taken = todo.pop()
        try:
            found = run(_Way(taken, known))
        except _Fork as fork:
            todo += [taken + ((fork.condition, False),), taken + ((fork.condition, True),)]
            continue
        fixed = _fixed(taken)
        if found is not None and fixed is not None:
            ways.append((fixed, taken, found))
    if not ways:
        return None
    return tuple(_merged([(fixed, taken, way[k]) for fixed, taken, way in ways]) for k in range(count))


def _by_pieces(shape: tuple, before: tuple, out: tuple) -> tuple | None:
    """`viewed` where the last stride is a Piecewise: the view of each of its values, under its condition."""
    pieces = [(p.expr, p.cond) for p in before[-1].args]
    views = [viewed(shape, (*before[:-1], value), out) for value, _ in pieces]
    if any(v is None for v in views):
        return None
    merged = []
    for k in range(len(out)):
        values = [v[k] for v in views]
        merged.append(values[0] if all(x == values[0] for x in values) else sympy.Piecewise(
            *((x, cond) for x, (_, cond) in zip(values, pieces, strict=True)), evaluate=False))
    if any(isinstance(s, sympy.Piecewise) for s in generic(out, merged)):
        return None  # strides that differ where a dim of another size is 1: what reads `generic` could not
    return tuple(merged)


class _Fork(Exception):
    def __init__(self, condition):
        self.condition = condition


class _Way:
    """The decisions of one way through computeStride: a condition the formulas decide is decided; an open one
    already taken is answered as it was; a new open one forks.  `known` (shared by the ways) keeps each
    comparison's answer: True, False or the open condition."""

    def __init__(self, taken: tuple, known: dict):
        self.taken, self.known = dict(taken), known

    def equal(self, a, b) -> bool:
        return self._answer(("=", a, b))

    def less(self, a, b) -> bool:
        return self._answer(("<", a, b))

    def _answer(self, key) -> bool:
        answer = self.known.get(key)
        if answer is None:
            answer = self.known[key] = _compare(*key)
        if answer is True or answer is False:
            return answer
        if isinstance(answer, _Ones):  # every factor of a product is 1: one fork per factor, none impossible
            return all(self._open(sympy.Eq(f, 1)) for f in answer.factors) is not answer.negated
        return self._open(answer)

    def _open(self, condition) -> bool:
        if condition in self.taken:
            return self.taken[condition]
        raise _Fork(condition)


class _Ones:
    """The open condition that each of `factors` (sizes, at least 1) is 1, or with `negated` that one is not."""

    def __init__(self, factors, negated: bool):
        self.factors, self.negated = sorted(factors, key=sympy.default_sort_key), negated


def _compare(op: str, a, b):
    """a = b or a < b for sizes and strides (products of sizes, each at least 1; 0 for an expanded dim): True or
    False where the ratio a/b decides it at every size, else the open condition.  A ratio whose factors' exponents
    all have one sign is on one side of its coefficient whatever the sizes (sympy's assumptions would say so, at
    ~100 times the cost); with a coefficient of 1 it is 1 where each factor is."""
    if a == b:
        return op == "="
    if a == 0 or b == 0:
        return op == "<" and a == 0
    ratio = a / b
    coefficient, rest = ratio.as_coeff_Mul()
    powers = rest.as_powers_dict() if rest != 1 else {}
    at_least = all(p > 0 for p in powers.values())  # the ratio is at least its coefficient
    at_most = all(p < 0 for p in powers.values())  # ... at most its coefficient
    if op == "=":
        if at_least and coefficient > 1 or at_most and coefficient < 1:
            return False
        if coefficient == 1 and (at_least or at_most):
            return _Ones(powers, negated=False)
        return sympy.Eq(*sorted(sympy.fraction(ratio), key=sympy.default_sort_key))  # one key for a = b and b = a
    if at_most and coefficient < 1:
        return True
    if at_least and coefficient >= 1:
        return False
    if coefficient == 1 and at_most:
        return _Ones(powers, negated=True)
    return sympy.Lt(*sympy.fraction(ratio))


def _compute_stride(shape: tuple, before: tuple, out: tuple, way: _Way):
    """aten's computeStride (TensorUtils.cpp), decided by `way`; None where the view would fail.  Chunks of
    dims that hold each other contiguously (dims of size 1 aside) are laid out again, innermost first."""
    if not out:
        return ()
    strides, view_d, base = [None] * len(out), len(out) - 1, before[-1] if before else sympy.Integer(1)
    tensor_numel = view_numel = sympy.Integer(1)
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel = tensor_numel * shape[tensor_d]
        if tensor_d == 0 or not way.equal(before[tensor_d - 1], tensor_numel * base) and not way.equal(
                shape[tensor_d - 1], 1):
            while view_d >= 0 and (way.less(view_numel, tensor_numel) or way.equal(out[view_d], 1)):
                strides[view_d] = view_numel * base
                view_numel = view_numel * out[view_d]
                view_d -= 1
            if not way.equal(view_numel, tensor_numel):
                return None
            if tensor_d > 0:
                base, tensor_numel, view_numel = before[tensor_d - 1], sympy.Integer(1), sympy.Integer(1)
    return None if view_d != -1 else tuple(strides)


def _fixed(taken: tuple):
    """The sizes a way's equalities fix (`N = 1`, `H = C`): each symbol to its class's one (1 or a number where
    the class holds one); None where the way is impossible (a class with two numbers, or split by a `!=`)."""
    parent: dict = {}

    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    pairs = [(c.lhs, c.rhs, yes) for c, yes in taken if isinstance(c, sympy.Eq)
             and all(side.is_Symbol or side.is_Integer for side in c.args)]
    for a, b, yes in pairs:
        if yes:
            ra, rb = sorted((find(a), find(b)), key=lambda x: (not x.is_Integer, sympy.default_sort_key(x)))
            if ra.is_Integer and rb.is_Integer and ra != rb:
                return None
            parent[rb] = ra
    if any(not yes and find(a) == find(b) for a, b, yes in pairs):
        return None
    return {x: find(x) for x in parent if x.is_Symbol}


def _merged(ways: list):
    """One stride from its value in each (fixed sizes, decisions, value) way: the last way's, where every other
    way's value equals it at the sizes the way fixes (`N*E` and `E` agree where N is 1); else a Piecewise of the
    ways (left unevaluated: sympy's collapse of the conditions costs seconds and changes nothing at a size)."""
    last, where = ways[-1][2], {}
    for fixed, taken, v in ways:
        if v != last and v.subs(fixed) != last.subs(fixed):
            where.setdefault(v, []).append(sympy.And(*(c if yes else sympy.Not(c) for c, yes in taken)))
    if not where:
        return last
    return sympy.Piecewise(*((v, _simplest(sympy.Or(*w))) for v, w in where.items()), (last, True), evaluate=False)


def _simplest(condition):
    """The condition in its shortest or-of-ands form where it is about a few sizes (the ways' conditions repeat
    one another: `(N = 1 and L = 1) or (N != 1 and L = 1)` is `L = 1`); sympy's search grows fast with more
    (5 sizes: ~2 s), so a longer one is left as it is."""
    if len(condition.atoms(sympy.Eq, sympy.Ne, sympy.Lt)) > 4:
        return condition
    return sympy.simplify_logic(condition, form="dnf", force=True)


def expanded(shape: tuple, before: tuple, out: tuple) -> tuple:
    """expand: new leading dims and stretched dims of size 1 get stride 0, the rest keep theirs."""
    lead = len(out) - len(shape)
    kept = tuple(sympy.Integer(0) if d != o else s for d, s, o in zip(shape, before, out[lead:], strict=True))
    return (sympy.Integer(0),) * lead + kept


def channels_last(shape: tuple) -> tuple:
    """A new 4-D channels-last tensor's strides (c10's get_channels_last_strides_2d): C inner, then W, H, N."""
    n, c, h, w = shape
    return c * w * h, sympy.Integer(1), c * w, c


def iterated(shape: tuple, before: tuple) -> tuple:
    """The strides of an elementwise kernel's output on one dense input of strides `before` (TensorIterator's fast
    setup): where torch calls the input contiguous (it skips dims of size 1), a new contiguous tensor's; else,
    where it calls a 4-D input channels-last, a new channels-last tensor's; else the input's own.  The three differ
    only at dims of size 1 (elsewhere torch's test holds only where the strides agree): a Piecewise there."""
    plain = contiguous(shape)
    if tuple(before) == plain:
        return plain
    pieces = [(plain, _laid_out(shape, before, range(len(shape) - 1, -1, -1)))]
    if len(shape) == 4:
        pieces.append((channels_last(shape), _laid_out(shape, before, (1, 3, 2, 0))))
    return _at_ones(shape, pieces, tuple(before))


def kept_if_contiguous(shape: tuple, before: tuple) -> tuple:
    """`x.contiguous()`: x itself where torch calls it contiguous (its strides at dims of size 1 kept), else a new
    contiguous tensor."""
    plain = contiguous(shape)
    if tuple(before) == plain:
        return plain
    return _at_ones(shape, [(tuple(before), _laid_out(shape, before, range(len(shape) - 1, -1, -1)))], plain)


def noise_iterated(shape: tuple, before: tuple) -> tuple | None:
    """The strides of `x * noise`, a feature dropout's output in training (ATen's _dropout_impl): `noise` is a new
    contiguous tensor of x's first two sizes and 1s after (make_feature_noise), broadcast over the rest.  Where the
    two have one shape (every dim past the second of size 1) TensorIterator's fast setup lays the output out as
    `iterated` does (the noise is contiguous and channels-last there); else its general order.  They differ from
    x's strides only at dims of size 1.  Followed way by way as `viewed` follows computeStride; None (not followed)
    for x's Piecewise strides (an elementwise layer's before it: their values multiply the ways) or past MAX_WAYS
    ways."""
    if len(shape) < 2 or any(isinstance(s, sympy.Piecewise) for s in before):
        return None
    if tuple(before) == contiguous(shape):  # contiguous at every size (every layout of sizes 1 to 3 measured)
        return tuple(before)
    return _every_way(lambda way: _noise_product(tuple(shape), tuple(before), way), len(shape))


def _noise_product(shape: tuple, before: tuple, way: _Way) -> tuple:
    one = sympy.Integer(1)
    noise = contiguous((*shape[:2], *[one] * (len(shape) - 2)))
    if all(way.equal(d, 1) for d in shape[2:]):  # one shape: the fast setup (compute_fast_setup_type)
        if _is_laid_out(shape, before, range(len(shape) - 1, -1, -1), way):
            return contiguous(shape)
        if len(shape) == 4 and _is_laid_out(shape, before, (1, 3, 2, 0), way):
            return channels_last(shape)
        if all(way.equal(s, t) for s, t in zip(before, noise, strict=True)):  # one dense layout
            return before
        noise_strides = noise  # no dim broadcast
    else:  # compute_strides: a broadcast dim (noise's size 1, x's not) has stride 0
        noise_strides = tuple(s if k < 2 or way.equal(d, 1) else sympy.Integer(0)
                              for k, (d, s) in enumerate(zip(shape, noise, strict=True)))
    return _dense_in_order(shape, _iterator_order(shape, (before, noise_strides), way))


def _is_laid_out(shape: tuple, strides: tuple, order, way: _Way) -> bool:
    """torch's is_contiguous test in `order` (inner dim first), decided by `way`: each dim not of size 1 has the
    stride of the product of the sizes inside it."""
    expected = sympy.Integer(1)
    for i in order:
        if not way.equal(shape[i], 1):
            if not way.equal(strides[i], expected):
                return False
            expected = expected * shape[i]
    return True


def _iterator_order(shape: tuple, operands: tuple, way: _Way) -> list:
    """TensorIterator's reorder_dimensions, decided by `way`: the dims inner first, by an insertion sort that
    compares two dims by the first operand whose strides for them differ (a broadcast dim, stride 0, is not
    compared; where one's strides are equal, the larger dim goes outer)."""

    def should_swap(d0: int, d1: int) -> int:
        for strides in operands:
            s0, s1 = strides[d0], strides[d1]
            if s0 == 0 or s1 == 0:
                continue
            if way.less(s0, s1):
                return -1
            if way.less(s1, s0):
                return 1
            # equal strides: in a dense layout one of the dims is of size 1 (asked so: no fork on `d1 < d0`)
            if not way.equal(shape[d0], 1) and (way.equal(shape[d1], 1) or way.less(shape[d1], shape[d0])):
                return 1
        return 0

    perm = list(range(len(shape)))[::-1]
    for i in range(1, len(perm)):
        right = i
        for left in range(i - 1, -1, -1):
            order = should_swap(perm[left], perm[right])
            if order > 0:
                perm[left], perm[right] = perm[right], perm[left]
                right = left
            elif order < 0:
                break
    return perm


def _dense_in_order(shape: tuple, perm: list) -> tuple:
    """A new tensor's strides laid out densely in `perm`'s order, inner first (TensorIterator's compatible_stride)."""
    out, step = [None] * len(shape), sympy.Integer(1)
    for d in perm:
        out[d], step = step, step * shape[d]
    return tuple(out)


def _laid_out(shape: tuple, strides: tuple, order) -> sympy.Basic:
    """torch's is_contiguous test in `order` (inner dim first) as a condition on the sizes: each dim not of size 1
    has the stride of the product of the sizes inside it (a size of 1 multiplies nothing)."""
    conds, expected = [], sympy.Integer(1)
    for i in order:
        if strides[i] != expected and sympy.expand(strides[i] - expected) != 0:
            conds.append(sympy.Or(sympy.Eq(shape[i], 1), sympy.Eq(strides[i], expected)))
        expected = expected * shape[i]
    return sympy.And(*conds)


def _at_ones(shape: tuple, pieces: list, last: tuple) -> tuple:
    """Each dim's stride: the first of `pieces` (strides, condition) whose condition holds where the dim is of
    size 1, else `last`'s (the pieces agree with `last` at every other size)."""
    out = []
    for k, size in enumerate(shape):
        kept = []
        for strides, cond in pieces:
            cond = sympy.And(sympy.Eq(size, 1), cond)
            if cond is sympy.false:
                continue
            kept.append((strides[k], cond))
            if cond is sympy.true:
                break
        if all(v == last[k] for v, _ in kept):
            out.append(last[k])
        elif kept[0][1] is sympy.true:
            out.append(kept[0][0])
        else:
            tail = [] if kept[-1][1] is sympy.true else [(last[k], True)]
            out.append(sympy.Piecewise(*kept, *tail, evaluate=False))
    return tuple(out)


def generic(shape: tuple, strides: tuple) -> tuple:
    """The strides at every size where each dim is not 1: a view's stride that differs only where its own dim is
    of size 1 (a Piecewise each of whose other pieces fixes the dim to 1) is its last piece.  What reads strides
    but skips dims of size 1, as torch's contiguity, density and view checks do, reads these."""
    return tuple(_generic(d, s) for d, s in zip(shape, strides, strict=True))


def _generic(size, stride):
    if not isinstance(stride, sympy.Piecewise):
        return stride
    for piece in stride.args[:-1]:
        for way in sympy.Or.make_args(piece.cond):
            said = sympy.And.make_args(way)
            if any(isinstance(c, sympy.Eq) and {c.lhs, c.rhs} == {size, sympy.S.One} for c in said):
                continue  # (iterated's pieces: the dim's own size is 1, a symbol or not)
            fixed = {c.lhs: c.rhs for c in said if isinstance(c, sympy.Eq) and c.lhs.is_Symbol}
            if size.subs(fixed) != 1:
                return stride
    return stride.args[-1].expr


def dense(shape: tuple, strides: tuple) -> bool:
    """Whether the strides lay the tensor out without gaps or overlaps in some order of its dims (a permutation of
    a contiguous tensor), as formulas: from stride 1 up, each next dim's stride is the product of the sizes
    inside it (a dim of size 1 fits anywhere)."""
    left, step = list(zip(shape, generic(shape, strides), strict=True)), sympy.Integer(1)
    while left:
        at = next((k for k, (d, s) in enumerate(left) if d == 1), None)
        if at is None:
            at = next((k for k, (d, s) in enumerate(left) if sympy.expand(s - step) == 0), None)
        if at is None:
            return False
        d, _ = left.pop(at)
        step = step * d
    return True


def elementwise(shape: tuple, strides: tuple):
    """The strides of an elementwise op's output on one tensor (`x.mul(x)`), as TensorIterator lays it out: a dense
    input's own; else contiguous in the order of the input's strides, inner first (ties: the smaller dim inner;
    a broadcast dim, stride 0, is not compared), as its insertion sort finds it.  None where formulas leave an
    order undecided."""
    strides = generic(shape, strides)  # what reads the result (a view check) skips dims of size 1
    if dense(shape, strides):
        return strides
    perm = list(range(len(shape)))[::-1]  # inner first
    try:
        for i in range(1, len(perm)):
            right = i
            for left in range(i - 1, -1, -1):
                order = _should_swap(shape, strides, perm[left], perm[right])
                if order < 0:
                    break
                if order > 0:
                    perm[left], perm[right] = perm[right], perm[left]
                    right = left
    except _Undecided:
        return None
    return _dense_in_order(shape, perm)


class _Undecided(Exception):
    pass


def _should_swap(shape: tuple, strides: tuple, d0: int, d1: int) -> int:
    """TensorIterator's comparison of two dims of one operand: 1 to swap (d0 is outer), -1 to keep, 0 undecided
    (a broadcast dim, or equal strides with d0 no larger)."""
    s0, s1 = strides[d0], strides[d1]
    if s0 == 0 or s1 == 0:
        return 0
    order = _sign(s0 - s1)
    return order if order else int(_sign(shape[d0] - shape[d1]) > 0)


def _sign(e) -> int:
    """The sign of a difference at every size but a few (W - 1 is positive: at W = 1 the dims it orders are of size
    1, whose place no view minds)."""
    e = sympy.expand(e)
    if e == 0:
        return 0
    if e.is_nonnegative or e.is_nonpositive:
        return 1 if e.is_nonnegative else -1
    raise _Undecided


def merges(shape: tuple, strides: tuple, start: int) -> bool:
    """Whether `view` can merge the dims from `start` on into one (torch's computeStride): each dim holds the next
    contiguously, dims of size 1 aside.  A formula must hold at every size."""
    strides, dims = generic(shape, strides), [k for k in range(start, len(shape)) if shape[k] != 1]
    return all(sympy.expand(strides[a] - strides[b] * shape[b]) == 0 for a, b in zip(dims, dims[1:], strict=False))
