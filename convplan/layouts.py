"""Each node's output strides, as formulas of the plan's symbols, followed along the graph: what torch 2.13 on
the CPU gives in its default memory format, measured with `.stride()` on the built module's outputs
(tests/test_layouts.py, random stacks of every layer kind, in training mode and in eval mode without
gradients).  `memory` (saves_ops.py: is a matmul's reshape a view or a copy?) and the flopcounter convention
(does attention take the CPU flash kernel, which needs each last dim of stride 1?) read them.

What a layer kind, an operation or a merge does is its registry's declaration: `layout` in layers/spec.py (which the
walker's `view` check reads too), ops.py (with an operation's `view_strides`) and merges.py; the arithmetic on
strides is strides.py.

- A new contiguous tensor whatever its input's layout: inputs, parameters, matmul, softmax, and the layer kinds
  whose layout is CONTIGUOUS (Linear, LayerNorm, Softmax, ...); contiguous() too, but where torch calls its input
  contiguous (dims of size 1 skipped), which it returns itself (strides.kept_if_contiguous); of an input not
  followed, not followed either where a dim can be of size 1 (the strides there are the input's).
- The input's strides: layer kinds whose layout is LIKE_INPUT on a dense input (elementwise: TensorIterator keeps
  a permuted layout; with gaps, a select's or a narrow's, not followed), add and mul of operands of one shape and
  one dense layout: TensorIterator's, which are new contiguous (or channels-last) strides where torch calls the
  input so, and differ from the input's at dims of size 1 there (strides.iterated; a dropout's in training is
  its spec's `trained_strides`; a dropout's in eval, and ReLU6's, whose hardtanh makes its output with
  empty_like, are the input's exactly).  A layer written with
  `inplace=True` (its output is its input), Identity; views keep their
  input's strides with a dim changed (transpose, permute and the Permute layer, select, narrow, chunk and split,
  unflatten, expand: stride 0 where it stretches).
- Contiguous where every input is contiguous: every other layer kind (convolutions, norms, pooling, padding,
  resampling, reshapes, the Transformer layers and stacks, ...), reshapes, reductions and merges.  With an
  input of another layout torch may keep it (a permuted map is channels-last to a convolution): not followed.
- A transpose of a contiguous [L, N, H]: the recurrent layers' (RNN, LSTM, GRU) batch-first output, in every mode
  (measured with and without projections, bidirectional, stacked, with gradients or without).
- MultiheadAttention with batch_first: a transpose of a contiguous [L, N, H] in training and off its fast path,
  a new contiguous tensor on it (eval mode without gradients, whatever the input's layout).  Followed where the
  caller says the mode is eval without gradients (`inference`: the flopcounter's convention) and the kind's
  `LayerSpec.fast_path` decides the path, else not.
- Not followed (None): anything after a node that is not followed."""

from __future__ import annotations

import weakref

import sympy

from .layers import BATCH_FIRST, BATCH_FIRST_IN_TRAINING, CONTIGUOUS, LIKE_INPUT, REGISTRY
from .ops import FUNCTIONS, OPS
from .strides import contiguous, dense, iterated, permuted

_NEW = frozenset({"input", "param"})  # a plan's inputs and learnable tensors: new contiguous tensors


def layouts(graph, inference: bool = False) -> dict:
    """node id -> its output strides (None where they are not followed).  `inference`: in eval mode without
    gradients, where a kind whose layout is BATCH_FIRST_IN_TRAINING has a decided fast path (its spec's
    `fast_path`); otherwise, in any mode, its batch-first outputs are not followed.  At dims of size 1, where a
    dropout's strides differ between the modes, `inference` gives eval's and any mode training's (the memory's
    saves, which are training's, read them)."""
    known: dict = {}
    for n in graph.nodes:
        known[n.id] = strides(n, [graph.nodes[i] for i in n.inputs], known, inference)
    return known


_LAST: tuple = (None, None, None)  # (a weak reference to the graph last asked for, `inference`, its layouts)


def graph_layouts(graph, inference: bool = False) -> dict:
    """layouts(graph, inference), kept for the graph last asked for: a rule that runs per node (the flopcounter's
    attention) reads one walk of the graph, not one each.  Kept by the graph's identity, since hashing a Graph
    hashes every node; a graph is frozen, so its layouts never change."""
    global _LAST
    ref, was, known = _LAST
    if ref is None or ref() is not graph or was is not inference:
        known = layouts(graph, inference)
        _LAST = (weakref.ref(graph), inference, known)
    return known


