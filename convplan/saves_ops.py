"""What autograd saves for the tensor operations amax, matmul and scaled_dot_product_attention in training
mode (torch 2.13, CPU), as `Saves` rules; measured with `saved_tensors_hooks` (tests/test_saves_ops.py).

- amax keeps its input and its result (the backward spreads the gradient over the maxima: result == input).
- matmul is torch's `_matmul_impl` (aten/native/LinearAlgebra.cpp) played out on the operands' shapes and
  strides: dot, mv and mm keep each operand where the other requires grad; a 3-D-or-more operand times a
  matrix or vector is folded into one mm (`should_fold`: always where the smaller operand requires grad,
  else where the larger's batch dims merge without a copy), the rest broadcast and reshaped to one bmm.
  A reshape is a view where the dims it merges are contiguous with each other (dims of size 1 and
  broadcast dims, whose stride is 0, with their own kind) and a copy (a new tensor) otherwise; a 3-D pair
  whose first batch dims differ and one is 1 (and requires grad) is squeezed first.  What an operand is
  where it is saved: the input's storage (a view) or the copy.
- scaled_dot_product_attention runs, on the CPU, the flash kernel where the tensors are 4-D, dropout_p is
  0, the head dims of query and value agree and each tensor's last dim has stride 1: it keeps query, key,
  value, its output and the log-sum-exp per row ([N, H, L], float32 at least), whichever requires grad.
  Otherwise torch's math path: q * sqrt(scale) and k^T * sqrt(scale) (new tensors in their inputs' layout),
  their matmul, softmax (keeps its output), dropout (keeps its noise, then the product), the matmul with v.

A rule needs each operand's strides (layouts.py): where one is unknown (a node whose strides convplan does
not follow), the operation is listed as unmodelled.  Where a
choice depends on the sizes (a batch dim that may be 1), each outcome is a Piecewise of the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .saves import INPUT, NEW, OPMATH, OUTPUT, Saved, Saves, _prod
from .strides import contiguous, generic


@dataclass(frozen=True)
class _Tensor:
    shape: tuple
    strides: tuple
    grad: bool
    index: int | None = None  # the operation's tensor it is a view of, else a new tensor
    key: str | None = None  # a new tensor: its storage's name in the rule

    def item(self) -> Saved:
        if self.index is not None:
            return Saved(INPUT, index=self.index)
        return Saved(NEW, _prod(self.shape), key=self.key)

    def mT(self) -> _Tensor:  # noqa: N802 - torch's name
        return _Tensor((*self.shape[:-2], self.shape[-1], self.shape[-2]),
                       (*self.strides[:-2], self.strides[-1], self.strides[-2]), self.grad, self.index, self.key)


def _one(d):
    return sympy.Eq(d, 1)


def _merges(dims: list) -> sympy.Basic:
    """Whether (size, stride) dims merge into one without a copy (torch's computeStride): each pair of
    consecutive dims of size other than 1 has stride[i] == stride[j] * size[j]."""
    terms = []
    for i in range(len(dims)):
        for j in range(i + 1, len(dims)):
            between = [_one(dims[k][0]) for k in range(i + 1, j)]
            adjacent = sympy.And(sympy.Not(_one(dims[i][0])), sympy.Not(_one(dims[j][0])), *between)
            terms.append(sympy.Implies(adjacent, sympy.Eq(dims[i][1], dims[j][1] * dims[j][0])))
    return sympy.And(*terms)


class _Plan:
    """The saved items of one rule, each with the condition on the sizes under which torch saves it."""

    def __init__(self):
        self.items: list = []

    def save(self, item: Saved, when) -> None:
        if when is not sympy.false:
            self.items.append((item, when))

    def split(self, cond, when, yes, no) -> None:
        if isinstance(cond, bool):
            cond = sympy.true if cond else sympy.false
        elif not cond.has(sympy.Piecewise):  # (an elementwise output's strides at dims of size 1: sympy's
            cond = sympy.simplify_logic(cond)  # simplify of an Eq of Piecewise runs for minutes; left as it is)
        if cond is sympy.true:
            yes(when)
        elif cond is sympy.false:
            no(when)
        else:
            yes(sympy.And(when, cond))
            no(sympy.And(when, sympy.Not(cond)))

    def saves(self) -> Saves:
        out = []
        for item, when in self.items:
            scale = 1 if when is sympy.true else sympy.Piecewise((1, when), (0, True))
            out.append(Saved(item.what, item.numel, item.dtype, scale=scale, index=item.index, key=item.key))
        return Saves(tuple(out))


def _reshaped(plan: _Plan, t: _Tensor, shape: tuple, strides: tuple, merged: int, key: str, when, then) -> None:
    """`then(tensor, when)` with t (expanded to `shape`, `strides`) reshaped so that its first `merged` dims
    become one: the same storage where they merge, else a copy."""
    folded = (_prod(shape[:merged]), *shape[merged:])
    copy = _Tensor(folded, (None,) * len(folded), t.grad, None, key)  # a view is t's own storage: t
    strides = generic(shape, strides)  # a dim of size 1 merges whatever its stride
    plan.split(_merges(list(zip(shape[:merged], strides[:merged], strict=True))), when,
               lambda w: then(t, w), lambda w: then(copy, w))


def _product(plan: _Plan, a: _Tensor, b: _Tensor, when) -> None:
    """mm, mv, dot or bmm of a and b: each kept where the other requires grad."""
    if b.grad:
        plan.save(a.item(), when)
    if a.grad:
        plan.save(b.item(), when)


def matmul(plan: _Plan, a: _Tensor, b: _Tensor, when, name: str = "matmul") -> None:
    d1, d2 = len(a.shape), len(b.shape)
    if d1 <= 2 and d2 <= 2:
        _product(plan, a, b, when)
        return
    larger = d1 >= d2
    dim_t1, dim_t2 = (d1, d2) if larger else (d2, d1)
    t1 = a if larger else b.mT()
    if dim_t1 >= 3 and dim_t2 <= 2:
        if (b.grad if larger else a.grad):
            fold = sympy.true
        elif d1 == 2:
            fold = sympy.false
        else:  # should_fold's own test of the batch dims: strict, size-1 dims included
            fold = sympy.And(*(sympy.Eq(t1.strides[i], t1.strides[i + 1] * t1.shape[i + 1])
                               for i in range(dim_t1 - 2)))
        plan.split(fold, when, lambda w: _folded(plan, a, b, larger, w, name), lambda w: _batched(plan, a, b, w, name))
        return
    _batched(plan, a, b, when, name)


def _folded(plan: _Plan, a: _Tensor, b: _Tensor, larger: bool, when, name: str) -> None:
    t1 = a if larger else b.mT()
    t2 = b if larger else a  # a.t() where a is a matrix: a's storage
    _reshaped(plan, t1, t1.shape, t1.strides, len(t1.shape) - 1, f"{name}.fold", when,
              lambda folded, w: _product(plan, folded, t2, w))


def _batched(plan: _Plan, a: _Tensor, b: _Tensor, when, name: str) -> None:
    d1, d2 = len(a.shape), len(b.shape)
    if d1 == 3 and d2 == 3:
        p, q = a.shape[0], b.shape[0]
        squeeze_a = sympy.And(sympy.Ne(p, q), _one(p)) if a.grad else sympy.false
        squeeze_b = sympy.And(sympy.Ne(p, q), _one(q), sympy.Not(squeeze_a)) if b.grad else sympy.false

        def rest(w):
            plan.split(squeeze_b, w, lambda v: matmul(plan, a, _squeezed(b), v, name),
                       lambda v: _broadcast(plan, a, b, v, name))

        plan.split(squeeze_a, when, lambda w: matmul(plan, _squeezed(a), b, w, name), rest)
        return
    _broadcast(plan, a, b, when, name)


def _squeezed(t: _Tensor) -> _Tensor:
    return _Tensor(t.shape[1:], t.strides[1:], t.grad, t.index, t.key)


def _broadcast(plan: _Plan, a: _Tensor, b: _Tensor, when, name: str) -> None:
    """Both expanded to the broadcast batch dims and reshaped to [batch, ., .]: bmm."""
    left = a if len(a.shape) > 1 else _Tensor((1, *a.shape), (0, *a.strides), a.grad, a.index, a.key)
    right = b if len(b.shape) > 1 else _Tensor((*b.shape, 1), (*b.strides, 0), b.grad, b.index, b.key)
    batch_a, batch_b = left.shape[:-2], right.shape[:-2]
    rank = max(len(batch_a), len(batch_b))
    batch = []
    for i in range(rank):
        p = batch_a[i - rank + len(batch_a)] if i - rank + len(batch_a) >= 0 else 1
        q = batch_b[i - rank + len(batch_b)] if i - rank + len(batch_b) >= 0 else 1
        batch.append(q if p == 1 else p if q == 1 else sympy.Piecewise((q, _one(p)), (p, True)))

    def expanded(t: _Tensor):
        own = len(t.shape) - 2
        strides = []
        for i in range(rank):
            k = i - rank + own
            size = t.shape[k] if k >= 0 else 1
            stride = t.strides[k] if k >= 0 else 0
            strides.append(sympy.Piecewise((0, sympy.And(_one(size), sympy.Not(_one(batch[i])))), (stride, True))
                           if size != 1 or batch[i] != 1 else stride)
        return (*batch, *t.shape[-2:]), (*strides, *t.strides[-2:])

    shape_a, strides_a = expanded(left)
    shape_b, strides_b = expanded(right)
    _reshaped(plan, left, shape_a, strides_a, rank, f"{name}.left", when, lambda x, w: _reshaped(
        plan, right, shape_b, strides_b, rank, f"{name}.right", w, lambda y, v: _product(plan, x, y, v)))


def _operands(shapes, strides_, grads) -> list | None:
    if any(s is None for s in strides_):
        return None
    return [_Tensor(tuple(shape), tuple(st), bool(g), i) for i, (shape, st, g) in enumerate(
        zip(shapes, strides_, grads, strict=True))]


def matmul_saves(a, shape, out, other, grads=(True, True), strides=(None, None)) -> Saves:
    operands = _operands((shape, other), strides, grads)
    if operands is None:
        return Saves(unmodelled=True)
    plan = _Plan()
    matmul(plan, *operands, sympy.true)
    return plan.saves()


def amax_saves(a, shape, out) -> Saves:
    """The input and the result, compared in the backward (amax spreads the gradient over equal maxima)."""
    return Saves((Saved(INPUT), Saved(OUTPUT)))


def flash(shapes, strides_, a) -> sympy.Basic:
    """Whether torch 2.13 runs attention in the CPU flash kernel: 4-D, no dropout, equal head dims, each
    tensor's last dim of stride 1."""
    q, _, v = shapes
    if len(q) != 4 or a["dropout_p"] != 0:
        return sympy.false
    return sympy.And(sympy.Eq(q[-1], v[-1]), *(sympy.Eq(s[-1], 1) for s in strides_))


def sdpa_saves(a, shape, out, key, value, grads=(True, True, True), strides=(None, None, None)) -> Saves:
    operands = _operands((shape, key, value), strides, grads)
    if operands is None:
        return Saves(unmodelled=True)
    q, k, v = operands
    plan = _Plan()

    def fused(w):
        for i in range(3):
            plan.save(Saved(INPUT, index=i), w)
        plan.save(Saved("output"), w)
        plan.save(Saved(NEW, _prod(shape[:-1]), OPMATH), w)

    def math(w):
        scaled_q = _Tensor(q.shape, q.strides, q.grad, None, "q")
        kt = k.mT()
        scaled_k = _Tensor(kt.shape, kt.strides, k.grad, None, "k")
        matmul(plan, scaled_q, scaled_k, w, "scores")
        weights = (*shape[:-1], key[-2])
        attention = q.grad or k.grad
        if attention:
            plan.save(Saved(NEW, _prod(weights), key="softmax"), w)
        probs = _Tensor(weights, contiguous(weights), attention, None, "softmax")
        if a["dropout_p"] != 0:
            if attention:
                plan.save(Saved(NEW, _prod(weights), key="noise"), w)
            probs = _Tensor(weights, contiguous(weights), attention, None, "dropped")
        matmul(plan, probs, v, w, "values")

    plan.split(flash((shape, key, value), strides, a), sympy.true, fused, math)
    return plan.saves()
