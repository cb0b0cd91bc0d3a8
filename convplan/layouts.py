"""Each node's output strides, as formulas of the plan's symbols, followed along the graph: what torch 2.13 on
the CPU gives in its default memory format, measured with `.stride()` on the built module's outputs
(tests/test_layouts.py, random stacks of every layer kind, in training mode and in eval mode without
gradients).  `memory` (saves_ops.py: is a matmul's reshape a view or a copy?) and the flopcounter convention
(does attention take the CPU flash kernel, which needs each last dim of stride 1?) read them.

What a layer kind does is its spec's `layout` (layers/spec.py), which the walker's `view` check reads too.

- A new contiguous tensor whatever its input's layout: inputs, parameters, matmul, contiguous, softmax, and the
  layer kinds whose layout is CONTIGUOUS (Linear, LayerNorm, Softmax, ...).
- The input's strides: layer kinds whose layout is LIKE_INPUT on a dense input (elementwise: TensorIterator keeps
  a permuted layout; with gaps, a select's or a narrow's, not followed), a layer written with `inplace=True` (its
  output is its input), Identity, add and mul of operands of one shape and one dense layout; views keep their
  input's strides with a dim changed (transpose, permute and the Permute layer, select, narrow, chunk and split,
  unflatten, expand: stride 0 where it stretches).
- Contiguous where every input is contiguous: every other layer kind (convolutions, norms, pooling, padding,
  resampling, reshapes, the Transformer layers and stacks, ...), reshapes, reductions and merges.  With an
  input of another layout torch may keep it (a permuted map is channels-last to a convolution): not followed.
- A transpose of a contiguous [L, N, H]: the recurrent layers' (RNN, LSTM, GRU) batch-first output, in every mode
  (measured with and without projections, bidirectional, stacked, with gradients or without).
- Not followed (None): MultiheadAttention with batch_first (its output is a transpose in training and off its
  fast path, contiguous on the no-grad fast path), and anything after a node that is not followed."""

from __future__ import annotations

import weakref

import sympy

from .layers import BATCH_FIRST, BATCH_FIRST_IN_TRAINING, CONTIGUOUS, LIKE_INPUT, REGISTRY

# a new contiguous tensor whatever the input's layout (softmax: measured contiguous on a transposed input)
_FRESH_OPS = frozenset({"matmul", "contiguous", "softmax", "input", "param"})
# contiguous where every input is: reshapes of a contiguous tensor are views of it, the rest new tensors
_CONTIGUOUS_OPS = frozenset({"reshape", "view", "flatten", "unflatten", "add", "mul", "cat", "stack", "mean",
                             "sum", "amax", "scaled_dot_product_attention"})
_ELEMENTWISE_OPS = frozenset({"add", "mul"})
_VIEW_PIECES = frozenset({"narrow", "chunk", "split"})  # pieces of a dim: the input's strides


def contiguous(shape) -> tuple:
    strides, step = [], sympy.Integer(1)
    for d in reversed(tuple(shape)):
        strides.append(step)
        step = step * d
    return tuple(reversed(strides))


def layouts(graph) -> dict:
    """node id -> its output strides (None where they are not followed)."""
    known: dict = {}
    for n in graph.nodes:
        known[n.id] = strides(n, [graph.nodes[i] for i in n.inputs], known)
    return known


_LAST: tuple = (None, None)  # (a weak reference to the graph last asked for, its layouts)


def graph_layouts(graph) -> dict:
    """layouts(graph), kept for the graph last asked for: a rule that runs per node (the flopcounter's attention)
    reads one walk of the graph, not one each.  Kept by the graph's identity, since hashing a Graph hashes
    every node; a graph is frozen, so its layouts never change."""
    global _LAST
    ref, known = _LAST
    if ref is None or ref() is not graph:
        known = layouts(graph)
        _LAST = (weakref.ref(graph), known)
    return known