def strides(node, ins: list, known: dict, inference: bool = False):
    """The node's output strides as formulas, or None where convplan does not follow them.  What each layer kind,
    operation and merge does is its registry's `layout` (and an operation's `view_strides`)."""
    op = node.op
    spec = REGISTRY.get(node.kind) if op == "layer" else FUNCTIONS.get(op)
    if op in _NEW or spec is not None and spec.layout == CONTIGUOUS:
        kept = getattr(spec, "kept_strides", None)  # (an operation's: contiguous())
        if kept is None:
            return contiguous(node.shape)
        if known.get(ins[0].id) is not None:
            return kept(node.shape, known[ins[0].id])
        # x.contiguous() of an x not followed: x itself where torch calls it contiguous, which skips dims of size
        # 1, so the strides there are x's, not known; only a shape with no dim that can be 1 is known
        return contiguous(node.shape) if all(d.is_Integer and d > 1 for d in node.shape) else None
    befores = [known.get(i.id) for i in ins]
    if not ins or befores[0] is None:
        return None
    before = befores[0]
    if op == "layer":
        return _layer(node, spec, ins, befores, inference) if spec is not None else None
    if op == "item":  # one of several outputs: a piece of a view (chunk's), or a layer's further output
        if ins[0].op in OPS and OPS[ins[0].op].view_strides is not None:
            return before
        return contiguous(node.shape) if ins[0].op == "layer" else None
    if spec is None:
        return None
    view = OPS[op].view_strides if op in OPS else None
    if view is not None:
        return view(ins[0].shape, before, node.shape, node.args)
    if _all_contiguous(ins, befores):
        return contiguous(node.shape)
    if spec.layout == LIKE_INPUT and dense(node.shape, before):  # one dense layout: TensorIterator keeps it
        out = iterated(node.shape, before)
        # the operands' strides differ, if at all, only where each is torch's contiguous (or channels-last) and the
        # output is too: one operand's iterated strides, the other's own (`add(h, ReLU(h))`)
        if all(i.shape == node.shape and (b == before or b == out) for i, b in zip(ins, befores, strict=True)):
            return out
    return None


def _layer(node, spec, ins: list, befores: list, inference: bool):
    if node.args.get("inplace") is True:  # the output is the input
        return befores[0]
    if spec.moves_axes == "permute":  # torchvision's Permute: the view torch.permute makes
        return permuted(befores[0], node.args["dims"])
    if spec.layout == LIKE_INPUT:  # TensorIterator keeps a dense layout; one with gaps is not followed
        if node.kind == "Identity" or spec.aliases_input and inference:  # the input itself (a dropout in eval)
            return befores[0]
        if not dense(ins[0].shape, befores[0]):
            return None
        # a dropout's: the input in eval, its spec's `trained_strides` in training; they differ only at dims of size
        # 1, where "any mode" gives training's (what the memory's saves read: attention's flash check reads them)
        trained = spec.trained_strides
        if spec.aliases_input:
            return befores[0] if trained is None else trained(node.args, node.shape, befores[0])
        return befores[0] if spec.like_input_exactly else iterated(node.shape, befores[0])
    batch_first = node.args.get("batch_first") is True and len(node.shape) == 3
    if batch_first and spec.layout == BATCH_FIRST_IN_TRAINING:  # contiguous on the fast path, a transpose off it
        taken = spec.fast_path(node.args, node.shape, node.inputs) if inference and spec.fast_path else None
        if taken is True:
            return contiguous(node.shape)
        if taken is not False:
            return None
    if not _all_contiguous(ins, befores):
        return None
    if batch_first and spec.layout in (BATCH_FIRST, BATCH_FIRST_IN_TRAINING):  # [N, L, H] over a contiguous [L, N, H]
        n, _, h = node.shape
        return h, n * h, sympy.Integer(1)
    return contiguous(node.shape)


def _all_contiguous(ins: list, befores: list) -> bool:
    return all(b is not None and b == contiguous(i.shape) for i, b in zip(ins, befores, strict=True))


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
