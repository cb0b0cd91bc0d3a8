"""ptflops' hooks for the sequence kinds (ptflops/pytorch_ops.py, 0.7.x), as formulas: RNN, LSTM, GRU and
their cells, MultiheadAttention and the Transformer layers (which ptflops does not hook: their submodules'
hooks count).  Each rule gives (module hooks' count, patched calls' count): the caller divides the first by
the batch.  None where ptflops itself fails (its hooks index dims an unbatched input lacks: its whole count
is then None, and convplan lists the kind under `uncounted`).

- RNN/LSTM/GRU: input.shape[0] x input.shape[1] (batch and length, or length and features unbatched:
  the hook assumes batch_first) x D x the sum over layers of W_ih's and W_hh's elements (the forward
  direction's), both biases, and per hidden unit 1 (RNN), 7 (GRU) or 10 (LSTM) for the gates' arithmetic.
  A projecting LSTM's W_hr is not counted.
- the cells: input.shape[0] x the same per step; an unbatched (1-D) input fails in ptflops.
- MultiheadAttention: per batch, the query scaling (L E), the projections written as L E^2 + S kdim^2 +
  S vdim^2 (ptflops squares each input's own dim), the biases (L + 2 S) E, per head the products and the
  softmax (L S (E//h + 1 + vdim//h)), and the output projection L vdim (vdim + 1); on torch's slow path
  with need_weights=True, the patched torch.bmm (2 N L S' E) and F.softmax (N h L S') run too, per call
  (S' counts add_bias_kv's and add_zero_attn's extra positions).  An unbatched input fails in ptflops.
- The Transformer layers: ptflops' hooks disable their fast path, so their MultiheadAttention hooks
  (called with need_weights=False: no patched call), their Linears and their LayerNorms (input elements,
  once: LayerNorm has no `affine`) count; the activation is torch's own F.relu/F.gelu, captured before
  ptflops patches them.
- The stacks (TransformerEncoder, TransformerDecoder, nn.Transformer) are not hooked either: their layers'
  children count as above, layer by layer, and the final LayerNorm (nn.Transformer has two) its input's
  elements.
"""

from __future__ import annotations

import sympy

from .graph import Node
from .layers import prod
from .shapes import even, floordiv

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_ELEMENTWISE = {"RNN": 1, "GRU": 7, "LSTM": 10}  # rnn_flops' additions and products per hidden unit
SEQUENCE = frozenset({"RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention",
                      "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
                      "TransformerDecoder", "Transformer"})


def count(node: Node, inputs: list[Node]):
    """(module hooks' count, patched calls' count), or (None, None) where ptflops fails."""
    shapes = [n.shape for n in inputs]
    kind, a = node.kind, node.args
    if kind in ("RNN", "LSTM", "GRU"):
        return shapes[0][0] * shapes[0][1] * _rnn_per_step(a, kind), 0
    if kind.endswith("Cell"):
        if len(shapes[0]) != 2:
            return None, None
        return shapes[0][0] * _cell_per_step(a, kind[:-4]), 0
    if any(len(s) != 3 for s in shapes):
        return None, None
    if kind == "MultiheadAttention":
        return _attention_hook(a, a["num_heads"], a["batch_first"], *shapes), _patched(node, inputs)
    if kind == "Transformer":  # the encoder over src, the decoder over tgt and memory (src's shape)
        src, tgt = shapes
        return (a["num_encoder_layers"] * _layer_hooks(a, src) + a["num_decoder_layers"] * _layer_hooks(a, tgt, src)
                + _final_norm(src, a) + _final_norm(tgt, a)), 0
    hooks = _layer_hooks(a, *shapes[:2])
    if kind in ("TransformerEncoder", "TransformerDecoder"):  # num_layers layers, the final LayerNorm's hook
        return a["num_layers"] * hooks + (_final_norm(shapes[0], a) if a["norm"] else 0), 0
    return hooks, 0


def _final_norm(shape, a):
    return prod(shape[:-1]) * a["d_model"]  # bn_flops_counter_hook: its input's elements (no `affine`)


def _layer_hooks(a, tgt, memory=None):
    """One encoder layer over `tgt`, or one decoder layer over `tgt` and `memory`: its hooked children."""
    e, f, bf = a["d_model"], a["dim_feedforward"], a["batch_first"]
    tokens = prod(tgt[:-1])
    linears = tokens * (e * f + f) + tokens * (f * e + e) if a["bias"] else tokens * 2 * e * f
    hooks = _attention_hook(a, a["nhead"], bf, tgt, tgt, tgt) + linears + 2 * tokens * e
    if memory is not None:
        hooks += _attention_hook(a, a["nhead"], bf, tgt, memory, memory) + tokens * e
    return hooks


def why(node: Node) -> str:
    """Where ptflops fails: an unbatched input lacks the dim its hook reads."""
    dim = "1 (the cell hook's input_size)" if node.kind.endswith("Cell") else "2 (the attention hook's features)"
    return f"ptflops fails on an unbatched input (its hook reads dim {dim}) and returns no count for the model"


def _rnn_per_step(a, kind: str):
    gate, h, d = _GATES[kind] * a["hidden_size"], a["hidden_size"], 2 if a["bidirectional"] else 1
    proj = a.get("proj_size", 0)
    h_out = proj if proj else h
    total = 0
    for layer in range(int(a["num_layers"])):
        inputs = a["input_size"] if layer == 0 else d * h_out
        total += gate * inputs + gate * h_out + _ELEMENTWISE[kind] * h + (2 * gate if a["bias"] else 0)
    return d * total


def _cell_per_step(a, kind: str):
    gate, h = _GATES[kind] * a["hidden_size"], a["hidden_size"]
    return gate * (a["input_size"] + h) + _ELEMENTWISE[kind] * h + (2 * gate if a["bias"] else 0)


def _sequence(shape, batch_first: bool):
    """(batch, length, features) as ptflops' attention hook reads a 3-D tensor."""
    return (shape[0], shape[1], shape[2]) if batch_first else (shape[1], shape[0], shape[2])


def _attention_hook(a, heads, batch_first: bool, q, k, v):
    """multihead_attention_counter_hook: its own formula, per batch element, times the batch."""
    n, lq, qdim = _sequence(q, batch_first)
    _, lk, kdim = _sequence(k, batch_first)
    _, lv, vdim = _sequence(v, batch_first)
    flops = lq * qdim + lq * qdim * qdim + lk * kdim * kdim + lv * vdim * vdim
    flops += (lq + lk + lv) * qdim if a["bias"] else 0
    flops += heads * (lq * lk * floordiv(qdim, heads) + lq * lk + lq * lk * floordiv(vdim, heads))
    return n * (flops + lq * vdim * (vdim + 1))


def _patched(node: Node, inputs: list[Node]):
    """The patched torch.bmm and F.softmax of F.multi_head_attention_forward's slow path (need_weights=True);
    torch's fast path calls none."""
    a = node.args
    fast = len({n.id for n in inputs}) == 1 and a["batch_first"] and a["bias"] and not a["add_bias_kv"] \
        and not a["add_zero_attn"] and even(a["num_heads"])
    if fast is True:
        return 0
    n, lq, e = _sequence(inputs[0].shape, a["batch_first"])
    s = _sequence(inputs[1].shape, a["batch_first"])[1] + (1 if a["add_bias_kv"] else 0) \
        + (1 if a["add_zero_attn"] else 0)
    slow = 2 * n * lq * s * e + n * a["num_heads"] * lq * s
    return slow if fast is False else sympy.Piecewise((0, fast), (slow, True))