def strides(node, ins: list, known: dict):
    """The node's output strides as formulas, or None where convplan does not follow them."""
    op = node.op
    spec = REGISTRY.get(node.kind) if op == "layer" else None
    if op in _FRESH_OPS or spec is not None and spec.layout == CONTIGUOUS:
        return contiguous(node.shape)
    befores = [known.get(i.id) for i in ins]
    if not ins or befores[0] is None:
        return None
    before = befores[0]
    if spec is not None:
        return _layer(node, spec, ins, befores)
    if op == "item":  # one of several outputs: a piece of a view, or a layer's further output
        if ins[0].op in _VIEW_PIECES:
            return before
        return contiguous(node.shape) if ins[0].op == "layer" else None
    if op in _VIEW_PIECES:
        return before
    if op == "select":
        return before[: int(node.args["dim"]) % len(before)] + before[int(node.args["dim"]) % len(before) + 1:]
    if op == "transpose":
        d0, d1 = (int(node.args[k]) % len(before) for k in ("dim0", "dim1"))
        out = list(before)
        out[d0], out[d1] = out[d1], out[d0]
        return tuple(out)
    if op == "permute":
        return _permuted(before, node.args["dims"])
    if op == "expand":
        return _expanded(ins[0].shape, before, node.shape)
    if op == "unflatten":  # always a view: the dim's stride s becomes (..., b*s, s)
        d = int(node.args["dim"]) % len(before)
        grown = len(node.shape) - len(before) + 1
        return before[:d] + _outer(node.shape[d: d + grown], before[d]) + before[d + 1:]
    if op in _CONTIGUOUS_OPS and _all_contiguous(ins, befores):
        return contiguous(node.shape)
    alike = all(i.shape == node.shape and b == before for i, b in zip(ins, befores, strict=True))
    if op in _ELEMENTWISE_OPS and alike and dense(node.shape, before):  # one dense layout: TensorIterator keeps it
        return before
    return None


def _layer(node, spec, ins: list, befores: list):
    if node.args.get("inplace") is True:  # the output is the input
        return befores[0]
    if spec.moves_axes == "permute":  # torchvision's Permute: the view torch.permute makes
        return _permuted(befores[0], node.args["dims"])
    if spec.layout == LIKE_INPUT:  # TensorIterator keeps a dense layout; one with gaps is not followed
        return befores[0] if node.kind == "Identity" or dense(ins[0].shape, befores[0]) else None
    batch_first = node.args.get("batch_first") is True and len(node.shape) == 3
    if batch_first and spec.layout == BATCH_FIRST_IN_TRAINING:  # contiguous on the fast path only
        return None
    if not _all_contiguous(ins, befores):
        return None
    if batch_first and spec.layout == BATCH_FIRST:  # [N, L, H] over a contiguous [L, N, H]
        n, _, h = node.shape
        return h, n * h, sympy.Integer(1)
    return contiguous(node.shape)


def _permuted(before: tuple, dims) -> tuple:
    return tuple(before[int(d) % len(before)] for d in dims)


def dense(shape: tuple, strides: tuple) -> bool:
    """Whether the strides lay the tensor out without gaps or overlaps in some order of its dims (a permutation of
    a contiguous tensor), as formulas: from stride 1 up, each next dim's stride is the product of the sizes
    inside it (a dim of size 1 fits anywhere)."""
    left, step = list(zip(shape, strides, strict=True)), sympy.Integer(1)
    while left:
        at = next((k for k, (d, s) in enumerate(left) if d == 1), None)
        if at is None:
            at = next((k for k, (d, s) in enumerate(left) if sympy.expand(s - step) == 0), None)
        if at is None:
            return False
        d, _ = left.pop(at)
        step = step * d
    return True


def _all_contiguous(ins: list, befores: list) -> bool:
    return all(b is not None and b == contiguous(i.shape) for i, b in zip(ins, befores, strict=True))


def _outer(sizes: tuple, inner) -> tuple:
    """Strides of `sizes` laid out contiguously over a dim of stride `inner`."""
    return tuple(inner * c for c in contiguous(sizes))


def _expanded(shape: tuple, before: tuple, out: tuple) -> tuple:
    """expand: new leading dims and stretched dims of size 1 get stride 0, the rest keep theirs."""
    lead = len(out) - len(shape)
    kept = tuple(sympy.Integer(0) if d != o else s for d, s, o in zip(shape, before, out[lead:], strict=True))
    return (sympy.Integer(0),) * lead + kept


def strides_at(nodes, i: int):
    """Node i's output strides, or None, from the nodes made so far (the check stage, before there is a graph): its
    ancestors walked in the order they were made."""
    ancestors, todo = set(), [i]
    while todo:
        k = todo.pop()
        if k not in ancestors:
            ancestors.add(k)
            todo.extend(nodes[k].inputs)
    known: dict = {}
    for k in sorted(ancestors):
        node = nodes[k]
        known[k] = strides(node, [nodes[j] for j in node.inputs], known)
    return known[i]


def elementwise(shape: tuple, strides: tuple):
    """The strides of an elementwise op's output on one tensor (`x.mul(x)`), as TensorIterator lays it out: a dense
    input's own; else contiguous in the order of the input's strides, inner first (ties: the smaller dim inner;
    a broadcast dim, stride 0, is not compared), as its insertion sort finds it.  None where formulas leave an
    order undecided."""
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
    out, step = [None] * len(shape), sympy.Integer(1)
    for d in perm:
        out[d], step = step, step * shape[d]
    return tuple(out)


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
    dims = [k for k in range(start, len(shape)) if shape[k] != 1]
    return all(sympy.expand(strides[a] - strides[b] * shape[b]) == 0 for a, b in zip(dims, dims[1:], strict=False))
